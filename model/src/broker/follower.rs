//! A partition's follower: it first reconciles its log with the leader's by the rules of its
//! protocol variant (truncate to its own HW, or ask OffsetForLeaderEpoch), then fetches,
//! appends what it gets, adopts min(leader's HW, own log end offset), and follows the leader's
//! log start offset. A follower behind the leader's log start gets OFFSET_OUT_OF_RANGE and
//! starts again, empty, from there (Kafka's `truncateFullyAndStartAt`).
//!
//! One fetch is outstanding per leader, for every partition this broker follows there (Kafka's
//! fetcher thread); each partition of the answer is handled on its own.
//!
//! Fence first: an answer is acted on only if it answers the request in flight (from the
//! leader followed, for the log end offset or last epoch asked about) and, with KIP-320, comes
//! from the follower's own leader epoch; an error answer only makes the partition back off.

use super::replica::{FollowerPhase, FollowerState, Role};
use super::{BrokerEffects, BrokerState};
use crate::config::{BrokerConfig, Rule};
use crate::effects::{Address, Ignored};
use crate::log::{end_offset_for_epoch, LogError, ReplicaLog};
use crate::message::{
    ErrorCode, FetchPartition, FetchRequest, FetchResponse, FetchedPartition, Msg,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ReplicaId, Timer,
};
use crate::types::{BrokerId, FlushPolicy, TopicPartition, Variant};
use std::borrow::Cow;

/// Follows `leader`: reconciles the log by the variant's rule, then fetches.
pub(super) fn become_follower<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    leader: BrokerId,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    let replica = state.replicas.get_mut(&tp).expect("the caller holds it");
    let phase = match config.protocol.variant {
        Variant::HwTruncation => {
            let high_watermark = replica.high_watermark;
            match replica.truncate(high_watermark) {
                Ok(lowered) => state.high_watermark_lowered |= lowered,
                Err(error) => return stopped(out, tp, error),
            }
            FollowerPhase::Fetching
        }
        _ if replica.log.last_epoch().is_none() => FollowerPhase::Fetching,
        _ => FollowerPhase::Reconciling,
    };
    let replica = state.replicas.get_mut(&tp).expect("held");
    replica.role = Role::Follower(FollowerState {
        leader,
        phase,
        backing_off: false,
    });
    match phase {
        FollowerPhase::Reconciling => send_offset_for_leader_epoch(config, state, tp, out),
        // A fetch outstanding at this leader may have been lost with an earlier incarnation of
        // it: fetch now (a duplicate answer is recognised by its fetch offsets).
        FollowerPhase::Fetching => send_fetch(config, state, leader, out),
    }
    true
}

fn stopped<B>(out: &mut BrokerEffects<B>, tp: TopicPartition, error: LogError) -> bool {
    out.stop(format_args!("truncating {tp}: {error}"));
    false
}

/// Fetches, from `leader`, every partition this broker follows there and is not backing off.
fn send_fetch<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    leader: BrokerId,
    out: &mut BrokerEffects<L::Batch>,
) {
    let fences = config.protocol.variant.fences_leader_epoch();
    let partitions: Vec<FetchPartition> = state
        .replicas
        .iter()
        .filter(|(_, replica)| {
            replica.follower().is_some_and(|f| {
                f.leader == leader && f.phase == FollowerPhase::Fetching && !f.backing_off
            })
        })
        .map(|(tp, replica)| FetchPartition {
            topic_partition: *tp,
            current_leader_epoch: fences.then_some(replica.leader_epoch),
            fetch_offset: replica.log.log_end_offset(),
            bytes_max: u64::from(config.limits.replica_fetch_max_bytes),
        })
        .collect();
    if partitions.is_empty() {
        return;
    }
    state.fetches_in_flight.insert(leader);
    let request = FetchRequest {
        replica: Some(ReplicaId {
            broker: config.id,
            broker_epoch: state.broker_epoch,
        }),
        min_bytes: u64::from(config.limits.replica_fetch_min_bytes),
        max_wait_ms: config.timeouts.replica_fetch_wait_max.as_millis() as u32,
        bytes_max: u64::from(config.limits.replica_fetch_response_max_bytes),
        partitions,
    };
    out.send(Address::Broker(leader), Msg::Fetch(request));
}

