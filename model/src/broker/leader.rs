//! A partition's leader: it appends produce requests stamped with its leader epoch (checking
//! idempotent producers' sequence numbers), answers fetches (holding one until `min_bytes` are
//! there or `max_wait_ms` passes, as Kafka's fetch purgatory does), learns each follower's log
//! end offset from its fetch offset, and advances the high watermark to the smallest log end
//! offset over the maximal ISR (the ISR plus a pending expansion), but only while the ISR has
//! at least `min.insync.replicas` members (KIP-966's guard). It proposes ISR changes to the
//! controller: shrink when a follower has not caught up for `replica.lag.time.max.ms`, expand
//! when a follower has caught up.
//!
//! Every handler fences first: a request naming another leader epoch, or a partition this
//! broker does not lead, is answered with an error before anything changes.

use super::idempotence::Verdict;
use super::replica::{FollowerProgress, LeaderState, PendingProduce, Replica, Role};
use super::{coordinator, BrokerEffects, BrokerState, HeldFetch};
use crate::config::{BrokerConfig, Rule};
use crate::effects::{Address, Ignored};
use crate::log::{end_offset_for_epoch, next_epoch_start_offset, EpochEndOffset, RecordBatch};
use crate::log::{LogError, ReplicaLog};
use crate::message::{
    AlterPartitionRequest, AlterPartitionResponse, ErrorCode, FetchPartition, FetchRequest,
    FetchResponse, FetchedPartition, IsrMember, ListOffsetsRequest, ListOffsetsResponse,
    ListedOffset, Msg, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, OffsetQuery,
    PartitionState, ProduceRequest, ProduceResponse, ReplicaId, Timer,
};
use crate::types::{Acks, BrokerId, FlushPolicy, Isr, LeaderEpoch, Offset, PartitionEpoch};
use crate::types::{Map, TopicPartition, Variant};
use std::borrow::Cow;
use std::time::Duration;

/// Takes the leader role the controller gave: the ISR and partition epoch it decided, the
/// epoch beginning at the log end offset, every ISR follower counted as caught up now.
pub(super) fn become_leader<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    partition: PartitionState,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    let tp = partition.topic_partition;
    let replica = state.replicas.get_mut(&tp).expect("the caller holds it");
    for follower in partition.isr.iter().filter(|b| **b != config.id) {
        arm_lag_timer(config, tp, *follower, out);
    }
    replica.role = Role::Leader(LeaderState {
        isr: partition.isr,
        partition_epoch: partition.partition_epoch,
        proposed_isr: None,
        epoch_start_offset: replica.log.log_end_offset(),
        followers: Map::default(),
        pending_produces: Default::default(),
    });
    if coordinator::is_offsets_partition(state, tp) && !coordinator::load(config, state, tp, out) {
        return false;
    }
    advance_high_watermark(config, state, tp, out);
    true
}

/// Leaving a role: a leader's waiting produce requests learn it no longer leads, its held
/// fetches that name the partition are answered now, its timers stop.
pub(super) fn resign<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    coordinator::unload(state, tp, out);
    let Some(replica) = state.replicas.get_mut(&tp) else {
        return;
    };
    match std::mem::replace(&mut replica.role, Role::Unassigned) {
        Role::Leader(leader) => {
            for follower in leader.isr.iter().filter(|b| **b != config.id) {
                out.cancel_timer(Timer::ReplicaLag(tp, *follower));
            }
            for pending in leader.pending_produces {
                respond_produce(
                    out,
                    &pending.requester,
                    pending.request,
                    tp,
                    Err(ErrorCode::NotLeaderOrFollower),
                );
            }
            complete_held_fetches(config, state, Some(tp), out);
        }
        Role::Follower(follower) => {
            if follower.backing_off {
                out.cancel_timer(Timer::FetchBackoff(tp));
            }
        }
        Role::Unassigned => {}
    }
}

fn arm_lag_timer<B>(
    config: &BrokerConfig,
    tp: TopicPartition,
    follower: BrokerId,
    out: &mut BrokerEffects<B>,
) {
    out.set_timer(
        Timer::ReplicaLag(tp, follower),
        config.timeouts.replica_lag_max,
    );
}

fn respond_produce<B>(
    out: &mut BrokerEffects<B>,
    requester: &Address,
    request: u32,
    topic_partition: TopicPartition,
    result: Result<Offset, ErrorCode>,
) {
    let response = ProduceResponse {
        request,
        topic_partition,
        result,
    };
    out.send(*requester, Msg::ProduceResponse(response));
}

