//! Handler tests: one step of one role, and the exact commands it emits (specs/protocol.md,
//! "Messages and handler rules").

use gregor_model::broker::{self, BrokerSave, BrokerState, BrokerStorage, FollowerPhase, Role};
use gregor_model::config::{BrokerConfig, ControllerConfig, Endpoint, ProtocolConfig, TopicConfig};
use gregor_model::controller::{self, ControllerState};
use gregor_model::effects::{Address, Command, Effects, Ignored};
use gregor_model::log::{
    EpochEndOffset, LogEntry, MemoryLog, MemoryLogConfig, ProducerBatch, Record, ReplicaLog,
};
use gregor_model::message::{
    AdminRequest, AlterPartitionRequest, ErrorCode, FetchPartition, FetchRequest, FetchResponse,
    FetchedPartition, Forwarded, IsrMember, LeaderRecovery, ListOffsetsRequest, ListedOffset,
    MetadataUpdate, Msg, NewTopic, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetQuery, PartitionState, ProduceRequest, ProduceResponse, ReplicaId, Timer,
    TopicConfigChange, TopicResult,
};
use gregor_model::types::{
    Acks, BrokerEpoch, BrokerId, ClientId, CrashKind, Isr, LeaderEpoch, Offset, PartitionEpoch,
    ProducerEpoch, ProducerId, Sequence, TopicId, TopicPartition, Variant,
};
use std::borrow::Cow;
use std::time::Duration;

type Log = MemoryLog<Record>;
type ControllerCommands = Vec<Command<Msg<Record>, ControllerState>>;
type BrokerCommands = Vec<Command<Msg<Record>, BrokerSave>>;

const LOG: MemoryLogConfig = MemoryLogConfig {
    crash: CrashKind::Process,
    retention: false,
};
const CLIENT: ClientId = ClientId(7);

fn b(id: u32) -> BrokerId {
    BrokerId(id)
}

fn isr(members: &[u32]) -> Isr {
    members.iter().map(|id| BrokerId(*id)).collect()
}

fn protocol(variant: Variant) -> ProtocolConfig {
    ProtocolConfig {
        variant,
        ..ProtocolConfig::default()
    }
}

fn controller_config() -> ControllerConfig {
    ControllerConfig {
        topic_defaults: TopicConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        },
        producer_id_block_size: 10,
        ..ControllerConfig::default()
    }
}

fn broker_config(id: u32, variant: Variant) -> BrokerConfig {
    BrokerConfig::new(BrokerId(id), protocol(variant))
}

// ---------------------------------------------------------------------------------------------
// The controller.

fn controller_step(
    state: &ControllerState,
    from: Address,
    msg: Msg<Record>,
) -> (ControllerState, ControllerCommands) {
    let mut next = Cow::Borrowed(state);
    let mut out = Effects::new();
    controller::on_msg(&controller_config(), &mut next, from, msg, &mut out);
    (next.into_owned(), out.into_iter().collect())
}

fn controller_timer(
    state: &ControllerState,
    timer: Timer,
) -> (ControllerState, ControllerCommands) {
    let mut next = Cow::Borrowed(state);
    let mut out = Effects::new();
    controller::on_timeout(&controller_config(), &mut next, &timer, &mut out);
    (next.into_owned(), out.into_iter().collect())
}

fn registration(broker: u32, epoch: u64) -> Msg<Record> {
    Msg::BrokerRegistration {
        broker: BrokerId(broker),
        broker_epoch: BrokerEpoch(epoch),
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".to_string(),
            host: "127.0.0.1".to_string(),
            port: 9091 + broker as u16,
        }],
    }
}

fn create(name: &str, partitions: u32, replication_factor: u32) -> Msg<Record> {
    Msg::Forward(Box::new(Forwarded {
        broker: BrokerId(1),
        client: Some(CLIENT),
        request: AdminRequest::CreateTopics(vec![NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            min_insync_replicas: None,
            unclean_leader_election: None,
        }]),
    }))
}

/// A controller with brokers 1..=n registered (broker epoch 1) and, if `partitions` > 0, topic
/// "t" with that many partitions on all of them.
fn controller_with(brokers: u32, partitions: u32) -> ControllerState {
    let mut state = ControllerState::default();
    for id in 1..=brokers {
        state = controller_step(&state, Address::Broker(b(id)), registration(id, 1)).0;
    }
    if partitions > 0 {
        state = controller_step(
            &state,
            Address::Broker(b(1)),
            create("t", partitions, brokers),
        )
        .0;
    }
    state
}

fn tp(partition: u32) -> TopicPartition {
    TopicPartition {
        topic_id: TopicId(1),
        partition,
    }
}

fn sent_updates(commands: &ControllerCommands) -> Vec<(Address, MetadataUpdate)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Send(to, Msg::MetadataUpdate(update)) => Some((*to, (**update).clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_registering_broker_is_saved_timed_and_told_everything() {
    let state = controller_with(2, 1);
    let (next, commands) = controller_step(&state, Address::Broker(b(3)), registration(3, 1));
    let Command::Save(saved) = &commands[0] else {
        panic!("the decision is saved first: {commands:?}");
    };
    assert_eq!(saved, &next);
    assert!(next.is_alive(b(3)));
    assert_eq!(
        commands[1],
        Command::SetTimer(Timer::SessionExpiry(b(3)), Duration::from_secs(9))
    );
    let updates = sent_updates(&commands);
    let to_three = &updates
        .iter()
        .find(|(to, _)| *to == Address::Broker(b(3)))
        .unwrap()
        .1;
    assert_eq!(
        to_three.full,
        Some(1),
        "the whole metadata, as of one topic created"
    );
    assert_eq!(to_three.topics.len(), 1);
    assert_eq!(to_three.partitions.len(), 1);
    assert_eq!(to_three.live_brokers.as_ref().map(Vec::len), Some(3));
    // The others learn the new broker's address, nothing else.
    for other in [1, 2] {
        let (_, update) = updates
            .iter()
            .find(|(to, _)| *to == Address::Broker(b(other)))
            .expect("an update");
        assert_eq!(update.full, None);
        assert!(update.partitions.is_empty() && update.topics.is_empty());
        assert_eq!(update.live_brokers.as_ref().map(Vec::len), Some(3));
    }
}

#[test]
fn a_registration_no_newer_than_the_last_is_refused_naming_the_newest() {
    let state = controller_with(3, 0);
    let (next, commands) = controller_step(&state, Address::Broker(b(2)), registration(2, 1));
    assert_eq!(next, state);
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Broker(b(2)),
            Msg::BrokerRegistrationRefused {
                broker_epoch: BrokerEpoch(1),
                newest: BrokerEpoch(1),
            }
        )]
    );
}

