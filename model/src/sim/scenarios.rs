//! The timed scenarios: what the protocol's timers mean on a real clock, checked on the
//! simulator with Kafka's default durations, on any log (`model/tests/timed.rs` runs them on the
//! in-memory log, `runtime/tests/timed_on_disk.rs` on the disk log). A cluster of three brokers
//! with two topics of three partitions each (replication factor 3, min.insync.replicas 2).
//! Each scenario panics, naming what went wrong, if the protocol misses its deadline.

use super::{Received, Simulation};
use crate::actor::Role;
use crate::client::member::{MemberConfig, Membership};
use crate::client::ClientConfig;
use crate::config::{BrokerConfig, BrokerTimeouts, ControllerConfig, ProtocolConfig, TopicConfig};
use crate::effects::Address;
use crate::group::{Answer, CommittedOffset, JoinRequest, MemberId, Phase, SyncRequest};
use crate::log::{ProducerBatch, RecordBatch, ReplicaLog};
use crate::message::{
    AdminRequest, ErrorCode, FetchPartition, FetchRequest, GroupAnswer, GroupOp, GroupRequest, Msg,
    NewTopic, OffsetCommit, ProduceRequest,
};
use crate::types::{
    Acks, BrokerId, ClientId, Offset, ProducerEpoch, ProducerId, Sequence, TopicPartition,
};
use std::time::Duration;

/// How a scenario gets its logs and its batches.
pub struct Setup<L: ReplicaLog> {
    /// Each broker's log configuration (its data folder, for the disk log).
    pub log_config: Box<dyn Fn(BrokerId) -> L::Config>,
    /// A batch of one record told apart by `value`.
    pub batch: Box<dyn Fn(u8) -> L::Batch>,
}

pub const ADMIN: ClientId = ClientId(100);
pub const PRODUCER: ClientId = ClientId(101);
pub const CONSUMER: ClientId = ClientId(102);

const LATENCY: Duration = Duration::from_millis(1);

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The cluster, formed: brokers registered, both topics created and every partition's
/// followers fetching.
pub fn cluster<L: ReplicaLog>(setup: &Setup<L>) -> Simulation<L> {
    cluster_with(setup, BrokerTimeouts::default())
}

/// The cluster, with these broker timers.
pub fn cluster_with<L: ReplicaLog>(setup: &Setup<L>, timeouts: BrokerTimeouts) -> Simulation<L> {
    let template = BrokerConfig {
        timeouts,
        ..BrokerConfig::new(BrokerId(0), ProtocolConfig::default())
    };
    cluster_of(setup, &template)
}

/// The cluster, each broker configured as `template` but for its id.
fn cluster_of<L: ReplicaLog>(setup: &Setup<L>, template: &BrokerConfig) -> Simulation<L> {
    let mut sim = Simulation::new(LATENCY);
    sim.add_controller(ControllerConfig {
        topic_defaults: TopicConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        },
        ..ControllerConfig::default()
    });
    for id in 1..=3 {
        let config = BrokerConfig {
            id: BrokerId(id),
            ..template.clone()
        };
        sim.add_broker(config, (setup.log_config)(BrokerId(id)));
    }
    sim.run_for(ms(100));
    let topic = |name: &str| NewTopic {
        name: name.to_string(),
        partitions: 3,
        replication_factor: 3,
        min_insync_replicas: None,
        unclean_leader_election: None,
    };
    let create = AdminRequest::CreateTopics(vec![topic("orders"), topic("payments")]);
    sim.send_as(ADMIN, Address::Broker(BrokerId(1)), Msg::Admin(create));
    sim.run_for(ms(1000));
    let answers = sim.take_received();
    let created = answers.iter().any(|r| match &r.msg {
        Msg::AdminResponse(results) => results.iter().all(|t| t.result.is_ok()),
        _ => false,
    });
    assert!(created, "both topics are created: {answers:?}");
    for name in ["orders", "payments"] {
        for partition in 0..3 {
            let tp = topic_partition(&sim, name, partition);
            let leader = leader_of(&sim, tp);
            let replica = &sim.broker(leader).expect("the leader runs").replicas[&tp];
            assert!(
                replica.leader().is_some(),
                "{name}-{partition} has a leader"
            );
        }
    }
    sim
}

