//! The group coordinator: the groups of each partition of `__consumer_offsets` this broker
//! leads. A group belongs to partition `abs(hash(group)) % partitions` (Kafka's rule); that
//! partition's leader is its coordinator. Becoming leader, the broker rebuilds the partition's
//! groups and committed offsets from its log (the coordinator epoch is the leader epoch);
//! resigning, it answers what waits with NOT_COORDINATOR and drops them.
//!
//! Every change a group makes durable — a generation and its assignment, committed offsets, a
//! deletion — is a record appended to the partition as an acks=all write: it takes effect, and
//! its request is answered, once the HW has passed it. A write is refused while the ISR is
//! smaller than `min.insync.replicas` (a commit gets COORDINATOR_NOT_AVAILABLE, as Kafka maps
//! NOT_ENOUGH_REPLICAS; a generation's record fails, and the group rebalances).
//!
//! A group without members keeps its committed offsets for `offsets.retention.minutes` after it
//! became empty or last committed (Kafka's KIP-211 rule); then they expire: the group's and its
//! offsets' tombstones are written and the group is gone.
//!
//! The membership rules themselves are [`crate::group::Group`]'s; this module routes requests,
//! timers and writes to and from it.

use super::{leader, BrokerEffects, BrokerState};
use crate::config::{BrokerConfig, Rule, OFFSETS_TOPIC};
use crate::effects::{Address, Ignored};
use crate::group::{
    coordinator_partition, load_groups, CommittedOffset, CoordinatorRecord, Group, GroupPartition,
    GroupTimer, Output, Phase,
};
use crate::log::{RecordBatch, ReplicaLog};
use crate::message::{
    AdminRequest, ErrorCode, Forwarded, GroupAnswer, GroupDescription, GroupOp, GroupReply,
    GroupRequest, GroupResponse, ListedGroup, Msg, NewTopic, Timer,
};
use crate::types::{Offset, TopicPartition};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

/// The groups of one partition of `__consumer_offsets` this broker leads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator {
    /// The partition's leader epoch when this broker took it over.
    pub epoch: u32,
    pub groups: BTreeMap<String, Group<GroupReply>>,
    /// Records appended and not yet committed, in log order.
    pub writes: Vec<CoordinatorWrite>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorWrite {
    /// Committed once the HW reaches this offset.
    pub end_offset: Offset,
    pub group: String,
    pub kind: WriteKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WriteKind {
    /// The group's record of this generation.
    Group(i32),
    /// An OffsetCommit's offsets (emptied if the group is deleted meanwhile: the tombstones
    /// that follow them in the log delete them).
    Commit {
        reply: GroupReply,
        offsets: Vec<(GroupPartition, CommittedOffset)>,
    },
    /// DeleteGroups' tombstones.
    Delete(GroupReply),
    /// The tombstones of a group whose offsets expired (nobody waits for them).
    Expire,
    /// OffsetDelete's tombstones of these partitions; the answer lists every partition asked.
    OffsetDelete {
        reply: GroupReply,
        deleted: Vec<GroupPartition>,
        asked: Vec<GroupPartition>,
    },
}

impl CoordinatorWrite {
    /// Whether a requester at `to` waits for this write's answer.
    pub fn replies_to(&self, to: Address) -> bool {
        match &self.kind {
            WriteKind::Commit { reply, .. }
            | WriteKind::Delete(reply)
            | WriteKind::OffsetDelete { reply, .. } => reply.to == to,
            WriteKind::Group(_) | WriteKind::Expire => false,
        }
    }
}

/// Whether `tp` is a partition of `__consumer_offsets`.
pub(super) fn is_offsets_partition<L: ReplicaLog>(
    state: &BrokerState<L>,
    tp: TopicPartition,
) -> bool {
    state
        .topic_of(tp)
        .is_some_and(|t| t.info.name == OFFSETS_TOPIC)
}

/// The partition of `__consumer_offsets` `group` belongs to, if the topic exists.
fn partition_of<L: ReplicaLog>(state: &BrokerState<L>, group: &str) -> Option<TopicPartition> {
    let topic = state
        .metadata
        .topics
        .values()
        .find(|t| t.info.name == OFFSETS_TOPIC)?;
    Some(TopicPartition {
        topic_id: topic.info.id,
        partition: coordinator_partition(group, topic.info.partitions),
    })
}

/// Taking over a partition as its leader: its groups and offsets rebuilt from its log, each
/// stored member's session timer started. Returns false if the step stopped on a log failure.
pub(super) fn load<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    let replica = &state.replicas[&tp];
    let mut records = Vec::new();
    let mut from = replica.log.log_start_offset();
    let end = replica.log.log_end_offset();
    while from < end {
        let read = match replica.log.read(from, end, 1 << 20) {
            Ok(read) => read,
            Err(error) => {
                out.stop(format_args!("loading the groups of {tp}: {error}"));
                return false;
            }
        };
        let Some(last) = read.last() else {
            break;
        };
        from = last.next_offset();
        records.extend(read.iter().filter_map(|e| e.batch.coordinator_records()));
    }
    let epoch = replica.leader_epoch.0;
    let mut outputs = Vec::new();
    let groups = load_groups(
        records.into_iter().flatten(),
        epoch,
        config.groups,
        &mut outputs,
    );
    state.coordinators.insert(
        tp,
        Coordinator {
            epoch,
            groups,
            writes: Vec::new(),
        },
    );
    for (group, output) in outputs {
        run(config, state, tp, &group, vec![output], out);
    }
    let expiring: Vec<String> = state.coordinators[&tp]
        .groups
        .iter()
        .filter(|(_, g)| g.is_expiring())
        .map(|(id, _)| id.clone())
        .collect();
    for group in expiring {
        arm_retention(config, tp, &group, out);
    }
    true
}