#[test]
fn a_bounced_broker_is_fenced_on_every_partition_it_holds_before_it_comes_back() {
    // Two partitions on three brokers: broker 1 leads t-0 and follows for t-1.
    let state = controller_with(3, 2);
    assert_eq!(state.partition(tp(0)).unwrap().leader, Some(b(1)));
    assert_eq!(state.partition(tp(1)).unwrap().leader, Some(b(2)));
    let (next, commands) = controller_step(&state, Address::Broker(b(1)), registration(1, 2));
    let t0 = next.partition(tp(0)).unwrap();
    assert_eq!(
        t0.leader,
        Some(b(2)),
        "a new leader, without the bounced broker"
    );
    assert_eq!(t0.leader_epoch, LeaderEpoch(1));
    assert_eq!(t0.isr, isr(&[2, 3]));
    let t1 = next.partition(tp(1)).unwrap();
    assert_eq!(t1.isr, isr(&[2, 3]), "out of the ISR where it followed");
    assert_eq!(t1.partition_epoch, PartitionEpoch(1));
    assert_eq!(
        next.brokers.get(&b(1)).unwrap().broker_epoch,
        BrokerEpoch(2)
    );
    // Brokers 2 and 3 hear of t-0's new leader; broker 1's new incarnation gets everything.
    let updates = sent_updates(&commands);
    let to_one = &updates
        .iter()
        .find(|(to, _)| *to == Address::Broker(b(1)))
        .unwrap()
        .1;
    assert_eq!(to_one.broker_epoch, BrokerEpoch(2));
    assert_eq!(to_one.partitions.len(), 2);
    let to_three = &updates
        .iter()
        .find(|(to, _)| *to == Address::Broker(b(3)))
        .unwrap()
        .1;
    let told: Vec<_> = to_three
        .partitions
        .iter()
        .map(|p| p.topic_partition)
        .collect();
    assert_eq!(told, vec![tp(0)]);
}

#[test]
fn heartbeats_restart_a_live_session_and_tell_a_stale_one_it_is_over() {
    let state = controller_with(2, 0);
    let heartbeat = |epoch| Msg::BrokerHeartbeat {
        broker: b(2),
        broker_epoch: BrokerEpoch(epoch),
    };
    let (next, commands) = controller_step(&state, Address::Broker(b(2)), heartbeat(1));
    assert_eq!(next, state);
    assert_eq!(
        commands,
        vec![
            Command::SetTimer(Timer::SessionExpiry(b(2)), Duration::from_secs(9)),
            Command::Send(
                Address::Broker(b(2)),
                Msg::BrokerHeartbeatResponse {
                    broker_epoch: BrokerEpoch(1),
                    error: None
                }
            ),
        ]
    );
    let (_, commands) = controller_step(&state, Address::Broker(b(2)), heartbeat(0));
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Broker(b(2)),
            Msg::BrokerHeartbeatResponse {
                broker_epoch: BrokerEpoch(0),
                error: Some(ErrorCode::StaleBrokerEpoch)
            }
        )]
    );
}

#[test]
fn an_expired_session_fences_the_broker_and_tells_it() {
    let state = controller_with(3, 1);
    let (next, commands) = controller_timer(&state, Timer::SessionExpiry(b(1)));
    assert!(!next.is_alive(b(1)));
    let partition = next.partition(tp(0)).unwrap();
    assert_eq!(
        (partition.leader, partition.leader_epoch, &partition.isr),
        (Some(b(2)), LeaderEpoch(1), &isr(&[2, 3]))
    );
    assert!(matches!(&commands[0], Command::Save(saved) if *saved == next));
    let updates = sent_updates(&commands);
    let told: Vec<Address> = updates.iter().map(|(to, _)| *to).collect();
    // Every registered broker, the expired one included (a zombie steps down on hearing it).
    assert_eq!(
        told,
        vec![
            Address::Broker(b(1)),
            Address::Broker(b(2)),
            Address::Broker(b(3))
        ]
    );
    assert_eq!(
        commands.last(),
        Some(&Command::Send(
            Address::Broker(b(1)),
            Msg::BrokerHeartbeatResponse {
                broker_epoch: BrokerEpoch(1),
                error: Some(ErrorCode::StaleBrokerEpoch)
            }
        ))
    );
}

#[test]
fn create_topics_places_replica_j_of_partition_i_on_broker_i_plus_j_mod_n() {
    let state = controller_with(3, 0);
    let (next, commands) = controller_step(&state, Address::Broker(b(1)), create("orders", 4, 2));
    let placed: Vec<(Vec<u32>, Option<BrokerId>)> = next
        .partitions()
        .map(|p| (p.replicas.iter().map(|b| b.0).collect(), p.leader))
        .collect();
    assert_eq!(
        placed,
        vec![
            (vec![1, 2], Some(b(1))),
            (vec![2, 3], Some(b(2))),
            (vec![3, 1], Some(b(3))),
            (vec![1, 2], Some(b(1))),
        ]
    );
    let answer = commands.last().expect("an answer");
    assert_eq!(
        answer,
        &Command::Send(
            Address::Broker(b(1)),
            Msg::ForwardResponse(Box::new(Forwarded {
                broker: b(1),
                client: Some(CLIENT),
                request: vec![TopicResult {
                    name: "orders".to_string(),
                    result: Ok(TopicId(1)),
                }],
            }))
        )
    );
}