/// A partition of a topic the cluster created.
pub fn topic_partition<L: ReplicaLog>(
    sim: &Simulation<L>,
    name: &str,
    partition: u32,
) -> TopicPartition {
    let controller = sim.controller().expect("the controller runs");
    let topic = controller
        .topics
        .iter()
        .find(|(_, t)| t.info.name == name)
        .map(|(id, _)| *id)
        .expect("the topic exists");
    TopicPartition {
        topic_id: topic,
        partition,
    }
}

/// The partition's leader, as the controller has it.
pub fn leader_of<L: ReplicaLog>(sim: &Simulation<L>, tp: TopicPartition) -> BrokerId {
    let controller = sim.controller().expect("the controller runs");
    controller
        .partition(tp)
        .and_then(|p| p.leader)
        .expect("the partition has a leader")
}

fn in_isr<L: ReplicaLog>(sim: &Simulation<L>, tp: TopicPartition, broker: BrokerId) -> bool {
    let controller = sim.controller().expect("the controller runs");
    controller
        .partition(tp)
        .is_some_and(|p| p.isr.contains(&broker))
}

fn produce<L: ReplicaLog>(
    sim: &mut Simulation<L>,
    tp: TopicPartition,
    request: u32,
    batch: L::Batch,
) {
    let leader = leader_of(sim, tp);
    let produce = ProduceRequest {
        request,
        topic_partition: tp,
        acks: Acks::All,
        batch,
    };
    sim.send_as(PRODUCER, Address::Broker(leader), Msg::Produce(produce));
}

/// Each acknowledged request: (when, request, result).
fn produce_answers<B>(received: &[Received<B>]) -> Vec<(Duration, u32, Result<Offset, ErrorCode>)> {
    received
        .iter()
        .filter_map(|r| match &r.msg {
            Msg::ProduceResponse(response) if r.to == PRODUCER => {
                Some((r.at, response.request, response.result))
            }
            _ => None,
        })
        .collect()
}

/// Under continuous produce (a batch every 10 ms, acks=all), a follower that crashes leaves
/// the ISR `replica.lag.time.max.ms` after it last caught up (the last fetch that showed it
/// had all the leader had at its previous fetch), give or take a fetch and an AlterPartition
/// round trip — not earlier, not later — and acks=all goes on with the ISR that remains. The
/// lag time is 3 s here (`replica.lag.time.max.ms=3000`), below the 9 s session timeout after
/// which the controller would fence the dead broker anyway.
pub fn crashed_follower_leaves_the_isr_within_the_lag_time<L: ReplicaLog>(setup: &Setup<L>) {
    let lag = ms(3000);
    let timeouts = BrokerTimeouts {
        replica_lag_max: lag,
        ..BrokerTimeouts::default()
    };
    let mut sim = cluster_with(setup, timeouts);
    let tp = topic_partition(&sim, "orders", 0);
    let leader = leader_of(&sim, tp);
    let follower = BrokerId(if leader == BrokerId(3) { 2 } else { 3 });
    let mut request = 0;
    let step = |sim: &mut Simulation<L>, request: &mut u32| {
        *request += 1;
        produce(sim, tp, *request, (setup.batch)(*request as u8));
        sim.run_for(ms(10));
    };
    for _ in 0..100 {
        step(&mut sim, &mut request);
    }
    let warm = produce_answers(&sim.take_received());
    assert_eq!(
        warm.len(),
        100,
        "every write of the warm-up is acknowledged"
    );
    assert!(warm.iter().all(|(_, _, result)| result.is_ok()));

    let crashed_at = sim.now();
    sim.crash(Address::Broker(follower));
    let mut shrunk_at = None;
    while sim.now() < crashed_at + lag + ms(2000) {
        step(&mut sim, &mut request);
        if shrunk_at.is_none() && !in_isr(&sim, tp, follower) {
            shrunk_at = Some(sim.now());
        }
    }
    let shrunk_at = shrunk_at.expect("the crashed follower leaves the ISR");
    // Its last catch-up was its last fetch, at most a round trip before the crash; the ISR
    // check runs in 10 ms steps here.
    let slack = ms(20);
    assert!(
        shrunk_at <= crashed_at + lag + slack,
        "left the ISR {:?} after the crash, more than replica.lag.time.max.ms ({lag:?})",
        shrunk_at - crashed_at
    );
    assert!(
        shrunk_at + slack >= crashed_at + lag,
        "left the ISR {:?} after the crash, before replica.lag.time.max.ms ({lag:?})",
        shrunk_at - crashed_at
    );
    let answers = produce_answers(&sim.take_received());
    let after: Vec<_> = answers
        .iter()
        .filter(|(at, _, _)| *at > shrunk_at + ms(20))
        .collect();
    assert!(
        after.len() > 100,
        "acks=all goes on once the ISR shrank ({} answers after)",
        after.len()
    );
    assert!(after.iter().all(|(_, _, result)| result.is_ok()));
    for (at, request, _) in &after {
        let sent = crashed_at + ms(10) * (*request - 100);
        assert!(
            *at <= sent.max(shrunk_at) + ms(30),
            "request {request} answered at {at:?}, sent at {sent:?}"
        );
    }
}

