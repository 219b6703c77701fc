//! The controller: it registers brokers and tracks which are alive, creates and deletes topics
//! and places their replicas, elects each partition's leader from its ISR and bumps the leader
//! epoch, takes leaders' ISR proposals (AlterPartition, fenced by partition epoch and by the
//! members' broker epochs), hands out blocks of producer ids, and saves every decision before
//! announcing it.
//!
//! Kafka's controller (KRaft) is itself a replicated state machine; here it is one actor that
//! never loses what it saved. It learns that a broker died only when the broker's session
//! expires: `broker.session.timeout.ms` after its last heartbeat. A broker that registers
//! again with a newer broker epoch bounced (it restarted, or its session expired while it ran):
//! the controller fences the old incarnation on every partition it holds before taking the new
//! one in (KIP-380).

use crate::config::{ControllerConfig, Rule, TopicConfig};
use crate::effects::{Address, Effects, Ignored};
use crate::message::{
    isr_of, AdminRequest, AlterPartitionRequest, AlterPartitionResponse, BrokerInfo, ErrorCode,
    Forwarded, LeaderRecovery, MetadataUpdate, Msg, NewTopic, PartitionState, Timer,
    TopicConfigChange, TopicInfo, TopicResult,
};
use crate::types::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch, ProducerId, TopicId};
use crate::types::{Isr, Map, TopicPartition};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// What the controller's handlers emit: messages of any batch type, and its whole state saved.
pub type ControllerEffects<B> = Effects<Msg<B>, ControllerState>;

/// What the controller knows and has decided; all of it is saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ControllerState {
    /// Each broker's last registration, and whether its session is still alive.
    pub brokers: Map<BrokerId, Registration>,
    pub topics: Map<TopicId, Topic>,
    /// How many topics were ever created (the low bits of the next topic id).
    pub topics_created: u64,
    /// The first producer id not yet handed out.
    pub next_producer_id: ProducerId,
}

/// A broker's registration as the controller knows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Registration {
    pub broker_epoch: BrokerEpoch,
    /// Whether its session has not expired since.
    pub alive: bool,
    pub endpoints: Vec<crate::config::Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Topic {
    pub info: TopicInfo,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionState>,
}

impl ControllerState {
    pub fn is_alive(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|r| r.alive)
    }

    /// The registered broker epoch of a live broker.
    fn live_epoch(&self, broker: BrokerId) -> Option<BrokerEpoch> {
        self.brokers
            .get(&broker)
            .filter(|r| r.alive)
            .map(|r| r.broker_epoch)
    }

    pub fn partition(&self, tp: TopicPartition) -> Option<&PartitionState> {
        self.topics
            .get(&tp.topic_id)?
            .partitions
            .get(tp.partition as usize)
    }

    fn partition_mut(&mut self, tp: TopicPartition) -> Option<&mut PartitionState> {
        self.topics
            .get_mut(&tp.topic_id)?
            .partitions
            .get_mut(tp.partition as usize)
    }

    /// Every partition, in topic id and partition order.
    pub fn partitions(&self) -> impl Iterator<Item = &PartitionState> {
        self.topics.values().flat_map(|t| t.partitions.iter())
    }

    pub fn topic_named(&self, name: &str) -> Option<&Topic> {
        self.topics.values().find(|t| t.info.name == name)
    }

    fn live_brokers(&self) -> Vec<BrokerInfo> {
        self.brokers
            .iter()
            .filter(|(_, r)| r.alive)
            .map(|(id, r)| BrokerInfo {
                id: *id,
                endpoints: r.endpoints.clone(),
            })
            .collect()
    }
}

/// What one step changed, for `announce`.
#[derive(Default)]
struct Changes {
    brokers: bool,
    created: Vec<TopicId>,
    deleted: Vec<TopicId>,
    /// Partitions whose leader changed (every broker learns) or only whose ISR did (the
    /// leader learns).
    leaders: BTreeSet<TopicPartition>,
    isrs: BTreeSet<TopicPartition>,
    /// Topics whose settings changed (every broker learns them, with their partitions).
    altered: Vec<TopicId>,
    /// A broker that just registered: it gets everything.
    full_for: Option<BrokerId>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        !self.brokers
            && self.created.is_empty()
            && self.deleted.is_empty()
            && self.leaders.is_empty()
            && self.isrs.is_empty()
            && self.altered.is_empty()
            && self.full_for.is_none()
    }
}

