//! A broker: its membership of the cluster, and the replicas it holds.
//!
//! **Membership.** At every start a broker takes a new broker epoch (saved before it registers)
//! and registers with the controller; it heartbeats every `broker.heartbeat.interval.ms`; a
//! heartbeat answered STALE_BROKER_EPOCH means its session expired, and it registers again with
//! a new epoch. The controller's metadata updates carry the broker epoch they are meant for;
//! one meant for another incarnation is dropped (KIP-380).
//!
//! **Replicas.** The broker is one actor holding a map of replicas, one per partition it was
//! assigned: a crash takes them all, as a dying process does, and every partition rule (HW,
//! ISR, truncation, fencing) holds per partition (`leader.rs`, `follower.rs`). It keeps the
//! rest of the controller's news (brokers, topics, leaders) to answer clients' Metadata.
//!
//! **Durability.** The logs write through to their own storage, flushed by the flush policy.
//! The broker itself saves only its broker epoch (before registering) and, every
//! `replica.high.watermark.checkpoint.interval.ms`, the HW checkpoint: a restarted broker may
//! find an older HW than it had, as in Kafka.

pub mod coordinator;
mod follower;
pub mod idempotence;
mod leader;
pub mod replica;

pub use replica::{
    FollowerPhase, FollowerProgress, FollowerState, LeaderState, PendingProduce, Replica, Role,
};

use crate::config::{BrokerConfig, Rule};
use crate::effects::{Address, Effects, Ignored};
use crate::log::{LogName, ReplicaLog};
use crate::message::{
    BrokerInfo, ErrorCode, FetchRequest, Forwarded, MetadataResponse, MetadataUpdate, Msg,
    PartitionMetadata, PartitionState, Timer, TopicInfo, TopicMetadata,
};
use crate::types::{BrokerEpoch, BrokerId, Offset, ProducerEpoch, ProducerId, TopicId};
use crate::types::{Map, TopicPartition};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// What the broker asks its host to make durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BrokerSave {
    /// The broker epoch it is about to register with.
    BrokerEpoch(BrokerEpoch),
    /// The HW checkpoint (`replication-offset-checkpoint`).
    HighWatermarks(Map<TopicPartition, Offset>),
}

/// What the broker's handlers emit.
pub type BrokerEffects<B> = Effects<Msg<B>, BrokerSave>;

/// What a restarted broker finds: the broker epoch and HW checkpoint it saved, and what its
/// logs' storage kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerStorage<D> {
    pub broker_epoch: BrokerEpoch,
    pub logs: Map<TopicPartition, D>,
    pub high_watermarks: Map<TopicPartition, Offset>,
    /// Set when some replica here ever had to lower its HW (a truncation or a recovery below
    /// it): Kafka logs it as a warning; `hw_never_decreases` says it never happens.
    pub high_watermark_lowered: bool,
}

/// A broker's state.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct BrokerState<L> {
    pub broker_epoch: BrokerEpoch,
    pub heartbeat_in_flight: bool,
    pub metadata: MetadataCache,
    pub replicas: Map<TopicPartition, Replica<L>>,
    /// Leaders this broker's follower fetch is outstanding at (one fetch per leader, for every
    /// partition it follows there).
    pub fetches_in_flight: BTreeSet<BrokerId>,
    /// Fetches held until `min_bytes` are there or `max_wait_ms` passes, oldest first.
    pub held_fetches: Vec<HeldFetch>,
    pub producer_ids: ProducerIdPool,
    /// The HW checkpoint as last saved.
    pub high_watermark_checkpoint: Map<TopicPartition, Offset>,
    pub high_watermark_lowered: bool,
    /// The group coordinator: the groups of each partition of `__consumer_offsets` this
    /// broker leads.
    pub coordinators: Map<TopicPartition, coordinator::Coordinator>,
    /// This broker asked the controller to create `__consumer_offsets` and awaits the answer.
    pub offsets_topic_requested: bool,
}