/// A broker that heartbeats keeps its session for as long as it runs; one that falls silent
/// (here: crashes) loses it `broker.session.timeout.ms` after its last heartbeat.
pub fn sessions_last_while_brokers_heartbeat<L: ReplicaLog>(setup: &Setup<L>) {
    let mut sim = cluster(setup);
    let session = ControllerConfig::default().session_timeout;
    let interval = BrokerTimeouts::default()
        .heartbeat_interval
        .expect("brokers heartbeat");
    for _ in 0..60 {
        sim.run_for(ms(1000));
        let controller = sim.controller().expect("the controller runs");
        assert!(
            controller.brokers.iter().all(|(_, r)| r.alive),
            "every heartbeating broker's session is alive at {:?}",
            sim.now()
        );
    }
    let silent = BrokerId(3);
    let silent_from = sim.now();
    sim.crash(Address::Broker(silent));
    let deadline = silent_from + session + ms(100);
    let expired = sim.run_until_true(deadline, |sim| {
        sim.controller().is_some_and(|c| !c.is_alive(silent))
    });
    assert!(expired, "the silent broker's session expires");
    let expired_after = sim.now() - silent_from;
    // Its last heartbeat reached the controller at most one interval (and a latency) before
    // it fell silent.
    assert!(
        expired_after <= session + LATENCY,
        "expired {expired_after:?} after it fell silent"
    );
    assert!(
        expired_after + interval + ms(10) >= session,
        "expired {expired_after:?} after it fell silent: before its session could end"
    );
}

