//! Every property, one named function each, named as `specs/protocol.md` names them. "Live"
//! means not crashed; a crashed broker's last state is not consulted. Every partition rule is
//! checked per partition; records retired by retention (below a log start offset) are not lost.

use super::{controller, has_zombie, live_brokers, Model, ModelLog, ModelState, GROUP, TOPIC};
use crate::broker::{BrokerState, Replica, Role};
use crate::client::member::MemberState;
use crate::config::OFFSETS_TOPIC;
use crate::group::coordinator_partition;
use crate::log::{LogEntry, Record, ReplicaLog};
use crate::message::LeaderRecovery;
use crate::types::{BrokerId, Offset, TopicPartition};
use std::collections::BTreeMap;

/// Every `Always` property, in the order reports list them (the group properties apply only
/// to `gregor check --groups`).
pub const ALWAYS: [&str; 11] = [
    "leader_in_isr",
    "strong_isr",
    "log_matching",
    "acked_writes_survive",
    "consistent_read",
    "hw_never_decreases",
    "one_leader_per_epoch",
    "no_duplicate_writes",
    "one_owner_per_partition",
    "committed_offsets_survive",
    "fenced_commits",
];

/// The consumer group properties.
pub const GROUP_ALWAYS: [&str; 3] = [
    "one_owner_per_partition",
    "committed_offsets_survive",
    "fenced_commits",
];

type Condition = fn(&Model, &ModelState) -> bool;

pub fn always(name: &str) -> Condition {
    match name {
        "leader_in_isr" => leader_in_isr,
        "strong_isr" => strong_isr,
        "log_matching" => log_matching,
        "acked_writes_survive" => acked_writes_survive,
        "consistent_read" => consistent_read,
        "hw_never_decreases" => hw_never_decreases,
        "one_leader_per_epoch" => one_leader_per_epoch,
        "no_duplicate_writes" => no_duplicate_writes,
        "one_owner_per_partition" => one_owner_per_partition,
        "committed_offsets_survive" => committed_offsets_survive,
        "fenced_commits" => |_, s| !s.history.stale_commit_written,
        _ => unreachable!("unknown property {name}"),
    }
}

pub fn sometimes(name: &str) -> Condition {
    match name {
        "record_committed" => record_committed,
        "record_acked" => record_acked,
        "leader_changed" => leader_changed,
        "isr_shrunk" => isr_shrunk,
        "consumer_read_record" => consumer_read_record,
        "follower_truncated" => |_, s| s.history.follower_truncated,
        "unclean_leader_elected" => unclean_leader_elected,
        "restarted_after_power_loss" => |_, s| s.history.restarted_after_power_loss,
        "unflushed_records_lost" => |_, s| s.history.unflushed_records_lost,
        "broker_registered_again" => broker_registered_again,
        "zombie_leader" => zombie_leader,
        "duplicate_retried" => |_, s| s.history.duplicate_retried,
        "message_lost" => |_, s| s.history.message_lost,
        "follower_caught_up_from_log_start" => follower_caught_up_from_log_start,
        "bounced_broker_fenced_everywhere" => |_, s| s.history.bounced_broker_fenced_everywhere,
        "restarted_from_checkpoint" => |_, s| s.history.restarted_from_checkpoint,
        "group_stable" => group_stable,
        "commit_acked" => commit_acked,
        "group_rebalanced" => group_rebalanced,
        "stale_commit_refused" => |_, s| s.history.stale_commit_refused,
        "commit_acked_after_failover" => |_, s| s.history.commit_acked_after_failover,
        _ => unreachable!("unknown property {name}"),
    }
}

/// What to raise when a `Sometimes` property is not reached.
pub fn hint(name: &str) -> &'static str {
    match name {
        "leader_changed" | "isr_shrunk" => "raise --max-epoch or --max-partition-epoch",
        "follower_truncated" => {
            "no replica ever truncated: raise --crashes, --max-registrations or --max-epoch, or \
             add --zombies"
        }
        "unclean_leader_elected" => {
            "no unclean election happened: raise --crashes (every ISR member must be down) or \
             --max-epoch"
        }
        "restarted_after_power_loss" | "unflushed_records_lost" => {
            "no broker came back after losing power: raise --max-registrations (restarts) and \
             --max-epoch"
        }
        "broker_registered_again" => "raise --max-registrations or --crashes",
        "zombie_leader" => "raise --max-epoch: a leader's session must expire while it runs",
        "duplicate_retried" => "raise --retries or --records",
        "follower_caught_up_from_log_start" => {
            "no follower fell behind its leader's log start and caught up: raise \
             --max-registrations (a follower must come back) and --max-partition-epoch"
        }
        "bounced_broker_fenced_everywhere" => {
            "no broker bounced while holding every partition: raise --max-registrations"
        }
        "restarted_from_checkpoint" => {
            "no broker restarted from a HW checkpoint above 0: raise --max-registrations and \
             --crashes"
        }
        "group_rebalanced" | "stale_commit_refused" => {
            "no second generation: raise --max-generation (a session must expire, or a member \
             rejoin)"
        }
        "commit_acked_after_failover" => {
            "no commit after a coordinator failover: raise --crashes, --max-epoch or \
             --max-generation"
        }
        _ => "raise --records, --retries or --max-epoch",
    }
}

