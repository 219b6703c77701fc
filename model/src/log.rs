//! The replica's log, behind a trait so the same broker actor runs on the model's in-memory log
//! (tiny records, a few distinct values) and on the runtime's segmented on-disk log (record
//! batches as `Bytes`).
//!
//! The contract every implementation keeps, in Kafka's terms:
//! - the log is a sequence of batches; each batch occupies `record_count` consecutive offsets
//!   starting at its base offset, and is stamped with the leader epoch it was written in;
//! - offsets start at 0 and have no gaps; the log end offset is the offset the next batch gets;
//! - the epoch cache (Kafka's `leader-epoch-checkpoint`) lists each epoch larger than every
//!   epoch before it and the offset where it starts; like Kafka's, it ignores a batch whose
//!   epoch is lower than the latest (only an unsafe protocol variant ever appends one);
//! - `durable` is what a crash leaves: the broker `Save`s it after every change, and `open`
//!   rebuilds the log from it after a restart.

use crate::types::{CrashKind, LeaderEpoch, Offset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// A producer's batch of records, as stored and replicated: never re-encoded by the broker.
pub trait RecordBatch:
    Clone + Debug + PartialEq + Eq + Hash + PartialOrd + Ord + Serialize + DeserializeOwned
{
    /// How many offsets the batch occupies (Kafka's `lastOffsetDelta + 1`).
    fn record_count(&self) -> u64;
}

/// A batch at its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogEntry<B> {
    pub base_offset: Offset,
    pub leader_epoch: LeaderEpoch,
    pub batch: B,
}

impl<B: RecordBatch> LogEntry<B> {
    /// The offset just past the batch's last record.
    pub fn next_offset(&self) -> Offset {
        self.base_offset.plus(self.batch.record_count())
    }
}

/// One line of the epoch cache: the first offset written in a leader epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpochEntry {
    pub leader_epoch: LeaderEpoch,
    pub start_offset: Offset,
}

/// A replica's log. Reads are bounded; nothing here assumes the log is small or in memory.
pub trait ReplicaLog: Clone + Debug + PartialEq + Hash {
    type Batch: RecordBatch;
    /// What survives a crash (for an on-disk log: a handle; the disk itself is durable).
    type Durable: Clone + Debug + PartialEq + Eq + Hash + Serialize + DeserializeOwned;
    /// How to open the log (a directory for the on-disk log).
    type Config: Clone + Debug;

    /// Opens the log: empty on first boot (`durable` is `None`), else what the crash left.
    fn open(config: &Self::Config, durable: Option<&Self::Durable>) -> Self;

    /// The offset the next appended batch gets.
    fn log_end_offset(&self) -> Offset;

    /// The epoch of the last batch, or `None` when the log is empty.
    fn last_epoch(&self) -> Option<LeaderEpoch>;

    /// Appends `batch` at the log end offset, stamped with `leader_epoch`. Returns the batch's
    /// base offset.
    fn append(&mut self, leader_epoch: LeaderEpoch, batch: Self::Batch) -> Offset;

    /// Up to `batches_max` batches in offset order, the first being the one that holds `from`
    /// (a read starting inside a batch returns the whole batch, as Kafka does), none of them
    /// reaching past `until`. Empty when `from` is at or past `until` or the log end.
    fn read(&self, from: Offset, until: Offset, batches_max: usize) -> Vec<LogEntry<Self::Batch>>;

    /// Removes every batch whose last offset is at or past `to`; the log end offset becomes at
    /// most `to` (less when `to` falls inside a batch, which goes whole).
    fn truncate(&mut self, to: Offset);

    /// The epoch cache, in offset order: each epoch present and the offset where it starts.
    fn epoch_entries(&self) -> Vec<EpochEntry>;

    /// Makes everything appended so far durable (fsync); advances the recovery point.
    fn flush(&mut self);

    /// What a crash would leave now.
    fn durable(&self) -> Self::Durable;
}

/// A tiny record of the model: one record per batch, told apart by its value.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Record(pub u8);

impl RecordBatch for Record {
    fn record_count(&self) -> u64 {
        1
    }
}

/// The model's log: batches in a vector, plus how far they were flushed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryLog<B> {
    entries: Vec<LogEntry<B>>,
    /// Offsets below this were flushed (Kafka's recovery point).
    recovery_point: Offset,
    /// Whether a crash keeps the page cache (process) or only what was flushed (power).
    crash: CrashKind,
}