/// The controller's news kept for clients' Metadata requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetadataCache {
    pub brokers: Vec<BrokerInfo>,
    pub topics: Map<TopicId, CachedTopic>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CachedTopic {
    pub info: TopicInfo,
    pub partitions: Vec<PartitionState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeldFetch {
    pub requester: Address,
    pub request: FetchRequest,
}

/// Producer ids this broker may hand out, from the controller's last block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProducerIdPool {
    pub next: ProducerId,
    pub end: ProducerId,
    /// An AllocateProducerIds is in flight.
    pub requested: bool,
    /// InitProducerId requests waiting for a block.
    pub waiting: Vec<Address>,
}

impl<L: ReplicaLog> BrokerState<L> {
    /// A broker in `broker_epoch` that holds nothing and knows nothing yet.
    pub fn empty(broker_epoch: BrokerEpoch) -> Self {
        BrokerState {
            broker_epoch,
            heartbeat_in_flight: false,
            metadata: MetadataCache::default(),
            replicas: Map::default(),
            fetches_in_flight: BTreeSet::new(),
            held_fetches: Vec::new(),
            producer_ids: ProducerIdPool::default(),
            high_watermark_checkpoint: Map::default(),
            high_watermark_lowered: false,
            coordinators: Map::default(),
            offsets_topic_requested: false,
        }
    }

    /// What a crash would leave of this broker now (the model checker's storage).
    pub fn storage(&self) -> BrokerStorage<L::Durable> {
        BrokerStorage {
            broker_epoch: self.broker_epoch,
            logs: self
                .replicas
                .iter()
                .map(|(tp, replica)| (*tp, replica.log.durable()))
                .collect(),
            high_watermarks: self.high_watermark_checkpoint.clone(),
            high_watermark_lowered: self.high_watermark_lowered,
        }
    }

    /// The partition's topic configuration as last told.
    fn topic_of(&self, tp: TopicPartition) -> Option<&CachedTopic> {
        self.metadata.topics.get(&tp.topic_id)
    }
}

pub fn on_start<L: ReplicaLog>(
    config: &BrokerConfig,
    log_config: &L::Config,
    saved: Option<&BrokerStorage<L::Durable>>,
    out: &mut BrokerEffects<L::Batch>,
) -> BrokerState<L> {
    let mut state = BrokerState {
        high_watermark_lowered: saved.is_some_and(|s| s.high_watermark_lowered),
        ..BrokerState::empty(saved.map_or(BrokerEpoch(0), |s| s.broker_epoch).next())
    };
    for (tp, durable) in saved.map(|s| &s.logs).into_iter().flatten() {
        let checkpoint = saved
            .and_then(|s| s.high_watermarks.get(tp))
            .copied()
            .unwrap_or_default();
        let replica =
            L::reopen(log_config, durable).and_then(|log| Replica::opened(log, checkpoint));
        match replica {
            Ok(replica) => {
                state.high_watermark_lowered |= checkpoint > replica.log.log_end_offset();
                state.high_watermark_checkpoint.insert(*tp, checkpoint);
                state.replicas.insert(*tp, replica);
            }
            Err(error) => {
                out.stop(format_args!("reopening the log of {tp}: {error}"));
                return state;
            }
        }
    }
    let timeouts = &config.timeouts;
    if let Some(interval) = timeouts.high_watermark_checkpoint_interval {
        out.set_timer(Timer::HighWatermarkCheckpoint, interval);
    }
    if let Some(interval) = timeouts.retention_check_interval {
        out.set_timer(Timer::Retention, interval);
    }
    register(config, &mut state, out);
    state
}

/// Saves the broker epoch, then registers with it (and heartbeats from then on).
fn register<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    out: &mut BrokerEffects<L::Batch>,
) {
    out.save(BrokerSave::BrokerEpoch(state.broker_epoch));
    out.send(
        Address::Controller,
        Msg::BrokerRegistration {
            broker: config.id,
            broker_epoch: state.broker_epoch,
            endpoints: config.endpoints.clone(),
        },
    );
    state.heartbeat_in_flight = false;
    if let Some(interval) = config.timeouts.heartbeat_interval {
        out.set_timer(Timer::Heartbeat, interval);
    }
}