pub fn on_start<B>(
    config: &ControllerConfig,
    saved: Option<&ControllerState>,
    out: &mut ControllerEffects<B>,
) -> ControllerState {
    let state = saved.cloned().unwrap_or_default();
    // Every live broker's session starts over with the controller.
    for broker in state.brokers.keys().filter(|b| state.is_alive(**b)) {
        out.set_timer(Timer::SessionExpiry(*broker), config.session_timeout);
    }
    state
}

pub fn on_msg<B: Clone>(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    from: Address,
    msg: Msg<B>,
    out: &mut ControllerEffects<B>,
) {
    match msg {
        Msg::BrokerRegistration {
            broker,
            broker_epoch,
            endpoints,
        } => on_broker_registration(config, state, from, broker, broker_epoch, endpoints, out),
        Msg::BrokerHeartbeat {
            broker,
            broker_epoch,
        } => on_broker_heartbeat(config, state, from, broker, broker_epoch, out),
        Msg::AlterPartition(request) => on_alter_partition(config, state, from, request, out),
        Msg::AllocateProducerIds {
            broker,
            broker_epoch,
        } => on_allocate_producer_ids(config, state, from, broker, broker_epoch, out),
        Msg::Forward(forwarded) => on_forward(config, state, from, *forwarded, out),
        _ => out.ignore(Ignored::Unexpected("a message for brokers or clients")),
    }
}

pub fn on_timeout<B: Clone>(
    _config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    timer: &Timer,
    out: &mut ControllerEffects<B>,
) {
    let Timer::SessionExpiry(broker) = *timer else {
        return;
    };
    if !state.is_alive(broker) {
        return;
    }
    // Only the partitions' news goes out: brokers answer clients with the brokers they last
    // heard registered, and clients that try a dead one move on to the next.
    let broker_epoch = state.brokers[&broker].broker_epoch;
    let next = state.to_mut();
    let mut changes = Changes::default();
    fence_broker(next, broker, &mut changes);
    out.save(next.clone());
    announce(next, &changes, out);
    // What the broker's next heartbeat would be told, told at once: a broker that is only
    // slow or cut off (a zombie) registers again when it hears it.
    out.send(
        Address::Broker(broker),
        Msg::BrokerHeartbeatResponse {
            broker_epoch,
            error: Some(ErrorCode::StaleBrokerEpoch),
        },
    );
}

/// A broker registers, with a new broker epoch: after a restart or after its session expired.
/// A registration no newer than the last one is refused, naming the newest (a broker whose
/// disk was wiped starts counting again). If an older epoch is alive, the broker bounced:
/// fence it first (KIP-380). Then it is alive and may lead partitions that had no leader; it
/// gets the whole metadata, everyone else the news.
fn on_broker_registration<B: Clone>(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    from: Address,
    broker: BrokerId,
    broker_epoch: BrokerEpoch,
    endpoints: Vec<crate::config::Endpoint>,
    out: &mut ControllerEffects<B>,
) {
    if let Some(known) = state.brokers.get(&broker) {
        if known.broker_epoch >= broker_epoch {
            let newest = known.broker_epoch;
            out.send(
                from,
                Msg::BrokerRegistrationRefused {
                    broker_epoch,
                    newest,
                },
            );
            return;
        }
    }
    let bounced = state.is_alive(broker);
    let next = state.to_mut();
    let mut changes = Changes {
        brokers: true,
        full_for: Some(broker),
        ..Changes::default()
    };
    if bounced && config.protocol.enforces(Rule::BounceFence) {
        fence_broker(next, broker, &mut changes);
    }
    next.brokers.insert(
        broker,
        Registration {
            broker_epoch,
            alive: true,
            endpoints,
        },
    );
    let offline: Vec<TopicPartition> = next
        .partitions()
        .filter(|p| p.leader.is_none() && p.replicas.contains(&broker))
        .map(|p| p.topic_partition)
        .collect();
    for tp in offline {
        elect_leader(next, tp, &mut changes);
    }
    out.save(next.clone());
    out.set_timer(Timer::SessionExpiry(broker), config.session_timeout);
    announce(next, &changes, out);
}