#[test]
fn create_topics_refuses_what_kafka_refuses() {
    let state = controller_with(2, 1);
    let refusal = |msg| {
        let (next, commands) = controller_step(&state, Address::Broker(b(1)), msg);
        assert_eq!(next, state, "nothing changes");
        match commands.last() {
            Some(Command::Send(_, Msg::ForwardResponse(forwarded))) => {
                forwarded.request[0].result.unwrap_err()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refusal(create("t", 1, 1)), ErrorCode::TopicAlreadyExists);
    assert_eq!(
        refusal(create("u", 1, 3)),
        ErrorCode::InvalidReplicationFactor
    );
    assert_eq!(refusal(create("u", 0, 1)), ErrorCode::InvalidPartitions);
    assert_eq!(refusal(create("bad name", 1, 1)), ErrorCode::InvalidConfig);
}

#[test]
fn delete_topics_announces_the_topic_gone() {
    let state = controller_with(2, 1);
    let delete = |name: &str| {
        Msg::Forward(Box::new(Forwarded {
            broker: b(2),
            client: Some(CLIENT),
            request: AdminRequest::DeleteTopics(vec![name.to_string()]),
        }))
    };
    let (next, commands) = controller_step(&state, Address::Broker(b(2)), delete("t"));
    assert!(next.topics.is_empty());
    let updates = sent_updates(&commands);
    assert!(updates
        .iter()
        .all(|(_, update)| update.deleted_topics == vec![TopicId(1)]));
    let (_, commands) = controller_step(&next, Address::Broker(b(2)), delete("t"));
    assert!(matches!(
        commands.last(),
        Some(Command::Send(_, Msg::ForwardResponse(f)))
            if f.request[0].result == Err(ErrorCode::UnknownTopicOrPartition)
    ));
}

#[test]
fn create_partitions_grows_a_topic_and_every_broker_learns_the_new_partitions() {
    let state = controller_with(3, 2);
    let grow = |name: &str, count: u32| {
        Msg::Forward(Box::new(Forwarded {
            broker: b(1),
            client: Some(CLIENT),
            request: AdminRequest::CreatePartitions(vec![(name.to_string(), count)]),
        }))
    };
    let (next, commands) = controller_step(&state, Address::Broker(b(1)), grow("t", 4));
    let placed: Vec<(u32, Vec<u32>, Option<BrokerId>)> = next
        .partitions()
        .map(|p| {
            let replicas = p.replicas.iter().map(|b| b.0).collect();
            (p.topic_partition.partition, replicas, p.leader)
        })
        .collect();
    assert_eq!(
        placed,
        vec![
            (0, vec![1, 2, 3], Some(b(1))),
            (1, vec![2, 3, 1], Some(b(2))),
            (2, vec![3, 1, 2], Some(b(3))),
            (3, vec![1, 2, 3], Some(b(1))),
        ],
        "the old partitions unchanged, the new ones placed as a new topic's"
    );
    let updates = sent_updates(&commands);
    assert_eq!(updates.len(), 3, "every broker learns");
    for (_, update) in &updates {
        let new: Vec<u32> = update
            .partitions
            .iter()
            .map(|p| p.topic_partition.partition)
            .collect();
        assert_eq!(new, vec![2, 3]);
        assert_eq!(update.topics[0].partitions, 4, "with the topic's new count");
    }
    let refusal = |name: &str, count: u32| {
        let (after, commands) = controller_step(&next, Address::Broker(b(1)), grow(name, count));
        assert_eq!(after, next, "nothing changes");
        match commands.last() {
            Some(Command::Send(_, Msg::ForwardResponse(forwarded))) => {
                forwarded.request[0].result.unwrap_err()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refusal("t", 4), ErrorCode::InvalidPartitions, "no growth");
    assert_eq!(
        refusal("t", 2),
        ErrorCode::InvalidPartitions,
        "no shrinking"
    );
    assert_eq!(refusal("u", 8), ErrorCode::UnknownTopicOrPartition);
}

#[test]
fn altering_a_topics_settings_reaches_every_broker_with_its_partitions() {
    let state = controller_with(3, 2);
    let defaults = controller_config().topic_defaults;
    let alter_configs = |name: &str, change: TopicConfigChange| {
        Msg::Forward(Box::new(Forwarded {
            broker: b(1),
            client: Some(CLIENT),
            request: AdminRequest::AlterTopicConfigs(vec![(name.to_string(), change)]),
        }))
    };
    let raise = TopicConfigChange {
        min_insync_replicas: Some(Some(3)),
        unclean_leader_election: Some(Some(true)),
    };
    let (next, commands) =
        controller_step(&state, Address::Broker(b(1)), alter_configs("t", raise));
    let config = next.topic_named("t").expect("t").info.config;
    assert_eq!(
        config,
        TopicConfig {
            min_insync_replicas: 3,
            unclean_leader_election: true
        }
    );
    assert!(
        commands.iter().any(|c| matches!(c, Command::Save(_))),
        "saved before announced"
    );
    let updates = sent_updates(&commands);
    assert_eq!(updates.len(), 3, "every broker learns");
    for (_, update) in &updates {
        assert_eq!(update.topics.len(), 1);
        assert_eq!(update.topics[0].config, config);
        assert_eq!(update.partitions.len(), 2, "with the topic's partitions");
    }
    // Back to the defaults; a setting left out stays as it is.
    let reset = TopicConfigChange {
        min_insync_replicas: Some(None),
        unclean_leader_election: None,
    };
    let (reset_state, _) = controller_step(&next, Address::Broker(b(1)), alter_configs("t", reset));
    let config = reset_state.topic_named("t").expect("t").info.config;
    assert_eq!(
        (config.min_insync_replicas, config.unclean_leader_election),
        (defaults.min_insync_replicas, true)
    );
    let refusal = |name: &str, change: TopicConfigChange| {
        let (after, commands) =
            controller_step(&next, Address::Broker(b(1)), alter_configs(name, change));
        assert_eq!(after, next, "nothing changes");
        assert!(sent_updates(&commands).is_empty(), "nothing announced");
        match commands.last() {
            Some(Command::Send(_, Msg::ForwardResponse(forwarded))) => {
                forwarded.request[0].result.unwrap_err()
            }
            other => panic!("{other:?}"),
        }
    };
    let zero = TopicConfigChange {
        min_insync_replicas: Some(Some(0)),
        unclean_leader_election: None,
    };
    assert_eq!(refusal("t", zero), ErrorCode::InvalidConfig);
    assert_eq!(
        refusal("u", TopicConfigChange::default()),
        ErrorCode::UnknownTopicOrPartition
    );
}

fn alter(partition_epoch: u32, members: &[(u32, Option<u64>)]) -> Msg<Record> {
    Msg::AlterPartition(AlterPartitionRequest {
        leader: ReplicaId {
            broker: b(1),
            broker_epoch: BrokerEpoch(1),
        },
        topic_partition: tp(0),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: PartitionEpoch(partition_epoch),
        isr: members
            .iter()
            .map(|(broker, epoch)| IsrMember {
                broker: BrokerId(*broker),
                broker_epoch: epoch.map(BrokerEpoch),
            })
            .collect(),
    })
}

fn alter_result(commands: &ControllerCommands) -> Result<PartitionState, ErrorCode> {
    match commands.last() {
        Some(Command::Send(_, Msg::AlterPartitionResponse(response))) => response.result.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn alter_partition_is_fenced_by_partition_epoch_and_members_broker_epochs() {
    let state = controller_with(3, 1);
    // KIP-497: a stale partition epoch.
    let (next, commands) = controller_step(
        &state,
        Address::Broker(b(1)),
        alter(7, &[(1, None), (2, None)]),
    );
    assert_eq!(next, state);
    assert_eq!(
        alter_result(&commands),
        Err(ErrorCode::InvalidUpdateVersion)
    );
    // KIP-903: a member named with a broker epoch that is not its registration's.
    let (next, commands) = controller_step(
        &state,
        Address::Broker(b(1)),
        alter(0, &[(1, Some(1)), (2, Some(0))]),
    );
    assert_eq!(next, state);
    assert_eq!(alter_result(&commands), Err(ErrorCode::IneligibleReplica));
    // Accepted: the ISR changes and the partition epoch moves on, saved before answering.
    let (next, commands) = controller_step(
        &state,
        Address::Broker(b(1)),
        alter(0, &[(1, Some(1)), (2, Some(1))]),
    );
    let decided = alter_result(&commands).expect("accepted");
    assert_eq!(decided.isr, isr(&[1, 2]));
    assert_eq!(decided.partition_epoch, PartitionEpoch(1));
    assert_eq!(decided.leader_recovery, LeaderRecovery::Recovered);
    assert!(matches!(&commands[0], Command::Save(saved) if *saved == next));
}

#[test]
fn producer_id_blocks_are_never_handed_out_twice() {
    let state = controller_with(2, 0);
    let allocate = |broker| Msg::AllocateProducerIds {
        broker: b(broker),
        broker_epoch: BrokerEpoch(1),
    };
    let (next, commands) = controller_step(&state, Address::Broker(b(1)), allocate(1));
    assert!(
        matches!(&commands[0], Command::Save(saved) if saved.next_producer_id == ProducerId(10))
    );
    assert_eq!(
        commands[1],
        Command::Send(
            Address::Broker(b(1)),
            Msg::AllocateProducerIdsResponse {
                broker_epoch: BrokerEpoch(1),
                first: ProducerId(0),
                count: 10
            }
        )
    );
    let (_, commands) = controller_step(&next, Address::Broker(b(2)), allocate(2));
    assert!(matches!(
        commands[1],
        Command::Send(
            _,
            Msg::AllocateProducerIdsResponse {
                first: ProducerId(10),
                ..
            }
        )
    ));
}

// ---------------------------------------------------------------------------------------------
// Brokers.

struct Broker {
    config: BrokerConfig,
    state: BrokerState<Log>,
}

impl Broker {
    /// Broker `id`'s first start (broker epoch 1), with what it emitted.
    fn started(id: u32, variant: Variant) -> (Broker, BrokerCommands) {
        let config = broker_config(id, variant);
        let mut out = Effects::new();
        let state = broker::on_start::<Log>(&config, &LOG, None, &mut out);
        (Broker { config, state }, out.into_iter().collect())
    }

    fn restarted(
        id: u32,
        variant: Variant,
        saved: &BrokerStorage<<Log as ReplicaLog>::Durable>,
    ) -> (Broker, BrokerCommands) {
        let config = broker_config(id, variant);
        let mut out = Effects::new();
        let state = broker::on_start::<Log>(&config, &LOG, Some(saved), &mut out);
        (Broker { config, state }, out.into_iter().collect())
    }

    fn handle(&mut self, from: Address, msg: Msg<Record>) -> BrokerCommands {
        let mut next = Cow::Borrowed(&self.state);
        let mut out = Effects::new();
        broker::on_msg(&self.config, &LOG, &mut next, from, msg, &mut out);
        self.state = next.into_owned();
        out.into_iter().collect()
    }

    fn fire(&mut self, timer: Timer) -> BrokerCommands {
        let mut next = Cow::Borrowed(&self.state);
        let mut out = Effects::new();
        broker::on_timeout(&self.config, &mut next, &timer, &mut out);
        self.state = next.into_owned();
        out.into_iter().collect()
    }

    fn replica(&self) -> &broker::Replica<Log> {
        &self.state.replicas[&tp(0)]
    }
}

/// The controller's news for one broker about partition t-0 of a 3-broker topic "t".
fn update(
    broker_epoch: u64,
    leader: Option<u32>,
    leader_epoch: u32,
    isr_members: &[u32],
) -> Msg<Record> {
    let controller = controller_with(3, 1);
    let topic = controller.topics.iter().next().unwrap().1.info.clone();
    Msg::MetadataUpdate(Box::new(MetadataUpdate {
        broker_epoch: BrokerEpoch(broker_epoch),
        full: None,
        live_brokers: None,
        topics: vec![topic],
        deleted_topics: vec![],
        partitions: vec![PartitionState {
            topic_partition: tp(0),
            replicas: vec![b(1), b(2), b(3)],
            leader: leader.map(BrokerId),
            leader_epoch: LeaderEpoch(leader_epoch),
            isr: isr(isr_members),
            partition_epoch: PartitionEpoch(leader_epoch),
            leader_recovery: LeaderRecovery::Recovered,
        }],
    }))
}

fn fetch_from(broker: u32, offset: u64, epoch: u32) -> Msg<Record> {
    Msg::Fetch(FetchRequest {
        replica: Some(ReplicaId {
            broker: b(broker),
            broker_epoch: BrokerEpoch(1),
        }),
        min_bytes: 1,
        max_wait_ms: 500,
        bytes_max: 1 << 20,
        partitions: vec![FetchPartition {
            topic_partition: tp(0),
            current_leader_epoch: Some(LeaderEpoch(epoch)),
            fetch_offset: Offset(offset),
            bytes_max: 1 << 20,
        }],
    })
}

fn produce(request: u32, acks: Acks, record: Record) -> Msg<Record> {
    Msg::Produce(ProduceRequest {
        request,
        topic_partition: tp(0),
        acks,
        batch: record,
    })
}

fn entry(value: u8, offset: u64, epoch: u32) -> LogEntry<Record> {
    LogEntry {
        base_offset: Offset(offset),
        leader_epoch: LeaderEpoch(epoch),
        batch: Record::new(value),
    }
}

/// Broker 1, leading t-0 in epoch 0 with ISR {1,2,3}.
fn leader() -> Broker {
    let (mut leader, _) = Broker::started(1, Variant::Kip320);
    leader.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    leader
}

#[test]
fn a_broker_saves_its_new_broker_epoch_before_it_registers() {
    let (broker, commands) = Broker::started(2, Variant::Kip320);
    assert_eq!(broker.state.broker_epoch, BrokerEpoch(1));
    assert_eq!(
        commands[..3],
        [
            Command::SetTimer(Timer::HighWatermarkCheckpoint, Duration::from_secs(5)),
            Command::SetTimer(Timer::Retention, Duration::from_secs(300)),
            Command::Save(BrokerSave::BrokerEpoch(BrokerEpoch(1))),
        ]
    );
    assert_eq!(
        commands[3],
        Command::Send(
            Address::Controller,
            Msg::BrokerRegistration {
                broker: b(2),
                broker_epoch: BrokerEpoch(1),
                endpoints: vec![]
            }
        )
    );
    assert_eq!(
        commands[4],
        Command::SetTimer(Timer::Heartbeat, Duration::from_secs(2))
    );
    let (restarted, _) = Broker::restarted(2, Variant::Kip320, &broker.state.storage());
    assert_eq!(restarted.state.broker_epoch, BrokerEpoch(2));
}

#[test]
fn an_update_meant_for_another_incarnation_is_dropped() {
    // KIP-380: broker 1 restarted (broker epoch 2); the controller, not yet aware, tells its
    // previous incarnation it leads epoch 0. Accepting that same-epoch assignment would let a
    // broker that lost its unflushed records lead with what the power loss left.
    let (mut broker, _) = Broker::started(1, Variant::Kip320);
    let storage = broker.state.storage();
    (broker, _) = Broker::restarted(1, Variant::Kip320, &storage);
    let before = broker.state.clone();
    let commands = broker.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    assert_eq!(broker.state, before);
    assert_eq!(
        commands,
        vec![Command::Ignore(Ignored::StaleBrokerEpoch {
            expected: Some(BrokerEpoch(2)),
            got: BrokerEpoch(1)
        })]
    );
}

#[test]
fn a_new_partition_makes_a_replica_that_leads_or_follows_as_told() {
    let leader = leader();
    let replica = leader.replica();
    assert!(replica.leader().is_some());
    assert_eq!(replica.leader().unwrap().isr, isr(&[1, 2, 3]));
    let (mut follower, _) = Broker::started(2, Variant::Kip320);
    let commands = follower.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    assert_eq!(
        commands,
        vec![Command::Send(Address::Broker(b(1)), {
            let Msg::Fetch(mut request) = fetch_from(2, 0, 0) else {
                unreachable!()
            };
            request.bytes_max = 10 << 20;
            Msg::Fetch(request)
        })]
    );
    assert!(follower.state.fetches_in_flight.contains(&b(1)));
}

#[test]
fn acks_all_waits_for_every_isr_member_and_held_fetches_wake_on_new_records() {
    let mut leader = leader();
    // Both followers' fetches find nothing: held until max_wait_ms.
    for follower in [2, 3] {
        let commands = leader.handle(Address::Broker(b(follower)), fetch_from(follower, 0, 0));
        assert_eq!(
            commands,
            vec![
                Command::SetTimer(
                    Timer::ReplicaLag(tp(0), b(follower)),
                    Duration::from_secs(30)
                ),
                Command::SetTimer(
                    Timer::FetchExpiry(Address::Broker(b(follower))),
                    Duration::from_millis(500)
                ),
            ]
        );
    }
    let commands = leader.handle(
        Address::Client(CLIENT),
        produce(5, Acks::All, Record::new(1)),
    );
    // No answer to the producer yet; the held fetches are answered with the new record.
    let answered: Vec<Address> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Send(to, Msg::FetchResponse(r)) => {
                assert_eq!(r.partitions[0].batches, vec![entry(1, 0, 0)]);
                Some(*to)
            }
            Command::Send(to, _) => panic!("nothing else is sent, got one to {to}"),
            _ => None,
        })
        .collect();
    assert_eq!(answered, vec![Address::Broker(b(2)), Address::Broker(b(3))]);
    assert!(leader.state.held_fetches.is_empty());
    // Broker 2 has it: not yet committed (broker 3 is in the ISR).
    let commands = leader.handle(Address::Broker(b(2)), fetch_from(2, 1, 0));
    assert!(!commands
        .iter()
        .any(|c| matches!(c, Command::Send(_, Msg::ProduceResponse(_)))));
    assert_eq!(leader.replica().high_watermark, Offset(0));
    // Broker 3 has it: the HW passes it and the producer is answered.
    let commands = leader.handle(Address::Broker(b(3)), fetch_from(3, 1, 0));
    assert!(commands.contains(&Command::Send(
        Address::Client(CLIENT),
        Msg::ProduceResponse(ProduceResponse {
            request: 5,
            topic_partition: tp(0),
            result: Ok(Offset(0))
        })
    )));
    assert_eq!(leader.replica().high_watermark, Offset(1));
}

#[test]
fn acks_all_is_refused_below_min_isr_and_a_non_leader_refuses_every_write() {
    let (mut leader, _) = Broker::started(1, Variant::Kip320);
    leader.handle(Address::Controller, update(1, Some(1), 0, &[1]));
    let commands = leader.handle(
        Address::Client(CLIENT),
        produce(1, Acks::All, Record::new(1)),
    );
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Client(CLIENT),
            Msg::ProduceResponse(ProduceResponse {
                request: 1,
                topic_partition: tp(0),
                result: Err(ErrorCode::NotEnoughReplicas)
            })
        )]
    );
    assert_eq!(leader.replica().log.log_end_offset(), Offset(0));
    let (mut follower, _) = Broker::started(2, Variant::Kip320);
    follower.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    let commands = follower.handle(
        Address::Client(CLIENT),
        produce(2, Acks::Leader, Record::new(1)),
    );
    assert!(matches!(
        &commands[..],
        [Command::Send(_, Msg::ProduceResponse(r))] if r.result == Err(ErrorCode::NotLeaderOrFollower)
    ));
}

#[test]
fn a_held_fetch_expires_with_what_there_is_and_the_oldest_goes_first_when_full() {
    let mut leader = leader();
    leader.config.limits.fetches_held_max = 2;
    leader.handle(Address::Broker(b(2)), fetch_from(2, 0, 0));
    leader.handle(Address::Broker(b(3)), fetch_from(3, 0, 0));
    let consumer = Msg::Fetch(FetchRequest {
        replica: None,
        min_bytes: 1,
        max_wait_ms: 100,
        bytes_max: 100,
        partitions: vec![FetchPartition {
            topic_partition: tp(0),
            current_leader_epoch: None,
            fetch_offset: Offset(0),
            bytes_max: 100,
        }],
    });
    let commands = leader.handle(Address::Client(CLIENT), consumer);
    assert_eq!(
        commands[0],
        Command::CancelTimer(Timer::FetchExpiry(Address::Broker(b(2))))
    );
    assert!(
        matches!(&commands[1], Command::Send(to, Msg::FetchResponse(r))
        if *to == Address::Broker(b(2)) && r.partitions[0].batches.is_empty())
    );
    assert_eq!(
        commands[2],
        Command::SetTimer(
            Timer::FetchExpiry(Address::Client(CLIENT)),
            Duration::from_millis(100)
        )
    );
    let commands = leader.fire(Timer::FetchExpiry(Address::Client(CLIENT)));
    assert!(
        matches!(&commands[..], [Command::Send(to, Msg::FetchResponse(r))]
        if *to == Address::Client(CLIENT) && r.partitions[0].error.is_none())
    );
    // A requester that went away leaves nothing held.
    let commands = leader.handle(Address::Broker(b(3)), Msg::Disconnected);
    assert_eq!(
        commands,
        vec![Command::CancelTimer(Timer::FetchExpiry(Address::Broker(
            b(3)
        )))]
    );
    assert!(leader.state.held_fetches.is_empty());
}

#[test]
fn a_lag_timer_shrinks_the_isr_only_if_the_follower_is_behind() {
    let mut leader = leader();
    // Nothing written: the follower is not behind, look again after another period.
    let commands = leader.fire(Timer::ReplicaLag(tp(0), b(3)));
    assert_eq!(
        commands,
        vec![Command::SetTimer(
            Timer::ReplicaLag(tp(0), b(3)),
            Duration::from_secs(30)
        )]
    );
    leader.handle(
        Address::Client(CLIENT),
        produce(1, Acks::Leader, Record::new(1)),
    );
    let commands = leader.fire(Timer::ReplicaLag(tp(0), b(3)));
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Controller,
            Msg::AlterPartition(AlterPartitionRequest {
                leader: ReplicaId {
                    broker: b(1),
                    broker_epoch: BrokerEpoch(1)
                },
                topic_partition: tp(0),
                leader_epoch: LeaderEpoch(0),
                partition_epoch: PartitionEpoch(0),
                isr: vec![
                    IsrMember {
                        broker: b(1),
                        broker_epoch: Some(BrokerEpoch(1))
                    },
                    IsrMember {
                        broker: b(2),
                        broker_epoch: None
                    }
                ],
            })
        )]
    );
}