/// Asks the leader where the epoch of the log's last batch ends; with nothing left to
/// reconcile (retention may have emptied the log since), fetches instead.
fn send_offset_for_leader_epoch<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let replica = state.replicas.get_mut(&tp).expect("the caller holds it");
    let Some(last_epoch) = replica.log.last_epoch() else {
        let follower = replica.follower_mut();
        follower.phase = FollowerPhase::Fetching;
        let leader = follower.leader;
        if !state.fetches_in_flight.contains(&leader) {
            send_fetch(config, state, leader, out);
        }
        return;
    };
    let follower = replica.follower().expect("a follower");
    let request = OffsetForLeaderEpochRequest {
        replica: Some(ReplicaId {
            broker: config.id,
            broker_epoch: state.broker_epoch,
        }),
        topic_partition: tp,
        current_leader_epoch: config
            .protocol
            .variant
            .fences_leader_epoch()
            .then_some(replica.leader_epoch),
        leader_epoch: last_epoch,
    };
    out.send(
        Address::Broker(follower.leader),
        Msg::OffsetForLeaderEpoch(request),
    );
}

/// The leader's answer to this broker's fetch: each partition on its own, then the next fetch.
pub(super) fn on_fetch_response<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    leader: BrokerId,
    response: FetchResponse<L::Batch>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let next = state.to_mut();
    next.fetches_in_flight.remove(&leader);
    for fetched in response.partitions {
        if !on_fetched_partition(config, next, leader, fetched, out) {
            return;
        }
    }
    send_fetch(config, next, leader, out);
}

/// One partition of a fetch answer. Returns false if the step stopped on a log failure.
fn on_fetched_partition<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    leader: BrokerId,
    fetched: FetchedPartition<L::Batch>,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    let tp = fetched.topic_partition;
    let Some(replica) = state.replicas.get_mut(&tp) else {
        out.ignore(Ignored::UnknownPartition(tp));
        return true;
    };
    let awaited = replica.follower().is_some_and(|f| {
        f.leader == leader && f.phase == FollowerPhase::Fetching && !f.backing_off
    }) && fetched.fetch_offset == replica.log.log_end_offset();
    if !awaited {
        out.ignore(Ignored::NotAwaited("Fetch"));
        return true;
    }
    if fetched
        .error
        .is_some_and(|error| error != ErrorCode::OffsetOutOfRange)
    {
        back_off(config, state, tp, out);
        return true;
    }
    let replica = state.replicas.get_mut(&tp).expect("held");
    if config.protocol.variant.fences_leader_epoch() && fetched.leader_epoch != replica.leader_epoch
    {
        out.ignore(Ignored::StaleLeaderEpoch {
            partition: tp,
            known: replica.leader_epoch,
            got: fetched.leader_epoch,
        });
        return true;
    }
    let result = match fetched.error {
        Some(_) if fetched.fetch_offset < fetched.log_start_offset => {
            // Behind the leader's log start: start again, empty, from there.
            replica.restart_at(fetched.log_start_offset)
        }
        Some(_) => replica.truncate(fetched.log_end_offset.unwrap_or(fetched.fetch_offset)),
        None => append_fetched(config, replica, fetched).map(|()| false),
    };
    match result {
        Ok(lowered) => state.high_watermark_lowered |= lowered,
        Err(error) => {
            out.stop(format_args!("replicating {tp}: {error}"));
            return false;
        }
    }
    true
}

/// Appends the leader's batches that continue the log, then takes the leader's HW (capped at
/// the own log end offset) and log start offset (capped at the own HW).
fn append_fetched<L: ReplicaLog>(
    config: &BrokerConfig,
    replica: &mut super::Replica<L>,
    fetched: FetchedPartition<L::Batch>,
) -> Result<(), LogError> {
    let appended = !fetched.batches.is_empty();
    for entry in fetched.batches {
        if entry.base_offset != replica.log.log_end_offset() {
            break;
        }
        replica.append(entry.leader_epoch, entry.batch)?;
    }
    if appended && config.protocol.flush == FlushPolicy::Always {
        replica.log.flush()?;
    }
    let high_watermark = match config.protocol.enforces(Rule::FollowerHighWatermarkCap) {
        true => fetched.high_watermark.min(replica.log.log_end_offset()),
        false => fetched.high_watermark,
    };
    replica.high_watermark = replica.high_watermark.max(high_watermark);
    let log_start_offset = fetched.log_start_offset.min(replica.high_watermark);
    if log_start_offset > replica.log.log_start_offset() {
        replica.log.advance_log_start_offset(log_start_offset)?;
    }
    Ok(())
}