/// Starts (or restarts) the count to a group's offsets' expiry.
fn arm_retention<B>(
    config: &BrokerConfig,
    tp: TopicPartition,
    group: &str,
    out: &mut BrokerEffects<B>,
) {
    let timer = Timer::Group(tp, group.to_string(), GroupTimer::Retention);
    out.set_timer(timer, config.groups.offsets_retention);
}

/// Whether the group of `tp` named `group` is held and has no members but something to expire.
fn expiring<L: ReplicaLog>(state: &BrokerState<L>, tp: TopicPartition, group: &str) -> bool {
    state
        .coordinators
        .get(&tp)
        .and_then(|c| c.groups.get(group))
        .is_some_and(|g| g.is_expiring())
}

/// After a step of a group that was (or was not) expiring: the count starts when it becomes
/// empty, and stops when it gets members again or goes.
fn follow_retention<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    was_expiring: bool,
    out: &mut BrokerEffects<L::Batch>,
) {
    match (was_expiring, expiring(state, tp, group)) {
        (false, true) => arm_retention(config, tp, group, out),
        (true, false) => {
            out.cancel_timer(Timer::Group(tp, group.to_string(), GroupTimer::Retention))
        }
        _ => {}
    }
}

/// Giving a partition up: its groups' waiting requests and uncommitted writes are answered
/// NOT_COORDINATOR, their timers cancelled, and the groups dropped (the new leader rebuilds
/// them from the log).
pub(super) fn unload<L: ReplicaLog>(
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let Some(coordinator) = state.coordinators.remove(&tp) else {
        return;
    };
    for (id, mut group) in coordinator.groups {
        let mut outputs = vec![Output::CancelTimer(GroupTimer::Retention)];
        group.unload(&mut outputs);
        emit(tp, &id, outputs, out);
    }
    for write in coordinator.writes {
        let answer = match write.kind {
            WriteKind::Group(_) | WriteKind::Expire => continue,
            WriteKind::Commit { reply, .. } => (
                reply,
                GroupAnswer::OffsetCommit(Err(ErrorCode::NotCoordinator)),
            ),
            WriteKind::Delete(reply) => {
                (reply, GroupAnswer::Delete(Err(ErrorCode::NotCoordinator)))
            }
            WriteKind::OffsetDelete { reply, .. } => {
                (reply, GroupAnswer::Refused(ErrorCode::NotCoordinator))
            }
        };
        respond(answer.0, &write.group, answer.1, out);
    }
}