#[test]
fn a_fetch_below_the_log_start_is_out_of_range_and_the_follower_starts_again_there() {
    let mut leader = leader();
    for value in 1..=3 {
        leader.handle(
            Address::Client(CLIENT),
            produce(value as u32, Acks::Leader, Record::new(value)),
        );
    }
    for follower in [2, 3] {
        leader.handle(Address::Broker(b(follower)), fetch_from(follower, 3, 0));
    }
    assert_eq!(leader.replica().high_watermark, Offset(3));
    leader
        .state
        .replicas
        .get_mut(&tp(0))
        .unwrap()
        .log
        .advance_log_start_offset(Offset(2))
        .unwrap();
    let commands = leader.handle(Address::Broker(b(2)), fetch_from(2, 1, 0));
    let Some(Command::Send(_, Msg::FetchResponse(response))) = commands.last() else {
        panic!("{commands:?}");
    };
    let answer = response.partitions[0].clone();
    assert_eq!(answer.error, Some(ErrorCode::OffsetOutOfRange));
    assert_eq!(answer.log_start_offset, Offset(2));
    // The follower, one record behind the leader's log start, starts again from there.
    let (mut follower, _) = Broker::started(2, Variant::Kip320);
    follower.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    follower
        .state
        .replicas
        .get_mut(&tp(0))
        .unwrap()
        .append(LeaderEpoch(0), Record::new(1))
        .unwrap();
    let answer = FetchedPartition {
        fetch_offset: Offset(1),
        ..answer
    };
    follower.handle(
        Address::Broker(b(1)),
        Msg::FetchResponse(FetchResponse {
            partitions: vec![answer],
        }),
    );
    let log = &follower.replica().log;
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(2), Offset(2))
    );
}

