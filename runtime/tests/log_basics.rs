//! The on-disk log's behaviour, one Kafka rule per test: rolling, reads by offset, bytes and
//! time, truncation across segments, the log start offset and retention, deletion, the
//! checkpoints and reopening.

use gregor_model::types::LeaderEpoch;
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, KafkaBatch, LogConfig, ManualClock, PartitionLog, StorageError, TopicPartition,
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
    let all = log.read(0, 40, u64::MAX).unwrap();
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
    let two_batches = 2 * sent[0].len() as u64;
    let from_inside = log.read(7, 40, two_batches).unwrap();
    assert_eq!(from_inside[0].base_offset.0, 6);
    assert_eq!(from_inside.len(), 2);
    // `until` excludes a batch reaching past it.
    assert_eq!(log.read(0, 5, u64::MAX).unwrap().len(), 2);
}

#[test]
fn reads_stop_at_the_byte_limit_but_always_return_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    let sent = fill(&mut log, 20, 1);
    let size = sent[0].len() as u64;
    assert_eq!(log.read(0, 40, 300).unwrap().len() as u64, 300 / size);
    // KIP-74: a limit below one batch still returns that batch, and only it.
    assert_eq!(log.read(2, 40, 10).unwrap().len(), 1);
    assert_eq!(log.read(2, 40, 0).unwrap().len(), 1);
    // Across segments, the limit counts every batch taken.
    let read = log.read(0, 40, 7 * size).unwrap();
    assert_eq!(read.len(), 7);
    assert!(
        log.segment_base_offsets()[1] < 14,
        "the read crossed a segment"
    );
    // What a held fetch counts: whole batches up to `until`, possibly stopping at `enough`.
    assert_eq!(log.bytes_between(0, 40, u64::MAX).unwrap(), 20 * size);
    assert_eq!(log.bytes_between(3, 9, u64::MAX).unwrap(), 3 * size);
    assert_eq!(log.bytes_between(3, 40, u64::MAX).unwrap(), 19 * size);
    assert_eq!(
        log.bytes_between(4, 5, u64::MAX).unwrap(),
        0,
        "one batch reaches past 5"
    );
    assert_eq!(log.bytes_between(40, 40, u64::MAX).unwrap(), 0);
    let enough = log.bytes_between(0, 40, 1).unwrap();
    assert!((1..=20 * size).contains(&enough), "{enough}");
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
    let before = log.read(0, 16, u64::MAX).unwrap();
    log.close().unwrap();
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!(log.read(0, 16, u64::MAX).unwrap(), before);
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
    // KIP-734: the newest record's timestamp and offset.
    assert_eq!(log.max_timestamp().unwrap(), Some((39, 1_191)));
}

#[test]
fn retention_says_how_far_the_log_start_may_move_and_never_past_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let config = LogConfig {
        retention_ms: Some(500_000),
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone(), &clock);
    assert_eq!(log.retention_offset(), 0, "an empty log keeps everything");
    fill(&mut log, 20, 1);
    let bases = log.segment_base_offsets();
    let active = *bases.last().unwrap();
    // Timestamps are ~1000 ms; now is 1,000,000: everything but the active segment expired,
    // whatever the high watermark (the broker bounds it).
    assert_eq!(log.retention_offset(), active);
    assert_eq!(
        log.segment_base_offsets(),
        bases,
        "saying so deletes nothing"
    );
    // The broker's bound: the HW, here inside the third segment.
    let high_watermark = bases[2] + 2;
    log.advance_log_start_offset(log.retention_offset().min(high_watermark))
        .unwrap();
    assert_eq!(log.log_start_offset(), high_watermark);
    assert_eq!(
        log.segment_base_offsets(),
        bases[2..],
        "segments wholly below go"
    );
    assert_eq!(log.retention_offset(), active);
    log.advance_log_start_offset(log.retention_offset())
        .unwrap();
    assert_eq!(log.segment_base_offsets(), vec![active]);
    assert_eq!(
        log.retention_offset(),
        active,
        "the log start when nothing goes"
    );
    let start = fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(start, format!("0\n1\norders 0 {active}\n"));
    log.close().unwrap();
    let log = open(dir.path(), config, &clock);
    assert_eq!(log.log_start_offset(), active);

    // retention.bytes: keep the newest segments that fit.
    let bytes_dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: None,
        retention_bytes: Some(2048),
        ..small_segments()
    };
    let mut log = open(bytes_dir.path(), config, &clock);
    fill(&mut log, 40, 1);
    let to = log.retention_offset();
    assert!(log.segment_base_offsets().contains(&to), "a segment's base");
    log.advance_log_start_offset(to).unwrap();
    assert!(
        log.size() >= 2048 - 1024 && log.size() < 2048 + 1024,
        "{}",
        log.size()
    );
}

