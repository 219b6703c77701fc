//! A replica's log, behind a trait so the same broker actor runs on the model's in-memory log
//! (tiny records, a few distinct values) and on the runtime's segmented on-disk log (record
//! batches as `Bytes`).
//!
//! The contract every implementation keeps, in Kafka's terms:
//! - the log is a sequence of batches; each batch occupies `record_count` consecutive offsets
//!   starting at its base offset, and is stamped with the leader epoch it was written in;
//! - offsets have no gaps between the log start offset and the log end offset (the offset the
//!   next batch gets); the log start offset only moves forward (retention, a follower following
//!   its leader's), except that `truncate_fully_and_start_at` sets both ends;
//! - the epoch cache (Kafka's `leader-epoch-checkpoint`) lists each epoch larger than every
//!   epoch before it and the offset where it starts; like Kafka's, it ignores a batch whose
//!   epoch is lower than the latest (only an unsafe protocol variant ever appends one);
//! - every operation that changes the log may fail (a full disk, an I/O error): the handler
//!   then stops its step, and the host stops the broker — a crash, which the model explores;
//! - `durable` is what a crash leaves; `open` rebuilds the log from it after a restart. A log
//!   writes through to its own storage: a broker saves nothing on the log's behalf.

pub use crate::group::CoordinatorRecord;
use crate::types::{CrashKind, LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::sync::Arc;

/// An idempotent producer's identity and numbering of a batch (Kafka's batch header fields
/// `producerId`, `producerEpoch`, `baseSequence`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct ProducerBatch {
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: Sequence,
}

/// A producer's batch of records, as stored and replicated: never re-encoded by the broker.
pub trait RecordBatch:
    Clone + Debug + PartialEq + Eq + Hash + PartialOrd + Ord + Serialize + DeserializeOwned
{
    /// How many offsets the batch occupies (Kafka's `lastOffsetDelta + 1`).
    fn record_count(&self) -> u64;

    /// Its size on the wire and on disk, which fetch limits count.
    fn size_bytes(&self) -> u64;

    /// The idempotent producer's fields, if the producer set them.
    fn producer(&self) -> Option<ProducerBatch>;

    /// The batch as a producer numbers it (clients only; a broker never changes a batch).
    fn with_producer(&self, producer: ProducerBatch) -> Self;

    /// A batch of a group coordinator's records, as the coordinator writes it to its partition
    /// of `__consumer_offsets` (one record per key).
    fn coordinator(records: Vec<CoordinatorRecord>) -> Self;

    /// The coordinator's records this batch holds; `None` for a batch no coordinator wrote, or
    /// one it cannot read (a coordinator loading its partition skips it, as Kafka's skips
    /// record versions it does not know).
    fn coordinator_records(&self) -> Option<Vec<CoordinatorRecord>>;
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

/// Which partition a log holds, as its storage names it (a folder `<topic>-<partition>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogName {
    pub topic: String,
    pub partition: u32,
}

/// A failed log operation, in words the host logs before it stops the broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogError(pub String);

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogError {}

/// A replica's log. Reads are bounded; nothing here assumes the log is small or in memory.
pub trait ReplicaLog: Clone + Debug + PartialEq + Hash {
    type Batch: RecordBatch;
    /// What survives a crash (for an on-disk log: its name; the disk itself is durable).
    type Durable: Clone + Debug + PartialEq + Eq + Hash + Serialize + DeserializeOwned;
    /// Where and how logs are opened (for the on-disk log: the data folder and log settings).
    type Config: Clone + Debug;

    /// Creates the log of a partition this broker was just assigned (empty, unless its storage
    /// already holds one of that name).
    fn create(config: &Self::Config, name: &LogName) -> Result<Self, LogError>;

    /// Reopens a log after a restart: what the crash left.
    fn reopen(config: &Self::Config, durable: &Self::Durable) -> Result<Self, LogError>;

    /// The first offset still held; reads below it are out of range.
    fn log_start_offset(&self) -> Offset;

    /// The offset the next appended batch gets.
    fn log_end_offset(&self) -> Offset;

    /// The epoch of the last batch, or `None` when the log holds none.
    fn last_epoch(&self) -> Option<LeaderEpoch>;

    /// Appends `batch` at the log end offset, stamped with `leader_epoch`. Returns the batch's
    /// base offset.
    fn append(&mut self, leader_epoch: LeaderEpoch, batch: Self::Batch)
        -> Result<Offset, LogError>;