/// The HW of a partition this broker coordinates moved: the writes it passed take effect.
pub(super) fn on_high_watermark<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) {
    let high_watermark = state.replicas[&tp].high_watermark;
    let Some(coordinator) = state.coordinators.get_mut(&tp) else {
        return;
    };
    let done = coordinator
        .writes
        .iter()
        .take_while(|w| w.end_offset <= high_watermark)
        .count();
    let done: Vec<CoordinatorWrite> = coordinator.writes.drain(..done).collect();
    for write in done {
        let coordinator = state.coordinators.get_mut(&tp).expect("still held");
        let group = coordinator.groups.get_mut(&write.group);
        match write.kind {
            WriteKind::Group(generation) => {
                if let Some(group) = group {
                    let mut outputs = Vec::new();
                    group.stored(generation, &mut outputs);
                    run(config, state, tp, &write.group, outputs, out);
                }
            }
            WriteKind::Commit { reply, offsets } => {
                committed(config, state, tp, &write.group, reply, offsets, out)
            }
            WriteKind::Delete(reply) => {
                respond(reply, &write.group, GroupAnswer::Delete(Ok(())), out)
            }
            WriteKind::Expire => {}
            WriteKind::OffsetDelete {
                reply,
                deleted,
                asked,
            } => {
                if let Some(group) = state
                    .coordinators
                    .get_mut(&tp)
                    .and_then(|c| c.groups.get_mut(&write.group))
                {
                    group.offsets_deleted(&deleted);
                }
                let answer = asked.into_iter().map(|p| (p, Ok(()))).collect();
                respond(reply, &write.group, GroupAnswer::OffsetDelete(answer), out);
            }
        }
    }
}

/// A commit's records are committed: its offsets take effect and it is answered.
fn committed<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    reply: GroupReply,
    offsets: Vec<(GroupPartition, CommittedOffset)>,
    out: &mut BrokerEffects<L::Batch>,
) {
    // A commit to a group with no members (an admin's, or a consumer's that assigns its
    // partitions itself) finds none if the group was vacant and was not kept, or was deleted
    // meanwhile (then `offsets` is empty: its tombstones follow in the log).
    if !offsets.is_empty() {
        let coordinator = state.coordinators.get_mut(&tp).expect("still held");
        let epoch = coordinator.epoch;
        coordinator
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group.to_string(), epoch, config.groups))
            .offsets_stored(offsets);
        // A commit while the group has no members restarts the count.
        if expiring(state, tp, group) {
            arm_retention(config, tp, group, out);
        }
    }
    respond(reply, group, GroupAnswer::OffsetCommit(Ok(())), out);
}

