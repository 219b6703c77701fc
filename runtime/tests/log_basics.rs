//! The on-disk log's behaviour, one Kafka rule per test: rolling, reads by offset, bytes and
//! time, truncation across segments, retention, the checkpoints and reopening.

use gregor_model::types::LeaderEpoch;
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, KafkaBatch, LogConfig, ManualClock, PartitionLog, TopicPartition,
};
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn tp() -> TopicPartition {
    TopicPartition::new("orders", 0).unwrap()
}

fn open(dir: &Path, config: LogConfig, clock: &ManualClock) -> PartitionLog {
    DataDir::open(dir)
        .unwrap()
        .open_log(tp(), config, Arc::new(clock.clone()))
        .unwrap()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of 2 records, 100-byte values, timestamps 1000 + 10 * i.
fn fill(log: &mut PartitionLog, n: u64, epoch: u32) -> Vec<KafkaBatch> {
    (0..n)
        .map(|i| {
            let b = batch(2, 1_000 + 10 * i as i64, 100);
            log.append(LeaderEpoch(epoch), &b).unwrap();
            b
        })
        .collect()
}

#[test]
fn appends_roll_into_named_segments_and_read_back_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(10_000);
    let mut log = open(dir.path(), small_segments(), &clock);
    let sent = fill(&mut log, 20, 3);
    assert_eq!(log.log_end_offset(), 40);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 3, "{bases:?}");
    let folder = dir.path().join("orders-0");
    for base in &bases {
        assert!(folder.join(format!("{base:020}.log")).exists());
    }
    // Every batch, whole, from any offset inside it; stamped with offset and epoch.
    let all = log.read(0, 40, 100).unwrap();
    assert_eq!(all.len(), 20);
    for (i, entry) in all.iter().enumerate() {
        assert_eq!(entry.base_offset.0, 2 * i as u64);
        assert_eq!(entry.leader_epoch, LeaderEpoch(3));
        let header = entry.batch.header();
        assert_eq!(header.base_offset, 2 * i as i64);
        assert_eq!(header.partition_leader_epoch, 3);
        assert_eq!(entry.batch.bytes()[16..], sent[i].bytes()[16..]);
        entry.batch.verify_crc().unwrap();
    }
    let from_inside = log.read(7, 40, 2).unwrap();
    assert_eq!(from_inside[0].base_offset.0, 6);
    assert_eq!(from_inside.len(), 2);
    // `until` excludes a batch reaching past it.
    assert_eq!(log.read(0, 5, 100).unwrap().len(), 2);
}

#[test]
fn reads_stop_at_the_byte_limit_but_always_return_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let config = LogConfig {
        read_bytes_max: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    fill(&mut log, 10, 1);
    let size = log.read(0, 20, 1).unwrap()[0].batch.len();
    let read = log.read(0, 20, 100).unwrap();
    assert_eq!(read.len(), 300 / size);
    let mut big = open(
        &dir.path().join("big"),
        LogConfig {
            read_bytes_max: 10,
            ..LogConfig::default()
        },
        &clock,
    );
    fill(&mut big, 3, 1);
    assert_eq!(big.read(2, 6, 100).unwrap().len(), 1);
}

#[test]
fn truncation_crosses_segments_and_cuts_the_epoch_cache() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 10, 1);
    fill(&mut log, 10, 2);
    assert_eq!(log.epoch_entries().len(), 2);
    let segments_before = log.segment_base_offsets().len();
    log.truncate(15).unwrap();
    assert_eq!(log.log_end_offset(), 14, "the batch holding 15 goes whole");
    assert!(log.segment_base_offsets().len() < segments_before);
    assert_eq!(log.epoch_entries().len(), 1);
    assert_eq!(log.last_epoch(), Some(LeaderEpoch(1)));
    let epochs = fs::read_to_string(dir.path().join("orders-0/leader-epoch-checkpoint")).unwrap();
    assert_eq!(epochs, "0\n1\n1 0\n");
    // Appends continue at the new end, and reopening gives the same log.
    fill(&mut log, 1, 4);
    assert_eq!(log.log_end_offset(), 16);
    let before = log.read(0, 16, 100).unwrap();
    log.close().unwrap();
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!(log.read(0, 16, 100).unwrap(), before);
    assert_eq!(log.epoch_entries().len(), 2);
}

#[test]
fn offsets_by_timestamp_find_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 20, 1);
    // Batch i holds records at 1000 + 10 i (offset 2i) and 1001 + 10 i (offset 2i + 1).
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1_000)));
    assert_eq!(log.offset_for_timestamp(1_051).unwrap(), Some((11, 1_051)));
    assert_eq!(log.offset_for_timestamp(1_052).unwrap(), Some((12, 1_060)));
    assert_eq!(log.offset_for_timestamp(1_191).unwrap(), Some((39, 1_191)));
    assert_eq!(log.offset_for_timestamp(1_192).unwrap(), None);
}