pub fn on_msg<L: ReplicaLog>(
    config: &BrokerConfig,
    log_config: &L::Config,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    msg: Msg<L::Batch>,
    out: &mut BrokerEffects<L::Batch>,
) {
    let from_controller = from == Address::Controller;
    match msg {
        Msg::MetadataUpdate(update) if from_controller => {
            on_metadata_update(config, log_config, state, *update, out)
        }
        Msg::BrokerRegistrationRefused {
            broker_epoch,
            newest,
        } if from_controller => {
            if broker_epoch != state.broker_epoch {
                return out.ignore(Ignored::StaleBrokerEpoch {
                    expected: Some(state.broker_epoch),
                    got: broker_epoch,
                });
            }
            let next = state.to_mut();
            next.broker_epoch = newest.next();
            register(config, next, out);
        }
        Msg::BrokerHeartbeatResponse {
            broker_epoch,
            error,
        } if from_controller => on_heartbeat_response(config, state, broker_epoch, error, out),
        Msg::AlterPartitionResponse(response) if from_controller => {
            leader::on_alter_partition_response(config, state, *response, out)
        }
        Msg::AllocateProducerIdsResponse {
            broker_epoch,
            first,
            count,
        } if from_controller => {
            on_producer_ids(state, broker_epoch, first, count, out);
        }
        Msg::ForwardResponse(forwarded) if from_controller => {
            let Forwarded {
                client, request, ..
            } = *forwarded;
            match client {
                Some(client) => out.send(Address::Client(client), Msg::AdminResponse(request)),
                // Its own request to create `__consumer_offsets`: a FindCoordinator that still
                // finds no topic asks again.
                None => state.to_mut().offsets_topic_requested = false,
            }
        }
        Msg::Fetch(request) => leader::on_fetch(config, state, from, request, out),
        Msg::FetchResponse(response) => match from {
            Address::Broker(leader) => {
                follower::on_fetch_response(config, state, leader, response, out)
            }
            _ => out.ignore(Ignored::Unexpected("a fetch response not from a broker")),
        },
        Msg::OffsetForLeaderEpoch(request) => {
            leader::on_offset_for_leader_epoch(config, state, from, request, out)
        }
        Msg::OffsetForLeaderEpochResponse(response) => match from {
            Address::Broker(leader) => {
                follower::on_offset_for_leader_epoch_response(config, state, leader, response, out)
            }
            _ => out.ignore(Ignored::Unexpected("an epoch answer not from a broker")),
        },
        Msg::Produce(request) => leader::on_produce(config, state, from, request, out),
        Msg::ListOffsets(request) => leader::on_list_offsets(state, from, request, out),
        Msg::Metadata { topics } => out.send(
            from,
            Msg::MetadataResponse(Box::new(metadata(state, &topics))),
        ),
        Msg::Admin(request) => match from {
            Address::Client(client) => out.send(
                Address::Controller,
                Msg::Forward(Box::new(Forwarded {
                    broker: config.id,
                    client: Some(client),
                    request,
                })),
            ),
            _ => out.ignore(Ignored::Unexpected("an admin request not from a client")),
        },
        Msg::InitProducerId => on_init_producer_id(config, state, from, out),
        Msg::FindCoordinator { request, groups } => {
            coordinator::on_find_coordinator(config, state, from, request, groups, out)
        }
        Msg::Group(request) => coordinator::on_request(config, state, from, *request, out),
        Msg::ListGroups { request } => {
            let groups = coordinator::list_groups(state);
            out.send(from, Msg::ListGroupsResponse { request, groups })
        }
        Msg::Disconnected => on_disconnected(config, state, from, out),
        _ => out.ignore(Ignored::Unexpected(
            "a message for the controller or a client",
        )),
    }
}

pub fn on_timeout<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    timer: &Timer,
    out: &mut BrokerEffects<L::Batch>,
) {
    match timer {
        Timer::Heartbeat => {
            if state.heartbeat_in_flight {
                return;
            }
            state.to_mut().heartbeat_in_flight = true;
            out.send(
                Address::Controller,
                Msg::BrokerHeartbeat {
                    broker: config.id,
                    broker_epoch: state.broker_epoch,
                },
            );
        }
        Timer::ReplicaLag(tp, follower) => {
            leader::on_replica_lag(config, state, *tp, *follower, out)
        }
        Timer::FetchBackoff(tp) => follower::on_fetch_backoff(config, state, *tp, out),
        Timer::FetchExpiry(requester) => leader::on_fetch_expiry(config, state, *requester, out),
        Timer::HighWatermarkCheckpoint => on_checkpoint(config, state, out),
        Timer::Retention => on_retention(config, state, out),
        Timer::Group(tp, group, timer) => {
            coordinator::on_timer(config, state, *tp, group, timer, out)
        }
        _ => {}
    }
}