/// A heartbeat from a live broker's current epoch restarts its session; any other is told its
/// session is over, and the broker registers again.
fn on_broker_heartbeat<B>(
    config: &ControllerConfig,
    state: &ControllerState,
    from: Address,
    broker: BrokerId,
    broker_epoch: BrokerEpoch,
    out: &mut ControllerEffects<B>,
) {
    let error = if state.live_epoch(broker) == Some(broker_epoch) {
        out.set_timer(Timer::SessionExpiry(broker), config.session_timeout);
        None
    } else {
        Some(ErrorCode::StaleBrokerEpoch)
    };
    out.send(
        from,
        Msg::BrokerHeartbeatResponse {
            broker_epoch,
            error,
        },
    );
}

/// AlterPartition (KIP-497): accepted only from the current leader's current registration, in
/// its current leader epoch, against the current partition epoch, with every member alive in
/// the registration its fetches named (KIP-903).
fn on_alter_partition<B>(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    from: Address,
    request: AlterPartitionRequest,
    out: &mut ControllerEffects<B>,
) {
    let protocol = &config.protocol;
    let tp = request.topic_partition;
    let isr = isr_of(&request.isr);
    let refusal = match state.partition(tp) {
        _ if state.live_epoch(request.leader.broker) != Some(request.leader.broker_epoch) => {
            Some(ErrorCode::StaleBrokerEpoch)
        }
        None => Some(ErrorCode::UnknownTopicOrPartition),
        Some(p)
            if p.leader != Some(request.leader.broker)
                || p.leader_epoch != request.leader_epoch =>
        {
            Some(ErrorCode::FencedLeaderEpoch)
        }
        Some(p)
            if (p.partition_epoch != request.partition_epoch
                && protocol.enforces(Rule::PartitionEpochFence))
                || !isr.contains(&request.leader.broker) =>
        {
            Some(ErrorCode::InvalidUpdateVersion)
        }
        Some(p) if !request.isr.iter().all(|m| p.replicas.contains(&m.broker)) => {
            Some(ErrorCode::IneligibleReplica)
        }
        Some(_) => request
            .isr
            .iter()
            .any(|member| match state.live_epoch(member.broker) {
                None => true,
                Some(epoch) => {
                    member.broker_epoch.is_some_and(|named| named != epoch)
                        && protocol.enforces(Rule::IsrBrokerEpochFence)
                }
            })
            .then_some(ErrorCode::IneligibleReplica),
    };
    let leader_epoch = request.leader_epoch;
    if let Some(error) = refusal {
        let response = AlterPartitionResponse {
            topic_partition: tp,
            leader_epoch,
            result: Err(error),
        };
        out.send(from, Msg::AlterPartitionResponse(Box::new(response)));
        return;
    }
    let next = state.to_mut();
    let partition = next.partition_mut(tp).expect("checked above");
    partition.isr = isr;
    partition.partition_epoch = partition.partition_epoch.next();
    partition.leader_recovery = LeaderRecovery::Recovered;
    let decided = partition.clone();
    out.save(next.clone());
    let response = AlterPartitionResponse {
        topic_partition: tp,
        leader_epoch,
        result: Ok(decided),
    };
    out.send(from, Msg::AlterPartitionResponse(Box::new(response)));
}

/// A block of producer ids for a live broker to hand out (KIP-730); never handed out twice.
fn on_allocate_producer_ids<B>(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    from: Address,
    broker: BrokerId,
    broker_epoch: BrokerEpoch,
    out: &mut ControllerEffects<B>,
) {
    if state.live_epoch(broker) != Some(broker_epoch) {
        out.ignore(Ignored::StaleBrokerEpoch {
            expected: state.live_epoch(broker),
            got: broker_epoch,
        });
        return;
    }
    let next = state.to_mut();
    let first = next.next_producer_id;
    let count = config.producer_id_block_size;
    next.next_producer_id = ProducerId(first.0 + count);
    out.save(next.clone());
    out.send(
        from,
        Msg::AllocateProducerIdsResponse {
            broker_epoch,
            first,
            count,
        },
    );
}

fn on_forward<B: Clone>(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    from: Address,
    forwarded: Forwarded<AdminRequest>,
    out: &mut ControllerEffects<B>,
) {
    let mut changes = Changes::default();
    let results = match &forwarded.request {
        AdminRequest::CreateTopics(topics) => topics
            .iter()
            .map(|topic| create_topic(config, state, topic, &mut changes))
            .collect(),
        AdminRequest::DeleteTopics(names) => names
            .iter()
            .map(|name| delete_topic(state, name, &mut changes))
            .collect(),
        AdminRequest::CreatePartitions(topics) => topics
            .iter()
            .map(|(name, count)| create_partitions(state, name, *count, &mut changes))
            .collect(),
        AdminRequest::AlterTopicConfigs(topics) => topics
            .iter()
            .map(|(name, change)| alter_topic_config(config, state, name, change, &mut changes))
            .collect(),
    };
    if !changes.is_empty() {
        out.save(state.as_ref().clone());
        announce(state, &changes, out);
    }
    let response = Forwarded {
        broker: forwarded.broker,
        client: forwarded.client,
        request: results,
    };
    out.send(from, Msg::ForwardResponse(Box::new(response)));
}

