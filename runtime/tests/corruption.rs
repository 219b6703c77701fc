//! What the log does with damaged files, each case with its documented outcome. The fixture:
//! 13 batches flushed (segments 0, 8 and 16 wholly, and the first batch of segment 24), then
//! 6 more not flushed, then a crash (the log dropped without closing).
//!
//! - Damage after the recovery point (unflushed): the tail from the first bad batch is cut,
//!   with a warning naming the file and offset; everything flushed is kept.
//! - Damage below the recovery point found at open (a batch in the segment holding the
//!   recovery point, or a header or length in the tail of an older segment): the open fails
//!   with an error naming the file and byte; nothing is cut.
//! - A flipped payload byte deep in an older flushed segment: not re-read at open (Kafka does
//!   not re-read flushed segments either); the batch comes back whole and its CRC check, which
//!   every consumer runs, reports it.
//! - Missing or partial index files, a missing epoch or recovery-point checkpoint: rebuilt from
//!   the batches, nothing lost. A malformed checkpoint: an error naming the file and line.

use gregor_model::log::LogEntry;
use gregor_model::types::LeaderEpoch;
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, DurableLength, KafkaBatch, LogConfig, ManualClock, PartitionLog, StorageError,
    TopicPartition,
};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1200,
        index_interval_bytes: 200,
        // Every flush also writes the recovery-point checkpoint.
        recovery_checkpoint_interval_ms: 0,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Result<PartitionLog, StorageError> {
    DataDir::open(dir)?.open_log(
        TopicPartition::new("orders", 0).unwrap(),
        config(),
        Arc::new(ManualClock::new(0)),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    /// The batches flushed, and all of them.
    flushed: Vec<LogEntry<KafkaBatch>>,
    all: Vec<LogEntry<KafkaBatch>>,
    /// The segment files, with how much of each was flushed.
    segments: Vec<DurableLength>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path()).unwrap();
        for i in 0..19 {
            let epoch = if i < 10 { 1 } else { 2 };
            log.append(LeaderEpoch(epoch), &batch(2, 1_000 + i, 100))
                .unwrap();
            if i == 12 {
                log.flush().unwrap();
            }
        }
        let all = log.read(0, 38, u64::MAX).unwrap();
        let flushed = all[..13].to_vec();
        let segments = log.durable_lengths();
        assert_eq!(log.recovery_point(), 26);
        drop(log);
        let checkpoint = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint"));
        assert_eq!(checkpoint.unwrap(), "0\n1\norders 0 26\n");
        Fixture {
            dir,
            flushed,
            all,
            segments,
        }
    }

    fn segment(&self, base: u64) -> &DurableLength {
        let name = format!("{base:020}.log");
        self.segments
            .iter()
            .find(|s| s.path.file_name().unwrap().to_str() == Some(name.as_str()))
            .unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("orders-0").join(name)
    }

    fn reopen(&self) -> Result<PartitionLog, StorageError> {
        open(self.dir.path())
    }
}

fn flip(path: &Path, position: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, position).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5a], position).unwrap();
}