fn on_heartbeat_response<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    broker_epoch: BrokerEpoch,
    error: Option<ErrorCode>,
    out: &mut BrokerEffects<L::Batch>,
) {
    if broker_epoch != state.broker_epoch {
        return out.ignore(Ignored::StaleBrokerEpoch {
            expected: Some(state.broker_epoch),
            got: broker_epoch,
        });
    }
    let next = state.to_mut();
    next.heartbeat_in_flight = false;
    if error.is_some() {
        // The session of this epoch is over: register again as a new incarnation.
        next.broker_epoch = next.broker_epoch.next();
        register(config, next, out);
    } else if let Some(interval) = config.timeouts.heartbeat_interval {
        out.set_timer(Timer::Heartbeat, interval);
    }
}

/// The controller's news (KIP-380: only for this incarnation). The broker keeps what clients
/// ask about, creates replicas of new partitions assigned to it, deletes those of deleted
/// topics, and takes the role each of its partitions now has.
fn on_metadata_update<L: ReplicaLog>(
    config: &BrokerConfig,
    log_config: &L::Config,
    state: &mut Cow<BrokerState<L>>,
    update: MetadataUpdate,
    out: &mut BrokerEffects<L::Batch>,
) {
    if update.broker_epoch != state.broker_epoch
        && config.protocol.enforces(Rule::UpdateBrokerEpochFence)
    {
        return out.ignore(Ignored::StaleBrokerEpoch {
            expected: Some(state.broker_epoch),
            got: update.broker_epoch,
        });
    }
    let next = state.to_mut();
    if let Some(brokers) = update.live_brokers {
        next.metadata.brokers = brokers;
    }
    if let Some(topics_created) = update.full {
        let named: BTreeSet<TopicId> = update.topics.iter().map(|t| t.id).collect();
        next.metadata
            .topics
            .retain(|id, _| id.creation() > topics_created || named.contains(id));
    }
    for info in update.topics {
        // A known topic's info may have changed: CreatePartitions grows its partition count.
        match next.metadata.topics.get_mut(&info.id) {
            Some(topic) => topic.info = info,
            None => {
                next.metadata.topics.insert(
                    info.id,
                    CachedTopic {
                        partitions: Vec::new(),
                        info,
                    },
                );
            }
        }
    }
    for id in &update.deleted_topics {
        next.metadata.topics.remove(id);
    }
    let gone: Vec<TopicPartition> = next
        .replicas
        .keys()
        .filter(|tp| !next.metadata.topics.contains_key(&tp.topic_id))
        .copied()
        .collect();
    for tp in gone {
        if !delete_replica(config, next, tp, out) {
            return;
        }
    }
    for partition in update.partitions {
        let tp = partition.topic_partition;
        let Some(topic) = next.metadata.topics.get_mut(&tp.topic_id) else {
            continue;
        };
        let index = tp.partition as usize;
        if topic.partitions.len() <= index {
            topic.partitions.resize(index + 1, partition.clone());
        }
        let cached = &mut topic.partitions[index];
        if partition.leader_epoch >= cached.leader_epoch {
            *cached = partition.clone();
        }
        if partition.replicas.contains(&config.id)
            && !apply_partition(config, log_config, next, partition, out)
        {
            return;
        }
    }
}