/// A request for a group: refused NOT_COORDINATOR unless this broker leads the group's
/// partition; otherwise handed to the group.
pub(super) fn on_request<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    request: GroupRequest,
    out: &mut BrokerEffects<L::Batch>,
) {
    let GroupRequest { request, group, op } = request;
    let reply = GroupReply { to: from, request };
    let tp = match partition_of(state, &group) {
        Some(tp) if state.coordinators.contains_key(&tp) => tp,
        _ => {
            return respond(
                reply,
                &group,
                GroupAnswer::Refused(ErrorCode::NotCoordinator),
                out,
            )
        }
    };
    let reads_only = matches!(op, GroupOp::OffsetFetch(_) | GroupOp::Describe);
    if group.is_empty() && !reads_only {
        return respond(
            reply,
            &group,
            GroupAnswer::Refused(ErrorCode::InvalidGroupId),
            out,
        );
    }
    let was_expiring = expiring(state, tp, &group);
    let state = state.to_mut();
    let coordinator = state.coordinators.get_mut(&tp).expect("checked");
    let epoch = coordinator.epoch;
    let known = coordinator.groups.contains_key(&group);
    let group_mut = coordinator
        .groups
        .entry(group.clone())
        .or_insert_with(|| Group::new(group.clone(), epoch, config.groups));
    let mut outputs = Vec::new();
    match op {
        GroupOp::Join(join) => group_mut.join(*join, reply, &mut outputs),
        GroupOp::Sync(sync) => group_mut.sync(sync, reply, &mut outputs),
        GroupOp::Heartbeat {
            member_id,
            instance_id,
            generation,
        } => group_mut.heartbeat(
            &member_id,
            instance_id.as_deref(),
            generation,
            reply,
            &mut outputs,
        ),
        GroupOp::Leave(leaving) => group_mut.leave(leaving, reply, &mut outputs),
        GroupOp::OffsetFetch(partitions) => {
            let committed = group_mut.committed(partitions.as_deref());
            respond(reply, &group, GroupAnswer::OffsetFetch(committed), out);
        }
        GroupOp::Describe => {
            let described = (known && !group_mut.is_vacant()).then(|| {
                let record = group_mut.record();
                GroupDescription {
                    phase: group_mut.phase,
                    protocol_type: group_mut.protocol_type.clone(),
                    protocol: group_mut.protocol.clone(),
                    members: record.members,
                }
            });
            respond(reply, &group, GroupAnswer::Describe(described), out);
        }
        GroupOp::OffsetCommit(commit) => {
            let checked = group_mut.check_commit(
                commit.member_id.as_ref(),
                commit.instance_id.as_deref(),
                commit.generation,
                !config
                    .protocol
                    .without
                    .contains(&Rule::CommitGenerationFence),
            );
            match checked {
                Err(code) => respond(reply, &group, GroupAnswer::OffsetCommit(Err(code)), out),
                Ok(()) if commit.offsets.is_empty() => {
                    respond(reply, &group, GroupAnswer::OffsetCommit(Ok(())), out)
                }
                Ok(()) if !writable(state, tp) => respond(
                    reply,
                    &group,
                    GroupAnswer::OffsetCommit(Err(ErrorCode::CoordinatorNotAvailable)),
                    out,
                ),
                Ok(()) => {
                    let records = commit
                        .offsets
                        .iter()
                        .map(|(partition, offset)| CoordinatorRecord::Offset {
                            group: group.clone(),
                            partition: partition.clone(),
                            offset: Some(offset.clone()),
                        })
                        .collect();
                    let kind = WriteKind::Commit {
                        reply,
                        offsets: commit.offsets,
                    };
                    write(config, state, tp, &group, records, kind, out);
                }
            }
        }
        GroupOp::OffsetDelete(partitions) => {
            if !known || group_mut.is_vacant() {
                respond(
                    reply,
                    &group,
                    GroupAnswer::Refused(ErrorCode::GroupIdNotFound),
                    out,
                );
            } else if group_mut.phase != Phase::Empty {
                // Kafka refuses only the topics the members subscribe to; the coordinator
                // does not read subscriptions, so it refuses every one while there are members.
                let answer = partitions
                    .into_iter()
                    .map(|p| (p, Err(ErrorCode::GroupSubscribedToTopic)))
                    .collect();
                respond(reply, &group, GroupAnswer::OffsetDelete(answer), out);
            } else {
                let deleted: Vec<GroupPartition> = partitions
                    .iter()
                    .filter(|p| group_mut.has_offset(p))
                    .cloned()
                    .collect();
                if deleted.is_empty() {
                    let answer = partitions.into_iter().map(|p| (p, Ok(()))).collect();
                    respond(reply, &group, GroupAnswer::OffsetDelete(answer), out);
                } else if !writable(state, tp) {
                    let refused = GroupAnswer::Refused(ErrorCode::CoordinatorNotAvailable);
                    respond(reply, &group, refused, out);
                } else {
                    let records = deleted
                        .iter()
                        .map(|partition| CoordinatorRecord::Offset {
                            group: group.clone(),
                            partition: partition.clone(),
                            offset: None,
                        })
                        .collect();
                    let kind = WriteKind::OffsetDelete {
                        reply,
                        deleted,
                        asked: partitions,
                    };
                    write(config, state, tp, &group, records, kind, out);
                }
            }
        }
        GroupOp::Delete => {
            let result = if !known || group_mut.is_vacant() {
                Err(ErrorCode::GroupIdNotFound)
            } else if group_mut.phase != Phase::Empty {
                Err(ErrorCode::NonEmptyGroup)
            } else if !writable(state, tp) {
                Err(ErrorCode::CoordinatorNotAvailable)
            } else {
                Ok(())
            };
            if let Err(code) = result {
                respond(reply, &group, GroupAnswer::Delete(Err(code)), out);
            } else {
                delete(config, state, tp, &group, WriteKind::Delete(reply), out);
            }
        }
    }
    let coordinator = state.coordinators.get_mut(&tp).expect("checked");
    if coordinator
        .groups
        .get(&group)
        .is_some_and(|g| g.is_vacant())
        && outputs.is_empty()
    {
        coordinator.groups.remove(&group);
    }
    run(config, state, tp, &group, outputs, out);
    follow_retention(config, state, tp, &group, was_expiring, out);
}