/// Whether `name` is a legal topic name, as Kafka has it: 1 to 249 characters of
/// `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn is_legal_topic_name(name: &str) -> bool {
    let legal = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    !name.is_empty() && name.len() <= 249 && legal && name != "." && name != ".."
}

/// CreateTopics for one topic: placed over the sorted live brokers, partition i's replica j on
/// broker (i + j) mod n; the first replica leads, every replica is in the ISR.
fn create_topic(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    topic: &NewTopic,
    changes: &mut Changes,
) -> TopicResult {
    let live: Vec<BrokerId> = state
        .brokers
        .iter()
        .filter(|(_, r)| r.alive)
        .map(|(id, _)| *id)
        .collect();
    let topic_config = TopicConfig {
        min_insync_replicas: topic
            .min_insync_replicas
            .unwrap_or(config.topic_defaults.min_insync_replicas),
        unclean_leader_election: topic
            .unclean_leader_election
            .unwrap_or(config.topic_defaults.unclean_leader_election),
    };
    let refusal = if !is_legal_topic_name(&topic.name) {
        Some(ErrorCode::InvalidConfig)
    } else if state.topic_named(&topic.name).is_some() {
        Some(ErrorCode::TopicAlreadyExists)
    } else if topic.partitions == 0 || topic.partitions > 1 << 20 {
        Some(ErrorCode::InvalidPartitions)
    } else if topic.replication_factor == 0 || topic.replication_factor as usize > live.len() {
        Some(ErrorCode::InvalidReplicationFactor)
    } else if topic_config.min_insync_replicas == 0 {
        Some(ErrorCode::InvalidConfig)
    } else {
        None
    };
    if let Some(error) = refusal {
        return TopicResult {
            name: topic.name.clone(),
            result: Err(error),
        };
    }
    let next = state.to_mut();
    next.topics_created += 1;
    let id = TopicId(next.topics_created);
    let partitions = (0..topic.partitions)
        .map(|index| placed(id, index, topic.replication_factor as usize, &live))
        .collect();
    let info = TopicInfo {
        name: topic.name.clone(),
        id,
        uuid: (u128::from(config.topic_id_prefix) << 64) | u128::from(id.0),
        partitions: topic.partitions,
        config: topic_config,
    };
    next.topics.insert(id, Topic { info, partitions });
    changes.created.push(id);
    TopicResult {
        name: topic.name.clone(),
        result: Ok(id),
    }
}

/// CreatePartitions for one topic: it grows to `count` partitions, each new one placed over the
/// sorted live brokers as a new topic's are, with the topic's replication factor. Refused for a
/// count that does not grow the topic (INVALID_PARTITIONS), more replicas than live brokers
/// (INVALID_REPLICATION_FACTOR), and `__consumer_offsets`, whose partition count places every
/// group (INVALID_TOPIC_EXCEPTION). Every broker learns of the new partitions as of leader
/// changes.
fn create_partitions(
    state: &mut Cow<ControllerState>,
    name: &str,
    count: u32,
    changes: &mut Changes,
) -> TopicResult {
    let refused = |error| TopicResult {
        name: name.to_string(),
        result: Err(error),
    };
    let Some(topic) = state.topic_named(name) else {
        return refused(ErrorCode::UnknownTopicOrPartition);
    };
    let id = topic.info.id;
    let current = topic.info.partitions;
    let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let live: Vec<BrokerId> = state
        .brokers
        .iter()
        .filter(|(_, r)| r.alive)
        .map(|(id, _)| *id)
        .collect();
    if name == crate::config::OFFSETS_TOPIC {
        return refused(ErrorCode::InvalidTopic);
    }
    if count <= current || count > 1 << 20 {
        return refused(ErrorCode::InvalidPartitions);
    }
    if replication_factor > live.len() {
        return refused(ErrorCode::InvalidReplicationFactor);
    }
    let next = state.to_mut();
    let topic = next.topics.get_mut(&id).expect("found above");
    for index in current..count {
        let partition = placed(id, index, replication_factor, &live);
        changes.leaders.insert(partition.topic_partition);
        topic.partitions.push(partition);
    }
    topic.info.partitions = count;
    TopicResult {
        name: name.to_string(),
        result: Ok(id),
    }
}