/// A consumer's fetch with nothing to return is held, and answered `max_wait_ms` after it
/// arrived (with nothing); a held fetch is answered as soon as records it may read (below the
/// HW) are there.
pub fn held_consumer_fetches_are_answered_within_max_wait<L: ReplicaLog>(setup: &Setup<L>) {
    let mut sim = cluster(setup);
    let tp = topic_partition(&sim, "payments", 1);
    let leader = leader_of(&sim, tp);
    produce(&mut sim, tp, 1, (setup.batch)(1));
    sim.run_for(ms(100));
    let answers = produce_answers(&sim.take_received());
    assert!(
        matches!(answers[..], [(_, 1, Ok(Offset(0)))]),
        "{answers:?}"
    );

    let fetch = |offset: u64| {
        Msg::Fetch(FetchRequest {
            replica: None,
            min_bytes: 1,
            max_wait_ms: 500,
            bytes_max: 1 << 20,
            partitions: vec![FetchPartition {
                topic_partition: tp,
                current_leader_epoch: None,
                fetch_offset: Offset(offset),
                bytes_max: 1 << 20,
            }],
        })
    };
    let consumer_answer = |received: Vec<Received<L::Batch>>| {
        received
            .into_iter()
            .find_map(|r| match r.msg {
                Msg::FetchResponse(response) if r.to == CONSUMER => Some((r.at, response)),
                _ => None,
            })
            .expect("the consumer's fetch is answered")
    };
    let sent_at = sim.now();
    sim.send_as(CONSUMER, Address::Broker(leader), fetch(1));
    sim.run_for(ms(1000));
    let (answered_at, response) = consumer_answer(sim.take_received());
    let waited = answered_at - sent_at;
    assert!(
        waited >= ms(500) && waited <= ms(500) + 2 * LATENCY,
        "answered {waited:?} after it was sent, max_wait_ms 500"
    );
    assert!(response.partitions[0].batches.is_empty());

    let sent_at = sim.now();
    sim.send_as(CONSUMER, Address::Broker(leader), fetch(1));
    sim.run_for(ms(100));
    produce(&mut sim, tp, 2, (setup.batch)(2));
    sim.run_for(ms(1000));
    let received = sim.take_received();
    let (answered_at, response) = consumer_answer(received);
    let waited = answered_at - sent_at;
    assert!(
        waited < ms(150),
        "answered {waited:?} after it was sent, once the record was committed"
    );
    assert_eq!(response.partitions[0].batches.len(), 1);
    assert_eq!(response.partitions[0].batches[0].base_offset, Offset(1));
}

/// An idempotent producer's write, retried after its answer was lost, is written once and
/// answered with its first offset; without the producer's numbering the retry is written
/// again (which is why Kafka's clients turn idempotence on).
pub fn an_idempotent_retry_is_written_once<L: ReplicaLog>(setup: &Setup<L>) {
    let mut sim = cluster(setup);
    sim.send_as(PRODUCER, Address::Broker(BrokerId(1)), Msg::InitProducerId);
    sim.run_for(ms(100));
    let producer = sim
        .take_received()
        .into_iter()
        .find_map(|r| match r.msg {
            Msg::InitProducerIdResponse(Ok(producer)) => Some(producer),
            _ => None,
        })
        .expect("a producer id");
    assert_eq!(producer.1, ProducerEpoch(0));
    let (producer_id, producer_epoch): (ProducerId, ProducerEpoch) = producer;
    let tp = topic_partition(&sim, "orders", 1);
    let numbered = (setup.batch)(7).with_producer(ProducerBatch {
        producer_id,
        producer_epoch,
        base_sequence: Sequence(0),
    });
    produce(&mut sim, tp, 1, numbered.clone());
    sim.run_for(ms(100));
    // The answer is lost: the producer sends the batch again.
    let _lost = sim.take_received();
    produce(&mut sim, tp, 2, numbered);
    sim.run_for(ms(100));
    let answers = produce_answers(&sim.take_received());
    assert!(
        matches!(answers[..], [(_, 2, Ok(Offset(0)))]),
        "the retry gets the first write's offset: {answers:?}"
    );
    let leader = leader_of(&sim, tp);
    let log = &sim.broker(leader).expect("the leader runs").replicas[&tp].log;
    assert_eq!(log.log_end_offset(), Offset(1), "written once");

    let plain = (setup.batch)(8);
    produce(&mut sim, tp, 3, plain.clone());
    sim.run_for(ms(100));
    produce(&mut sim, tp, 4, plain);
    sim.run_for(ms(100));
    let log = &sim.broker(leader).expect("the leader runs").replicas[&tp].log;
    assert_eq!(
        log.log_end_offset(),
        Offset(3),
        "without idempotence, written twice"
    );
}

