//! The on-disk log against the model's in-memory log, both through the model's `ReplicaLog`
//! trait: the same random operations (append, byte-limited reads, `bytes_between`, truncate,
//! truncate fully and start at, advance the log start offset, retention, roll, flush, close and
//! reopen, a process crash, and a power failure that keeps a random byte-prefix of the unflushed
//! data and may lose the indexes) go to both, and after every step they must agree on the log
//! start and end offsets, the last epoch, the epoch cache and every batch.
//!
//! Retention is the one rule the two logs do not share (the model's deletes its oldest batch,
//! the disk's whole segments by `retention.bytes`): the runner asks the disk log how far its
//! retention goes and moves both logs' start there, unbounded by any high watermark, so that
//! the log start passes unflushed batches which a power failure then loses. Proptest prints
//! the failing operations and shrinks them.

use gregor_model::log::{
    EpochEntry, LogName, MemoryDurable, MemoryLog, MemoryLogConfig, RecordBatch, ReplicaLog,
};
use gregor_model::types::{CrashKind, LeaderEpoch, Offset};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    Clock, DataDir, DiskLog, DiskLogConfig, KafkaBatch, LogConfig, ManualClock,
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
        bytes_max: u64,
    },
    BytesBetween {
        from: f64,
        until: f64,
        enough: u64,
    },
    /// To a fraction of the way from a little below the log start to the end.
    Truncate {
        to: f64,
    },
    /// At a fraction of the way from the log start to a little past the end.
    TruncateFullyAndStartAt {
        at: f64,
    },
    /// To a fraction of the way from the log start to the end (past it above 1).
    AdvanceLogStartOffset {
        to: f64,
    },
    Retention,
    Roll,
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
        10 => (1u32..4, 0usize..300, prop_oneof![6 => Just(0), 2 => Just(1), 1 => Just(-1)])
            .prop_map(|(records, value_bytes, epoch_step)| Op::Append { records, value_bytes, epoch_step }),
        3 => (0.0..1.0f64, 0.0..=1.0f64, prop_oneof![0u64..2500, Just(u64::MAX)])
            .prop_map(|(from, until, bytes_max)| Op::Read { from, until, bytes_max }),
        1 => (0.0..1.0f64, 0.0..=1.0f64, prop_oneof![0u64..2500, Just(u64::MAX)])
            .prop_map(|(from, until, enough)| Op::BytesBetween { from, until, enough }),
        2 => (0.0..1.0f64).prop_map(|to| Op::Truncate { to }),
        1 => (0.0..=1.0f64).prop_map(|at| Op::TruncateFullyAndStartAt { at }),
        2 => (0.0..1.2f64).prop_map(|to| Op::AdvanceLogStartOffset { to }),
        1 => Just(Op::Retention),
        1 => Just(Op::Roll),
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
        ..LogConfig::default()
    }
}

/// The model's log as a power failure treats it: only what was flushed survives.
const MEMORY: MemoryLogConfig = MemoryLogConfig {
    crash: CrashKind::Power,
    retention: false,
};

fn name() -> LogName {
    LogName {
        topic: "orders".to_string(),
        partition: 0,
    }
}

struct Runner {
    dir: tempfile::TempDir,
    clock: ManualClock,
    disk: Option<DiskLog>,
    memory: MemoryLog<KafkaBatch>,
}