impl<B: RecordBatch> MemoryLog<B> {
    /// The batches, for properties and tests.
    pub fn entries(&self) -> &[LogEntry<B>] {
        &self.entries
    }

    /// The batch holding `offset`, if any.
    pub fn entry_at(&self, offset: Offset) -> Option<&LogEntry<B>> {
        let index = self.entries.partition_point(|e| e.next_offset() <= offset);
        self.entries.get(index).filter(|e| e.base_offset <= offset)
    }
}

impl<B: RecordBatch> ReplicaLog for MemoryLog<B> {
    type Batch = B;
    type Durable = Vec<LogEntry<B>>;
    type Config = CrashKind;

    fn open(crash: &CrashKind, durable: Option<&Self::Durable>) -> Self {
        let entries = durable.cloned().unwrap_or_default();
        let recovery_point = entries.last().map_or(Offset(0), LogEntry::next_offset);
        MemoryLog {
            entries,
            recovery_point,
            crash: *crash,
        }
    }

    fn log_end_offset(&self) -> Offset {
        self.entries.last().map_or(Offset(0), LogEntry::next_offset)
    }

    fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.leader_epoch)
    }

    fn append(&mut self, leader_epoch: LeaderEpoch, batch: B) -> Offset {
        let base_offset = self.log_end_offset();
        self.entries.push(LogEntry {
            base_offset,
            leader_epoch,
            batch,
        });
        base_offset
    }

    fn read(&self, from: Offset, until: Offset, batches_max: usize) -> Vec<LogEntry<B>> {
        let first = self.entries.partition_point(|e| e.next_offset() <= from);
        self.entries[first..]
            .iter()
            .take_while(|e| e.next_offset() <= until)
            .take(batches_max)
            .cloned()
            .collect()
    }

    fn truncate(&mut self, to: Offset) {
        let keep = self.entries.partition_point(|e| e.next_offset() <= to);
        self.entries.truncate(keep);
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
    }

    fn epoch_entries(&self) -> Vec<EpochEntry> {
        let mut cache: Vec<EpochEntry> = Vec::new();
        for entry in &self.entries {
            if cache
                .last()
                .is_none_or(|c| c.leader_epoch < entry.leader_epoch)
            {
                cache.push(EpochEntry {
                    leader_epoch: entry.leader_epoch,
                    start_offset: entry.base_offset,
                });
            }
        }
        cache
    }

    fn flush(&mut self) {
        self.recovery_point = self.log_end_offset();
    }

    fn durable(&self) -> Self::Durable {
        match self.crash {
            CrashKind::Process => self.entries.clone(),
            CrashKind::Power => {
                let flushed = self
                    .entries
                    .partition_point(|e| e.next_offset() <= self.recovery_point);
                self.entries[..flushed].to_vec()
            }
        }
    }
}

/// The answer to OffsetForLeaderEpoch: the largest epoch the log knows that is not larger than
/// the one asked, and where that epoch ends (KIP-279). `leader_epoch` is `None` when every
/// epoch the log knows is larger; `end_offset` is then where the log's first epoch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EpochEndOffset {
    pub leader_epoch: Option<LeaderEpoch>,
    pub end_offset: Offset,
}

/// KIP-279's lookup over an epoch cache: the largest epoch <= `requested` and its end offset
/// (the start of the next epoch in the cache, or `log_end_offset` for the last).
pub fn end_offset_for_epoch(
    cache: &[EpochEntry],
    log_end_offset: Offset,
    requested: LeaderEpoch,
) -> EpochEndOffset {
    let larger = cache.partition_point(|e| e.leader_epoch <= requested);
    let end_offset = cache.get(larger).map_or(log_end_offset, |e| e.start_offset);
    match larger.checked_sub(1) {
        Some(found) => EpochEndOffset {
            leader_epoch: Some(cache[found].leader_epoch),
            end_offset,
        },
        None => EpochEndOffset {
            leader_epoch: None,
            end_offset,
        },
    }
}