#[test]
fn a_follower_checks_the_epoch_before_acting_on_an_out_of_range_answer() {
    // KIP-320: an OFFSET_OUT_OF_RANGE from a leader of another epoch must not truncate.
    let (mut follower, _) = Broker::started(2, Variant::Kip320);
    follower.handle(Address::Controller, update(1, Some(1), 1, &[1, 2, 3]));
    let replica = follower.state.replicas.get_mut(&tp(0)).unwrap();
    replica.append(LeaderEpoch(0), Record::new(1)).unwrap();
    replica.follower_mut().phase = FollowerPhase::Fetching;
    let stale = FetchedPartition {
        topic_partition: tp(0),
        error: Some(ErrorCode::OffsetOutOfRange),
        leader_epoch: LeaderEpoch(0),
        fetch_offset: Offset(1),
        high_watermark: Offset(0),
        log_start_offset: Offset(0),
        log_end_offset: Some(Offset(0)),
        batches: vec![],
    };
    let commands = follower.handle(
        Address::Broker(b(1)),
        Msg::FetchResponse(FetchResponse {
            partitions: vec![stale],
        }),
    );
    assert_eq!(
        follower.replica().log.log_end_offset(),
        Offset(1),
        "not truncated"
    );
    assert!(
        commands.contains(&Command::Ignore(Ignored::StaleLeaderEpoch {
            partition: tp(0),
            known: LeaderEpoch(1),
            got: LeaderEpoch(0)
        }))
    );
}