#[test]
fn the_log_start_offset_only_moves_forward_up_to_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 10, 1);
    fill(&mut log, 10, 2);
    let bases = log.segment_base_offsets();
    // Inside a batch of the second segment: the first segment goes, the batch holding 11
    // stays whole, and the epoch cache starts at the log start.
    log.advance_log_start_offset(11).unwrap();
    assert_eq!(log.log_start_offset(), 11);
    assert_eq!(log.segment_base_offsets()[0], bases[1]);
    assert!(bases[1] <= 10);
    assert_eq!(log.read(11, 40, 1).unwrap()[0].base_offset.0, 10);
    let epochs: Vec<(u32, u64)> = log
        .epoch_entries()
        .iter()
        .map(|e| (e.leader_epoch.0, e.start_offset.0))
        .collect();
    assert_eq!(epochs, vec![(1, 11), (2, 20)]);
    let checkpoint = dir.path().join("orders-0/leader-epoch-checkpoint");
    assert_eq!(
        fs::read_to_string(&checkpoint).unwrap(),
        "0\n2\n1 11\n2 20\n"
    );
    log.advance_log_start_offset(5).unwrap();
    assert_eq!(log.log_start_offset(), 11, "never backwards");
    log.advance_log_start_offset(1_000).unwrap();
    assert_eq!(log.log_start_offset(), 40, "at most the log end");
    assert_eq!(
        log.segment_base_offsets().len(),
        1,
        "the active segment stays"
    );
    assert!(log.read(40, 40, u64::MAX).unwrap().is_empty());
    assert_eq!(log.epoch_entries(), &[], "no batch left to have an epoch");
    // The segment that was active when the log start passed it goes once it is rolled.
    log.roll().unwrap();
    assert_eq!(log.segment_base_offsets(), vec![40]);
    fill(&mut log, 1, 1);
    assert_eq!(log.read(40, 42, u64::MAX).unwrap()[0].base_offset.0, 40);
    log.close().unwrap();
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 42));
}

#[test]
fn a_read_below_the_log_start_is_refused_not_raised_and_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 10, 1);
    log.advance_log_start_offset(6).unwrap();
    let error = log.read(4, 20, u64::MAX).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::BelowLogStart {
                offset: 4,
                log_start_offset: 6
            }
        ),
        "{error}"
    );
    assert!(log.bytes_between(5, 20, u64::MAX).is_err());
    log.note_failure(&error);
    assert_eq!(log.failure(), None, "the caller's mistake, not the disk's");
    fill(&mut log, 1, 1);
    assert_eq!(log.read(6, 22, u64::MAX).unwrap().len(), 8);
}

#[test]
fn truncating_fully_starts_the_log_again_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 10, 1);
    log.flush().unwrap();
    // A follower behind its leader's log start: ahead of its own log end.
    log.truncate_fully_and_start_at(57).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (57, 57));
    assert_eq!(log.segment_base_offsets(), vec![57]);
    assert_eq!(log.epoch_entries(), &[]);
    assert_eq!(log.recovery_point(), 57);
    let folder = dir.path().join("orders-0");
    let logs = fs::read_dir(&folder)
        .unwrap()
        .filter(|e| {
            let path = e.as_ref().unwrap().path();
            path.extension().is_some_and(|x| x == "log")
        })
        .count();
    assert_eq!(logs, 1, "the old segments' files are gone");
    fill(&mut log, 1, 3);
    assert_eq!(log.read(57, 59, u64::MAX).unwrap()[0].base_offset.0, 57);
    // And below it: the log start moves back only here.
    log.truncate_fully_and_start_at(3).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    // A crash right after: the same empty log.
    drop(log);
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert_eq!(log.epoch_entries(), &[]);
}

