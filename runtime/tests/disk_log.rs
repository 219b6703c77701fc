//! The disk log as the broker sees it, through the model's `ReplicaLog` trait: logs created
//! and reopened by partition name in one shared data folder, errors in the trait's words, the
//! first disk failure kept so later writes are refused, a caller's mistake kept apart from a
//! failure, and deletion with the topic.

use gregor_model::log::{LogName, ProducerBatch, RecordBatch, ReplicaLog};
use gregor_model::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, DiskDurable, DiskLog, DiskLogConfig, LogConfig, ManualClock,
};
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn config(dir: &Path) -> DiskLogConfig {
    DiskLogConfig {
        data_dir: DataDir::open(dir).unwrap(),
        log: LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        },
        clock: Arc::new(ManualClock::new(0)),
    }
}

fn name(topic: &str, partition: u32) -> LogName {
    LogName {
        topic: topic.to_string(),
        partition,
    }
}

fn append(log: &mut DiskLog, count: u32, epoch: u32) {
    for i in 0..count {
        log.append(LeaderEpoch(epoch), batch(2, i64::from(i), 50))
            .unwrap();
    }
}

#[test]
fn partitions_are_created_and_reopened_by_name_in_one_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let shared = config(dir.path());
    let mut orders = DiskLog::create(&shared, &name("orders", 0)).unwrap();
    let mut payments = DiskLog::create(&shared, &name("payments", 3)).unwrap();
    append(&mut orders, 5, 1);
    append(&mut payments, 2, 4);
    assert!(dir.path().join("orders-0").is_dir());
    assert!(dir.path().join("payments-3").is_dir());
    let durable = orders.durable();
    assert_eq!(
        durable,
        DiskDurable {
            topic: "orders".to_string(),
            partition: 0
        }
    );
    let saved = serde_json::to_string(&durable).unwrap();
    let before = orders.read(Offset(0), Offset(10), u64::MAX).unwrap();
    assert_eq!(orders.clone(), orders, "handles on one log are equal");
    drop(orders);
    drop(payments);

    // A restart: the checkpoints are read afresh, the log found by its saved name.
    let restarted = config(dir.path());
    let durable: DiskDurable = serde_json::from_str(&saved).unwrap();
    let orders = DiskLog::reopen(&restarted, &durable).unwrap();
    assert_eq!(
        orders.read(Offset(0), Offset(10), u64::MAX).unwrap(),
        before
    );
    assert_eq!(orders.last_epoch(), Some(LeaderEpoch(1)));
    // Creating a partition the disk already holds opens what it holds.
    let payments = DiskLog::create(&restarted, &name("payments", 3)).unwrap();
    assert_eq!(payments.log_end_offset(), Offset(4));

    let error = DiskLog::create(&restarted, &name("a/b", 0)).unwrap_err();
    assert!(error.0.contains("not a legal topic name"), "{error}");
}

#[test]
fn a_read_below_the_log_start_is_an_error_but_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::create(&config(dir.path()), &name("orders", 0)).unwrap();
    append(&mut log, 5, 1);
    log.advance_log_start_offset(Offset(4)).unwrap();
    assert_eq!(log.log_start_offset(), Offset(4));
    let error = log.read(Offset(2), Offset(10), u64::MAX).unwrap_err();
    assert!(
        error.0.contains("offset 2 is below the log start offset 4"),
        "{error}"
    );
    assert!(log.bytes_between(Offset(3), Offset(10), 1).is_err());
    assert_eq!(log.failure(), None);
    // Not silently raised: from the log start itself, the batch holding it.
    let read = log.read(Offset(4), Offset(10), u64::MAX).unwrap();
    assert_eq!(read[0].base_offset, Offset(4));
    let bytes: u64 = read.iter().map(|e| e.batch.size_bytes()).sum();
    assert_eq!(
        log.bytes_between(Offset(4), Offset(10), u64::MAX).unwrap(),
        bytes
    );
    append(&mut log, 1, 1);
}

#[test]
fn the_first_disk_failure_is_kept_and_refuses_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::create(&config(dir.path()), &name("orders", 0)).unwrap();
    append(&mut log, 3, 1);
    // The partition's folder vanishes under the log: its next segment cannot be created.
    fs::remove_dir_all(dir.path().join("orders-0")).unwrap();
    let error = log.truncate_fully_and_start_at(Offset(50)).unwrap_err();
    assert!(error.0.contains("orders-0"), "{error}");
    let failure = log.failure().expect("kept");
    assert_eq!(failure, error.0);
    let refused = log.append(LeaderEpoch(1), batch(1, 0, 1)).unwrap_err().0;
    assert!(refused.contains("failed earlier"), "{refused}");
    assert!(refused.contains(&failure), "{refused}");
    assert!(log.flush().is_err());
    assert!(log.read(Offset(0), Offset(10), u64::MAX).is_err());
    // What the host still asks of a failed log answers without a panic.
    let _ = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.last_epoch(),
    );
    let _ = (log.epoch_entries(), log.retention_offset(), log.durable());
}

#[test]
fn deleting_a_partition_removes_its_folder_and_checkpoint_lines() {
    let dir = tempfile::tempdir().unwrap();
    let shared = config(dir.path());
    let mut orders = DiskLog::create(&shared, &name("orders", 0)).unwrap();
    let mut payments = DiskLog::create(&shared, &name("payments", 0)).unwrap();
    append(&mut orders, 3, 1);
    append(&mut payments, 3, 1);
    orders.flush().unwrap();
    payments.flush().unwrap();
    orders.advance_log_start_offset(Offset(2)).unwrap();
    orders.delete().unwrap();
    assert!(!dir.path().join("orders-0").exists());
    let starts = fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(starts, "0\n1\npayments 0 0\n");
    let error = orders.append(LeaderEpoch(1), batch(1, 0, 1)).unwrap_err();
    assert!(error.0.contains("was deleted"), "{error}");
    assert_eq!(orders.failure(), None, "deleted, not failed");
    append(&mut payments, 1, 1);
    // The topic created again under the same name starts from nothing.
    let again = DiskLog::create(&shared, &name("orders", 0)).unwrap();
    assert_eq!(
        (again.log_start_offset(), again.log_end_offset()),
        (Offset(0), Offset(0))
    );
}

#[test]
fn an_idempotent_producers_numbering_survives_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::create(&config(dir.path()), &name("orders", 0)).unwrap();
    let numbering = ProducerBatch {
        producer_id: ProducerId(17),
        producer_epoch: ProducerEpoch(2),
        base_sequence: Sequence(5),
    };
    let sent = batch(3, 0, 20).with_producer(numbering);
    log.append(LeaderEpoch(1), sent.clone()).unwrap();
    log.append(LeaderEpoch(1), batch(1, 0, 20)).unwrap();
    let read = log.read(Offset(0), Offset(4), u64::MAX).unwrap();
    assert_eq!(read[0].batch.producer(), Some(numbering));
    assert_eq!(read[0].batch.bytes()[16..], sent.bytes()[16..]);
    read[0].batch.verify_crc().unwrap();
    assert_eq!(read[1].batch.producer(), None);
}