/// A group request to `to`, answered within `within`: the answer.
fn group_request<L: ReplicaLog>(
    sim: &mut Simulation<L>,
    to: BrokerId,
    request: u32,
    op: GroupOp,
    within: Duration,
) -> (Duration, GroupAnswer) {
    let sent = sim.now();
    let group = GroupRequest {
        request,
        group: GROUP.to_string(),
        op,
    };
    sim.send_as(CONSUMER, Address::Broker(to), Msg::Group(Box::new(group)));
    let mut answer = None;
    sim.run_until_true(sent + within, |sim| {
        answer = sim.received.iter().find_map(|r| match &r.msg {
            Msg::GroupResponse(response) if response.request == request => {
                Some((r.at - sent, response.answer.clone()))
            }
            _ => None,
        });
        answer.is_some()
    });
    sim.take_received();
    answer.unwrap_or_else(|| panic!("request {request} to broker {to} unanswered in {within:?}"))
}

/// The group's coordinator, as FindCoordinator at `broker` tells it (retried while it is not
/// available, as clients do), within `within`.
fn find_coordinator<L: ReplicaLog>(
    sim: &mut Simulation<L>,
    broker: BrokerId,
    within: Duration,
) -> BrokerId {
    let deadline = sim.now() + within;
    let mut request = 1000;
    while sim.now() < deadline {
        request += 1;
        let find = Msg::FindCoordinator {
            request,
            groups: vec![GROUP.to_string()],
        };
        sim.send_as(CONSUMER, Address::Broker(broker), find);
        sim.run_for(ms(100));
        for received in sim.take_received() {
            if let Msg::FindCoordinatorResponse { coordinators, .. } = received.msg {
                if let [(_, Ok(found))] = &coordinators[..] {
                    return found.id;
                }
            }
        }
    }
    panic!("no coordinator found at broker {broker} within {within:?}");
}

const GROUP: &str = "g";