    /// Batches in offset order, the first being the one that holds `from` (a read starting
    /// inside a batch returns the whole batch, as Kafka does), none reaching past `until`, and
    /// at most `bytes_max` bytes in all unless the first batch alone is larger (KIP-74: a
    /// reader always progresses). Empty when `from` is at or past `until` or the log end.
    /// `from` is at least the log start offset.
    fn read(
        &self,
        from: Offset,
        until: Offset,
        bytes_max: u64,
    ) -> Result<Vec<LogEntry<Self::Batch>>, LogError>;

    /// Bytes readable from `from` up to `until` (for a held fetch's `min_bytes`), counting
    /// whole batches; may stop counting once it reaches `enough`.
    fn bytes_between(&self, from: Offset, until: Offset, enough: u64) -> Result<u64, LogError>;

    /// Removes every batch whose last offset is at or past `to`; the log end offset becomes at
    /// most `to` (less when `to` falls inside a batch, which goes whole). Durable before it
    /// returns: a truncation a crash undid would bring back divergent batches.
    fn truncate(&mut self, to: Offset) -> Result<(), LogError>;

    /// Empties the log and starts it at `offset` (a follower behind its leader's log start).
    fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Result<(), LogError>;

    /// Moves the log start offset up to `to` (at most the log end offset), deleting the
    /// batches wholly below it.
    fn advance_log_start_offset(&mut self, to: Offset) -> Result<(), LogError>;

    /// How far the log's retention settings would move the log start offset now (the log
    /// start offset itself when they keep everything). The broker bounds it by the HW.
    fn retention_offset(&self) -> Offset;

    /// The epoch cache, in offset order: each epoch present and the offset where it starts.
    fn epoch_entries(&self) -> Vec<EpochEntry>;

    /// Makes everything appended so far durable (fsync); advances the recovery point.
    fn flush(&mut self) -> Result<(), LogError>;

    /// ListOffsets by time: the first offset whose record's timestamp is at or past
    /// `timestamp`, with that timestamp; `None` when every record is older. (The model's
    /// records carry no timestamps: its log finds none.)
    fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(Offset, i64)>, LogError>;

    /// The largest record timestamp in the log and the first offset that has it (KIP-734).
    fn max_timestamp(&self) -> Result<Option<(Offset, i64)>, LogError>;

    /// What a crash would leave now.
    fn durable(&self) -> Self::Durable;

    /// Deletes the log and its storage (its topic was deleted).
    fn delete(&mut self) -> Result<(), LogError>;
}

/// A tiny record of the model: one record per batch, told apart by its value, numbered by
/// its producer when idempotence is on; or a batch of a group coordinator's records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Record {
    pub value: u8,
    pub producer: Option<ProducerBatch>,
    /// A coordinator's batch: its records (one offset each).
    pub coordinator: Option<Arc<[CoordinatorRecord]>>,
}

impl Record {
    pub fn new(value: u8) -> Record {
        Record {
            value,
            producer: None,
            coordinator: None,
        }
    }
}

impl RecordBatch for Record {
    fn record_count(&self) -> u64 {
        self.coordinator
            .as_ref()
            .map_or(1, |records| records.len() as u64)
    }

    fn size_bytes(&self) -> u64 {
        1
    }

    fn producer(&self) -> Option<ProducerBatch> {
        self.producer
    }

    fn with_producer(&self, producer: ProducerBatch) -> Record {
        Record {
            producer: Some(producer),
            ..self.clone()
        }
    }

    fn coordinator(records: Vec<CoordinatorRecord>) -> Record {
        Record {
            value: 0,
            producer: None,
            coordinator: Some(records.into()),
        }
    }

    fn coordinator_records(&self) -> Option<Vec<CoordinatorRecord>> {
        self.coordinator.as_ref().map(|records| records.to_vec())
    }
}

/// How the model's logs behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryLogConfig {
    /// Whether a crash keeps the page cache (process) or only what was flushed (power).
    pub crash: CrashKind,
    /// Whether retention deletes anything: then it would delete the oldest batch at every
    /// check (the model's stand-in for `retention.ms` and `retention.bytes`).
    pub retention: bool,
}

/// What a crash leaves of a [`MemoryLog`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryDurable<B> {
    pub log_start_offset: Offset,
    pub entries: Vec<LogEntry<B>>,
    /// The log end offset before the crash (what was written, flushed or not), so the
    /// checker can tell a restart that lost unflushed records.
    pub written_end_offset: Offset,
}

/// The model's log: batches in a vector, plus how far they were flushed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryLog<B> {
    log_start_offset: Offset,
    entries: Vec<LogEntry<B>>,
    /// Offsets below this were flushed (Kafka's recovery point).
    recovery_point: Offset,
    config: MemoryLogConfig,
}