/// The error a request for `tp` gets here if this broker does not lead it.
fn not_leading<L: ReplicaLog>(state: &BrokerState<L>, tp: TopicPartition) -> ErrorCode {
    let known = state
        .topic_of(tp)
        .is_some_and(|t| tp.partition < t.info.partitions);
    match known {
        true => ErrorCode::NotLeaderOrFollower,
        false => ErrorCode::UnknownTopicOrPartition,
    }
}

/// Produce: refused unless this broker leads the partition and, for acks=all, the ISR has
/// min.insync.replicas members; an idempotent producer's batch is checked against its
/// sequence numbers (a retried batch gets its first offset back, once committed for acks=all).
/// Otherwise appended, stamped with the leader epoch, and flushed if the flush policy says so.
/// `__consumer_offsets` takes only its coordinator's records: a client's produce to it is
/// INVALID_TOPIC_EXCEPTION, as in Kafka.
pub(super) fn on_produce<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    request: ProduceRequest<L::Batch>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = request.topic_partition;
    let respond = |out: &mut BrokerEffects<L::Batch>, result| {
        if request.acks != Acks::None {
            respond_produce(out, &from, request.request, tp, result);
        }
    };
    let replica = match state.replicas.get(&tp) {
        Some(replica) if replica.leader().is_some() => replica,
        _ => return respond(out, Err(not_leading(state, tp))),
    };
    let leader = replica.leader().expect("checked");
    if super::coordinator::is_offsets_partition(state, tp) {
        return respond(out, Err(ErrorCode::InvalidTopic));
    }
    if request.acks == Acks::All && (leader.isr.len() as u32) < replica.min_insync_replicas {
        return respond(out, Err(ErrorCode::NotEnoughReplicas));
    }
    let verdict = match request.batch.producer() {
        Some(numbering) => replica
            .producers
            .verdict(numbering, request.batch.record_count()),
        None => Verdict::Append,
    };
    let verdict = match verdict {
        Verdict::Duplicate(_) if !config.protocol.enforces(Rule::DuplicateDetection) => {
            Verdict::Append
        }
        verdict => verdict,
    };
    let next = state.to_mut();
    let (base_offset, end_offset) = match verdict {
        Verdict::Refuse(error) => return respond(out, Err(error)),
        Verdict::Duplicate(written) => (written.base_offset, written.next_offset),
        Verdict::Append => match append(config, next, tp, request.batch) {
            Ok(offsets) => offsets,
            Err(error) => return out.stop(format_args!("appending to {tp}: {error}")),
        },
    };
    let replica = next.replicas.get_mut(&tp).expect("held");
    match request.acks {
        Acks::None => {}
        Acks::Leader => respond(out, Ok(base_offset)),
        Acks::All if replica.high_watermark >= end_offset => respond(out, Ok(base_offset)),
        Acks::All => {
            replica
                .leader_mut()
                .pending_produces
                .insert(PendingProduce {
                    end_offset,
                    requester: from,
                    request: request.request,
                    base_offset,
                });
        }
    }
    if matches!(verdict, Verdict::Append) {
        advance_high_watermark(config, next, tp, out);
        wake_held_fetches(config, next, tp, out);
    }
}

/// Appends as leader (flushing if the policy says so); the batch's base and next offsets.
pub(super) fn append<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    batch: L::Batch,
) -> Result<(Offset, Offset), LogError> {
    let replica = state.replicas.get_mut(&tp).expect("held");
    let epoch = replica.leader_epoch;
    let base_offset = replica.append(epoch, batch)?;
    if config.protocol.flush == FlushPolicy::Always {
        replica.log.flush()?;
    }
    Ok((base_offset, replica.log.log_end_offset()))
}