/// LeaderAndIsr for one partition this broker holds a replica of. Older leader epochs are
/// ignored; the same epoch only updates a leader's ISR (a newer partition epoch) or gives a
/// replica without a role its role. Returns false if the step stopped on a log failure.
fn apply_partition<L: ReplicaLog>(
    config: &BrokerConfig,
    log_config: &L::Config,
    state: &mut BrokerState<L>,
    partition: PartitionState,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    let tp = partition.topic_partition;
    let topic = state.topic_of(tp).expect("the caller found the topic");
    let min_insync_replicas = topic.info.config.min_insync_replicas;
    if !state.replicas.contains_key(&tp) {
        let name = LogName {
            topic: topic.info.name.clone(),
            partition: tp.partition,
        };
        let replica = L::create(log_config, &name).and_then(|log| Replica::opened(log, Offset(0)));
        match replica {
            Ok(replica) => state.replicas.insert(tp, replica),
            Err(error) => {
                out.stop(format_args!("creating the log of {name:?}: {error}"));
                return false;
            }
        };
    }
    let replica = state.replicas.get_mut(&tp).expect("just ensured");
    replica.min_insync_replicas = min_insync_replicas;
    if partition.leader_epoch < replica.leader_epoch {
        out.ignore(Ignored::StaleLeaderEpoch {
            partition: tp,
            known: replica.leader_epoch,
            got: partition.leader_epoch,
        });
        return true;
    }
    if partition.leader_epoch == replica.leader_epoch {
        match &replica.role {
            Role::Leader(leader) if partition.leader == Some(config.id) => {
                if partition.partition_epoch > leader.partition_epoch {
                    leader::adopt_isr(
                        config,
                        state,
                        tp,
                        partition.isr,
                        partition.partition_epoch,
                        out,
                    );
                }
                return true;
            }
            Role::Unassigned => {}
            _ => return true,
        }
    }
    leader::resign(config, state, tp, out);
    let replica = state.replicas.get_mut(&tp).expect("held");
    replica.leader_epoch = partition.leader_epoch;
    match partition.leader {
        Some(leader) if leader == config.id => leader::become_leader(config, state, partition, out),
        Some(leader) => follower::become_follower(config, state, tp, leader, out),
        None => true,
    }
}

/// The partition's topic was deleted: its replica goes, log and all.
fn delete_replica<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    tp: TopicPartition,
    out: &mut BrokerEffects<L::Batch>,
) -> bool {
    leader::resign(config, state, tp, out);
    let Some(mut replica) = state.replicas.remove(&tp) else {
        return true;
    };
    state.high_watermark_checkpoint.remove(&tp);
    if let Err(error) = replica.log.delete() {
        out.stop(format_args!("deleting the log of {tp}: {error}"));
        return false;
    }
    true
}

/// A client's Metadata request, answered from what the controller last told this broker;
/// no topics named means every topic.
fn metadata<L>(state: &BrokerState<L>, topics: &[String]) -> MetadataResponse {
    let describe = |topic: &CachedTopic| TopicMetadata {
        name: topic.info.name.clone(),
        id: topic.info.id,
        partitions: topic
            .partitions
            .iter()
            .map(|p| PartitionMetadata {
                partition: p.topic_partition.partition,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            })
            .collect(),
    };
    let topics = if topics.is_empty() {
        state
            .metadata
            .topics
            .values()
            .map(|t| (t.info.name.clone(), Ok(describe(t))))
            .collect()
    } else {
        topics
            .iter()
            .map(|name| {
                let found = state
                    .metadata
                    .topics
                    .values()
                    .find(|t| &t.info.name == name);
                let result = found
                    .map(describe)
                    .ok_or(ErrorCode::UnknownTopicOrPartition);
                (name.clone(), result)
            })
            .collect()
    };
    MetadataResponse {
        brokers: state.metadata.brokers.clone(),
        topics,
    }
}

/// InitProducerId (idempotent producers): a producer id from this broker's block, asking the
/// controller for a block when it has none left (KIP-730).
fn on_init_producer_id<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    out: &mut BrokerEffects<L::Batch>,
) {
    let pool = &state.producer_ids;
    if pool.next < pool.end {
        let next = state.to_mut();
        let id = next.producer_ids.next;
        next.producer_ids.next = ProducerId(id.0 + 1);
        out.send(
            from,
            Msg::InitProducerIdResponse(Ok((id, ProducerEpoch(0)))),
        );
        return;
    }
    if pool.waiting.len() >= config.limits.producer_id_requests_max {
        // Kafka answers COORDINATOR_LOAD_IN_PROGRESS-like retriable errors: the client retries.
        out.send(
            from,
            Msg::InitProducerIdResponse(Err(ErrorCode::RequestTimedOut)),
        );
        return;
    }
    let next = state.to_mut();
    next.producer_ids.waiting.push(from);
    request_producer_ids(config, next, out);
}