/// The producer's state (`--groups` has none).
fn producer(state: &ModelState) -> Option<&crate::client::producer::ProducerState> {
    state.actor_states.iter().find_map(|actor| actor.producer())
}

/// The group members' states (`--groups`).
fn members(state: &ModelState) -> impl Iterator<Item = &MemberState> {
    state.actor_states.iter().filter_map(|actor| actor.member())
}

/// The consumer, unless the configuration leaves it out.
fn consumer(state: &ModelState) -> Option<&crate::client::consumer::ConsumerState<Record>> {
    state.actor_states.iter().find_map(|actor| actor.consumer())
}

/// Each live replica of `tp`, with its broker.
fn replicas_of(
    state: &ModelState,
    tp: TopicPartition,
) -> impl Iterator<Item = (BrokerId, &Replica<ModelLog>)> {
    live_brokers(state).filter_map(move |(id, broker)| broker.replicas.get(&tp).map(|r| (id, r)))
}

/// The replicas of `tp` on live brokers that act as the controller's: the incarnation the
/// controller registered, or one that took a role for the partition anyway. A broker that
/// restarted is another incarnation, with no role, until the controller handles its
/// registration; no update meant for its previous incarnation may give it one (KIP-380).
fn acting_replicas_of(
    state: &ModelState,
    tp: TopicPartition,
) -> impl Iterator<Item = (BrokerId, &Replica<ModelLog>)> {
    let controller = controller(state);
    live_brokers(state).filter_map(move |(id, broker)| {
        let replica = broker.replicas.get(&tp)?;
        let registered = controller
            .brokers
            .get(&id)
            .is_some_and(|r| r.broker_epoch == broker.broker_epoch);
        (registered || !matches!(replica.role, Role::Unassigned)).then_some((id, replica))
    })
}

/// The replica the controller names as `tp`'s leader, if it acts as the controller's.
fn current_leader(state: &ModelState, tp: TopicPartition) -> Option<&Replica<ModelLog>> {
    let leader = controller(state).partition(tp)?.leader?;
    acting_replicas_of(state, tp)
        .find(|(id, _)| *id == leader)
        .map(|(_, replica)| replica)
}

/// Whether two logs hold the same records, with the same epochs, at every offset below `end`
/// that both still hold.
fn same_below(a: &ModelLog, b: &ModelLog, end: Offset) -> bool {
    let start = a.log_start_offset().max(b.log_start_offset());
    (start.0..end.0).all(|offset| a.entry_at(Offset(offset)) == b.entry_at(Offset(offset)))
}

/// Whether `log` holds `entry`'s record at `offset` (or retention retired it).
fn holds(log: &ModelLog, offset: Offset, value: u8) -> bool {
    offset < log.log_start_offset()
        || log
            .entry_at(offset)
            .is_some_and(|e: &LogEntry<Record>| e.batch.value == value)
}

/// If the controller names a leader, it is in the controller's ISR.
pub fn leader_in_isr(_: &Model, state: &ModelState) -> bool {
    controller(state)
        .partitions()
        .all(|p| p.leader.is_none_or(|leader| p.isr.contains(&leader)))
}

/// For any live replica that believes it leads a partition with HW h, every member of the
/// controller's ISR that is live and acts as the controller's holds the same records as that
/// leader at every offset below h.
pub fn strong_isr(_: &Model, state: &ModelState) -> bool {
    controller(state).partitions().all(|p| {
        let tp = p.topic_partition;
        replicas_of(state, tp)
            .filter(|(_, r)| r.leader().is_some())
            .all(|(_, leader)| {
                acting_replicas_of(state, tp)
                    .filter(|(id, _)| p.isr.contains(id))
                    .all(|(_, member)| same_below(&leader.log, &member.log, leader.high_watermark))
            })
    })
}