/// A consumer group over the real clock: the first FindCoordinator creates
/// `__consumer_offsets`; a member joins (MEMBER_ID_REQUIRED, then the initial rebalance delay of
/// 3 s), syncs its assignment and commits an offset, each answered once replicated; the
/// coordinator's broker crashes and the partition's new leader serves the group from its log —
/// the committed offset, the member still in its generation; a member that stops heartbeating
/// is gone after its session timeout, and its generation's commits are then refused.
pub fn a_group_survives_its_coordinators_crash<L: ReplicaLog>(setup: &Setup<L>) {
    let mut sim = cluster(setup);
    let coordinator = find_coordinator(&mut sim, BrokerId(1), ms(5_000));
    let join = |member_id: Option<MemberId>| {
        GroupOp::Join(Box::new(JoinRequest {
            member_id,
            instance_id: None,
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
            session_timeout: ms(10_000),
            rebalance_timeout: ms(60_000),
            protocol_type: "consumer".to_string(),
            protocols: vec![("range".to_string(), b"orders".to_vec())],
            require_known_member_id: true,
        }))
    };
    let (_, answer) = group_request(&mut sim, coordinator, 1, join(None), ms(100));
    let GroupAnswer::Member(Answer::Join(Err((ErrorCode::MemberIdRequired, Some(id))))) = answer
    else {
        panic!("a new member first gets its id: {answer:?}");
    };
    let (took, answer) = group_request(&mut sim, coordinator, 2, join(Some(id.clone())), ms(5_000));
    let GroupAnswer::Member(Answer::Join(Ok(joined))) = answer else {
        panic!("the member joins: {answer:?}");
    };
    assert!(
        took >= ms(3_000) && took < ms(3_100),
        "the first generation waits group.initial.rebalance.delay.ms (3 s): it took {took:?}"
    );
    assert_eq!((joined.generation, &joined.leader), (1, &id));
    let sync = GroupOp::Sync(SyncRequest {
        member_id: id.clone(),
        instance_id: None,
        generation: 1,
        assignments: vec![(id.clone(), b"orders-0".to_vec())],
    });
    let (_, answer) = group_request(&mut sim, coordinator, 3, sync, ms(100));
    assert_eq!(
        answer,
        GroupAnswer::Member(Answer::Sync(Ok((
            "range".to_string(),
            b"orders-0".to_vec()
        ))))
    );
    let committed = CommittedOffset {
        offset: 42,
        leader_epoch: Some(0),
        metadata: "m".to_string(),
    };
    let partition = ("orders".to_string(), 0);
    let commit = |generation| {
        GroupOp::OffsetCommit(OffsetCommit {
            member_id: Some(id.clone()),
            instance_id: None,
            generation,
            offsets: vec![(partition.clone(), committed.clone())],
        })
    };
    let (_, answer) = group_request(&mut sim, coordinator, 4, commit(1), ms(100));
    assert_eq!(answer, GroupAnswer::OffsetCommit(Ok(())));

    // The coordinator's broker crashes: its partition's new leader takes the group over.
    sim.crash(Address::Broker(coordinator));
    let survivor = BrokerId(coordinator.0 % 3 + 1);
    let heartbeat = GroupOp::Heartbeat {
        member_id: id.clone(),
        instance_id: None,
        generation: 1,
    };
    let mut request = 10;
    let (successor, answer) = loop {
        let successor = find_coordinator(&mut sim, survivor, ms(15_000));
        if successor == coordinator {
            sim.run_for(ms(500));
            continue;
        }
        request += 1;
        match group_request(&mut sim, successor, request, heartbeat.clone(), ms(100)) {
            (_, GroupAnswer::Refused(ErrorCode::NotCoordinator)) => sim.run_for(ms(500)),
            (_, answer) => break (successor, answer),
        }
    };
    assert!(
        sim.now() < ms(1_100 + 3_000 + 15_000),
        "the new coordinator serves within the broker session timeout (9 s) and a little"
    );
    assert_eq!(
        answer,
        GroupAnswer::Member(Answer::Heartbeat(Ok(()))),
        "the member is still in generation 1 at the new coordinator"
    );
    let fetch = GroupOp::OffsetFetch(Some(vec![partition.clone()]));
    let (_, answer) = group_request(&mut sim, successor, 20, fetch.clone(), ms(100));
    assert_eq!(
        answer,
        GroupAnswer::OffsetFetch(vec![(partition.clone(), Some(committed.clone()))]),
        "the committed offset survives the coordinator's crash"
    );

    // The member stops heartbeating: gone after its 10 s session, and the group is empty.
    sim.run_for(ms(9_000));
    let (_, answer) = group_request(&mut sim, successor, 21, GroupOp::Describe, ms(100));
    assert!(
        matches!(&answer, GroupAnswer::Describe(Some(d)) if d.phase == Phase::Stable),
        "within its session the member stays: {answer:?}"
    );
    sim.run_for(ms(1_100));
    let (_, answer) = group_request(&mut sim, successor, 22, GroupOp::Describe, ms(100));
    assert!(
        matches!(&answer, GroupAnswer::Describe(Some(d)) if d.phase == Phase::Empty && d.members.is_empty()),
        "past its session the member is gone: {answer:?}"
    );
    let (_, answer) = group_request(&mut sim, successor, 23, commit(1), ms(100));
    assert_eq!(
        answer,
        GroupAnswer::OffsetCommit(Err(ErrorCode::UnknownMemberId)),
        "a commit of the gone member's generation is refused"
    );
    let (_, answer) = group_request(&mut sim, successor, 24, fetch, ms(100));
    assert_eq!(
        answer,
        GroupAnswer::OffsetFetch(vec![(partition, Some(committed))]),
        "the refused commit changed nothing"
    );
}