/// KIP-101's lookup (Kafka 0.11): the start offset of the first epoch larger than `requested`,
/// or the log end offset when there is none, whether or not the log knows `requested` itself.
pub fn next_epoch_start_offset(
    cache: &[EpochEntry],
    log_end_offset: Offset,
    requested: LeaderEpoch,
) -> Offset {
    cache
        .iter()
        .find(|e| e.leader_epoch > requested)
        .map_or(log_end_offset, |e| e.start_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of several records, to test offset arithmetic the model's records never need.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    struct Batch(u64);

    impl RecordBatch for Batch {
        fn record_count(&self) -> u64 {
            self.0
        }
    }

    fn log_of(batches: &[(u32, u64)]) -> MemoryLog<Batch> {
        let mut log = MemoryLog::open(&CrashKind::Process, None);
        for &(epoch, count) in batches {
            log.append(LeaderEpoch(epoch), Batch(count));
        }
        log
    }

    #[test]
    fn append_assigns_consecutive_offsets_per_record() {
        let log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        let bases: Vec<u64> = log.entries().iter().map(|e| e.base_offset.0).collect();
        assert_eq!(bases, vec![0, 3, 5]);
        assert_eq!(log.log_end_offset(), Offset(6));
        assert_eq!(log.last_epoch(), Some(LeaderEpoch(2)));
    }

    #[test]
    fn read_inside_a_batch_returns_the_whole_batch_and_is_bounded() {
        let log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        let read = log.read(Offset(4), Offset(6), 1);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].base_offset, Offset(3));
        assert_eq!(log.read(Offset(0), Offset(6), 10).len(), 3);
        assert_eq!(
            log.read(Offset(0), Offset(5), 10).len(),
            2,
            "stops at until"
        );
        assert!(log.read(Offset(6), Offset(6), 10).is_empty());
    }

    #[test]
    fn truncate_inside_a_batch_removes_the_whole_batch() {
        let mut log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        log.truncate(Offset(4));
        assert_eq!(log.log_end_offset(), Offset(3));
        log.truncate(Offset(3));
        assert_eq!(log.log_end_offset(), Offset(3));
        log.truncate(Offset(0));
        assert_eq!(log.log_end_offset(), Offset(0));
        assert_eq!(log.last_epoch(), None);
    }

    #[test]
    fn epoch_cache_lists_each_epoch_start() {
        let log = log_of(&[(1, 2), (3, 1), (3, 1), (4, 1)]);
        let cache = log.epoch_entries();
        let pairs: Vec<(u32, u64)> = cache
            .iter()
            .map(|e| (e.leader_epoch.0, e.start_offset.0))
            .collect();
        assert_eq!(pairs, vec![(1, 0), (3, 2), (4, 4)]);
    }

    #[test]
    fn kip279_lookup_answers_largest_epoch_not_above_the_request() {
        let log = log_of(&[(1, 2), (3, 2)]);
        let cache = log.epoch_entries();
        let leo = log.log_end_offset();
        let at = |e| end_offset_for_epoch(&cache, leo, LeaderEpoch(e));
        assert_eq!(at(1).leader_epoch, Some(LeaderEpoch(1)));
        assert_eq!(at(1).end_offset, Offset(2));
        assert_eq!(at(2).leader_epoch, Some(LeaderEpoch(1)), "epoch 2 unknown");
        assert_eq!(at(2).end_offset, Offset(2));
        assert_eq!(at(3).end_offset, Offset(4));
        assert_eq!(at(9).leader_epoch, Some(LeaderEpoch(3)));
        assert_eq!(at(0).leader_epoch, None);
        assert_eq!(at(0).end_offset, Offset(0));
    }

    #[test]
    fn kip101_lookup_answers_next_epoch_start_even_for_unknown_epochs() {
        let log = log_of(&[(1, 2), (3, 2)]);
        let cache = log.epoch_entries();
        let leo = log.log_end_offset();
        assert_eq!(
            next_epoch_start_offset(&cache, leo, LeaderEpoch(2)),
            Offset(2)
        );
        assert_eq!(
            next_epoch_start_offset(&cache, leo, LeaderEpoch(3)),
            Offset(4)
        );
    }

    #[test]
    fn power_crash_keeps_only_the_flushed_prefix() {
        let mut log: MemoryLog<Batch> = MemoryLog::open(&CrashKind::Power, None);
        log.append(LeaderEpoch(1), Batch(2));
        log.flush();
        log.append(LeaderEpoch(1), Batch(1));
        let reopened = MemoryLog::open(&CrashKind::Power, Some(&log.durable()));
        assert_eq!(reopened.log_end_offset(), Offset(2));

        let mut log: MemoryLog<Batch> = MemoryLog::open(&CrashKind::Process, None);
        log.append(LeaderEpoch(1), Batch(2));
        let reopened = MemoryLog::open(&CrashKind::Process, Some(&log.durable()));
        assert_eq!(reopened.log_end_offset(), Offset(2), "page cache survives");
    }
}