/// Any two live replicas hold the same records at every offset below the smaller of their HWs.
pub fn log_matching(_: &Model, state: &ModelState) -> bool {
    controller(state).partitions().all(|p| {
        let replicas: Vec<_> = replicas_of(state, p.topic_partition).collect();
        replicas.iter().enumerate().all(|(i, (_, a))| {
            replicas[i + 1..]
                .iter()
                .all(|(_, b)| same_below(&a.log, &b.log, a.high_watermark.min(b.high_watermark)))
        })
    })
}

/// Every record acknowledged to the producer is in the log of the controller's current leader
/// of its partition (while that leader is live), at the offset it was acknowledged.
pub fn acked_writes_survive(model: &Model, state: &ModelState) -> bool {
    let Some(producer) = producer(state) else {
        return true;
    };
    let Some(topic) = producer.metadata.topic_id else {
        return true;
    };
    let batches = model.cfg.batches();
    producer.acknowledged.iter().all(|acked| {
        let tp = TopicPartition {
            topic_id: topic,
            partition: acked.partition,
        };
        current_leader(state, tp)
            .is_none_or(|leader| holds(&leader.log, acked.offset, batches[acked.batch].value))
    })
}

/// Every record the consumer has read is in the log of the controller's current leader of its
/// partition (while that leader is live) at the offset it was read from.
pub fn consistent_read(_: &Model, state: &ModelState) -> bool {
    let Some(consumer) = consumer(state) else {
        return true;
    };
    let Some(topic) = consumer.metadata.topic_id else {
        return true;
    };
    consumer.read.iter().all(|read| {
        let tp = TopicPartition {
            topic_id: topic,
            partition: read.partition,
        };
        current_leader(state, tp)
            .is_none_or(|leader| holds(&leader.log, read.entry.base_offset, read.entry.batch.value))
    })
}

/// No live replica has ever lowered its HW: the committed offset never moves backwards.
pub fn hw_never_decreases(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).all(|(_, broker)| !broker.high_watermark_lowered)
}

/// No two live replicas believe they lead a partition in the same leader epoch.
pub fn one_leader_per_epoch(_: &Model, state: &ModelState) -> bool {
    controller(state).partitions().all(|p| {
        let mut epochs: Vec<_> = replicas_of(state, p.topic_partition)
            .filter(|(_, r)| r.leader().is_some())
            .map(|(_, r)| r.leader_epoch)
            .collect();
        let leaders = epochs.len();
        epochs.sort();
        epochs.dedup();
        epochs.len() == leaders
    })
}

/// No replica's log holds a record twice (the producer's records are distinct values; a group
/// coordinator's batches are not the producer's).
pub fn no_duplicate_writes(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).all(|(_, broker)| {
        broker.replicas.values().all(|replica| {
            let mut values: Vec<u8> = replica
                .log
                .entries()
                .iter()
                .filter(|e| e.batch.coordinator.is_none())
                .map(|e| e.batch.value)
                .collect();
            let count = values.len();
            values.sort_unstable();
            values.dedup();
            values.len() == count
        })
    })
}

/// Some replica's HW passed a record.
pub fn record_committed(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).any(|(_, b)| b.replicas.values().any(|r| r.high_watermark > Offset(0)))
}

/// The producer got an acknowledgement.
pub fn record_acked(_: &Model, state: &ModelState) -> bool {
    producer(state).is_some_and(|p| !p.acknowledged.is_empty())
}

/// The controller elected a leader after the first.
pub fn leader_changed(_: &Model, state: &ModelState) -> bool {
    controller(state).partitions().any(|p| p.leader_epoch.0 > 0)
}

/// The controller's ISR lost a member.
pub fn isr_shrunk(_: &Model, state: &ModelState) -> bool {
    controller(state)
        .partitions()
        .any(|p| p.isr.len() < p.replicas.len())
}

/// The consumer read a record.
pub fn consumer_read_record(_: &Model, state: &ModelState) -> bool {
    consumer(state).is_some_and(|consumer| !consumer.read.is_empty())
}

/// A partition's leader was elected from outside its ISR (KIP-704's RECOVERING).
pub fn unclean_leader_elected(_: &Model, state: &ModelState) -> bool {
    controller(state)
        .partitions()
        .any(|p| p.leader_recovery == LeaderRecovery::Recovering)
}

/// Some broker registered again after formation (a restart, or after its session expired).
pub fn broker_registered_again(_: &Model, state: &ModelState) -> bool {
    controller(state)
        .brokers
        .values()
        .any(|r| r.broker_epoch.0 > 1)
}