/// A commit without member or generation (an admin's, or a consumer's that assigns partitions
/// itself) to a group the coordinator does not hold: kept once committed, and returned by
/// OffsetFetch, though the group has no members; DeleteGroups removes it.
pub fn a_commit_to_a_group_without_members_is_kept<L: ReplicaLog>(setup: &Setup<L>) {
    let mut sim = cluster(setup);
    let coordinator = find_coordinator(&mut sim, BrokerId(1), ms(5_000));
    let committed = CommittedOffset {
        offset: 7,
        leader_epoch: None,
        metadata: String::new(),
    };
    let partition = ("orders".to_string(), 1);
    let commit = GroupOp::OffsetCommit(OffsetCommit {
        member_id: None,
        instance_id: None,
        generation: -1,
        offsets: vec![(partition.clone(), committed.clone())],
    });
    let (_, answer) = group_request(&mut sim, coordinator, 1, commit, ms(100));
    assert_eq!(answer, GroupAnswer::OffsetCommit(Ok(())));
    let fetch = GroupOp::OffsetFetch(None);
    let (_, answer) = group_request(&mut sim, coordinator, 2, fetch.clone(), ms(100));
    assert_eq!(
        answer,
        GroupAnswer::OffsetFetch(vec![(partition, Some(committed))])
    );
    let (_, answer) = group_request(&mut sim, coordinator, 3, GroupOp::Delete, ms(100));
    assert_eq!(answer, GroupAnswer::Delete(Ok(())));
    let (_, answer) = group_request(&mut sim, coordinator, 4, fetch, ms(100));
    assert_eq!(answer, GroupAnswer::OffsetFetch(Vec::new()));
}

/// `offsets.retention.minutes` (here 60 s): a group without members keeps its offsets that long
/// after its last commit — a commit restarts the count — and then they expire, the group with
/// them.
pub fn an_empty_groups_offsets_expire_after_the_retention<L: ReplicaLog>(setup: &Setup<L>) {
    let template = BrokerConfig {
        groups: crate::group::GroupConfig {
            offsets_retention: ms(60_000),
            offsets_retention_check: ms(10_000),
            ..crate::group::GroupConfig::default()
        },
        ..BrokerConfig::new(BrokerId(0), ProtocolConfig::default())
    };
    let mut sim = cluster_of(setup, &template);
    let coordinator = find_coordinator(&mut sim, BrokerId(1), ms(5_000));
    let partition = ("orders".to_string(), 0);
    let commit = |offset| {
        GroupOp::OffsetCommit(OffsetCommit {
            member_id: None,
            instance_id: None,
            generation: -1,
            offsets: vec![(
                partition.clone(),
                CommittedOffset {
                    offset,
                    leader_epoch: None,
                    metadata: String::new(),
                },
            )],
        })
    };
    let fetch = GroupOp::OffsetFetch(None);
    let committed = |answer: &GroupAnswer| match answer {
        GroupAnswer::OffsetFetch(found) => found
            .first()
            .and_then(|(_, c)| c.as_ref())
            .map(|c| c.offset),
        other => panic!("{other:?}"),
    };
    let (_, answer) = group_request(&mut sim, coordinator, 1, commit(5), ms(100));
    assert_eq!(answer, GroupAnswer::OffsetCommit(Ok(())));
    sim.run_for(ms(50_000));
    let (_, answer) = group_request(&mut sim, coordinator, 2, fetch.clone(), ms(100));
    assert_eq!(committed(&answer), Some(5), "within the retention");
    let (_, answer) = group_request(&mut sim, coordinator, 3, commit(6), ms(100));
    assert_eq!(answer, GroupAnswer::OffsetCommit(Ok(())));
    sim.run_for(ms(50_000));
    let (_, answer) = group_request(&mut sim, coordinator, 4, fetch.clone(), ms(100));
    assert_eq!(
        committed(&answer),
        Some(6),
        "100 s after the first commit, 50 s after the second: the second restarted the count"
    );
    sim.run_for(ms(11_000));
    let (_, answer) = group_request(&mut sim, coordinator, 5, fetch, ms(100));
    assert_eq!(
        committed(&answer),
        None,
        "expired 60 s after the last commit"
    );
    let (_, answer) = group_request(&mut sim, coordinator, 6, GroupOp::Describe, ms(100));
    assert_eq!(
        answer,
        GroupAnswer::Describe(None),
        "and the group with them"
    );
}