/// A fetch, from a follower or a consumer. A follower's fetch offset is its log end offset: the
/// leader records it (and the broker epoch it names), which may advance the HW and the ISR.
/// The answer goes now if it has `min_bytes` or an error; otherwise the fetch is held.
pub(super) fn on_fetch<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    request: FetchRequest,
    out: &mut BrokerEffects<L::Batch>,
) {
    if let Some(follower) = request.replica {
        for partition in &request.partitions {
            if check_partition(config, state, partition, Some(follower)).is_ok()
                && is_news(state, partition, follower)
            {
                record_follower_fetch(config, state.to_mut(), partition, follower, out);
            }
        }
    }
    // A new fetch from the same requester replaces one held (its answer would not be read).
    if let Some(index) = state.held_fetches.iter().position(|h| h.requester == from) {
        state.to_mut().held_fetches.remove(index);
        out.cancel_timer(Timer::FetchExpiry(from));
    }
    if request.max_wait_ms == 0 || ready(state, &request) {
        let response = read(config, state, &request);
        out.send(from, Msg::FetchResponse(response));
        return;
    }
    let next = state.to_mut();
    if next.held_fetches.len() >= config.limits.fetches_held_max {
        let oldest = next.held_fetches.remove(0);
        answer_held(config, next, oldest, out);
    }
    out.set_timer(
        Timer::FetchExpiry(from),
        Duration::from_millis(u64::from(request.max_wait_ms)),
    );
    next.held_fetches.push(HeldFetch {
        requester: from,
        request,
    });
}

/// Whether a follower's fetch tells the leader anything it did not know.
fn is_news<L: ReplicaLog>(
    state: &BrokerState<L>,
    partition: &FetchPartition,
    follower: ReplicaId,
) -> bool {
    let replica = &state.replicas[&partition.topic_partition];
    let leader = replica.leader().expect("checked");
    leader.followers.get(&follower.broker)
        != Some(&FollowerProgress {
            log_end_offset: partition.fetch_offset,
            broker_epoch: follower.broker_epoch,
            leader_log_end_offset: replica.log.log_end_offset(),
        })
}

/// Whether this broker can serve a fetch of the partition now: it leads it, the requester's
/// leader epoch is its own (KIP-320), and the offset is within the log.
fn check_partition<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    partition: &FetchPartition,
    follower: Option<ReplicaId>,
) -> Result<(), ErrorCode> {
    let tp = partition.topic_partition;
    let replica = match state.replicas.get(&tp) {
        Some(replica) if replica.leader().is_some() => replica,
        _ => return Err(not_leading(state, tp)),
    };
    let fenced = config.protocol.variant.fences_leader_epoch()
        && config.protocol.enforces(Rule::FetchLeaderEpochFence);
    match partition.current_leader_epoch {
        Some(epoch) if fenced && epoch < replica.leader_epoch => {
            return Err(ErrorCode::FencedLeaderEpoch)
        }
        Some(epoch) if fenced && epoch > replica.leader_epoch => {
            return Err(ErrorCode::UnknownLeaderEpoch)
        }
        _ => {}
    }
    let log = &replica.log;
    if partition.fetch_offset > log.log_end_offset()
        || partition.fetch_offset < log.log_start_offset()
    {
        return Err(ErrorCode::OffsetOutOfRange);
    }
    let _ = follower;
    Ok(())
}

/// A follower's fetch offset is its log end offset. If it has caught up to where the leader's
/// log ended at its previous fetch (or to the log end now), it was caught up: its lag timer
/// starts over (Kafka's `lastCaughtUpTimeMs`). It may join the ISR, and the HW may advance.
fn record_follower_fetch<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    partition: &FetchPartition,
    follower: ReplicaId,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = partition.topic_partition;
    let replica = state.replicas.get_mut(&tp).expect("checked");
    let log_end_offset = replica.log.log_end_offset();
    let leader = replica.leader_mut();
    let previous = leader.followers.get(&follower.broker).copied();
    let progress = FollowerProgress {
        log_end_offset: partition.fetch_offset,
        broker_epoch: follower.broker_epoch,
        leader_log_end_offset: log_end_offset,
    };
    leader.followers.insert(follower.broker, progress);
    let caught_up = partition.fetch_offset >= log_end_offset
        || previous.is_some_and(|p| partition.fetch_offset >= p.leader_log_end_offset);
    if caught_up && leader.isr.contains(&follower.broker) {
        arm_lag_timer(config, tp, follower.broker, out);
    }
    maybe_expand_isr(config, state, tp, follower.broker, out);
    advance_high_watermark(config, state, tp, out);
}