/// IncrementalAlterConfigs for one topic: its settings changed as asked (a setting set back
/// goes to the cluster's default). `min.insync.replicas` must be at least 1 (INVALID_CONFIG); a
/// value above the replication factor is taken, as Kafka takes it (acks=all writes then get
/// NOT_ENOUGH_REPLICAS). Every broker hears the topic's new settings with its partitions: a
/// leader applies `min.insync.replicas` from its next write or HW advance, the controller
/// `unclean.leader.election.enable` from its next election.
fn alter_topic_config(
    config: &ControllerConfig,
    state: &mut Cow<ControllerState>,
    name: &str,
    change: &TopicConfigChange,
    changes: &mut Changes,
) -> TopicResult {
    let refused = |error| TopicResult {
        name: name.to_string(),
        result: Err(error),
    };
    let Some(topic) = state.topic_named(name) else {
        return refused(ErrorCode::UnknownTopicOrPartition);
    };
    let id = topic.info.id;
    let mut next_config = topic.info.config;
    if let Some(value) = change.min_insync_replicas {
        next_config.min_insync_replicas =
            value.unwrap_or(config.topic_defaults.min_insync_replicas);
    }
    if let Some(value) = change.unclean_leader_election {
        next_config.unclean_leader_election =
            value.unwrap_or(config.topic_defaults.unclean_leader_election);
    }
    if next_config.min_insync_replicas == 0 {
        return refused(ErrorCode::InvalidConfig);
    }
    if next_config != topic.info.config {
        let next = state.to_mut();
        next.topics.get_mut(&id).expect("found above").info.config = next_config;
        changes.altered.push(id);
    }
    TopicResult {
        name: name.to_string(),
        result: Ok(id),
    }
}

/// A new partition, placed over the sorted live brokers: replica j on broker (index + j) mod n;
/// the first replica leads, every replica is in the ISR, leader and partition epochs 0.
fn placed(
    topic_id: TopicId,
    index: u32,
    replication_factor: usize,
    live: &[BrokerId],
) -> PartitionState {
    let replicas: Vec<BrokerId> = (0..replication_factor)
        .map(|j| live[(index as usize + j) % live.len()])
        .collect();
    PartitionState {
        topic_partition: TopicPartition {
            topic_id,
            partition: index,
        },
        leader: Some(replicas[0]),
        leader_epoch: LeaderEpoch(0),
        isr: replicas.iter().copied().collect(),
        partition_epoch: PartitionEpoch(0),
        leader_recovery: LeaderRecovery::Recovered,
        replicas,
    }
}

fn delete_topic(
    state: &mut Cow<ControllerState>,
    name: &str,
    changes: &mut Changes,
) -> TopicResult {
    let Some(id) = state.topic_named(name).map(|t| t.info.id) else {
        return TopicResult {
            name: name.to_string(),
            result: Err(ErrorCode::UnknownTopicOrPartition),
        };
    };
    state.to_mut().topics.remove(&id);
    changes.deleted.push(id);
    TopicResult {
        name: name.to_string(),
        result: Ok(id),
    }
}

/// The broker is no longer alive: on every partition it holds, it leaves the ISR (unless it is
/// the last member, which Kafka keeps so the partition can come back with it) and, if it led,
/// a new leader is elected.
fn fence_broker(state: &mut ControllerState, broker: BrokerId, changes: &mut Changes) {
    if let Some(registration) = state.brokers.get_mut(&broker) {
        registration.alive = false;
    }
    let held: Vec<TopicPartition> = state
        .partitions()
        .filter(|p| p.replicas.contains(&broker))
        .map(|p| p.topic_partition)
        .collect();
    for tp in held {
        let partition = state.partition_mut(tp).expect("listed above");
        let shrunk = partition.isr.len() > 1 && partition.isr.remove(&broker);
        if partition.leader == Some(broker) {
            elect_leader(state, tp, changes);
        } else if shrunk {
            partition.partition_epoch = partition.partition_epoch.next();
            changes.isrs.insert(tp);
        }
    }
}