/// The checker's group members on a real clock: `member` ids 1 and 2 of group `g` splitting
/// `orders` (3 partitions).
fn add_members<L: ReplicaLog>(sim: &mut Simulation<L>) {
    for id in [1, 2] {
        let config = MemberConfig {
            client: ClientConfig {
                topic: "orders".to_string(),
                bootstrap: vec![BrokerId(1), BrokerId(2), BrokerId(3)],
                request_timeout: ms(30_000),
                retry_backoff: ms(100),
            },
            group: "g".to_string(),
            client_id: format!("member{id}"),
            partitions: 3,
            session_timeout: ms(10_000),
            rebalance_timeout: ms(30_000),
            heartbeat_interval: ms(3_000),
        };
        sim.add_client(ClientId(id), Role::Member(config));
    }
}

/// Both members' assignments, if both hold one of the same generation: disjoint, covering
/// every partition.
fn shared_assignment<L: ReplicaLog>(sim: &Simulation<L>) -> Option<i32> {
    let one = sim.member(ClientId(1))?;
    let two = sim.member(ClientId(2))?;
    let ((g1, p1), (g2, p2)) = (one.assignment()?, two.assignment()?);
    if g1 != g2 {
        return None;
    }
    assert!(
        p1.iter().all(|p| !p2.contains(p)),
        "generation {g1} gives a partition to both members: {p1:?} and {p2:?}"
    );
    let mut all: Vec<u32> = p1.iter().chain(p2).copied().collect();
    all.sort();
    assert_eq!(
        all,
        vec![0, 1, 2],
        "generation {g1} assigns every partition"
    );
    Some(g1)
}

/// Two of the checker's group members, with Kafka's default timings: they share the topic's
/// partitions in the first generation after `group.initial.rebalance.delay.ms` and commit;
/// heartbeats every 3 s keep their 10 s sessions for a minute with no rebalance; when the
/// coordinator dies, they find the new one (their requests to the dead one time out after
/// `request.timeout.ms`), rejoin and share the partitions again, and every commit they were
/// told is written is still there.
pub fn checked_members_share_partitions_and_survive_a_coordinator_crash<L: ReplicaLog>(
    setup: &Setup<L>,
) {
    let mut sim = cluster(setup);
    add_members(&mut sim);
    let committed = |sim: &Simulation<L>| {
        [ClientId(1), ClientId(2)].iter().all(|id| {
            sim.member(*id).is_some_and(|m| {
                matches!(
                    m.membership,
                    Membership::Assigned {
                        committed: true,
                        ..
                    }
                )
            })
        })
    };
    let start = sim.now();
    let shared = sim.run_until_true(start + ms(10_000), |sim| {
        shared_assignment(sim).is_some() && committed(sim)
    });
    assert!(shared, "the members never shared the partitions");
    let took = sim.now() - start;
    assert!(
        took >= ms(3_000),
        "the first generation waits the initial delay (3 s): {took:?}"
    );
    assert_eq!(shared_assignment(&sim), Some(1));
    sim.run_for(ms(60_000));
    assert_eq!(
        shared_assignment(&sim),
        Some(1),
        "heartbeats keep the sessions: no rebalance in a minute"
    );
    let coordinator = sim
        .member(ClientId(1))
        .and_then(|m| m.coordinator)
        .expect("a coordinator");
    sim.crash(Address::Broker(coordinator));
    let crashed_at = sim.now();
    let back = sim.run_until_true(crashed_at + ms(120_000), |sim| {
        shared_assignment(sim).is_some_and(|g| g > 1) && committed(sim)
    });
    assert!(back, "the members never shared the partitions again");
    let now = sim.member(ClientId(1)).and_then(|m| m.coordinator);
    assert!(now.is_some_and(|c| c != coordinator), "a new coordinator");
    let offsets = sim
        .broker(now.expect("checked"))
        .and_then(|b| b.coordinators.values().find_map(|c| c.groups.get("g")))
        .map(|g| g.offsets.clone())
        .expect("the new coordinator holds the group");
    for id in [ClientId(1), ClientId(2)] {
        for (partition, acked) in &sim.member(id).expect("runs").acknowledged {
            let held = offsets.get(&("orders".to_string(), *partition));
            assert!(
                held.is_some_and(|c| c.offset >= *acked),
                "partition {partition}: acknowledged {acked}, the coordinator holds {held:?}"
            );
        }
    }
}