/// Whether a fetch can be answered now: an error in any partition, or `min_bytes` to return.
fn ready<L: ReplicaLog>(state: &BrokerState<L>, request: &FetchRequest) -> bool {
    let mut bytes = 0;
    for partition in &request.partitions {
        let Some(replica) = state.replicas.get(&partition.topic_partition) else {
            return true;
        };
        let Some(until) = readable_until(replica, request.replica.is_some()) else {
            return true;
        };
        let from = partition.fetch_offset;
        if from > replica.log.log_end_offset() || from < replica.log.log_start_offset() {
            return true;
        }
        match replica.log.bytes_between(
            from,
            until,
            request.min_bytes - bytes.min(request.min_bytes),
        ) {
            Ok(available) => bytes += available,
            Err(_) => return true,
        }
        if bytes >= request.min_bytes {
            return true;
        }
    }
    false
}

/// How far a fetch may read: a follower to the log end, a consumer to the HW; `None` if this
/// replica does not lead.
fn readable_until<L: ReplicaLog>(replica: &Replica<L>, follower: bool) -> Option<Offset> {
    replica.leader()?;
    Some(match follower {
        true => replica.log.log_end_offset(),
        false => replica.high_watermark,
    })
}

/// The answer to a fetch as things stand: per partition, an error or the batches from the
/// fetch offset (whole batches; at most the partition's and the response's byte limits, but
/// always the first batch of the first partition that has one, KIP-74).
fn read<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    request: &FetchRequest,
) -> FetchResponse<L::Batch> {
    let mut remaining = request.bytes_max;
    let mut any = false;
    let partitions = request
        .partitions
        .iter()
        .map(|partition| {
            let tp = partition.topic_partition;
            let fetched = read_partition(config, state, partition, request.replica, remaining, any);
            let bytes: u64 = fetched.batches.iter().map(|e| e.batch.size_bytes()).sum();
            any |= bytes > 0;
            remaining = remaining.saturating_sub(bytes);
            debug_assert_eq!(fetched.topic_partition, tp);
            fetched
        })
        .collect();
    FetchResponse { partitions }
}

fn read_partition<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    partition: &FetchPartition,
    follower: Option<ReplicaId>,
    remaining: u64,
    any: bool,
) -> FetchedPartition<L::Batch> {
    let tp = partition.topic_partition;
    let replica = state.replicas.get(&tp);
    let mut fetched = FetchedPartition {
        topic_partition: tp,
        error: None,
        leader_epoch: replica.map_or(LeaderEpoch(0), |r| r.leader_epoch),
        fetch_offset: partition.fetch_offset,
        high_watermark: replica.map_or(Offset(0), |r| r.high_watermark),
        log_start_offset: replica.map_or(Offset(0), |r| r.log.log_start_offset()),
        log_end_offset: None,
        batches: Vec::new(),
    };
    if let Err(error) = check_partition(config, state, partition, follower) {
        fetched.error = Some(error);
        if error == ErrorCode::OffsetOutOfRange {
            fetched.log_end_offset = replica.map(|r| r.log.log_end_offset());
        }
        return fetched;
    }
    let replica = replica.expect("checked");
    let until = readable_until(replica, follower.is_some()).expect("checked");
    if any && remaining == 0 {
        return fetched;
    }
    match replica.log.read(
        partition.fetch_offset,
        until,
        partition.bytes_max.min(remaining),
    ) {
        Ok(batches) => fetched.batches = batches,
        // The host stops a broker whose log failed; until then the reader retries.
        Err(_) => fetched.error = Some(ErrorCode::NotLeaderOrFollower),
    }
    fetched
}

/// Answers the held fetches that can be answered now, among those naming `tp`.
pub(super) fn wake_held_fetches<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let mut index = 0;
    while index < state.held_fetches.len() {
        let held = &state.held_fetches[index];
        let names = held
            .request
            .partitions
            .iter()
            .any(|p| p.topic_partition == tp);
        if names && ready(state, &held.request) {
            let held = state.held_fetches.remove(index);
            answer_held(config, state, held, out);
        } else {
            index += 1;
        }
    }
}

/// Answers every held fetch naming `tp` (every one, for `None`) with what there is.
fn complete_held_fetches<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: Option<TopicPartition>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let (complete, keep): (Vec<HeldFetch>, Vec<HeldFetch>) =
        std::mem::take(&mut state.held_fetches)
            .into_iter()
            .partition(|held| {
                tp.is_none_or(|tp| {
                    held.request
                        .partitions
                        .iter()
                        .any(|p| p.topic_partition == tp)
                })
            });
    state.held_fetches = keep;
    for held in complete {
        answer_held(config, state, held, out);
    }
}

