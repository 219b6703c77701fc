//! The model's broker actor, unchanged, on the on-disk log, hosted by the virtual-clock
//! simulator: three brokers holding six partitions between them replicate produced batches
//! into byte-identical segments, and a follower that loses power restarts from what its disk
//! kept (one data folder, many partitions), registers again and catches up.

use gregor_model::config::{BrokerConfig, ControllerConfig, ProtocolConfig, TopicConfig};
use gregor_model::effects::Address;
use gregor_model::log::ReplicaLog;
use gregor_model::message::{AdminRequest, Msg, NewTopic, ProduceRequest};
use gregor_model::sim::Simulation;
use gregor_model::types::{Acks, BrokerId, ClientId, LeaderEpoch, Offset, TopicPartition};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{DataDir, DiskLog, DiskLogConfig, LogConfig, ManualClock};
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: ClientId = ClientId(9);

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn log_config(root: &Path, broker: BrokerId) -> DiskLogConfig {
    DiskLogConfig {
        data_dir: DataDir::open(root.join(format!("broker-{broker}"))).unwrap(),
        log: LogConfig::default(),
        clock: Arc::new(ManualClock::new(1_000_000)),
    }
}

fn cluster(root: &Path) -> Simulation<DiskLog> {
    let mut sim = Simulation::new(ms(1));
    sim.add_controller(ControllerConfig {
        topic_defaults: TopicConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        },
        ..ControllerConfig::default()
    });
    for id in 1..=3 {
        let config = BrokerConfig::new(BrokerId(id), ProtocolConfig::default());
        sim.add_broker(config, log_config(root, BrokerId(id)));
    }
    sim.run_for(ms(100));
    let topics = ["orders", "payments"].map(|name| NewTopic {
        name: name.to_string(),
        partitions: 3,
        replication_factor: 3,
        min_insync_replicas: None,
        unclean_leader_election: None,
    });
    let create = AdminRequest::CreateTopics(topics.to_vec());
    sim.send_as(CLIENT, Address::Broker(BrokerId(2)), Msg::Admin(create));
    sim.run_for(ms(500));
    sim
}

fn partitions(sim: &Simulation<DiskLog>) -> Vec<(String, TopicPartition)> {
    let controller = sim.controller().unwrap();
    controller
        .topics
        .iter()
        .flat_map(|(id, topic)| {
            (0..topic.info.partitions).map(|p| {
                let tp = TopicPartition {
                    topic_id: *id,
                    partition: p,
                };
                (format!("{}-{p}", topic.info.name), tp)
            })
        })
        .collect()
}

fn leader_of(sim: &Simulation<DiskLog>, tp: TopicPartition) -> BrokerId {
    sim.controller()
        .unwrap()
        .partition(tp)
        .unwrap()
        .leader
        .unwrap()
}

/// Writes `count` batches of 3 records to every partition, acks=all.
fn produce_everywhere(sim: &mut Simulation<DiskLog>, count: u32) {
    let mut request = 0;
    for (_, tp) in partitions(sim) {
        for _ in 0..count {
            request += 1;
            let produce = ProduceRequest {
                request,
                topic_partition: tp,
                acks: Acks::All,
                batch: batch(3, 1_000 + i64::from(request), 40),
            };
            let leader = leader_of(sim, tp);
            sim.send_as(CLIENT, Address::Broker(leader), Msg::Produce(produce));
            sim.run_for(ms(5));
        }
    }
    sim.run_for(ms(200));
    let answered = sim
        .take_received()
        .iter()
        .filter(|r| matches!(&r.msg, Msg::ProduceResponse(p) if p.result.is_ok()))
        .count();
    assert_eq!(answered as u32, request, "every write is acknowledged");
}

fn segment(root: &Path, broker: u32, folder: &str) -> Vec<u8> {
    fs::read(root.join(format!("broker-{broker}/{folder}/00000000000000000000.log"))).unwrap()
}

#[test]
fn replicas_of_many_partitions_hold_the_very_bytes_and_a_powered_off_follower_catches_up() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let mut sim = cluster(root);
    let all = partitions(&sim);
    assert_eq!(all.len(), 6);
    produce_everywhere(&mut sim, 4);

    // Every replica of every partition: the same bytes as the leader's segment, stamped with
    // offsets and the leader epoch in place.
    for (folder, tp) in &all {
        let leader = leader_of(&sim, *tp);
        let expected = segment(root, leader.0, folder);
        for broker in 1..=3 {
            assert_eq!(
                segment(root, broker, folder),
                expected,
                "{folder} on broker {broker}"
            );
        }
        let log = &sim.broker(leader).unwrap().replicas[tp].log;
        assert_eq!(log.log_end_offset(), Offset(12));
        let read = log.read(Offset(4), Offset(12), 1 << 20).unwrap();
        assert_eq!(
            read[0].base_offset,
            Offset(3),
            "a read inside a batch returns it whole"
        );
        assert_eq!(read[0].leader_epoch, LeaderEpoch(0));
    }

    // Broker 3 loses power: only what was fsynced stays (here the logs never flushed on their
    // own, so only the segments' first fsync at creation: nothing of the records).
    let durable: Vec<_> = sim
        .broker(BrokerId(3))
        .unwrap()
        .replicas
        .iter()
        .flat_map(|(_, replica)| replica.log.lock().durable_lengths())
        .collect();
    sim.crash(Address::Broker(BrokerId(3)));
    for file in durable {
        fs::OpenOptions::new()
            .write(true)
            .open(&file.path)
            .unwrap()
            .set_len(file.length)
            .unwrap();
    }
    // Its session expires (broker.session.timeout.ms, 9 s): the controller takes it out of
    // every ISR, and acks=all goes on without it.
    sim.run_for(Duration::from_secs(10));
    produce_everywhere(&mut sim, 1);

    // It restarts from its data folder with the broker epoch it saved, registers again (the
    // controller fences its old incarnation everywhere), and catches up on every partition.
    sim.restart(Address::Broker(BrokerId(3)));
    let restarted = sim.broker(BrokerId(3)).unwrap();
    assert_eq!(restarted.broker_epoch.0, 2);
    assert_eq!(
        restarted.replicas.len(),
        6,
        "every partition's log reopened"
    );
    sim.run_for(ms(2000));
    for (folder, tp) in &all {
        let leader = leader_of(&sim, *tp);
        assert_ne!(leader, BrokerId(3), "fenced as leader of {folder}");
        assert_eq!(
            segment(root, 3, folder),
            segment(root, leader.0, folder),
            "{folder} caught up"
        );
        let controller = sim.controller().unwrap();
        assert!(
            controller
                .partition(*tp)
                .unwrap()
                .isr
                .contains(&BrokerId(3)),
            "back in {folder}'s ISR"
        );
    }
    assert!(sim.stopped.is_empty(), "no log failed: {:?}", sim.stopped);
}