fn back_off<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let replica = state.replicas.get_mut(&tp).expect("held");
    replica.follower_mut().backing_off = true;
    out.set_timer(Timer::FetchBackoff(tp), config.timeouts.fetch_backoff);
}

/// The backoff is over: ask again (OffsetForLeaderEpoch, or a fetch if none is outstanding at
/// the leader; one that is will carry the partition next time).
pub(super) fn on_fetch_backoff<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let Some(follower) = state.replicas.get(&tp).and_then(|r| r.follower()) else {
        return;
    };
    if !follower.backing_off {
        return;
    }
    let (leader, phase) = (follower.leader, follower.phase);
    let next = state.to_mut();
    next.replicas
        .get_mut(&tp)
        .expect("held")
        .follower_mut()
        .backing_off = false;
    match phase {
        FollowerPhase::Reconciling => send_offset_for_leader_epoch(config, next, tp, out),
        FollowerPhase::Fetching if !next.fetches_in_flight.contains(&leader) => {
            send_fetch(config, next, leader, out)
        }
        FollowerPhase::Fetching => {}
    }
}

/// The connection to a leader closed: what was in flight there is lost; ask again.
pub(super) fn on_leader_disconnected<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    leader: BrokerId,
    out: &mut BrokerEffects<L::Batch>,
) {
    state.fetches_in_flight.remove(&leader);
    let reconciling: Vec<TopicPartition> = state
        .replicas
        .iter()
        .filter(|(_, replica)| {
            replica.follower().is_some_and(|f| {
                f.leader == leader && f.phase == FollowerPhase::Reconciling && !f.backing_off
            })
        })
        .map(|(tp, _)| *tp)
        .collect();
    for tp in reconciling {
        send_offset_for_leader_epoch(config, state, tp, out);
    }
    if !state.fetches_in_flight.contains(&leader) {
        send_fetch(config, state, leader, out);
    }
}

/// The leader's answer, at a reconciling follower: truncate, then fetch (or ask again).
pub(super) fn on_offset_for_leader_epoch_response<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    leader: BrokerId,
    response: OffsetForLeaderEpochResponse,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = response.topic_partition;
    let Some(replica) = state.replicas.get(&tp) else {
        return out.ignore(Ignored::UnknownPartition(tp));
    };
    let awaited = replica.follower().is_some_and(|f| {
        f.leader == leader && f.phase == FollowerPhase::Reconciling && !f.backing_off
    }) && replica.log.last_epoch() == Some(response.requested_epoch);
    if !awaited {
        return out.ignore(Ignored::NotAwaited("OffsetForLeaderEpoch"));
    }
    let answer = match response.result {
        Err(_) => return back_off(config, state.to_mut(), tp, out),
        Ok(answer) => answer,
    };
    if config.protocol.variant.fences_leader_epoch()
        && response.leader_epoch != replica.leader_epoch
    {
        return out.ignore(Ignored::StaleLeaderEpoch {
            partition: tp,
            known: replica.leader_epoch,
            got: response.leader_epoch,
        });
    }
    let next = state.to_mut();
    let replica = next.replicas.get_mut(&tp).expect("held");
    let requested = response.requested_epoch;
    let log_end_offset = replica.log.log_end_offset();
    let (to, reconciled) = match (config.protocol.variant, answer.leader_epoch) {
        (Variant::Kip279 | Variant::Kip320, Some(epoch)) if epoch < requested => {
            // The leader does not know our last epoch: cut at the end of the epoch it does know,
            // and ask again unless our log then ends in that very epoch (KIP-279).
            let own = end_offset_for_epoch(&replica.log.epoch_entries(), log_end_offset, epoch);
            (own.end_offset.min(answer.end_offset), None)
        }
        _ => (answer.end_offset.min(log_end_offset), Some(true)),
    };
    match replica.truncate(to) {
        Ok(lowered) => next.high_watermark_lowered |= lowered,
        Err(error) => return out.stop(format_args!("truncating {tp}: {error}")),
    }
    let replica = next.replicas.get_mut(&tp).expect("held");
    let reconciled = reconciled.unwrap_or_else(|| {
        let epoch = answer.leader_epoch;
        replica
            .log
            .last_epoch()
            .is_none_or(|last| Some(last) == epoch)
    });
    if !reconciled {
        return send_offset_for_leader_epoch(config, next, tp, out);
    }
    replica.follower_mut().phase = FollowerPhase::Fetching;
    send_fetch(config, next, leader, out);
}