fn answer_held<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    held: HeldFetch,
    out: &mut BrokerEffects<L::Batch>,
) {
    out.cancel_timer(Timer::FetchExpiry(held.requester));
    let response = read(config, state, &held.request);
    out.send(held.requester, Msg::FetchResponse(response));
}

/// A held fetch waited its `max_wait_ms`: it is answered with what there is (maybe nothing).
pub(super) fn on_fetch_expiry<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    requester: Address,
    out: &mut BrokerEffects<L::Batch>,
) {
    let Some(index) = state
        .held_fetches
        .iter()
        .position(|h| h.requester == requester)
    else {
        return;
    };
    let next = state.to_mut();
    let held = next.held_fetches.remove(index);
    let response = read(config, next, &held.request);
    out.send(held.requester, Msg::FetchResponse(response));
}

/// Forgets what a requester that went away was waiting for.
pub(super) fn forget_requester<L: ReplicaLog>(
    state: &mut BrokerState<L>,
    requester: Address,
    out: &mut BrokerEffects<L::Batch>,
) {
    if let Some(index) = state
        .held_fetches
        .iter()
        .position(|h| h.requester == requester)
    {
        state.held_fetches.remove(index);
        out.cancel_timer(Timer::FetchExpiry(requester));
    }
    for (_, replica) in state.replicas.iter_mut() {
        if let Role::Leader(leader) = &mut replica.role {
            leader.pending_produces.retain(|p| p.requester != requester);
        }
    }
}

/// Advances the HW to the smallest log end offset over the maximal ISR, only while the ISR has
/// at least min.insync.replicas members (KIP-966); answers the acks=all writes it commits and
/// the held consumer fetches that now have records.
pub(super) fn advance_high_watermark<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let replica = state.replicas.get_mut(&tp).expect("held");
    let log_end_offset = replica.log.log_end_offset();
    let min_insync_replicas = replica.min_insync_replicas;
    let leader = replica.leader().expect("a leader");
    if (leader.isr.len() as u32) < min_insync_replicas
        && config.protocol.enforces(Rule::MinIsrHighWatermarkGuard)
    {
        return;
    }
    let proposed = leader.proposed_isr.iter().flatten();
    let committed = leader
        .isr
        .iter()
        .chain(proposed)
        .map(|member| match *member == config.id {
            true => log_end_offset,
            false => leader
                .followers
                .get(member)
                .map_or(Offset(0), |f| f.log_end_offset),
        })
        .min()
        .unwrap_or(log_end_offset);
    if committed <= replica.high_watermark {
        return;
    }
    replica.high_watermark = committed;
    let leader = replica.leader_mut();
    let still_pending = leader.pending_produces.split_off(&PendingProduce {
        end_offset: committed.plus(1),
        requester: Address::Controller,
        request: 0,
        base_offset: Offset(0),
    });
    let done = std::mem::replace(&mut leader.pending_produces, still_pending);
    for pending in done {
        respond_produce(
            out,
            &pending.requester,
            pending.request,
            tp,
            Ok(pending.base_offset),
        );
    }
    coordinator::on_high_watermark(config, state, tp, out);
    wake_held_fetches(config, state, tp, out);
}

/// The lag timer of a follower fired: `replica.lag.time.max.ms` passed since it was last caught
/// up. If it is behind the log end now, propose the ISR without it (once no other proposal is
/// in flight); otherwise look again after another period.
pub(super) fn on_replica_lag<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    tp: TopicPartition,
    follower: BrokerId,
    out: &mut BrokerEffects<L::Batch>,
) {
    let Some(replica) = state.replicas.get(&tp) else {
        return;
    };
    let Some(leader) = replica.leader() else {
        return;
    };
    if !leader.isr.contains(&follower) {
        return;
    }
    let behind = leader
        .followers
        .get(&follower)
        .map_or(Offset(0), |f| f.log_end_offset)
        < replica.log.log_end_offset();
    if !behind || leader.proposed_isr.is_some() {
        return arm_lag_timer(config, tp, follower, out);
    }
    let mut isr = leader.isr.clone();
    isr.remove(&follower);
    propose_isr(config, state.to_mut(), tp, isr, out);
}