#[test]
fn retention_deletes_whole_old_segments_below_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig {
        retention_ms: Some(500_000),
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone(), &clock);
    fill(&mut log, 20, 1);
    let bases = log.segment_base_offsets();
    // Timestamps are ~1000 ms; now is 1,000,000: everything but the active segment expired.
    assert_eq!(log.delete_retained(0).unwrap(), 0, "nothing below the HW 0");
    let deleted = log.delete_retained(bases[2]).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(log.log_start_offset(), bases[2]);
    assert!(log.read(0, 40, 10).is_err());
    assert_eq!(
        log.read(bases[2], 40, 1).unwrap()[0].base_offset.0,
        bases[2]
    );
    assert_eq!(log.epoch_entries()[0].start_offset.0, bases[2]);
    let deleted = log.delete_retained(40).unwrap();
    assert_eq!(deleted, bases.len() - 3, "all but the active segment");
    let start = fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(
        start,
        format!("0\n1\norders 0 {}\n", log.log_start_offset())
    );
    log.close().unwrap();
    let log = open(dir.path(), config, &clock);
    assert_eq!(log.log_start_offset(), *bases.last().unwrap());

    // retention.bytes: keep the newest segments that fit.
    let bytes_dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: None,
        retention_bytes: Some(2048),
        ..small_segments()
    };
    let mut log = open(bytes_dir.path(), config, &clock);
    fill(&mut log, 40, 1);
    log.delete_retained(80).unwrap();
    assert!(
        log.size() >= 2048 - 1024 && log.size() < 2048 + 1024,
        "{}",
        log.size()
    );
}

#[test]
fn segment_ms_rolls_an_old_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let config = LogConfig {
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, &clock);
    log.append(LeaderEpoch(1), &batch(1, 0, 10)).unwrap();
    clock.advance(59_000);
    log.append(LeaderEpoch(1), &batch(1, 59_000, 10)).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0]);
    clock.advance(2_000);
    log.append(LeaderEpoch(1), &batch(1, 61_000, 10)).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn flush_advances_the_recovery_point_and_close_checkpoints_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), LogConfig::default(), &clock);
    fill(&mut log, 3, 1);
    assert_eq!(log.recovery_point(), 0);
    assert!(log.durable_lengths().iter().all(|d| d.length == 0));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 6);
    assert!(log.durable_lengths().iter().all(|d| d.length == d.size));
    let messages = LogConfig {
        flush: gregor_runtime::storage::FlushConfig {
            messages: Some(4),
            ms: None,
        },
        ..LogConfig::default()
    };
    let mut log2 = open(&dir.path().join("b"), messages, &clock);
    fill(&mut log2, 1, 1);
    assert_eq!(log2.recovery_point(), 0);
    fill(&mut log2, 1, 1);
    assert_eq!(
        log2.recovery_point(),
        4,
        "4 unflushed records trigger flush.messages"
    );
    log.close().unwrap();
    let text = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(text, "0\n1\norders 0 6\n");
}

#[test]
fn bad_configurations_and_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(dir.path()).unwrap();
    let bad = LogConfig {
        segment_bytes: 10,
        ..LogConfig::default()
    };
    let error = data
        .open_log(tp(), bad, Arc::new(ManualClock::new(0)))
        .unwrap_err();
    assert!(error.to_string().contains("segment.bytes"), "{error}");
    assert!(TopicPartition::new("a/b", 0).is_err());
    assert!(TopicPartition::new("..", 0).is_err());
    assert_eq!(
        TopicPartition::from_dir_name("my-topic-12"),
        Some(TopicPartition::new("my-topic", 12).unwrap())
    );
}

#[test]
fn the_data_folder_checkpoints_high_watermarks_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(dir.path()).unwrap();
    let orders = tp();
    let payments = TopicPartition::new("payments", 3).unwrap();
    data.set_high_watermark(&orders, 17);
    data.set_high_watermark(&payments, 4);
    data.checkpoint_high_watermarks().unwrap();
    let text = fs::read_to_string(dir.path().join("replication-offset-checkpoint")).unwrap();
    assert_eq!(text, "0\n2\norders 0 17\npayments 3 4\n");
    let reopened = DataDir::open(dir.path()).unwrap();
    assert_eq!(reopened.offsets(&payments).high_watermark, Some(4));
    assert_eq!(reopened.offsets(&orders).high_watermark, Some(17));
}