#[test]
fn an_idempotent_retry_gets_its_first_offset_and_a_gap_is_refused() {
    let mut leader = leader();
    let numbered = |value, sequence| {
        Record::new(value).with_producer(ProducerBatch {
            producer_id: ProducerId(4),
            producer_epoch: ProducerEpoch(0),
            base_sequence: Sequence(sequence),
        })
    };
    use gregor_model::log::RecordBatch;
    let answer = |commands: BrokerCommands| match commands.last() {
        Some(Command::Send(_, Msg::ProduceResponse(r))) => r.result,
        other => panic!("{other:?}"),
    };
    let first = leader.handle(
        Address::Client(CLIENT),
        produce(1, Acks::Leader, numbered(1, 0)),
    );
    assert_eq!(answer(first), Ok(Offset(0)));
    leader.handle(
        Address::Client(CLIENT),
        produce(2, Acks::Leader, numbered(2, 1)),
    );
    let retry = leader.handle(
        Address::Client(CLIENT),
        produce(3, Acks::Leader, numbered(1, 0)),
    );
    assert_eq!(answer(retry), Ok(Offset(0)));
    assert_eq!(
        leader.replica().log.log_end_offset(),
        Offset(2),
        "not written again"
    );
    let gap = leader.handle(
        Address::Client(CLIENT),
        produce(4, Acks::Leader, numbered(3, 5)),
    );
    assert_eq!(answer(gap), Err(ErrorCode::OutOfOrderSequenceNumber));
    let unknown = Record::new(9).with_producer(ProducerBatch {
        producer_id: ProducerId(5),
        producer_epoch: ProducerEpoch(0),
        base_sequence: Sequence(3),
    });
    let unknown = leader.handle(Address::Client(CLIENT), produce(5, Acks::Leader, unknown));
    assert_eq!(answer(unknown), Err(ErrorCode::UnknownProducerId));
}

#[test]
fn init_producer_id_asks_the_controller_for_a_block_and_hands_ids_out() {
    let (mut broker, _) = Broker::started(1, Variant::Kip320);
    let commands = broker.handle(Address::Client(CLIENT), Msg::InitProducerId);
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Controller,
            Msg::AllocateProducerIds {
                broker: b(1),
                broker_epoch: BrokerEpoch(1)
            }
        )]
    );
    let commands = broker.handle(
        Address::Controller,
        Msg::AllocateProducerIdsResponse {
            broker_epoch: BrokerEpoch(1),
            first: ProducerId(20),
            count: 2,
        },
    );
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Client(CLIENT),
            Msg::InitProducerIdResponse(Ok((ProducerId(20), ProducerEpoch(0))))
        )]
    );
    let commands = broker.handle(Address::Client(ClientId(8)), Msg::InitProducerId);
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Client(ClientId(8)),
            Msg::InitProducerIdResponse(Ok((ProducerId(21), ProducerEpoch(0))))
        )]
    );
}

#[test]
fn metadata_is_answered_from_what_the_controller_last_said() {
    let leader = leader();
    let mut broker = leader;
    let commands = broker.handle(
        Address::Client(CLIENT),
        Msg::Metadata {
            topics: vec!["t".to_string(), "nope".to_string()],
        },
    );
    let Some(Command::Send(_, Msg::MetadataResponse(response))) = commands.last() else {
        panic!("{commands:?}");
    };
    let (name, found) = &response.topics[0];
    assert_eq!(name, "t");
    let found = found.as_ref().expect("known");
    assert_eq!(found.partitions[0].leader, Some(b(1)));
    assert_eq!(found.partitions[0].leader_epoch, LeaderEpoch(0));
    assert_eq!(
        response.topics[1].1,
        Err(ErrorCode::UnknownTopicOrPartition)
    );
}

#[test]
fn admin_requests_are_forwarded_to_the_controller_and_answers_passed_back() {
    let (mut broker, _) = Broker::started(3, Variant::Kip320);
    let request = AdminRequest::DeleteTopics(vec!["t".to_string()]);
    let commands = broker.handle(Address::Client(CLIENT), Msg::Admin(request.clone()));
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Controller,
            Msg::Forward(Box::new(Forwarded {
                broker: b(3),
                client: Some(CLIENT),
                request
            }))
        )]
    );
    let results = vec![TopicResult {
        name: "t".to_string(),
        result: Err(ErrorCode::UnknownTopicOrPartition),
    }];
    let commands = broker.handle(
        Address::Controller,
        Msg::ForwardResponse(Box::new(Forwarded {
            broker: b(3),
            client: Some(CLIENT),
            request: results.clone(),
        })),
    );
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Client(CLIENT),
            Msg::AdminResponse(results)
        )]
    );
}

