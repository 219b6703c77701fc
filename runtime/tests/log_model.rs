//! The on-disk log against the model's in-memory log: the same random operations (append,
//! read, truncate, roll, retention, flush, close and reopen, a process crash, and a power
//! failure that keeps a random byte-prefix of the unflushed data and may lose the indexes)
//! go to both, and after every step they must agree on the log end offset, the epoch cache
//! and every batch from the log start offset on.
//!
//! The model's log has no retention, so the runner keeps the log start offset the disk log
//! reports and compares from there; proptest prints the failing operations and shrinks them.

use gregor_model::log::{EpochEntry, LogEntry, MemoryLog, RecordBatch, ReplicaLog};
use gregor_model::types::{CrashKind, LeaderEpoch, Offset};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    DataDir, KafkaBatch, LogConfig, ManualClock, PartitionLog, TopicPartition,
};
use proptest::prelude::*;
use std::fs;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    /// A batch of `records` records with `value_bytes`-byte values, in the latest epoch plus
    /// `epoch_step` (a step of -1 is a stale leader's epoch, which the epoch cache ignores).
    Append {
        records: u32,
        value_bytes: usize,
        epoch_step: i32,
    },
    /// A read from a fraction of the way between the log start and end.
    Read {
        from: f64,
        until: f64,
        batches_max: usize,
    },
    Truncate {
        to: f64,
    },
    Roll,
    Retention,
    Flush,
    Reopen,
    CrashProcess,
    /// A power failure: the fraction of unflushed bytes that reached the disk, and whether
    /// the index files were lost.
    CrashPower {
        kept: f64,
        lose_indexes: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u32..4, 0usize..300, prop_oneof![6 => Just(0), 2 => Just(1), 1 => Just(-1)])
            .prop_map(|(records, value_bytes, epoch_step)| Op::Append { records, value_bytes, epoch_step }),
        3 => (0.0..1.0f64, 0.0..1.0f64, 1usize..8)
            .prop_map(|(from, until, batches_max)| Op::Read { from, until, batches_max }),
        2 => (0.0..1.0f64).prop_map(|to| Op::Truncate { to }),
        1 => Just(Op::Roll),
        1 => Just(Op::Retention),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashProcess),
        2 => (0.0..=1.0f64, any::<bool>()).prop_map(|(kept, lose_indexes)| Op::CrashPower { kept, lose_indexes }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1200,
        index_interval_bytes: 200,
        retention_ms: None,
        retention_bytes: Some(2500),
        // Smaller than some segments: reads stop at the byte limit, mid-segment too.
        read_bytes_max: 700,
        ..LogConfig::default()
    }
}

struct Runner {
    dir: tempfile::TempDir,
    clock: ManualClock,
    disk: Option<PartitionLog>,
    memory: MemoryLog<KafkaBatch>,
    log_start: u64,
}