/// DeleteGroups, or the expiry of an empty group's offsets (`kind`): the group goes now (a
/// request for it finds none), its tombstones are appended, and a deletion is answered once
/// they are committed.
fn delete<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    kind: WriteKind,
    out: &mut BrokerEffects<L::Batch>,
) {
    let coordinator = state.coordinators.get_mut(&tp).expect("checked");
    let mut removed = coordinator.groups.remove(group).expect("checked");
    for write in &mut coordinator.writes {
        if let (true, WriteKind::Commit { offsets, .. }) = (write.group == group, &mut write.kind) {
            offsets.clear();
        }
    }
    let mut outputs = vec![Output::CancelTimer(GroupTimer::Retention)];
    removed.unload(&mut outputs);
    emit(tp, group, outputs, out);
    let mut records = vec![CoordinatorRecord::Group {
        group: group.to_string(),
        record: None,
    }];
    records.extend(
        removed
            .offsets
            .into_keys()
            .map(|partition| CoordinatorRecord::Offset {
                group: group.to_string(),
                partition,
                offset: None,
            }),
    );
    write(config, state, tp, group, records, kind, out);
}

/// `offsets.retention.minutes` after the group last became empty or committed: its offsets
/// expire, unless it has members again, or a commit of it is still being written (whose
/// completion restarts the count); with too few in-sync replicas to write the tombstones, it is
/// tried again `offsets.retention.check.interval.ms` later.
fn expire<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    out: &mut BrokerEffects<L::Batch>,
) {
    if !expiring(state, tp, group)
        || state.coordinators[&tp]
            .writes
            .iter()
            .any(|w| w.group == group)
    {
        return;
    }
    if !writable(state, tp) {
        let timer = Timer::Group(tp, group.to_string(), GroupTimer::Retention);
        return out.set_timer(timer, config.groups.offsets_retention_check);
    }
    delete(config, state, tp, group, WriteKind::Expire, out);
}

/// A group's timer fired.
pub(super) fn on_timer<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    tp: TopicPartition,
    group: &str,
    timer: &GroupTimer,
    out: &mut BrokerEffects<L::Batch>,
) {
    let held = state
        .coordinators
        .get(&tp)
        .is_some_and(|c| c.groups.contains_key(group));
    if !held {
        return out.ignore(Ignored::NotAwaited(
            "a timer of a group not coordinated here",
        ));
    }
    let state = state.to_mut();
    if *timer == GroupTimer::Retention {
        return expire(config, state, tp, group, out);
    }
    let was_expiring = expiring(state, tp, group);
    let group_mut = state
        .coordinators
        .get_mut(&tp)
        .expect("checked")
        .groups
        .get_mut(group);
    let mut outputs = Vec::new();
    group_mut
        .expect("checked")
        .timer(timer.clone(), &mut outputs);
    run(config, state, tp, group, outputs, out);
    follow_retention(config, state, tp, group, was_expiring, out);
}

/// FindCoordinator, answered from this broker's metadata: the leader of each group's
/// partition. Until `__consumer_offsets` exists, the broker asks the controller to create it
/// (once at a time) and answers COORDINATOR_NOT_AVAILABLE; the client retries.
pub(super) fn on_find_coordinator<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    request: u32,
    groups: Vec<String>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let mut coordinators = Vec::with_capacity(groups.len());
    let mut create = false;
    for group in groups {
        let found = match partition_of(state, &group) {
            None => {
                create = true;
                Err(ErrorCode::CoordinatorNotAvailable)
            }
            Some(tp) => state
                .topic_of(tp)
                .and_then(|t| t.partitions.get(tp.partition as usize))
                .and_then(|p| p.leader)
                .and_then(|leader| state.metadata.brokers.iter().find(|b| b.id == leader))
                .cloned()
                .ok_or(ErrorCode::CoordinatorNotAvailable),
        };
        coordinators.push((group, found));
    }
    if create && !state.offsets_topic_requested {
        state.to_mut().offsets_topic_requested = true;
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions: config.offsets_topic.partitions,
            replication_factor: config.offsets_topic.replication_factor,
            min_insync_replicas: None,
            unclean_leader_election: None,
        };
        out.send(
            Address::Controller,
            Msg::Forward(Box::new(Forwarded {
                broker: config.id,
                client: None,
                request: AdminRequest::CreateTopics(vec![topic]),
            })),
        );
    }
    out.send(
        from,
        Msg::FindCoordinatorResponse {
            request,
            coordinators,
        },
    );
}

