//! The model's broker actor, unchanged, on the on-disk log: a leader appends produced batches
//! to its segments, serves a follower's fetch from them, the follower appends the very same
//! bytes to its own, truncates after OffsetForLeaderEpoch, crashes (power) and restarts from
//! what its disk and its saved storage hold.

use gregor_model::actor::{ActorState, Ctx, GregorActor, Out, Storage};
use gregor_model::log::{EpochEndOffset, ReplicaLog};
use gregor_model::message::{FetchRequest, LeaderAndIsr, Msg};
use gregor_model::types::{
    Acks, BrokerId, FlushPolicy, LeaderEpoch, Offset, PartitionEpoch, ProtocolConfig, Variant,
};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, DiskDurable, DiskLog, KafkaBatch, LogConfig, ManualClock, TopicPartition,
};
use stateright::actor::{Actor, Command, Id};
use std::borrow::Cow;
use std::fs;
use std::path::Path;
use std::sync::Arc;

type Broker = GregorActor<DiskLog>;
type State = ActorState<DiskLog>;

fn protocol() -> ProtocolConfig {
    ProtocolConfig {
        replication_factor: 3,
        min_insync_replicas: 2,
        variant: Variant::Kip320,
        unclean_leader_election: false,
        flush: FlushPolicy::Never,
        fetch_batches_max: 8,
    }
}

/// Opens (recovering) broker `id`'s log under `root` and the actor that runs on it.
fn broker(root: &Path, id: u32) -> (Broker, DiskLog) {
    let data_dir = DataDir::open(root.join(format!("broker-{id}"))).unwrap();
    let log = data_dir
        .open_log(
            TopicPartition::new("orders", 0).unwrap(),
            LogConfig::default(),
            Arc::new(ManualClock::new(0)),
        )
        .unwrap();
    let log = DiskLog::new(log);
    let actor = GregorActor::Broker {
        ctx: Ctx::new(protocol()),
        id: BrokerId(id),
        log_config: log.clone(),
    };
    (actor, log)
}

/// Runs one step; returns the messages sent (destination, message) and the last `Save`.
type Step = (Vec<(usize, Msg<KafkaBatch>)>, Option<Storage<DiskDurable>>);

fn split(out: Out<DiskLog>) -> Step {
    let mut sent = Vec::new();
    let mut saved = None;
    for command in out {
        match command {
            Command::Send(dst, msg) => sent.push((usize::from(dst), msg)),
            Command::Save(storage) => saved = Some(storage),
            _ => {}
        }
    }
    (sent, saved)
}

fn start(actor: &Broker, id: usize, storage: Option<Storage<DiskDurable>>) -> (State, Step) {
    let mut out = Out::new();
    let state = actor.on_start(Id::from(id), &storage, &mut out);
    (state, split(out))
}

fn deliver(actor: &Broker, id: usize, state: &mut State, src: usize, msg: Msg<KafkaBatch>) -> Step {
    let mut next = Cow::Borrowed(&*state);
    let mut out = Out::new();
    actor.on_msg(Id::from(id), &mut next, Id::from(src), msg, &mut out);
    *state = next.into_owned();
    split(out)
}

fn segment_bytes(root: &Path, id: u32) -> Vec<u8> {
    fs::read(root.join(format!("broker-{id}/orders-0/00000000000000000000.log"))).unwrap()
}