fn request_producer_ids<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut BrokerState<L>,
    out: &mut BrokerEffects<L::Batch>,
) {
    if state.producer_ids.requested {
        return;
    }
    state.producer_ids.requested = true;
    out.send(
        Address::Controller,
        Msg::AllocateProducerIds {
            broker: config.id,
            broker_epoch: state.broker_epoch,
        },
    );
}

fn on_producer_ids<L: ReplicaLog>(
    state: &mut Cow<BrokerState<L>>,
    broker_epoch: BrokerEpoch,
    first: ProducerId,
    count: u64,
    out: &mut BrokerEffects<L::Batch>,
) {
    if broker_epoch != state.broker_epoch || !state.producer_ids.requested {
        return out.ignore(Ignored::NotAwaited("AllocateProducerIds"));
    }
    let next = state.to_mut();
    let pool = &mut next.producer_ids;
    pool.requested = false;
    pool.next = first;
    pool.end = ProducerId(first.0 + count);
    while pool.next < pool.end && !pool.waiting.is_empty() {
        let requester = pool.waiting.remove(0);
        let id = pool.next;
        pool.next = ProducerId(id.0 + 1);
        out.send(
            requester,
            Msg::InitProducerIdResponse(Ok((id, ProducerEpoch(0)))),
        );
    }
}

/// The host's notice that the connection to `from` closed: nothing it waited for will be read,
/// and nothing this broker waited for from it will come.
fn on_disconnected<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    from: Address,
    out: &mut BrokerEffects<L::Batch>,
) {
    let next = state.to_mut();
    leader::forget_requester(next, from, out);
    next.producer_ids.waiting.retain(|waiting| *waiting != from);
    match from {
        Address::Controller => {
            next.heartbeat_in_flight = false;
            if let Some(interval) = config.timeouts.heartbeat_interval {
                out.set_timer(Timer::Heartbeat, interval);
            }
            next.producer_ids.requested = false;
            next.offsets_topic_requested = false;
            if !next.producer_ids.waiting.is_empty() {
                request_producer_ids(config, next, out);
            }
        }
        Address::Broker(leader) => follower::on_leader_disconnected(config, next, leader, out),
        Address::Client(_) => {}
    }
}

/// Writes the HW checkpoint, if any HW moved since the last one.
fn on_checkpoint<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    out: &mut BrokerEffects<L::Batch>,
) {
    if let Some(interval) = config.timeouts.high_watermark_checkpoint_interval {
        out.set_timer(Timer::HighWatermarkCheckpoint, interval);
    }
    let high_watermarks: Map<TopicPartition, Offset> = state
        .replicas
        .iter()
        .map(|(tp, replica)| (*tp, replica.high_watermark))
        .collect();
    if high_watermarks == state.high_watermark_checkpoint {
        return;
    }
    state.to_mut().high_watermark_checkpoint = high_watermarks.clone();
    out.save(BrokerSave::HighWatermarks(high_watermarks));
}

/// Retention: each replica deletes the prefix its log's retention settings allow, never at or
/// past its HW (a record below the HW is on every ISR member; above it, it may be all a new
/// leader would have).
fn on_retention<L: ReplicaLog>(
    config: &BrokerConfig,
    state: &mut Cow<BrokerState<L>>,
    out: &mut BrokerEffects<L::Batch>,
) {
    if let Some(interval) = config.timeouts.retention_check_interval {
        out.set_timer(Timer::Retention, interval);
    }
    let bounded = config.protocol.enforces(Rule::RetentionBelowHighWatermark);
    let deletable: Vec<(TopicPartition, Offset)> = state
        .replicas
        .iter()
        .filter_map(|(tp, replica)| {
            let bound = match bounded {
                true => replica.high_watermark,
                false => replica.log.log_end_offset(),
            };
            let to = replica.log.retention_offset().min(bound);
            (to > replica.log.log_start_offset()).then_some((*tp, to))
        })
        .collect();
    if deletable.is_empty() {
        return;
    }
    let next = state.to_mut();
    for (tp, to) in deletable {
        let replica = next.replicas.get_mut(&tp).expect("listed above");
        if let Err(error) = replica.log.advance_log_start_offset(to) {
            out.stop(format_args!("retention on {tp}: {error}"));
            return;
        }
    }
}