/// ListGroups: every group this broker coordinates.
pub(super) fn list_groups<L: ReplicaLog>(state: &BrokerState<L>) -> Vec<ListedGroup> {
    state
        .coordinators
        .values()
        .flat_map(|c| c.groups.values())
        .filter(|g| !g.is_vacant())
        .map(|g| ListedGroup {
            group: g.id.clone(),
            protocol_type: g.protocol_type.clone(),
            phase: g.phase,
        })
        .collect()
}

/// Whether the partition takes a write now: its ISR has `min.insync.replicas` members.
fn writable<L: ReplicaLog>(state: &BrokerState<L>, tp: TopicPartition) -> bool {
    let replica = &state.replicas[&tp];
    replica
        .leader()
        .is_some_and(|l| l.isr.len() as u32 >= replica.min_insync_replicas)
}

/// Appends a group's records as one batch, to take effect once committed.
fn write<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    records: Vec<CoordinatorRecord>,
    kind: WriteKind,
    out: &mut BrokerEffects<L::Batch>,
) {
    let end_offset = match leader::append(config, state, tp, L::Batch::coordinator(records)) {
        Ok((_, end_offset)) => end_offset,
        Err(error) => return out.stop(format_args!("appending to {tp}: {error}")),
    };
    match kind {
        // Without `offsets-commit-acks-all` (checks only): answered once appended.
        WriteKind::Commit { reply, offsets }
            if config.protocol.without.contains(&Rule::CommitAcksAll) =>
        {
            committed(config, state, tp, group, reply, offsets, out)
        }
        // Without `group-record-acks-all` (checks only): the assignment is handed out once
        // the generation's record is appended.
        WriteKind::Group(generation)
            if config.protocol.without.contains(&Rule::GroupRecordAcksAll) =>
        {
            let mut outputs = Vec::new();
            if let Some(g) = state
                .coordinators
                .get_mut(&tp)
                .and_then(|c| c.groups.get_mut(group))
            {
                g.stored(generation, &mut outputs);
            }
            run(config, state, tp, group, outputs, out);
        }
        kind => {
            let coordinator = state.coordinators.get_mut(&tp).expect("the caller checked");
            coordinator.writes.push(CoordinatorWrite {
                end_offset,
                group: group.to_string(),
                kind,
            });
        }
    }
    leader::advance_high_watermark(config, state, tp, out);
    leader::wake_held_fetches(config, state, tp, out);
}

/// Carries out what a group asked for: answers, timers, and its record's writes (a write
/// refused for want of replicas fails the generation, which may ask for more).
fn run<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    group: &str,
    outputs: Vec<Output<GroupReply>>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let mut queue = VecDeque::from(outputs);
    while let Some(output) = queue.pop_front() {
        match output {
            Output::Store(record) => {
                let generation = record.generation;
                if writable(state, tp) {
                    let records = vec![CoordinatorRecord::Group {
                        group: group.to_string(),
                        record: Some(record),
                    }];
                    write(
                        config,
                        state,
                        tp,
                        group,
                        records,
                        WriteKind::Group(generation),
                        out,
                    );
                    if out.stopped() {
                        return;
                    }
                } else if let Some(g) = state
                    .coordinators
                    .get_mut(&tp)
                    .and_then(|c| c.groups.get_mut(group))
                {
                    let mut more = Vec::new();
                    g.store_failed(generation, &mut more);
                    queue.extend(more);
                }
            }
            other => emit(tp, group, vec![other], out),
        }
    }
}

/// A group's answers and timers as the broker's messages and timers (no writes).
fn emit<B>(
    tp: TopicPartition,
    group: &str,
    outputs: Vec<Output<GroupReply>>,
    out: &mut BrokerEffects<B>,
) {
    for output in outputs {
        match output {
            Output::Answer(reply, answer) => {
                respond(reply, group, GroupAnswer::Member(answer), out)
            }
            Output::SetTimer(timer, after) => {
                out.set_timer(Timer::Group(tp, group.to_string(), timer), after)
            }
            Output::CancelTimer(timer) => {
                out.cancel_timer(Timer::Group(tp, group.to_string(), timer))
            }
            Output::Store(_) => unreachable!("writes go through run"),
        }
    }
}

fn respond<B>(reply: GroupReply, group: &str, answer: GroupAnswer, out: &mut BrokerEffects<B>) {
    out.send(
        reply.to,
        Msg::GroupResponse(Box::new(GroupResponse {
            request: reply.request,
            group: group.to_string(),
            answer,
        })),
    );
}