#[test]
fn the_broker_actor_replicates_truncates_and_recovers_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let (leader, leader_log) = broker(root, 1);
    let (follower, follower_log) = broker(root, 2);
    let (mut leader_state, _) = start(&leader, 1, None);
    let (mut follower_state, (sent, _)) = start(&follower, 2, None);
    let [(1, Msg::Fetch(first_fetch))] = &sent[..] else {
        panic!("the follower fetches from broker 1 at first boot: {sent:?}");
    };

    // The leader appends two produced batches to its segment, stamped in place.
    let produced = [batch(3, 1_000, 50), batch(2, 2_000, 70)];
    for (sequence, b) in produced.iter().enumerate() {
        let produce = Msg::Produce {
            sequence: sequence as u32,
            acks: Acks::All,
            batch: b.clone(),
        };
        deliver(&leader, 1, &mut leader_state, 4, produce);
    }
    assert_eq!(leader_log.log_end_offset(), Offset(5));
    let on_disk = leader_log.read(Offset(0), Offset(5), 8);
    assert_eq!(on_disk[1].base_offset, Offset(3));
    assert_eq!(on_disk[1].batch.header().base_offset, 3);
    assert_eq!(on_disk[1].batch.header().partition_leader_epoch, 1);
    assert_eq!(on_disk[1].batch.bytes()[16..], produced[1].bytes()[16..]);

    // The follower's fetch is served from the leader's segment; the follower appends the same
    // bytes, so the two segment files are identical.
    let (sent, _) = deliver(
        &leader,
        1,
        &mut leader_state,
        2,
        Msg::Fetch(first_fetch.clone()),
    );
    let [(2, Msg::FetchResponse(response))] = &sent[..] else {
        panic!("the leader answers the fetch: {sent:?}");
    };
    assert_eq!(response.batches, on_disk);
    let response = Msg::FetchResponse(response.clone());
    let (sent, saved) = deliver(&follower, 2, &mut follower_state, 1, response);
    assert!(matches!(
        &sent[..],
        [(
            1,
            Msg::Fetch(FetchRequest {
                fetch_offset: Offset(5),
                ..
            })
        )]
    ));
    assert!(saved.is_some());
    assert_eq!(segment_bytes(root, 2), segment_bytes(root, 1));
    // The log's own periodic flush (`flush.ms`) makes the follower's copy durable.
    follower_log.lock().flush().unwrap();

    // A new leader (broker 3, epoch 2) whose log ends epoch 1 at offset 3: the follower asks,
    // then truncates its segment to the batch boundary 3.
    let leader_and_isr = Msg::LeaderAndIsr(LeaderAndIsr {
        leader: Some(BrokerId(3)),
        leader_epoch: LeaderEpoch(2),
        isr: [BrokerId(2), BrokerId(3)].into_iter().collect(),
        partition_epoch: PartitionEpoch(2),
    });
    let (sent, _) = deliver(&follower, 2, &mut follower_state, 0, leader_and_isr);
    assert!(
        matches!(
            &sent[..],
            [(
                3,
                Msg::OffsetForLeaderEpoch {
                    leader_epoch: LeaderEpoch(1),
                    ..
                }
            )]
        ),
        "{sent:?}"
    );
    let answer = Msg::OffsetForLeaderEpochResponse {
        leader_epoch: LeaderEpoch(2),
        requested_epoch: LeaderEpoch(1),
        result: Ok(EpochEndOffset {
            leader_epoch: Some(LeaderEpoch(1)),
            end_offset: Offset(3),
        }),
    };
    let (sent, saved) = deliver(&follower, 2, &mut follower_state, 3, answer);
    assert!(matches!(
        &sent[..],
        [(
            3,
            Msg::Fetch(FetchRequest {
                fetch_offset: Offset(3),
                ..
            })
        )]
    ));
    assert_eq!(follower_log.log_end_offset(), Offset(3));
    let first_batch_len = on_disk[0].batch.len();
    assert_eq!(segment_bytes(root, 2).len(), first_batch_len);

    // New data from the new leader, not flushed (flush never), then a power failure that
    // keeps only what was fsynced: the truncation (made durable) and nothing appended after.
    let from_new_leader = batch(1, 3_000, 20).stamped(Offset(3), LeaderEpoch(2));
    let response = Msg::FetchResponse(gregor_model::message::FetchResponse {
        leader_epoch: LeaderEpoch(2),
        fetch_offset: Offset(3),
        high_watermark: Offset(3),
        log_end_offset: None,
        batches: vec![gregor_model::log::LogEntry {
            base_offset: Offset(3),
            leader_epoch: LeaderEpoch(2),
            batch: from_new_leader,
        }],
        error: None,
    });
    let (_, saved_after) = deliver(&follower, 2, &mut follower_state, 3, response);
    assert_eq!(follower_log.log_end_offset(), Offset(4));
    let saved = saved_after
        .or(saved)
        .expect("the follower saves its storage");
    let durable = follower_log.lock().durable_lengths();
    drop((follower_state, follower_log, follower));
    for file in durable {
        fs::OpenOptions::new()
            .write(true)
            .open(&file.path)
            .unwrap()
            .set_len(file.length)
            .unwrap();
    }

    // The restart: the actor reopens the recovered log with its saved storage, keeps the
    // high watermark no higher than the log, and registers with the controller.
    let (follower, follower_log) = broker(root, 2);
    assert_eq!(follower_log.log_end_offset(), Offset(3));
    let (state, (sent, saved)) = start(&follower, 2, Some(saved));
    let state = state.broker().expect("a broker").clone();
    assert_eq!(state.log.log_end_offset(), Offset(3));
    assert!(state.high_watermark <= Offset(3));
    assert!(
        matches!(&sent[..], [(0, Msg::BrokerRegistration { .. })]),
        "{sent:?}"
    );
    assert!(matches!(saved, Some(Storage::Broker(s)) if s.log.path.ends_with("broker-2/orders-0")));
    assert_eq!(state.log.epoch_entries().len(), 1);
    assert!(follower_log.failure().is_none());
}