fn cut(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn read_all(log: &PartitionLog) -> Vec<LogEntry<KafkaBatch>> {
    log.read(0, log.log_end_offset(), u64::MAX).unwrap()
}

#[test]
fn the_fixture_is_as_described() {
    let f = Fixture::new();
    let bases: Vec<u64> = f.all.iter().map(|e| e.base_offset.0).collect();
    assert_eq!(bases, (0..38).step_by(2).collect::<Vec<_>>());
    let active = f.segment(24);
    assert!(active.length > 0 && active.length < active.size);
    assert_eq!(f.segment(16).length, f.segment(16).size);
    // A crash that damaged nothing loses nothing, flushed or not.
    let log = f.reopen().unwrap();
    assert_eq!(read_all(&log), f.all);
}

#[test]
fn a_flipped_byte_after_the_recovery_point_cuts_the_tail_there() {
    let f = Fixture::new();
    let active = f.segment(24);
    // Inside the header of the first unflushed batch (offset 26), under the CRC.
    flip(&active.path, active.length + 30);
    let log = f.reopen().unwrap();
    assert_eq!(log.log_end_offset(), 26);
    assert_eq!(read_all(&log), f.flushed);
    assert_eq!(log.last_epoch(), Some(LeaderEpoch(2)));
    assert!(
        !f.file(&format!("{:020}.log", 32)).exists(),
        "later segments go"
    );
}

#[test]
fn a_torn_unflushed_tail_is_cut_to_its_last_whole_batch() {
    let f = Fixture::new();
    let active = f.segment(24);
    cut(&active.path, active.size - 7);
    let log = f.reopen().unwrap();
    // Segment 24 holds batches 24..32; its last (30) was torn, and segment 32 follows it.
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(read_all(&log), f.all[..15]);
}

#[test]
fn damage_below_the_recovery_point_stops_the_open_and_cuts_nothing() {
    // A flipped byte in the flushed batch of the segment holding the recovery point.
    let f = Fixture::new();
    let active = f.segment(24);
    flip(&active.path, active.length - 5);
    let size_before = fs::metadata(&active.path).unwrap().len();
    let error = f.reopen().unwrap_err();
    assert!(
        matches!(error, StorageError::CorruptFlushed { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("00000000000000000024.log"), "{message}");
    assert!(message.contains("CRC-32C"), "{message}");
    assert_eq!(fs::metadata(&active.path).unwrap().len(), size_before);

    // A broken length in the last batch of an older, wholly flushed segment.
    let f = Fixture::new();
    let old = f.segment(8);
    let last = f
        .all
        .iter()
        .filter(|e| e.base_offset.0 < 16)
        .last()
        .unwrap();
    let position = old.size - last.batch.len() as u64;
    flip(&old.path, position + 9);
    let error = f.reopen().unwrap_err().to_string();
    assert!(error.contains("00000000000000000008.log"), "{error}");
    assert_eq!(fs::metadata(&old.path).unwrap().len(), old.size);

    // A flushed segment cut short.
    let f = Fixture::new();
    let old = f.segment(0);
    cut(&old.path, old.size - 100);
    let error = f.reopen().unwrap_err().to_string();
    assert!(error.contains("torn batch"), "{error}");
    assert!(error.contains("recovery point 26"), "{error}");
}

#[test]
fn a_flipped_payload_byte_in_an_old_flushed_segment_is_kept_and_fails_its_crc() {
    let f = Fixture::new();
    flip(&f.segment(0).path, 100);
    let log = f.reopen().unwrap();
    let read = read_all(&log);
    assert_eq!(read.len(), f.all.len(), "nothing dropped");
    assert!(read[0].batch.verify_crc().is_err());
    assert!(read[1..].iter().all(|e| e.batch.verify_crc().is_ok()));
}

#[test]
fn missing_or_partial_indexes_are_rebuilt() {
    let f = Fixture::new();
    let index = f.file(&format!("{:020}.index", 8));
    let timeindex = f.file(&format!("{:020}.timeindex", 0));
    let active_index = f.file(&format!("{:020}.index", 24));
    let before = fs::read(&index).unwrap();
    assert!(!before.is_empty());
    fs::remove_file(&index).unwrap();
    fs::write(&timeindex, [1u8; 5]).unwrap();
    let _ = fs::remove_file(&active_index);
    let log = f.reopen().unwrap();
    assert_eq!(read_all(&log), f.all);
    assert_eq!(fs::read(&index).unwrap(), before, "rebuilt as it was");
    assert_eq!(fs::metadata(&timeindex).unwrap().len() % 12, 0);
    assert_eq!(log.offset_for_timestamp(1_004).unwrap(), Some((7, 1_004)));
    // An index pointing at the wrong batch is rebuilt too.
    drop(log);
    fs::write(&index, [0, 0, 0, 2, 0, 0, 0, 1]).unwrap();
    let log = f.reopen().unwrap();
    assert_eq!(read_all(&log), f.all);
    assert_eq!(fs::read(&index).unwrap(), before);
}

#[test]
fn missing_checkpoints_are_rebuilt_and_malformed_ones_refused() {
    let f = Fixture::new();
    let epochs_path = f.file("leader-epoch-checkpoint");
    let epochs = fs::read_to_string(&epochs_path).unwrap();
    assert_eq!(epochs, "0\n2\n1 0\n2 20\n");
    fs::remove_file(&epochs_path).unwrap();
    fs::remove_file(f.dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    let log = f.reopen().unwrap();
    assert_eq!(read_all(&log), f.all);
    assert_eq!(fs::read_to_string(&epochs_path).unwrap(), epochs);
    drop(log);

    let path = f.dir.path().join("log-start-offset-checkpoint");
    fs::write(&path, "0\n1\norders zero 0\n").unwrap();
    let error = f.reopen().unwrap_err().to_string();
    assert!(error.contains("log-start-offset-checkpoint"), "{error}");
    assert!(error.contains("line 3"), "{error}");
}

#[test]
fn leftover_files_are_cleaned_and_strange_names_refused() {
    let f = Fixture::new();
    fs::write(f.file("leader-epoch-checkpoint.tmp"), "half").unwrap();
    fs::write(f.file(&format!("{:020}.index", 99)), [0u8; 8]).unwrap();
    let log = f.reopen().unwrap();
    assert_eq!(read_all(&log), f.all);
    assert!(!f.file("leader-epoch-checkpoint.tmp").exists());
    assert!(!f.file(&format!("{:020}.index", 99)).exists());
    drop(log);
    fs::write(f.file("12.log"), "").unwrap();
    let error = f.reopen().unwrap_err().to_string();
    assert!(error.contains("12.log"), "{error}");
}