fn scratch_dir() -> tempfile::TempDir {
    // tmpfs when there is one: the test is about the log's logic, not the disk's speed.
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

impl Runner {
    fn new() -> Runner {
        let dir = scratch_dir();
        let clock = ManualClock::new(0);
        let disk = open(dir.path(), &clock);
        Runner {
            dir,
            clock,
            disk: Some(disk),
            memory: MemoryLog::open(&CrashKind::Power, None),
            log_start: 0,
        }
    }

    fn disk(&mut self) -> &mut PartitionLog {
        self.disk.as_mut().expect("open")
    }

    fn end(&self) -> u64 {
        self.memory.log_end_offset().0
    }

    /// An offset a fraction of the way from the log start to the end.
    fn between(&self, fraction: f64) -> u64 {
        self.log_start + ((self.end() - self.log_start) as f64 * fraction) as u64
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Append {
                records,
                value_bytes,
                epoch_step,
            } => {
                // Relative to the newest epoch the model's cache knows. The model's log keeps
                // epochs from below the log start that the disk log, like Kafka's, forgets
                // once the log is emptied down to its start; a stale epoch appended just then
                // is the one case where the two caches may differ, so it is not generated.
                let newest = self
                    .memory
                    .epoch_entries()
                    .last()
                    .map_or(1, |e| e.leader_epoch.0 as i32);
                let emptied = self.end() == self.log_start && self.log_start > 0;
                let step = if emptied {
                    epoch_step.max(0)
                } else {
                    epoch_step
                };
                let epoch = LeaderEpoch((newest + step).max(0) as u32);
                self.clock.advance(10);
                let b = batch(records, self.clock_ms(), value_bytes);
                let base = self.disk().append(epoch, &b).unwrap();
                let expected = self.memory.append(epoch, b.stamped(Offset(base), epoch));
                prop_assert_eq!(base, expected.0);
            }
            Op::Read {
                from,
                until,
                batches_max,
            } => {
                let (from, until) = (self.between(from), self.between(until));
                // The disk log may stop early at its byte limit, but returns a prefix of the
                // model's answer, and never nothing when there is something.
                let disk = self.disk().read(from, until, batches_max).unwrap();
                let memory = self.memory.read(Offset(from), Offset(until), batches_max);
                prop_assert!(
                    memory.starts_with(&disk),
                    "read({}, {}, {}): {:?} vs {:?}",
                    from,
                    until,
                    batches_max,
                    disk,
                    memory
                );
                prop_assert_eq!(disk.is_empty(), memory.is_empty());
            }
            Op::Truncate { to } => {
                let to = self.between(to);
                self.disk().truncate(to).unwrap();
                self.memory.truncate(Offset(to));
            }
            Op::Roll => self.disk().roll().unwrap(),
            Op::Retention => {
                // The high watermark given is the flushed end: retention of unflushed
                // segments followed by a power failure leaves a log the model cannot hold
                // (nothing below a log start past the durable end).
                let end = self.end();
                let flushed_end = self
                    .memory
                    .durable()
                    .last()
                    .map_or(0, |e| e.next_offset().0);
                self.disk().delete_retained(flushed_end).unwrap();
                let start = self.disk().log_start_offset();
                prop_assert!(start >= self.log_start && start <= end);
                prop_assert!(
                    start == end
                        || self.memory.entry_at(Offset(start)).map(|e| e.base_offset)
                            == Some(Offset(start)),
                    "the log start {} is a batch boundary",
                    start
                );
                self.log_start = start;
            }
            Op::Flush => {
                self.disk().flush().unwrap();
                self.memory.flush();
            }
            Op::Reopen => {
                self.disk.take().unwrap().close().unwrap();
                self.reopen();
                self.memory =
                    MemoryLog::open(&CrashKind::Power, Some(&self.memory.entries().to_vec()));
            }
            Op::CrashProcess => {
                drop(self.disk.take());
                self.reopen();
                self.memory =
                    MemoryLog::open(&CrashKind::Power, Some(&self.memory.entries().to_vec()));
            }
            Op::CrashPower { kept, lose_indexes } => self.crash_power(kept, lose_indexes)?,
        }
        self.check()
    }

    fn clock_ms(&self) -> i64 {
        use gregor_runtime::storage::Clock;
        self.clock.now_ms()
    }

    fn reopen(&mut self) {
        self.disk = Some(open(self.dir.path(), &self.clock));
    }

    /// Keeps the flushed bytes and the first `kept` fraction of the unflushed ones, in log
    /// order, cutting the files wherever that falls (mid-batch included).
    fn crash_power(&mut self, kept: f64, lose_indexes: bool) -> Result<(), TestCaseError> {
        let disk = self.disk.take().unwrap();
        let lengths = disk.durable_lengths();
        drop(disk);
        let unflushed: u64 = lengths.iter().map(|l| l.size - l.length).sum();
        let mut budget = (unflushed as f64 * kept) as u64;
        for l in &lengths {
            let keep = l.length + budget.min(l.size - l.length);
            budget -= keep - l.length;
            fs::OpenOptions::new()
                .write(true)
                .open(&l.path)
                .unwrap()
                .set_len(keep)
                .unwrap();
        }
        let partition = self.dir.path().join("orders-0");
        if lose_indexes {
            for entry in fs::read_dir(&partition).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .extension()
                    .is_some_and(|e| e == "index" || e == "timeindex")
                {
                    fs::remove_file(path).unwrap();
                }
            }
        }
        self.reopen();
        // The model's log after the same failure: what was flushed, then the unflushed
        // batches (from the log start) whose bytes all reached the disk.
        let flushed = self.memory.durable();
        let mut survivors = flushed.clone();
        let mut budget = (unflushed as f64 * kept) as u64;
        for entry in &self.memory.entries()[flushed.len()..] {
            let size = entry.batch.len() as u64;
            if size > budget {
                break;
            }
            budget -= size;
            survivors.push(entry.clone());
        }
        self.memory = MemoryLog::open(&CrashKind::Power, Some(&survivors));
        Ok(())
    }

    /// Both logs agree from the log start offset on.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let start = self.log_start;
        let end = self.end();
        let disk = self.disk.as_ref().unwrap();
        prop_assert_eq!(disk.log_start_offset(), start);
        prop_assert_eq!(disk.log_end_offset(), end);
        let expected_epochs = clamp(self.memory.epoch_entries(), start, end);
        prop_assert_eq!(disk.epoch_entries(), &expected_epochs[..]);
        let mut all = Vec::new();
        while all
            .last()
            .map_or(start, |e: &LogEntry<KafkaBatch>| e.next_offset().0)
            < end
        {
            let from = all
                .last()
                .map_or(start, |e: &LogEntry<KafkaBatch>| e.next_offset().0);
            let read = disk.read(from, end, usize::MAX).unwrap();
            prop_assert!(!read.is_empty(), "read({}, {}) returned nothing", from, end);
            all.extend(read);
        }
        let count: u64 = all.iter().map(|e| e.batch.record_count()).sum();
        prop_assert_eq!(count, end.saturating_sub(start));
        prop_assert_eq!(
            all,
            self.memory.read(Offset(start), Offset(end), usize::MAX)
        );
        Ok(())
    }
}

/// The model's epoch cache as a log from `start` to `end` keeps it (Kafka's
/// `truncateFromStart`, without an epoch left starting at the end of an empty log).
fn clamp(entries: Vec<EpochEntry>, start: u64, end: u64) -> Vec<EpochEntry> {
    let first_kept = entries
        .partition_point(|e| e.start_offset.0 <= start)
        .saturating_sub(1);
    let mut kept = entries[first_kept..].to_vec();
    if let Some(first) = kept.first_mut() {
        first.start_offset = first.start_offset.max(Offset(start));
    }
    kept.retain(|e| e.start_offset.0 < end);
    kept
}

fn open(dir: &Path, clock: &ManualClock) -> PartitionLog {
    DataDir::open(dir)
        .unwrap()
        .open_log(
            TopicPartition::new("orders", 0).unwrap(),
            config(),
            Arc::new(clock.clone()),
        )
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn disk_log_agrees_with_the_model_log(ops in proptest::collection::vec(op(), 1..80)) {
        let mut runner = Runner::new();
        for (step, op) in ops.iter().enumerate() {
            runner.apply(op).map_err(|e| TestCaseError::fail(format!("step {step} ({op:?}): {e}")))?;
        }
    }
}