/// A broker whose session the controller expired still believes it leads a partition.
pub fn zombie_leader(_: &Model, state: &ModelState) -> bool {
    let controller = controller(state);
    has_zombie(controller, state)
        && live_brokers(state)
            .any(|(id, broker)| is_zombie(controller, id, broker) && leads(broker))
}

fn is_zombie(
    controller: &crate::controller::ControllerState,
    id: BrokerId,
    broker: &BrokerState<ModelLog>,
) -> bool {
    controller
        .brokers
        .get(&id)
        .is_some_and(|r| !r.alive && r.broker_epoch == broker.broker_epoch)
}

fn leads(broker: &BrokerState<ModelLog>) -> bool {
    broker.replicas.values().any(|r| r.leader().is_some())
}

/// A follower that started again from its leader's log start is back in the ISR.
pub fn follower_caught_up_from_log_start(_: &Model, state: &ModelState) -> bool {
    let Some((broker, tp)) = state.history.follower_reset_to_log_start else {
        return false;
    };
    controller(state)
        .partition(tp)
        .is_some_and(|p| p.isr.contains(&broker) && p.leader != Some(broker))
}

/// Within a generation, no partition is assigned to two members: any two members that hold
/// their assignment of the same generation hold disjoint partitions.
pub fn one_owner_per_partition(_: &Model, state: &ModelState) -> bool {
    let assigned: Vec<(i32, &[u32])> = members(state).filter_map(|m| m.assignment()).collect();
    assigned.iter().enumerate().all(|(i, (generation, mine))| {
        assigned[i + 1..]
            .iter()
            .filter(|(other, _)| other == generation)
            .all(|(_, theirs)| mine.iter().all(|p| !theirs.contains(p)))
    })
}

/// An acknowledged commit is what OffsetFetch returns from then on, coordinator failover
/// included, until a later commit replaces it: the group's current coordinator (the live
/// broker the controller names leader of the group's partition of `__consumer_offsets`, once
/// it has taken the partition over) holds, for every partition, an offset no lower than the
/// highest commit acknowledged to any member (later generations commit higher offsets).
pub fn committed_offsets_survive(_: &Model, state: &ModelState) -> bool {
    let mut acked: BTreeMap<u32, u64> = BTreeMap::new();
    for member in members(state) {
        for (partition, offset) in &member.acknowledged {
            let highest = acked.entry(*partition).or_default();
            *highest = (*highest).max(*offset);
        }
    }
    if acked.is_empty() {
        return true;
    }
    let Some(tp) = group_partition(state) else {
        return true;
    };
    let Some(coordinator) = current_leader_broker(state, tp).and_then(|b| b.coordinators.get(&tp))
    else {
        return true;
    };
    let group = coordinator.groups.get(GROUP);
    acked.iter().all(|(partition, offset)| {
        let key = (TOPIC.to_string(), *partition);
        group
            .and_then(|g| g.offsets.get(&key))
            .is_some_and(|committed| committed.offset >= *offset)
    })
}

/// The checked group's partition of `__consumer_offsets`, once the controller created it.
pub fn group_partition(state: &ModelState) -> Option<TopicPartition> {
    let topic = controller(state)
        .topics
        .values()
        .find(|t| t.info.name == OFFSETS_TOPIC)?;
    Some(TopicPartition {
        topic_id: topic.info.id,
        partition: coordinator_partition(GROUP, topic.info.partitions),
    })
}

/// The broker the controller names leader of `tp`, if it is live and acts as the
/// controller's.
fn current_leader_broker(state: &ModelState, tp: TopicPartition) -> Option<&BrokerState<ModelLog>> {
    let leader = controller(state).partition(tp)?.leader?;
    acting_replicas_of(state, tp).find(|(id, _)| *id == leader)?;
    live_brokers(state)
        .find(|(id, _)| *id == leader)
        .map(|(_, b)| b)
}

/// A member holds an assignment.
pub fn group_stable(_: &Model, state: &ModelState) -> bool {
    members(state).any(|m| m.assignment().is_some())
}

/// A member's commit was acknowledged.
pub fn commit_acked(_: &Model, state: &ModelState) -> bool {
    members(state).any(|m| !m.acknowledged.is_empty())
}

/// A member holds an assignment of a generation after the first.
pub fn group_rebalanced(_: &Model, state: &ModelState) -> bool {
    members(state).any(|m| m.assignment().is_some_and(|(generation, _)| generation > 1))
}