#[test]
fn heartbeats_go_one_at_a_time_and_a_stale_answer_makes_the_broker_register_again() {
    let (mut broker, _) = Broker::started(2, Variant::Kip320);
    let commands = broker.fire(Timer::Heartbeat);
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Controller,
            Msg::BrokerHeartbeat {
                broker: b(2),
                broker_epoch: BrokerEpoch(1)
            }
        )]
    );
    assert!(
        broker.fire(Timer::Heartbeat).is_empty(),
        "one in flight at a time"
    );
    let commands = broker.handle(
        Address::Controller,
        Msg::BrokerHeartbeatResponse {
            broker_epoch: BrokerEpoch(1),
            error: Some(ErrorCode::StaleBrokerEpoch),
        },
    );
    assert_eq!(
        commands[0],
        Command::Save(BrokerSave::BrokerEpoch(BrokerEpoch(2)))
    );
    assert!(matches!(
        commands[1],
        Command::Send(
            Address::Controller,
            Msg::BrokerRegistration {
                broker_epoch: BrokerEpoch(2),
                ..
            }
        )
    ));
}

#[test]
fn the_hw_checkpoint_is_written_only_when_a_hw_moved() {
    let mut leader = leader();
    let commands = leader.fire(Timer::HighWatermarkCheckpoint);
    assert_eq!(
        commands,
        vec![
            Command::SetTimer(Timer::HighWatermarkCheckpoint, Duration::from_secs(5)),
            Command::Save(BrokerSave::HighWatermarks(
                [(tp(0), Offset(0))].into_iter().collect()
            )),
        ]
    );
    let commands = leader.fire(Timer::HighWatermarkCheckpoint);
    assert_eq!(
        commands,
        vec![Command::SetTimer(
            Timer::HighWatermarkCheckpoint,
            Duration::from_secs(5)
        )]
    );
}

#[test]
fn retention_never_deletes_at_or_past_the_hw() {
    let mut leader = leader();
    leader.config.timeouts.retention_check_interval = Some(Duration::from_secs(1));
    let replica = leader.state.replicas.get_mut(&tp(0)).unwrap();
    replica.log = MemoryLog::empty(MemoryLogConfig {
        crash: CrashKind::Process,
        retention: true,
    });
    for value in 1..=2 {
        leader.handle(
            Address::Client(CLIENT),
            produce(value as u32, Acks::Leader, Record::new(value)),
        );
    }
    leader.fire(Timer::Retention);
    assert_eq!(
        leader.replica().log.log_start_offset(),
        Offset(0),
        "HW 0: nothing goes"
    );
    for follower in [2, 3] {
        leader.handle(Address::Broker(b(follower)), fetch_from(follower, 1, 0));
    }
    assert_eq!(leader.replica().high_watermark, Offset(1));
    leader.fire(Timer::Retention);
    assert_eq!(leader.replica().log.log_start_offset(), Offset(1));
    leader.fire(Timer::Retention);
    assert_eq!(
        leader.replica().log.log_start_offset(),
        Offset(1),
        "not past the HW"
    );
}

/// Broker `index` restarted with a log of (record, epoch) batches and a HW checkpoint, then told
/// by the controller to follow `leader` in `epoch`.
fn restarted_follower(
    variant: Variant,
    log: &[(u8, u32)],
    high_watermark: u64,
    leader: u32,
    epoch: u32,
) -> (Broker, BrokerCommands) {
    let mut memory = MemoryLog::empty(LOG);
    for (value, epoch) in log {
        memory
            .append(LeaderEpoch(*epoch), Record::new(*value))
            .unwrap();
    }
    let saved = BrokerStorage {
        broker_epoch: BrokerEpoch(1),
        logs: [(tp(0), memory.durable())].into_iter().collect(),
        high_watermarks: [(tp(0), Offset(high_watermark))].into_iter().collect(),
        high_watermark_lowered: false,
    };
    let (mut broker, _) = Broker::restarted(2, variant, &saved);
    let commands = broker.handle(
        Address::Controller,
        update(2, Some(leader), epoch, &[2, leader]),
    );
    (broker, commands)
}

#[test]
fn hw_truncation_follower_truncates_to_its_high_watermark() {
    let (broker, commands) = restarted_follower(Variant::HwTruncation, &[(1, 0), (2, 1)], 1, 3, 2);
    assert_eq!(broker.replica().log.entries(), &[entry(1, 0, 0)]);
    assert!(matches!(&commands[..], [Command::Send(to, Msg::Fetch(f))]
        if *to == Address::Broker(b(3)) && f.partitions[0].fetch_offset == Offset(1)));
}

#[test]
fn kip279_follower_asks_again_until_its_log_ends_in_an_epoch_the_leader_knows() {
    let (mut broker, commands) = restarted_follower(Variant::Kip279, &[(1, 0), (2, 1)], 1, 3, 2);
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Broker(b(3)),
            Msg::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                replica: Some(ReplicaId {
                    broker: b(2),
                    broker_epoch: BrokerEpoch(2)
                }),
                topic_partition: tp(0),
                current_leader_epoch: None,
                leader_epoch: LeaderEpoch(1),
            })
        )]
    );
    // The leader never had epoch 1: its largest epoch <= 1 is 0, which ends at offset 1.
    let answer = OffsetForLeaderEpochResponse {
        topic_partition: tp(0),
        leader_epoch: LeaderEpoch(2),
        requested_epoch: LeaderEpoch(1),
        result: Ok(EpochEndOffset {
            leader_epoch: Some(LeaderEpoch(0)),
            end_offset: Offset(1),
        }),
    };
    let commands = broker.handle(
        Address::Broker(b(3)),
        Msg::OffsetForLeaderEpochResponse(answer),
    );
    assert_eq!(broker.replica().log.entries(), &[entry(1, 0, 0)]);
    assert!(matches!(&commands[..], [Command::Send(_, Msg::Fetch(f))]
        if f.partitions[0].fetch_offset == Offset(1)));
    assert!(matches!(broker.replica().role, Role::Follower(_)));
}

#[test]
fn kip101_leader_answers_with_the_next_epochs_start_even_for_an_epoch_it_never_had() {
    let mut memory = MemoryLog::empty(LOG);
    memory.append(LeaderEpoch(0), Record::new(1)).unwrap();
    memory.append(LeaderEpoch(2), Record::new(3)).unwrap();
    let saved = BrokerStorage {
        broker_epoch: BrokerEpoch(1),
        logs: [(tp(0), memory.durable())].into_iter().collect(),
        high_watermarks: Default::default(),
        high_watermark_lowered: false,
    };
    let (mut leader, _) = Broker::restarted(1, Variant::Kip101, &saved);
    leader.handle(Address::Controller, update(2, Some(1), 3, &[1, 2]));
    let question = OffsetForLeaderEpochRequest {
        replica: Some(ReplicaId {
            broker: b(2),
            broker_epoch: BrokerEpoch(1),
        }),
        topic_partition: tp(0),
        current_leader_epoch: None,
        leader_epoch: LeaderEpoch(1),
    };
    let commands = leader.handle(Address::Broker(b(2)), Msg::OffsetForLeaderEpoch(question));
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Broker(b(2)),
            Msg::OffsetForLeaderEpochResponse(OffsetForLeaderEpochResponse {
                topic_partition: tp(0),
                leader_epoch: LeaderEpoch(3),
                requested_epoch: LeaderEpoch(1),
                result: Ok(EpochEndOffset {
                    leader_epoch: Some(LeaderEpoch(1)),
                    end_offset: Offset(1),
                }),
            })
        )]
    );
}