impl<B: RecordBatch> MemoryLog<B> {
    /// An empty log.
    pub fn empty(config: MemoryLogConfig) -> MemoryLog<B> {
        MemoryLog {
            log_start_offset: Offset(0),
            entries: Vec::new(),
            recovery_point: Offset(0),
            config,
        }
    }

    /// The batches, for properties and tests.
    pub fn entries(&self) -> &[LogEntry<B>] {
        &self.entries
    }

    /// The batch holding `offset`, if the log holds it.
    pub fn entry_at(&self, offset: Offset) -> Option<&LogEntry<B>> {
        if offset < self.log_start_offset {
            return None;
        }
        let index = self.entries.partition_point(|e| e.next_offset() <= offset);
        self.entries.get(index).filter(|e| e.base_offset <= offset)
    }

    fn first_at_or_after(&self, from: Offset) -> usize {
        self.entries.partition_point(|e| e.next_offset() <= from)
    }
}

impl<B: RecordBatch> ReplicaLog for MemoryLog<B> {
    type Batch = B;
    type Durable = MemoryDurable<B>;
    type Config = MemoryLogConfig;

    fn create(config: &MemoryLogConfig, _name: &LogName) -> Result<Self, LogError> {
        Ok(MemoryLog::empty(*config))
    }

    fn reopen(config: &MemoryLogConfig, durable: &Self::Durable) -> Result<Self, LogError> {
        let entries = durable.entries.clone();
        let log_end_offset = entries
            .last()
            .map_or(durable.log_start_offset, LogEntry::next_offset);
        Ok(MemoryLog {
            log_start_offset: durable.log_start_offset,
            entries,
            recovery_point: log_end_offset,
            config: *config,
        })
    }

    fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    fn log_end_offset(&self) -> Offset {
        self.entries
            .last()
            .map_or(self.log_start_offset, LogEntry::next_offset)
    }

    fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.leader_epoch)
    }

    fn append(&mut self, leader_epoch: LeaderEpoch, batch: B) -> Result<Offset, LogError> {
        let base_offset = self.log_end_offset();
        self.entries.push(LogEntry {
            base_offset,
            leader_epoch,
            batch,
        });
        Ok(base_offset)
    }

    fn read(
        &self,
        from: Offset,
        until: Offset,
        bytes_max: u64,
    ) -> Result<Vec<LogEntry<B>>, LogError> {
        let mut bytes = 0;
        let mut read = Vec::new();
        for entry in &self.entries[self.first_at_or_after(from)..] {
            let size = entry.batch.size_bytes();
            if entry.next_offset() > until || (!read.is_empty() && bytes + size > bytes_max) {
                break;
            }
            bytes += size;
            read.push(entry.clone());
        }
        Ok(read)
    }

    fn bytes_between(&self, from: Offset, until: Offset, enough: u64) -> Result<u64, LogError> {
        let mut bytes = 0;
        for entry in &self.entries[self.first_at_or_after(from)..] {
            if entry.next_offset() > until || bytes >= enough {
                break;
            }
            bytes += entry.batch.size_bytes();
        }
        Ok(bytes)
    }

    fn truncate(&mut self, to: Offset) -> Result<(), LogError> {
        let keep = self.entries.partition_point(|e| e.next_offset() <= to);
        self.entries.truncate(keep);
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        Ok(())
    }

    fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Result<(), LogError> {
        self.entries.clear();
        self.log_start_offset = offset;
        self.recovery_point = offset;
        Ok(())
    }

    fn advance_log_start_offset(&mut self, to: Offset) -> Result<(), LogError> {
        let to = to.min(self.log_end_offset());
        if to <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = to;
        let below = self.entries.partition_point(|e| e.next_offset() <= to);
        self.entries.drain(..below);
        Ok(())
    }

    fn retention_offset(&self) -> Offset {
        match (self.config.retention, self.entries.first()) {
            (true, Some(oldest)) => oldest.next_offset(),
            _ => self.log_start_offset,
        }
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
                    start_offset: entry.base_offset.max(self.log_start_offset),
                });
            }
        }
        cache
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.recovery_point = self.log_end_offset();
        Ok(())
    }

    fn offset_for_timestamp(&self, _timestamp: i64) -> Result<Option<(Offset, i64)>, LogError> {
        Ok(None)
    }

    fn max_timestamp(&self) -> Result<Option<(Offset, i64)>, LogError> {
        Ok(None)
    }

    fn durable(&self) -> Self::Durable {
        let entries = match self.config.crash {
            CrashKind::Process => self.entries.clone(),
            CrashKind::Power => {
                let flushed = self
                    .entries
                    .partition_point(|e| e.next_offset() <= self.recovery_point);
                self.entries[..flushed].to_vec()
            }
        };
        MemoryDurable {
            log_start_offset: self.log_start_offset,
            entries,
            written_end_offset: self.log_end_offset(),
        }
    }

    fn delete(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.recovery_point = self.log_start_offset;
        Ok(())
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
        fn size_bytes(&self) -> u64 {
            self.0 * 10
        }
        fn producer(&self) -> Option<ProducerBatch> {
            None
        }
        fn with_producer(&self, _: ProducerBatch) -> Batch {
            self.clone()
        }
        fn coordinator(records: Vec<CoordinatorRecord>) -> Batch {
            Batch(records.len() as u64)
        }
        fn coordinator_records(&self) -> Option<Vec<CoordinatorRecord>> {
            None
        }
    }

    const PROCESS: MemoryLogConfig = MemoryLogConfig {
        crash: CrashKind::Process,
        retention: false,
    };

    fn log_of(batches: &[(u32, u64)]) -> MemoryLog<Batch> {
        let mut log = MemoryLog::empty(PROCESS);
        for &(epoch, count) in batches {
            log.append(LeaderEpoch(epoch), Batch(count)).unwrap();
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
    fn read_inside_a_batch_returns_the_whole_batch_and_is_bounded_by_bytes() {
        let log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        let read = log.read(Offset(4), Offset(6), 1).unwrap();
        assert_eq!(
            read.len(),
            1,
            "the first batch even if larger than the limit"
        );
        assert_eq!(read[0].base_offset, Offset(3));
        assert_eq!(log.read(Offset(0), Offset(6), 1000).unwrap().len(), 3);
        assert_eq!(
            log.read(Offset(0), Offset(6), 50).unwrap().len(),
            2,
            "30 + 20 bytes"
        );
        assert_eq!(
            log.read(Offset(0), Offset(5), 1000).unwrap().len(),
            2,
            "until"
        );
        assert!(log.read(Offset(6), Offset(6), 1000).unwrap().is_empty());
        assert_eq!(log.bytes_between(Offset(3), Offset(6), 1000).unwrap(), 30);
        assert_eq!(
            log.bytes_between(Offset(0), Offset(6), 1).unwrap(),
            30,
            "enough"
        );
    }

    #[test]
    fn truncate_inside_a_batch_removes_the_whole_batch() {
        let mut log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        log.truncate(Offset(4)).unwrap();
        assert_eq!(log.log_end_offset(), Offset(3));
        log.truncate(Offset(3)).unwrap();
        assert_eq!(log.log_end_offset(), Offset(3));
        log.truncate(Offset(0)).unwrap();
        assert_eq!(log.log_end_offset(), Offset(0));
        assert_eq!(log.last_epoch(), None);
    }

    #[test]
    fn the_log_start_offset_moves_up_and_hides_what_is_below() {
        let mut log = log_of(&[(1, 3), (1, 2), (2, 1)]);
        log.advance_log_start_offset(Offset(4)).unwrap();
        assert_eq!(log.log_start_offset(), Offset(4));
        assert_eq!(log.entries().len(), 2, "the batch holding offset 4 stays");
        assert!(log.entry_at(Offset(3)).is_none());
        assert!(log.entry_at(Offset(4)).is_some());
        log.advance_log_start_offset(Offset(2)).unwrap();
        assert_eq!(log.log_start_offset(), Offset(4), "never backwards");
        log.truncate_fully_and_start_at(Offset(9)).unwrap();
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (Offset(9), Offset(9))
        );
        log.append(LeaderEpoch(3), Batch(1)).unwrap();
        assert_eq!(log.entries()[0].base_offset, Offset(9));
    }

    #[test]
    fn retention_would_delete_the_oldest_batch_when_enabled() {
        let mut log = log_of(&[(1, 3), (1, 2)]);
        assert_eq!(log.retention_offset(), Offset(0));
        log.config.retention = true;
        assert_eq!(log.retention_offset(), Offset(3));
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
        let power = MemoryLogConfig {
            crash: CrashKind::Power,
            ..PROCESS
        };
        let mut log: MemoryLog<Batch> = MemoryLog::empty(power);
        log.append(LeaderEpoch(1), Batch(2)).unwrap();
        log.flush().unwrap();
        log.append(LeaderEpoch(1), Batch(1)).unwrap();
        let reopened = MemoryLog::reopen(&power, &log.durable()).unwrap();
        assert_eq!(reopened.log_end_offset(), Offset(2));

        let mut log: MemoryLog<Batch> = MemoryLog::empty(PROCESS);
        log.append(LeaderEpoch(1), Batch(2)).unwrap();
        let reopened = MemoryLog::reopen(&PROCESS, &log.durable()).unwrap();
        assert_eq!(reopened.log_end_offset(), Offset(2), "page cache survives");
    }
}