fn scratch_dir() -> tempfile::TempDir {
    // tmpfs when there is one: the test is about the log's logic, not the disk's speed.
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// A broker's view of its data folder after a (re)start: the checkpoints read afresh.
fn disk_config(dir: &Path, clock: &ManualClock) -> DiskLogConfig {
    DiskLogConfig {
        data_dir: DataDir::open(dir).unwrap(),
        log: config(),
        clock: Arc::new(clock.clone()),
    }
}

impl Runner {
    fn new() -> Runner {
        let dir = scratch_dir();
        let clock = ManualClock::new(0);
        let disk = DiskLog::create(&disk_config(dir.path(), &clock), &name()).unwrap();
        Runner {
            dir,
            clock,
            disk: Some(disk),
            memory: MemoryLog::create(&MEMORY, &name()).unwrap(),
        }
    }

    fn disk(&mut self) -> &mut DiskLog {
        self.disk.as_mut().expect("open")
    }

    fn start(&self) -> u64 {
        self.memory.log_start_offset().0
    }

    fn end(&self) -> u64 {
        self.memory.log_end_offset().0
    }

    /// An offset a fraction of the way from `low` to `high`.
    fn between(low: u64, high: u64, fraction: f64) -> Offset {
        Offset(low + ((high - low) as f64 * fraction) as u64)
    }

    fn in_log(&self, fraction: f64) -> Offset {
        Runner::between(self.start(), self.end(), fraction)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Append {
                records,
                value_bytes,
                epoch_step,
            } => {
                let newest = self
                    .memory
                    .epoch_entries()
                    .last()
                    .map_or(1, |e| e.leader_epoch.0 as i32);
                let epoch = LeaderEpoch((newest + epoch_step).max(0) as u32);
                self.clock.advance(10);
                let b = batch(records, self.clock.now_ms(), value_bytes);
                let base = self.disk().append(epoch, b.clone()).unwrap();
                let expected = self.memory.append(epoch, b.stamped(base, epoch)).unwrap();
                prop_assert_eq!(base, expected);
            }
            Op::Read {
                from,
                until,
                bytes_max,
            } => {
                let (from, until) = (self.in_log(from), self.in_log(until));
                let disk = self.disk().read(from, until, bytes_max).unwrap();
                let memory = self.memory.read(from, until, bytes_max).unwrap();
                prop_assert_eq!(disk, memory, "read({}, {}, {})", from, until, bytes_max);
            }
            Op::BytesBetween {
                from,
                until,
                enough,
            } => {
                let (from, until) = (self.in_log(from), self.in_log(until));
                let disk = self.disk().bytes_between(from, until, enough).unwrap();
                let memory = self.memory.bytes_between(from, until, enough).unwrap();
                let all = self.memory.bytes_between(from, until, u64::MAX).unwrap();
                // Both may stop counting once they have enough, each at its own step.
                if memory < enough {
                    prop_assert_eq!(disk, memory);
                } else {
                    prop_assert!(disk >= enough && disk <= all, "{} of {}", disk, all);
                }
            }
            Op::Truncate { to } => {
                let to = Runner::between(self.start().saturating_sub(3), self.end(), to);
                self.disk().truncate(to).unwrap();
                self.memory.truncate(to).unwrap();
            }
            Op::TruncateFullyAndStartAt { at } => {
                let at = Runner::between(self.start(), self.end() + 20, at);
                self.disk().truncate_fully_and_start_at(at).unwrap();
                self.memory.truncate_fully_and_start_at(at).unwrap();
            }
            Op::AdvanceLogStartOffset { to } => {
                let to = Runner::between(self.start(), self.end(), to);
                self.advance_log_start_offset(to)?;
            }
            Op::Retention => {
                let to = self.disk().retention_offset();
                let boundary = self.memory.entry_at(to).map(|e| e.base_offset);
                prop_assert!(
                    to == self.memory.log_start_offset()
                        || to == self.memory.log_end_offset()
                        || boundary == Some(to),
                    "retention stops at the log start or at a batch boundary, not {}",
                    to
                );
                self.advance_log_start_offset(to)?;
            }
            Op::Roll => self.disk().lock().roll().unwrap(),
            Op::Flush => {
                self.disk().flush().unwrap();
                self.memory.flush().unwrap();
            }
            Op::Reopen => {
                let disk = self.disk.take().unwrap();
                let durable = disk.durable();
                disk.into_inner().expect("the only handle").close().unwrap();
                self.reopen(&durable);
                self.memory = self.memory_with(self.memory.entries().to_vec());
            }
            Op::CrashProcess => {
                let durable = self.disk().durable();
                drop(self.disk.take());
                self.reopen(&durable);
                self.memory = self.memory_with(self.memory.entries().to_vec());
            }
            Op::CrashPower { kept, lose_indexes } => self.crash_power(kept, lose_indexes)?,
        }
        self.check()
    }

    /// Moves both logs' start to `to`, unless this is the one case where the model's epoch
    /// cache and Kafka's part: a stale leader's batch holding the new log start. Kafka's cache
    /// remembers the larger epoch of the batches deleted below it (`truncateFromStart`); the
    /// model's recomputes the cache from the batches it still holds.
    fn advance_log_start_offset(&mut self, to: Offset) -> Result<(), TestCaseError> {
        let mut advanced = self.memory.clone();
        advanced.advance_log_start_offset(to).unwrap();
        let kafka = clamp(
            self.memory.epoch_entries(),
            advanced.log_start_offset().0,
            self.end(),
        );
        if kafka != advanced.epoch_entries() {
            return Ok(());
        }
        self.disk().advance_log_start_offset(to).unwrap();
        self.memory = advanced;
        Ok(())
    }

    fn reopen(&mut self, durable: &<DiskLog as ReplicaLog>::Durable) {
        let config = disk_config(self.dir.path(), &self.clock);
        self.disk = Some(DiskLog::reopen(&config, durable).unwrap());
    }

    /// The model's log restarted with `entries` from its log start offset.
    fn memory_with(
        &self,
        entries: Vec<gregor_model::log::LogEntry<KafkaBatch>>,
    ) -> MemoryLog<KafkaBatch> {
        let durable = MemoryDurable {
            log_start_offset: self.memory.log_start_offset(),
            entries,
            written_end_offset: self.memory.log_end_offset(),
        };
        MemoryLog::reopen(&MEMORY, &durable).unwrap()
    }

    /// Keeps the flushed bytes and the first `kept` fraction of the unflushed ones, in log
    /// order, cutting the files wherever that falls (mid-batch included).
    fn crash_power(&mut self, kept: f64, lose_indexes: bool) -> Result<(), TestCaseError> {
        let disk = self.disk.take().unwrap();
        let durable = disk.durable();
        let lengths = disk.lock().durable_lengths();
        drop(disk);
        let unflushed: u64 = lengths.iter().map(|l| l.size - l.length).sum();
        let kept_bytes = (unflushed as f64 * kept) as u64;
        let mut budget = kept_bytes;
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
        self.reopen(&durable);
        // The model's log after the same failure: what was flushed, then the unflushed
        // batches whose bytes all reached the disk. The disk's unflushed bytes start with
        // those of batches below the log start, which the model's log no longer holds (they
        // are all unflushed then, and so is every batch the model holds).
        let flushed = self.memory.durable().entries;
        let unflushed_entries = &self.memory.entries()[flushed.len()..];
        let held: u64 = unflushed_entries.iter().map(|e| e.batch.size_bytes()).sum();
        let below_start = unflushed.checked_sub(held);
        prop_assert!(
            below_start.is_some(),
            "{} unflushed bytes on disk, {} held",
            unflushed,
            held
        );
        let mut budget = kept_bytes.saturating_sub(below_start.unwrap_or(0));
        let mut survivors = flushed.clone();
        for entry in unflushed_entries {
            let size = entry.batch.size_bytes();
            if size > budget {
                break;
            }
            budget -= size;
            survivors.push(entry.clone());
        }
        self.memory = self.memory_with(survivors);
        Ok(())
    }

    /// Both logs agree on every offset, epoch and batch.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let (start, end) = (self.memory.log_start_offset(), self.memory.log_end_offset());
        let disk = self.disk.as_ref().unwrap();
        prop_assert_eq!(disk.log_start_offset(), start);
        prop_assert_eq!(disk.log_end_offset(), end);
        prop_assert_eq!(disk.last_epoch(), self.memory.last_epoch());
        prop_assert_eq!(disk.epoch_entries(), self.memory.epoch_entries());
        prop_assert!(disk.failure().is_none());
        let all = disk.read(start, end, u64::MAX).unwrap();
        let count: u64 = all.iter().map(|e| e.batch.record_count()).sum();
        let first_base = all.first().map_or(start, |e| e.base_offset);
        prop_assert_eq!(count, end.0 - first_base.0);
        prop_assert_eq!(all, self.memory.read(start, end, u64::MAX).unwrap());
        Ok(())
    }
}

/// An epoch cache as Kafka's `truncateFromStart` leaves it for a log from `start` to `end`:
/// the latest epoch at or below `start` moved up to it, nothing starting at the end of an
/// empty log.
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