/// ISR expand: the follower reached the HW (and, with KIP-320, fetched within this epoch).
fn maybe_expand_isr<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    follower: BrokerId,
    out: &mut BrokerEffects<L::Batch>,
) {
    let replica = &state.replicas[&tp];
    let leader = replica.leader().expect("a leader");
    let follower_end_offset = leader.followers[&follower].log_end_offset;
    let caught_up = follower_end_offset >= replica.high_watermark
        && (!config.protocol.variant.fences_leader_epoch()
            || follower_end_offset >= leader.epoch_start_offset);
    if follower == config.id
        || leader.isr.contains(&follower)
        || leader.proposed_isr.is_some()
        || !caught_up
    {
        return;
    }
    let mut isr = leader.isr.clone();
    isr.insert(follower);
    propose_isr(config, state, tp, isr, out);
}

/// Sends AlterPartition, naming each member's broker epoch as its fetches did (KIP-903).
fn propose_isr<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    isr: Isr,
    out: &mut BrokerEffects<L::Batch>,
) {
    let broker_epoch = state.broker_epoch;
    let replica = state.replicas.get_mut(&tp).expect("held");
    let leader_epoch = replica.leader_epoch;
    let leader = replica.leader_mut();
    let members = isr
        .iter()
        .map(|member| IsrMember {
            broker: *member,
            broker_epoch: match *member == config.id {
                true => Some(broker_epoch),
                false => leader.followers.get(member).map(|f| f.broker_epoch),
            },
        })
        .collect();
    leader.proposed_isr = Some(isr);
    let request = AlterPartitionRequest {
        leader: ReplicaId {
            broker: config.id,
            broker_epoch,
        },
        topic_partition: tp,
        leader_epoch,
        partition_epoch: leader.partition_epoch,
        isr: members,
    };
    out.send(Address::Controller, Msg::AlterPartition(request));
}

/// The controller's answer to this leader's proposal (for this leader epoch): the proposal is
/// no longer in flight; if accepted, the ISR and partition epoch are adopted.
pub(super) fn on_alter_partition_response<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    response: AlterPartitionResponse,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = response.topic_partition;
    let awaited = state.replicas.get(&tp).is_some_and(|replica| {
        replica.leader_epoch == response.leader_epoch
            && replica.leader().is_some_and(|l| l.proposed_isr.is_some())
    });
    if !awaited {
        return out.ignore(Ignored::NotAwaited("AlterPartition"));
    }
    let next = state.to_mut();
    next.replicas
        .get_mut(&tp)
        .expect("checked")
        .leader_mut()
        .proposed_isr = None;
    match response.result {
        Ok(decided) => {
            if let Some(topic) = next.metadata.topics.get_mut(&tp.topic_id) {
                if let Some(cached) = topic.partitions.get_mut(tp.partition as usize) {
                    *cached = decided.clone();
                }
            }
            adopt_isr(config, next, tp, decided.isr, decided.partition_epoch, out);
        }
        Err(_) => advance_high_watermark(config, next, tp, out),
    }
}

/// A newer ISR for this leader (from its own proposal or the controller's news): lag timers
/// follow the membership, and the HW may advance.
pub(super) fn adopt_isr<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    isr: Isr,
    partition_epoch: PartitionEpoch,
    out: &mut BrokerEffects<L::Batch>,
) {
    let leader = state.replicas.get_mut(&tp).expect("held").leader_mut();
    if partition_epoch <= leader.partition_epoch {
        return advance_high_watermark(config, state, tp, out);
    }
    for gone in leader.isr.difference(&isr) {
        out.cancel_timer(Timer::ReplicaLag(tp, *gone));
    }
    for joined in isr.difference(&leader.isr).filter(|b| **b != config.id) {
        arm_lag_timer(config, tp, *joined, out);
    }
    leader.isr = isr;
    leader.partition_epoch = partition_epoch;
    advance_high_watermark(config, state, tp, out);
}