#[test]
fn a_consumer_asks_where_its_epoch_ends_and_is_fenced_by_its_leader_epoch() {
    let mut memory = MemoryLog::empty(LOG);
    memory.append(LeaderEpoch(0), Record::new(1)).unwrap();
    memory.append(LeaderEpoch(2), Record::new(3)).unwrap();
    let saved = BrokerStorage {
        broker_epoch: BrokerEpoch(1),
        logs: [(tp(0), memory.durable())].into_iter().collect(),
        high_watermarks: [(tp(0), Offset(1))].into_iter().collect(),
        high_watermark_lowered: false,
    };
    let (mut leader, _) = Broker::restarted(1, Variant::Kip320, &saved);
    leader.handle(Address::Controller, update(2, Some(1), 3, &[1, 2]));
    let ask = |current: u32, epoch: u32| {
        Msg::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
            replica: None,
            topic_partition: tp(0),
            current_leader_epoch: Some(LeaderEpoch(current)),
            leader_epoch: LeaderEpoch(epoch),
        })
    };
    // The consumer read a record of epoch 1, which this leader never had: its largest epoch
    // not above 1 is 0, which ends at 1 (the consumer compares that with its position).
    let commands = leader.handle(Address::Client(CLIENT), ask(3, 1));
    assert_eq!(
        commands,
        vec![Command::Send(
            Address::Client(CLIENT),
            Msg::OffsetForLeaderEpochResponse(OffsetForLeaderEpochResponse {
                topic_partition: tp(0),
                leader_epoch: LeaderEpoch(3),
                requested_epoch: LeaderEpoch(1),
                result: Ok(EpochEndOffset {
                    leader_epoch: Some(LeaderEpoch(0)),
                    end_offset: Offset(1),
                }),
            })
        )]
    );
    // The current epoch ends at the log end (2) for a follower; a consumer is told no more
    // than the HW (1), the most it could have read.
    let commands = leader.handle(Address::Client(CLIENT), ask(3, 3));
    assert!(
        matches!(&commands[..], [Command::Send(_, Msg::OffsetForLeaderEpochResponse(r))]
        if r.result == Ok(EpochEndOffset { leader_epoch: Some(LeaderEpoch(3)), end_offset: Offset(1) }))
    );
    // A consumer behind on metadata is fenced, as a follower would be.
    let commands = leader.handle(Address::Client(CLIENT), ask(2, 2));
    assert!(
        matches!(&commands[..], [Command::Send(Address::Client(CLIENT),
        Msg::OffsetForLeaderEpochResponse(r))] if r.result == Err(ErrorCode::FencedLeaderEpoch))
    );
}

#[test]
fn a_reconciling_follower_whose_log_retention_emptied_fetches_instead_of_asking() {
    let (mut broker, commands) = restarted_follower(Variant::Kip320, &[(1, 0)], 1, 3, 2);
    assert!(matches!(
        &commands[..],
        [Command::Send(_, Msg::OffsetForLeaderEpoch(_))]
    ));
    let mut log = MemoryLog::empty(MemoryLogConfig {
        crash: CrashKind::Process,
        retention: true,
    });
    log.append(LeaderEpoch(0), Record::new(1)).unwrap();
    broker.state.replicas.get_mut(&tp(0)).unwrap().log = log;
    assert_eq!(broker.replica().high_watermark, Offset(1));
    // The leader cannot answer yet: the follower backs off, and meanwhile retention deletes
    // everything below its HW, which is its whole log.
    let refused = OffsetForLeaderEpochResponse {
        topic_partition: tp(0),
        leader_epoch: LeaderEpoch(2),
        requested_epoch: LeaderEpoch(0),
        result: Err(ErrorCode::NotLeaderOrFollower),
    };
    broker.handle(
        Address::Broker(b(3)),
        Msg::OffsetForLeaderEpochResponse(refused),
    );
    broker.fire(Timer::Retention);
    assert_eq!(broker.replica().log.log_start_offset(), Offset(1));
    assert_eq!(broker.replica().log.last_epoch(), None);
    // Nothing is left to reconcile: it fetches from its log start.
    let commands = broker.fire(Timer::FetchBackoff(tp(0)));
    assert!(matches!(&commands[..], [Command::Send(to, Msg::Fetch(f))]
        if *to == Address::Broker(b(3)) && f.partitions[0].fetch_offset == Offset(1)));
}

fn list_offsets(query: OffsetQuery, to_log_end: bool, epoch: Option<u32>) -> Msg<Record> {
    Msg::ListOffsets(ListOffsetsRequest {
        request: 9,
        topic_partition: tp(0),
        current_leader_epoch: epoch.map(LeaderEpoch),
        query,
        to_log_end,
    })
}

fn listed(commands: &BrokerCommands) -> Result<ListedOffset, ErrorCode> {
    match &commands[..] {
        [Command::Send(Address::Client(CLIENT), Msg::ListOffsetsResponse(r))] => {
            assert_eq!((r.request, r.topic_partition), (9, tp(0)));
            r.result
        }
        other => panic!("expected one ListOffsets answer, got {other:?}"),
    }
}

#[test]
fn list_offsets_answers_the_hw_to_consumers_the_log_end_to_debug_readers_and_fences_first() {
    let mut leader = leader();
    leader.handle(
        Address::Client(CLIENT),
        produce(1, Acks::Leader, Record::new(1)),
    );
    leader.handle(
        Address::Client(CLIENT),
        produce(2, Acks::Leader, Record::new(2)),
    );
    leader.handle(Address::Broker(b(2)), fetch_from(2, 1, 0));
    leader.handle(Address::Broker(b(3)), fetch_from(3, 1, 0));
    assert_eq!(leader.replica().high_watermark, Offset(1));
    let ask = |leader: &mut Broker, query, to_log_end, epoch| {
        let commands = leader.handle(
            Address::Client(CLIENT),
            list_offsets(query, to_log_end, epoch),
        );
        listed(&commands)
    };
    let at = |offset: u64| ListedOffset {
        offset: Some(Offset(offset)),
        timestamp: None,
        leader_epoch: LeaderEpoch(0),
    };
    assert_eq!(
        ask(&mut leader, OffsetQuery::Earliest, false, None),
        Ok(at(0))
    );
    assert_eq!(
        ask(&mut leader, OffsetQuery::Latest, false, Some(0)),
        Ok(at(1))
    );
    assert_eq!(ask(&mut leader, OffsetQuery::Latest, true, None), Ok(at(2)));
    // The model's records carry no timestamps: a lookup by time finds nothing.
    let none = ListedOffset {
        offset: None,
        timestamp: None,
        leader_epoch: LeaderEpoch(0),
    };
    assert_eq!(
        ask(&mut leader, OffsetQuery::Timestamp(0), false, None),
        Ok(none)
    );
    assert_eq!(
        ask(&mut leader, OffsetQuery::Latest, false, Some(1)),
        Err(ErrorCode::UnknownLeaderEpoch)
    );
    let (mut follower, _) = Broker::started(2, Variant::Kip320);
    follower.handle(Address::Controller, update(1, Some(1), 0, &[1, 2, 3]));
    assert_eq!(
        ask(&mut follower, OffsetQuery::Earliest, false, None),
        Err(ErrorCode::NotLeaderOrFollower)
    );
}