/// Clean election: the first live ISR member in replica order. Unclean (if the topic allows
/// it): the first live replica, which becomes the whole ISR (KIP-704: its recovery state is
/// RECOVERING until the next change). Otherwise the partition goes offline. A change of leader
/// (to none included) bumps the leader epoch; any change bumps the partition epoch.
fn elect_leader(state: &mut ControllerState, tp: TopicPartition, changes: &mut Changes) {
    let unclean_allowed = state.topics[&tp.topic_id]
        .info
        .config
        .unclean_leader_election;
    let live: BTreeSet<BrokerId> = state
        .brokers
        .iter()
        .filter(|(_, r)| r.alive)
        .map(|(id, _)| *id)
        .collect();
    let partition = state.partition_mut(tp).expect("an existing partition");
    let clean = partition
        .replicas
        .iter()
        .find(|b| live.contains(b) && partition.isr.contains(b))
        .copied();
    let unclean = partition
        .replicas
        .iter()
        .find(|b| live.contains(b))
        .copied()
        .filter(|_| unclean_allowed);
    let (leader, isr): (Option<BrokerId>, Option<Isr>) = match (clean, unclean) {
        (Some(leader), _) => (Some(leader), None),
        (None, Some(leader)) => (Some(leader), Some(BTreeSet::from([leader]))),
        (None, None) => (None, None),
    };
    if leader == partition.leader && isr.is_none() {
        return;
    }
    if let Some(isr) = isr {
        partition.isr = isr;
        partition.leader_recovery = LeaderRecovery::Recovering;
    }
    if leader != partition.leader {
        partition.leader = leader;
        partition.leader_epoch = partition.leader_epoch.next();
        changes.leaders.insert(tp);
    } else {
        changes.isrs.insert(tp);
    }
    partition.partition_epoch = partition.partition_epoch.next();
}

/// Tells every registered broker what changed: the broker set, topics created and deleted,
/// and partitions whose leader changed; an ISR-only change goes to the partition's leader alone
/// (it needs the new partition epoch for its next AlterPartition). A broker that just
/// registered gets everything. A broker whose session expired still hears the news, addressed
/// to the registration it had (as KRaft's fenced brokers still read the metadata log): if it is
/// only slow, it steps down from what it no longer leads; if it restarted since, its new
/// incarnation drops it (KIP-380).
fn announce<B: Clone>(state: &ControllerState, changes: &Changes, out: &mut ControllerEffects<B>) {
    let live_brokers = state.live_brokers();
    for (broker, registration) in &state.brokers {
        let full = changes.full_for == Some(*broker);
        let partitions: Vec<PartitionState> = if full {
            state.partitions().cloned().collect()
        } else {
            let created = |p: &&PartitionState| {
                changes.created.contains(&p.topic_partition.topic_id)
                    || changes.altered.contains(&p.topic_partition.topic_id)
            };
            let led_here = |p: &&PartitionState| {
                p.leader == Some(*broker) && changes.isrs.contains(&p.topic_partition)
            };
            state
                .partitions()
                .filter(|p| {
                    changes.leaders.contains(&p.topic_partition) || created(p) || led_here(p)
                })
                .cloned()
                .collect()
        };
        // Every topic the update mentions travels with it, as LeaderAndIsr carries the topic's
        // name and id: a broker acts on news of a partition it holds even if it has not heard
        // of the topic since it restarted.
        let topics: Vec<TopicInfo> = state
            .topics
            .values()
            .filter(|t| {
                full || changes.created.contains(&t.info.id)
                    || partitions
                        .iter()
                        .any(|p| p.topic_partition.topic_id == t.info.id)
            })
            .map(|t| t.info.clone())
            .collect();
        let deleted_topics = if full {
            Vec::new()
        } else {
            changes.deleted.clone()
        };
        let update = MetadataUpdate {
            broker_epoch: registration.broker_epoch,
            full: full.then_some(state.topics_created),
            live_brokers: (full || changes.brokers).then(|| live_brokers.clone()),
            topics,
            deleted_topics,
            partitions,
        };
        let empty = update.live_brokers.is_none()
            && update.topics.is_empty()
            && update.deleted_topics.is_empty()
            && update.partitions.is_empty();
        if !empty || full {
            // (A broker that registered always hears back: the update is its acknowledgement.)
            out.send(
                Address::Broker(*broker),
                Msg::MetadataUpdate(Box::new(update)),
            );
        }
    }
}