/// OffsetForLeaderEpoch at the leader: where does the requested epoch end here? The answer
/// follows the variant: KIP-101's next epoch start, or KIP-279's largest epoch not above it.
pub(super) fn on_offset_for_leader_epoch<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    from: Address,
    request: OffsetForLeaderEpochRequest,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = request.topic_partition;
    let requested = request.leader_epoch;
    let replica = state.replicas.get(&tp);
    let leader_epoch = replica.map_or(LeaderEpoch(0), |r| r.leader_epoch);
    let result = match replica.and_then(|r| r.leader().map(|l| (r, l))) {
        None => Err(not_leading(state, tp)),
        Some((replica, leader)) => match request.current_leader_epoch {
            Some(epoch) if epoch < replica.leader_epoch => Err(ErrorCode::FencedLeaderEpoch),
            Some(epoch) if epoch > replica.leader_epoch => Err(ErrorCode::UnknownLeaderEpoch),
            _ => {
                let cache = replica.leader_epoch_cache(leader.epoch_start_offset);
                let log_end_offset = replica.log.log_end_offset();
                let answer = match config.protocol.variant {
                    Variant::HwTruncation | Variant::Kip101 => EpochEndOffset {
                        leader_epoch: Some(requested),
                        end_offset: next_epoch_start_offset(&cache, log_end_offset, requested),
                    },
                    Variant::Kip279 | Variant::Kip320 => {
                        end_offset_for_epoch(&cache, log_end_offset, requested)
                    }
                };
                // A consumer learns no offset past what it may fetch: its position is at most
                // the HW, so the cap changes none of its truncation checks.
                Ok(match request.replica {
                    Some(_) => answer,
                    None => EpochEndOffset {
                        end_offset: answer.end_offset.min(replica.high_watermark),
                        ..answer
                    },
                })
            }
        },
    };
    let response = OffsetForLeaderEpochResponse {
        topic_partition: tp,
        leader_epoch,
        requested_epoch: requested,
        result,
    };
    out.send(from, Msg::OffsetForLeaderEpochResponse(response));
}

/// ListOffsets at the leader: the log start offset, the HW (or, for a request that reads to
/// the log end, the log end offset), or the first offset by time; a found offset at or past
/// the HW is not visible to a consumer and answers "none", as Kafka's read_uncommitted
/// lookups do. Fenced first, as a fetch is (KIP-320).
pub(super) fn on_list_offsets<L: ReplicaLog>(
    state: &BrokerState<L>,
    from: Address,
    request: ListOffsetsRequest,
    out: &mut BrokerEffects<L::Batch>,
) {
    let tp = request.topic_partition;
    let result = list_offsets(state, &request);
    let response = ListOffsetsResponse {
        request: request.request,
        topic_partition: tp,
        result,
    };
    out.send(from, Msg::ListOffsetsResponse(response));
}

fn list_offsets<L: ReplicaLog>(
    state: &BrokerState<L>,
    request: &ListOffsetsRequest,
) -> Result<ListedOffset, ErrorCode> {
    let tp = request.topic_partition;
    let replica = match state.replicas.get(&tp) {
        Some(replica) if replica.leader().is_some() => replica,
        _ => return Err(not_leading(state, tp)),
    };
    match request.current_leader_epoch {
        Some(epoch) if epoch < replica.leader_epoch => return Err(ErrorCode::FencedLeaderEpoch),
        Some(epoch) if epoch > replica.leader_epoch => return Err(ErrorCode::UnknownLeaderEpoch),
        _ => {}
    }
    let log = &replica.log;
    let visible_until = match request.to_log_end {
        true => log.log_end_offset(),
        false => replica.high_watermark,
    };
    let current = |offset| ListedOffset {
        offset: Some(offset),
        timestamp: None,
        leader_epoch: replica.leader_epoch,
    };
    let found = match request.query {
        OffsetQuery::Earliest => return Ok(current(log.log_start_offset())),
        OffsetQuery::Latest => return Ok(current(visible_until)),
        OffsetQuery::MaxTimestamp => log.max_timestamp(),
        OffsetQuery::Timestamp(timestamp) => log.offset_for_timestamp(timestamp),
    };
    // A failed read: the host stops a broker whose log failed; until then the reader retries.
    let found = found.map_err(|_| ErrorCode::NotLeaderOrFollower)?;
    Ok(match found {
        Some((offset, timestamp)) if offset < visible_until => ListedOffset {
            offset: Some(offset),
            timestamp: Some(timestamp),
            leader_epoch: epoch_at(&log.epoch_entries(), offset).unwrap_or(replica.leader_epoch),
        },
        _ => ListedOffset {
            offset: None,
            timestamp: None,
            leader_epoch: replica.leader_epoch,
        },
    })
}

/// The epoch of the batch at `offset`, from the epoch cache.
fn epoch_at(entries: &[crate::log::EpochEntry], offset: Offset) -> Option<LeaderEpoch> {
    entries
        .iter()
        .take_while(|e| e.start_offset <= offset)
        .last()
        .map(|e| e.leader_epoch)
}