#[test]
fn truncating_below_the_log_start_leaves_the_log_empty_at_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 10, 1);
    log.advance_log_start_offset(7).unwrap();
    // 7 lies inside the batch 6..8: truncating to 7 takes that batch, and with it everything
    // at or above the log start.
    log.truncate(7).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    assert_eq!(log.epoch_entries(), &[]);
    fill(&mut log, 2, 2);
    log.truncate(2).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    fill(&mut log, 1, 2);
    assert_eq!(log.read(7, 9, u64::MAX).unwrap()[0].base_offset.0, 7);
}

#[test]
fn a_log_start_moved_over_batches_a_power_failure_lost_empties_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 3, 1);
    log.flush().unwrap();
    fill(&mut log, 3, 1);
    log.advance_log_start_offset(9).unwrap();
    assert_eq!(
        log.recovery_point(),
        6,
        "the start moved, not what was flushed"
    );
    // The power fails: the unflushed batches never reached the disk.
    let lengths = log.durable_lengths();
    drop(log);
    for l in lengths {
        fs::OpenOptions::new()
            .write(true)
            .open(&l.path)
            .unwrap()
            .set_len(l.length)
            .unwrap();
    }
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (9, 9));
    assert_eq!(log.segment_base_offsets(), vec![9]);
    assert_eq!(log.epoch_entries(), &[]);
}

#[test]
fn deleting_a_log_removes_its_folder_and_checkpoint_lines() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let data = DataDir::open(dir.path()).unwrap();
    let payments = TopicPartition::new("payments", 1).unwrap();
    let mut orders = data
        .open_log(tp(), small_segments(), Arc::new(clock.clone()))
        .unwrap();
    let mut other = data
        .open_log(payments.clone(), small_segments(), Arc::new(clock.clone()))
        .unwrap();
    fill(&mut orders, 10, 1);
    fill(&mut other, 2, 1);
    orders.advance_log_start_offset(4).unwrap();
    data.set_high_watermark(&tp(), 20);
    data.checkpoint_high_watermarks().unwrap();
    orders.delete().unwrap();
    assert!(!dir.path().join("orders-0").exists());
    assert!(!dir.path().join("orders-0-delete").exists());
    for name in [
        "replication-offset-checkpoint",
        "recovery-point-offset-checkpoint",
        "log-start-offset-checkpoint",
    ] {
        let text = fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!text.contains("orders"), "{name}: {text}");
    }
    assert!(matches!(
        orders.append(LeaderEpoch(1), &batch(1, 0, 1)),
        Err(StorageError::Deleted { .. })
    ));
    assert_eq!(orders.failure(), None, "deleted, not failed");
    // The other partition of the folder carries on, and the name can be used again, afresh.
    fill(&mut other, 1, 1);
    assert_eq!(other.log_end_offset(), 6);
    let again = data
        .open_log(tp(), small_segments(), Arc::new(clock.clone()))
        .unwrap();
    assert_eq!((again.log_start_offset(), again.log_end_offset()), (0, 0));
}

#[test]
fn a_deletion_cut_short_by_a_crash_is_finished_when_the_folder_opens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let mut log = open(dir.path(), small_segments(), &clock);
    fill(&mut log, 3, 1);
    log.close().unwrap();
    // The folder was renamed, then the broker crashed.
    fs::rename(
        dir.path().join("orders-0"),
        dir.path().join("orders-0-delete"),
    )
    .unwrap();
    DataDir::open(dir.path()).unwrap();
    assert!(!dir.path().join("orders-0-delete").exists());
    // The checkpoints still name it, but a new folder of that name starts empty.
    let log = open(dir.path(), small_segments(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
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
