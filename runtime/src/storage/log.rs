//! A partition's log: its segments in offset order (the last one active), the leader-epoch
//! cache with its `leader-epoch-checkpoint`, the log start offset and the recovery point.
//!
//! The contract is the model's `ReplicaLog` (see `gregor_model::log`), plus what a disk adds:
//! rolling, reads by timestamp, flushing, and recovery on open. Any I/O error leaves the log
//! refusing further writes ([`StorageError::Failed`]): the host then stops the broker, which
//! the model treats as a crash.
//!
//! The log start offset may lie inside a segment, even inside a batch (a follower takes its
//! leader's, which retention bounded by the high watermark); only segments wholly below it are
//! deleted, and never the active one. Moving it is checkpointed before any file goes, and it
//! does not raise the recovery point: the batches above it may be unflushed, and recovery must
//! still be free to cut them. A power failure can then leave the log ending below its start;
//! opening empties it and starts it there, as Kafka's `LogLoader` does. Retention only says how
//! far it would move the log start ([`PartitionLog::retention_offset`]): the broker bounds
//! that by the high watermark and moves it ([`PartitionLog::advance_log_start_offset`]).

use super::batch::KafkaBatch;
use super::data_dir::{DataDir, PartitionOffsets, DELETE_SUFFIX};
use super::segment::{self, Segment};
use super::{checkpoint, Clock, LogConfig, StorageError, TopicPartition};
use bytes::Bytes;
use gregor_model::log::{EpochEntry, LogEntry, RecordBatch};
use gregor_model::types::{LeaderEpoch, Offset};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// How many bytes of a segment file a power failure now would keep (what was fsynced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurableLength {
    pub path: PathBuf,
    pub length: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct PartitionLog {
    data_dir: Arc<DataDir>,
    topic_partition: TopicPartition,
    path: PathBuf,
    config: LogConfig,
    clock: Arc<dyn Clock>,
    /// Never empty; the last is the active segment.
    segments: Vec<Segment>,
    log_start_offset: u64,
    recovery_point: u64,
    epochs: Vec<EpochEntry>,
    /// When the oldest unflushed batch was appended (for `flush.ms`).
    unflushed_since_ms: Option<i64>,
    /// A segment file was created or deleted since the folder was last fsynced.
    dir_dirty: bool,
    last_recovery_checkpoint_ms: i64,
    /// See [`PartitionLog::last_epoch`].
    last_batch_epoch: Option<LeaderEpoch>,
    /// The first I/O error; once set, every operation fails.
    failure: Option<String>,
    /// The partition's topic was deleted, files and all: every operation fails.
    deleted: bool,
}

impl PartitionLog {
    /// Opens the partition's folder in `data_dir` (creating it on first use) and recovers it:
    /// segments wholly below the recovery point are checked for structure only; the rest are
    /// re-read with every CRC checked, and a torn or corrupt tail after the recovery point is
    /// cut with a warning. A problem below the recovery point is an error.
    pub fn open(
        data_dir: Arc<DataDir>,
        topic_partition: TopicPartition,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<PartitionLog, StorageError> {
        config.validate()?;
        let path = data_dir.path().join(topic_partition.to_string());
        if !path.is_dir() {
            // A new partition: what the checkpoints say of that name was a deleted one's
            // (its folder goes before its checkpoint lines do).
            data_dir.update(&topic_partition, |o| *o = PartitionOffsets::default());
        }
        fs::create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
        let bases = list_segments(&path)?;
        let saved = data_dir.offsets(&topic_partition);
        let now = clock.now_ms();
        let mut log = PartitionLog {
            data_dir,
            topic_partition,
            path,
            config,
            clock,
            segments: Vec::new(),
            log_start_offset: 0,
            recovery_point: saved.recovery_point.unwrap_or(0),
            epochs: Vec::new(),
            unflushed_since_ms: None,
            dir_dirty: false,
            last_recovery_checkpoint_ms: now,
            last_batch_epoch: None,
            failure: None,
            deleted: false,
        };
        let recovered = log.load_segments(&bases, saved.log_start_offset.unwrap_or(0))?;
        log.load_epochs(recovered)?;
        log.last_batch_epoch = log.read_last_batch_epoch()?;
        // What recovery read back is now made durable: the log as opened is the log a crash
        // would leave (the model's `open`).
        log.flush()?;
        log.data_dir.update(&log.topic_partition, |o| {
            o.log_start_offset = Some(log.log_start_offset);
        });
        log.data_dir.checkpoint_recovery_points()?;
        log.data_dir.checkpoint_log_start_offsets()?;
        Ok(log)
    }

    /// Opens and checks every segment; returns the (epoch, base offset) of each batch that was
    /// recovered (re-read) rather than trusted.
    fn load_segments(
        &mut self,
        bases: &[u64],
        saved_log_start: u64,
    ) -> Result<Vec<(i32, u64)>, StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StorageError::io(&path, e)
        };
        let mut recovered = Vec::new();
        let mut cut_at: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            let mut segment = Segment::open(&self.path, base).map_err(io(&self.path))?;
            let log_path = segment.log_path().to_path_buf();
            if let Some(previous) = self.segments.last() {
                let end = previous.next_offset();
                if end != base && end >= self.recovery_point {
                    // The segment before lost its unflushed tail: what follows goes with it.
                    tracing::warn!(
                        "{}: starts at offset {base} but the log now ends at {end}; \
                         dropping it and the segments after it (unflushed)",
                        log_path.display()
                    );
                    drop(segment);
                    cut_at = Some(i);
                    break;
                }
                if end != base {
                    return Err(StorageError::Layout {
                        path: log_path,
                        why: format!(
                            "the segment starts at offset {base} but the one before ends at {}",
                            previous.next_offset()
                        ),
                    });
                }
            }
            let wholly_flushed = bases
                .get(i + 1)
                .is_some_and(|&next| next <= self.recovery_point);
            if wholly_flushed {
                let problem = segment
                    .load_flushed(self.config.index_interval_bytes)
                    .map_err(io(&log_path))?;
                if let Some((position, why)) = problem {
                    return Err(self.corrupt_flushed(&log_path, position, why));
                }
                self.segments.push(segment);
                continue;
            }
            let scan = segment
                .recover(self.config.index_interval_bytes)
                .map_err(io(&log_path))?;
            recovered.extend(scan.epochs.iter().copied());
            if let Some((position, why)) = scan.problem {
                if scan.next_offset < self.recovery_point {
                    return Err(self.corrupt_flushed(&log_path, position, why));
                }
                tracing::warn!(
                    "{}, byte {position} (offset {}): {why}; truncating the unflushed tail here",
                    log_path.display(),
                    scan.next_offset
                );
                segment.truncate_at(position).map_err(io(&log_path))?;
                cut_at = Some(i + 1);
            }
            self.segments.push(segment);
            if cut_at.is_some() {
                break;
            }
        }
        if let Some(first_gone) = cut_at {
            for &base in &bases[first_gone..] {
                let segment = Segment::open(&self.path, base).map_err(io(&self.path))?;
                tracing::warn!(
                    "{}: after a truncated segment; deleting it",
                    segment.log_path().display()
                );
                segment.delete().map_err(io(&self.path))?;
                self.dir_dirty = true;
            }
        }
        if self.segments.is_empty() {
            let segment = Segment::create(&self.path, saved_log_start).map_err(io(&self.path))?;
            self.segments.push(segment);
            self.dir_dirty = true;
        }
        self.log_start_offset = saved_log_start.max(self.segments[0].base_offset);
        if self.log_end_offset() < self.log_start_offset {
            // The log start was moved over batches a power failure then lost.
            tracing::warn!(
                "{}: the log ends at offset {} below its start {}; starting it again, empty, \
                 at its start",
                self.path.display(),
                self.log_end_offset(),
                self.log_start_offset
            );
            self.replace_segments(self.log_start_offset)?;
        } else {
            // A crash between checkpointing the log start and deleting the files below it.
            self.delete_segments_below_log_start()?;
        }
        self.recovery_point = self
            .recovery_point
            .clamp(self.log_start_offset, self.log_end_offset());
        Ok(recovered)
    }

    /// Deletes every segment and starts a single empty one at `base_offset`. The old ones
    /// leave the list only once the new one exists: a log that failed halfway still has a
    /// segment to answer its offsets from.
    fn replace_segments(&mut self, base_offset: u64) -> Result<(), StorageError> {
        self.dir_dirty = true;
        for segment in &self.segments {
            segment
                .delete()
                .map_err(|e| StorageError::io(segment.log_path(), e))?;
        }
        let segment = Segment::create(&self.path, base_offset)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.segments = vec![segment];
        Ok(())
    }

    /// Deletes the segments wholly below the log start offset, never the active one.
    fn delete_segments_below_log_start(&mut self) -> Result<(), StorageError> {
        let start = self.log_start_offset;
        let count =
            self.segments[..self.segments.len() - 1].partition_point(|s| s.next_offset() <= start);
        for segment in self.segments.drain(..count) {
            let path = segment.log_path().to_path_buf();
            tracing::info!(
                "{}: below the log start offset {start}; deleted",
                path.display()
            );
            segment.delete().map_err(|e| StorageError::io(&path, e))?;
            self.dir_dirty = true;
        }
        Ok(())
    }

    fn corrupt_flushed(&self, path: &Path, position: u64, why: String) -> StorageError {
        StorageError::CorruptFlushed {
            path: path.to_path_buf(),
            position,
            recovery_point: self.recovery_point,
            why,
        }
    }

    /// The epoch cache: the checkpoint, cut to the recovered log and completed with the epochs
    /// of recovered batches; rebuilt from every batch header when the checkpoint is missing.
    fn load_epochs(&mut self, recovered: Vec<(i32, u64)>) -> Result<(), StorageError> {
        let file = self.path.join(LEADER_EPOCH_CHECKPOINT);
        let saved = checkpoint::read(&file, 2)?;
        let before = saved.clone();
        match saved {
            Some(entries) => {
                for (line, entry) in entries.iter().enumerate() {
                    self.epochs.push(EpochEntry {
                        leader_epoch: LeaderEpoch(checkpoint::field(&file, line, &entry[0])?),
                        start_offset: Offset(checkpoint::field(&file, line, &entry[1])?),
                    });
                }
                let end = self.log_end_offset();
                self.epochs.retain(|e| e.start_offset.0 < end);
                for (epoch, base) in recovered {
                    self.assign_epoch(epoch, base);
                }
            }
            None => {
                if self.log_end_offset() > self.log_start_offset {
                    tracing::warn!(
                        "{}: missing; rebuilding the epoch cache from the batches",
                        file.display()
                    );
                }
                let mut found = Vec::new();
                for segment in &self.segments {
                    let scan = segment
                        .scan(0, segment.base_offset, false)
                        .map_err(|e| StorageError::io(segment.log_path(), e))?;
                    found.extend(scan.epochs);
                }
                for (epoch, base) in found {
                    self.assign_epoch(epoch, base);
                }
            }
        }
        self.clamp_epochs_to_log_start();
        let lines = self.epoch_lines();
        if before
            .as_ref()
            .map(|b| b.iter().map(|f| f.join(" ")).collect::<Vec<_>>())
            != Some(lines)
        {
            self.write_epoch_checkpoint()?;
        }
        Ok(())
    }

    /// Kafka's `LeaderEpochFileCache.assign`: a new epoch starts where its first batch is; an
    /// epoch not larger than the latest is ignored, and so is a batch before the latest
    /// epoch's start (recovery re-reads batches below the log start that the cache, clamped
    /// to it, no longer covers).
    fn assign_epoch(&mut self, epoch: i32, base_offset: u64) -> bool {
        let epoch = LeaderEpoch(epoch.max(0) as u32);
        let stale = |e: &EpochEntry| e.leader_epoch >= epoch || e.start_offset.0 > base_offset;
        if self.epochs.last().is_some_and(stale) {
            return false;
        }
        self.epochs.push(EpochEntry {
            leader_epoch: epoch,
            start_offset: Offset(base_offset),
        });
        true
    }

    /// Drops epochs that end before the log start; the first kept starts at the log start
    /// (Kafka's `truncateFromStart`), unless that is the end of an empty log.
    fn clamp_epochs_to_log_start(&mut self) {
        let start = Offset(self.log_start_offset);
        let first_kept = self
            .epochs
            .partition_point(|e| e.start_offset <= start)
            .saturating_sub(1);
        self.epochs.drain(..first_kept);
        if let Some(first) = self.epochs.first_mut() {
            first.start_offset = first.start_offset.max(start);
        }
        let end = Offset(self.log_end_offset());
        self.epochs.retain(|e| e.start_offset < end);
    }

    fn epoch_lines(&self) -> Vec<String> {
        self.epochs
            .iter()
            .map(|e| format!("{} {}", e.leader_epoch.0, e.start_offset.0))
            .collect()
    }

    fn write_epoch_checkpoint(&mut self) -> Result<(), StorageError> {
        let lines = self.epoch_lines();
        let result = checkpoint::write(&self.path.join(LEADER_EPOCH_CHECKPOINT), &lines);
        self.fail_on_error(result)
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_end_offset(&self) -> u64 {
        self.active().next_offset()
    }

    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }

    pub fn epoch_entries(&self) -> &[EpochEntry] {
        &self.epochs
    }

    /// The epoch of the last batch at or above the log start offset (the model's
    /// `last_epoch`), which is the epoch cache's latest unless a stale leader appended since.
    pub fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.last_batch_epoch
    }

    /// Reads the epoch of the last batch at or above the log start offset from its header.
    fn read_last_batch_epoch(&self) -> Result<Option<LeaderEpoch>, StorageError> {
        let end = self.log_end_offset();
        if end <= self.log_start_offset {
            return Ok(None);
        }
        let segment = &self.segments[self.segment_holding(end - 1)];
        let found = segment
            .position_of(end - 1)
            .map_err(|e| StorageError::io(segment.log_path(), e))?;
        let (_, header) = found.ok_or_else(|| StorageError::Layout {
            path: segment.log_path().to_path_buf(),
            why: format!("no batch holds offset {}, below the log end", end - 1),
        })?;
        Ok(Some(LeaderEpoch(
            header.partition_leader_epoch.max(0) as u32
        )))
    }

    /// The segments' base offsets, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }

    /// Bytes in every segment.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// The first I/O error, if one happened.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.deleted {
            return Err(StorageError::Deleted {
                path: self.path.clone(),
            });
        }
        match &self.failure {
            Some(first) => Err(StorageError::Failed {
                path: self.path.clone(),
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records the first error, which fails every later operation.
    fn fail_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result {
            self.note_failure(e);
        }
        result
    }

    /// Records `error` as the log's failure, unless it is a caller's mistake or one is
    /// already recorded (for errors of reads, which take `&self`).
    pub fn note_failure(&mut self, error: &StorageError) {
        let caller_mistake = matches!(
            error,
            StorageError::BelowLogStart { .. } | StorageError::Deleted { .. }
        );
        if self.failure.is_none() && !caller_mistake {
            tracing::error!("{error}; the log takes no more writes");
            self.failure = Some(error.to_string());
        }
    }

    /// Appends `batch` at the log end offset, writing its `baseOffset` and
    /// `partitionLeaderEpoch` in place; rolls first if the active segment is full or old.
    /// Returns the batch's base offset.
    pub fn append(
        &mut self,
        leader_epoch: LeaderEpoch,
        batch: &KafkaBatch,
    ) -> Result<u64, StorageError> {
        self.check_usable()?;
        let result = self.append_inner(leader_epoch, batch);
        self.fail_on_error(result)
    }

    fn append_inner(
        &mut self,
        leader_epoch: LeaderEpoch,
        batch: &KafkaBatch,
    ) -> Result<u64, StorageError> {
        let base_offset = self.log_end_offset();
        let now = self.clock.now_ms();
        let active = self.active();
        let full = active.size() + batch.len() as u64 > self.config.segment_bytes;
        let old = active
            .first_timestamp()
            .is_some_and(|first| now - first > self.config.segment_ms);
        let offsets_overflow =
            base_offset + batch.record_count() - active.base_offset > u64::from(u32::MAX);
        if !active.is_empty() && (full || old || offsets_overflow) {
            self.roll()?;
        }
        let prefix = batch.stamped_prefix(Offset(base_offset), leader_epoch);
        let interval = self.config.index_interval_bytes;
        let active = self.active_mut();
        active
            .append(&prefix, batch, base_offset, interval)
            .map_err(|e| StorageError::io(active.log_path(), e))?;
        self.last_batch_epoch = Some(leader_epoch);
        if self.assign_epoch(leader_epoch.0 as i32, base_offset) {
            self.write_epoch_checkpoint()?;
        }
        self.unflushed_since_ms.get_or_insert(now);
        let unflushed = self.log_end_offset() - self.recovery_point;
        if self.config.flush.messages.is_some_and(|n| unflushed >= n) {
            self.flush()?;
        } else {
            self.flush_if_due()?;
        }
        Ok(base_offset)
    }

    /// Starts a new active segment at the log end offset (unless the active one is empty).
    /// The old one goes if the log start offset already passed it (it was active then).
    pub fn roll(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        if self.active().is_empty() {
            return Ok(());
        }
        let result = (|| {
            let base = self.log_end_offset();
            let active = self
                .segments
                .last_mut()
                .expect("a log always has a segment");
            active
                .write_indexes(true)
                .map_err(|e| StorageError::io(active.log_path(), e))?;
            let segment = Segment::create(&self.path, base)
                .map_err(|e| StorageError::io(&segment::file_name(&self.path, base, "log"), e))?;
            self.segments.push(segment);
            self.dir_dirty = true;
            self.delete_segments_below_log_start()
        })();
        self.fail_on_error(result)
    }

    /// Whole batches in offset order, the first being the one that holds `from`, none
    /// reaching past `until`, and at most `bytes_max` bytes in all unless the first batch
    /// alone is larger (then just it: KIP-74, a reader always progresses). Each batch is a
    /// slice of one positioned read per segment, which stops where `until` does. Reading below
    /// the log start offset is the caller's mistake (Kafka's OFFSET_OUT_OF_RANGE), not a
    /// failure of the log.
    pub fn read(
        &self,
        from: u64,
        until: u64,
        bytes_max: u64,
    ) -> Result<Vec<LogEntry<KafkaBatch>>, StorageError> {
        self.check_in_range(from)?;
        let mut entries = Vec::new();
        let until = until.min(self.log_end_offset());
        if from >= until {
            return Ok(entries);
        }
        let mut bytes_left = bytes_max;
        let mut offset = from;
        for segment in &self.segments[self.segment_holding(from)..] {
            let io = |e| StorageError::io(segment.log_path(), e);
            let Some((position, header)) = segment.position_of(offset).map_err(io)? else {
                continue;
            };
            if header.base_offset as u64 + header.record_count() > until {
                break;
            }
            let len = if entries.is_empty() {
                bytes_left.max(header.total_bytes)
            } else if bytes_left < header.total_bytes {
                break;
            } else {
                bytes_left
            };
            let end = segment.end_of_batches_below(until).map_err(io)?;
            let chunk = segment
                .read(position, len.min(end - position))
                .map_err(io)?;
            let taken =
                slice_batches(chunk, until, &mut entries).map_err(|why| StorageError::Layout {
                    path: segment.log_path().to_path_buf(),
                    why: format!("byte {position}: {why}"),
                })?;
            bytes_left = bytes_left.saturating_sub(taken.bytes);
            offset = taken.next_offset;
            // Go on to the next segment only after taking this one to its end.
            let segment_left = position + taken.bytes < segment.size();
            if taken.stopped || taken.bytes == 0 || segment_left {
                break;
            }
        }
        Ok(entries)
    }

    /// The bytes of the whole batches a read from `from` up to `until` would return without a
    /// byte limit (a held fetch's `min_bytes`), from the segments' positions: no batch is
    /// read. Counts segment by segment, stopping once it has `enough`.
    pub fn bytes_between(&self, from: u64, until: u64, enough: u64) -> Result<u64, StorageError> {
        self.check_in_range(from)?;
        let until = until.min(self.log_end_offset());
        let mut bytes = 0;
        if from >= until {
            return Ok(bytes);
        }
        let mut offset = from;
        for segment in &self.segments[self.segment_holding(from)..] {
            let io = |e| StorageError::io(segment.log_path(), e);
            let Some((position, _)) = segment.position_of(offset).map_err(io)? else {
                continue;
            };
            let end = segment.end_of_batches_below(until).map_err(io)?;
            bytes += end.saturating_sub(position);
            if end < segment.size() || bytes >= enough {
                break;
            }
            offset = segment.next_offset();
        }
        Ok(bytes)
    }

    /// Refuses a read of a log that cannot serve one, or below the log start offset.
    fn check_in_range(&self, from: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        if from < self.log_start_offset {
            return Err(StorageError::BelowLogStart {
                offset: from,
                log_start_offset: self.log_start_offset,
            });
        }
        Ok(())
    }

    /// The index of the segment holding `offset` (the first if it is below them all).
    fn segment_holding(&self, offset: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// Kafka's ListOffsets by time: the earliest offset whose record timestamp is at or past
    /// `timestamp`, and that record's timestamp; `None` when every record is older. Records
    /// are decoded (decompressed if need be) only in the one batch that holds the answer.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>, StorageError> {
        self.check_usable()?;
        for segment in &self.segments {
            if segment.max_timestamp() < timestamp {
                continue;
            }
            let io = |e| StorageError::io(segment.log_path(), e);
            let Some((position, header)) = segment.position_of_timestamp(timestamp).map_err(io)?
            else {
                continue;
            };
            let mut bytes = segment.read(position, header.total_bytes).map_err(io)?;
            let records =
                kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
                    StorageError::Layout {
                        path: segment.log_path().to_path_buf(),
                        why: format!("byte {position}: the batch does not decode: {e}"),
                    }
                })?;
            let found = records
                .records
                .iter()
                .find(|r| r.timestamp >= timestamp)
                .map(|r| (r.offset as u64, r.timestamp));
            if let Some((offset, ts)) = found {
                return Ok(Some((offset.max(self.log_start_offset), ts)));
            }
        }
        Ok(None)
    }

    /// KIP-734's ListOffsets by max timestamp: the largest record timestamp in the log and the
    /// first offset that has it; `None` for an empty log.
    pub fn max_timestamp(&self) -> Result<Option<(u64, i64)>, StorageError> {
        self.check_usable()?;
        let newest = self.segments.iter().map(|s| s.max_timestamp()).max();
        match newest {
            Some(timestamp) if self.log_end_offset() > self.log_start_offset() => {
                self.offset_for_timestamp(timestamp)
            }
            _ => Ok(None),
        }
    }

    /// Removes every batch whose last offset is at or past `to` (what a follower does after
    /// OffsetForLeaderEpoch), across segments, and the epochs that started there; durable
    /// before it returns. When that takes the batch holding the log start offset, the log is
    /// left empty at its start: Kafka's `truncateTo` would lower the log start offset to `to`,
    /// but in the model's log it only moves forward.
    pub fn truncate(&mut self, to: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        if to >= self.log_end_offset() {
            return Ok(());
        }
        let result = self.truncate_inner(to);
        self.fail_on_error(result)
    }

    fn truncate_inner(&mut self, to: u64) -> Result<(), StorageError> {
        let start = self.log_start_offset;
        if to <= start {
            return self.start_at(start);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StorageError::io(&path, e)
        };
        let keep = self
            .segments
            .partition_point(|s| s.base_offset <= to)
            .max(1);
        for segment in self.segments.drain(keep..) {
            let path = segment.log_path().to_path_buf();
            segment.delete().map_err(io(&path))?;
        }
        let active = self.active_mut();
        active.truncate_to(to).map_err(io(active.log_path()))?;
        checkpoint::sync_dir(&self.path).map_err(io(&self.path))?;
        if self.log_end_offset() < start {
            // `to` fell inside the batch holding the log start offset, which went whole.
            return self.start_at(start);
        }
        self.last_batch_epoch = self.read_last_batch_epoch()?;
        let end = Offset(self.log_end_offset());
        let epochs_before = self.epochs.len();
        self.epochs.retain(|e| e.start_offset < end);
        if self.epochs.len() != epochs_before {
            self.write_epoch_checkpoint()?;
        }
        self.lower_recovery_point(end.0)
    }

    /// Lowers the recovery point to `offset` if it is above, and checkpoints it: a recovery
    /// point above the log end would make a later torn append look like flushed data lost (as
    /// Kafka checkpoints it after truncating).
    fn lower_recovery_point(&mut self, offset: u64) -> Result<(), StorageError> {
        if self.recovery_point <= offset {
            return Ok(());
        }
        self.recovery_point = offset;
        self.data_dir
            .update(&self.topic_partition, |o| o.recovery_point = Some(offset));
        self.data_dir.checkpoint_recovery_points()
    }

    /// Empties the log and starts it at `offset`, below or above its old ends (Kafka's
    /// `truncateFullyAndStartAt`: a follower behind its leader's log start); durable before it
    /// returns.
    pub fn truncate_fully_and_start_at(&mut self, offset: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.start_at(offset);
        self.fail_on_error(result)
    }

    fn start_at(&mut self, offset: u64) -> Result<(), StorageError> {
        // The new start is checkpointed before any file goes: a crash in between leaves a log
        // that opening empties, when it ends at or below that start (a follower's case).
        self.log_start_offset = offset;
        self.data_dir
            .update(&self.topic_partition, |o| o.log_start_offset = Some(offset));
        self.data_dir.checkpoint_log_start_offsets()?;
        self.replace_segments(offset)?;
        checkpoint::sync_dir(&self.path).map_err(|e| StorageError::io(&self.path, e))?;
        self.dir_dirty = false;
        self.unflushed_since_ms = None;
        self.last_batch_epoch = None;
        self.epochs.clear();
        self.write_epoch_checkpoint()?;
        self.lower_recovery_point(offset)?;
        self.recovery_point = offset;
        self.data_dir
            .update(&self.topic_partition, |o| o.recovery_point = Some(offset));
        Ok(())
    }

    /// Moves the log start offset up to `to` (at most the log end offset, never down) and
    /// deletes the segments wholly below it, never the active one. The new start is
    /// checkpointed before any file goes; the epoch cache then starts there (Kafka's
    /// `truncateFromStart`). The recovery point stays: what lies above the new start may be
    /// unflushed.
    pub fn advance_log_start_offset(&mut self, to: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        let to = to.min(self.log_end_offset());
        if to <= self.log_start_offset {
            return Ok(());
        }
        let result = self.advance_inner(to);
        self.fail_on_error(result)
    }

    fn advance_inner(&mut self, to: u64) -> Result<(), StorageError> {
        self.log_start_offset = to;
        if to == self.log_end_offset() {
            self.last_batch_epoch = None;
        }
        self.data_dir
            .update(&self.topic_partition, |o| o.log_start_offset = Some(to));
        self.data_dir.checkpoint_log_start_offsets()?;
        let epochs_before = self.epochs.clone();
        self.clamp_epochs_to_log_start();
        if self.epochs != epochs_before {
            self.write_epoch_checkpoint()?;
        }
        self.delete_segments_below_log_start()
    }

    /// How far `retention.ms` and `retention.bytes` would move the log start offset now: past
    /// the oldest segments whose newest record is older than `retention.ms`, or without which
    /// the log is still at least `retention.bytes`; never past the start of the active segment
    /// (Kafka rolls an expired active segment first; this log does not). The log start offset
    /// itself when they keep everything. Not bounded by the high watermark: the broker does
    /// that before it moves the log start.
    pub fn retention_offset(&self) -> u64 {
        let now = self.clock.now_ms();
        let mut size = self.size();
        let mut deletable = 0;
        for segment in &self.segments[..self.segments.len() - 1] {
            let expired = self
                .config
                .retention_ms
                .is_some_and(|ms| now - segment.max_timestamp() > ms);
            let oversize = self
                .config
                .retention_bytes
                .is_some_and(|bytes| size - segment.size() >= bytes);
            if !(expired || oversize) {
                break;
            }
            size -= segment.size();
            deletable += 1;
        }
        self.segments[deletable]
            .base_offset
            .max(self.log_start_offset)
    }

    /// Deletes the log, its folder and its lines in the data folder's checkpoints (its topic
    /// was deleted); every later operation fails. The folder is first renamed (see
    /// [`DataDir`]), so a crash leaves the whole log or nothing of it.
    pub fn delete(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.delete_inner();
        self.fail_on_error(result)
    }

    fn delete_inner(&mut self) -> Result<(), StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StorageError::io(&path, e)
        };
        let data_path = self.data_dir.path().to_path_buf();
        let doomed = data_path.join(format!("{}{DELETE_SUFFIX}", self.topic_partition));
        if doomed.exists() {
            fs::remove_dir_all(&doomed).map_err(io(&doomed))?;
        }
        fs::rename(&self.path, &doomed).map_err(io(&self.path))?;
        checkpoint::sync_dir(&data_path).map_err(io(&data_path))?;
        self.deleted = true;
        self.data_dir.forget(&self.topic_partition)?;
        fs::remove_dir_all(&doomed).map_err(io(&doomed))?;
        tracing::info!("{}: deleted with its topic", self.path.display());
        Ok(())
    }

    /// Fsyncs everything appended (segments from the recovery point on, their indexes, and
    /// the folder if files came or went); the recovery point becomes the log end offset.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.flush_inner();
        self.fail_on_error(result)
    }

    fn flush_inner(&mut self) -> Result<(), StorageError> {
        let from = self
            .segments
            .partition_point(|s| s.next_offset() <= self.recovery_point)
            .min(self.segments.len() - 1);
        for segment in &mut self.segments[from..] {
            segment
                .flush()
                .map_err(|e| StorageError::io(segment.log_path(), e))?;
        }
        if self.dir_dirty {
            checkpoint::sync_dir(&self.path).map_err(|e| StorageError::io(&self.path, e))?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_since_ms = None;
        let recovery_point = self.recovery_point;
        self.data_dir.update(&self.topic_partition, |o| {
            o.recovery_point = Some(recovery_point)
        });
        let now = self.clock.now_ms();
        if now - self.last_recovery_checkpoint_ms >= self.config.recovery_checkpoint_interval_ms {
            self.data_dir.checkpoint_recovery_points()?;
            self.last_recovery_checkpoint_ms = now;
        }
        Ok(())
    }

    /// Flushes if `flush.ms` says the oldest unflushed data has waited long enough.
    pub fn flush_if_due(&mut self) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let due = match (self.config.flush.ms, self.unflushed_since_ms) {
            (Some(ms), Some(since)) => now - since >= ms,
            _ => false,
        };
        if due {
            self.flush()?;
        }
        Ok(())
    }

    /// A clean shutdown: flushes, writes the indexes and the folder's checkpoints.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush()?;
        let active = self.active_mut();
        active
            .write_indexes(true)
            .map_err(|e| StorageError::io(active.log_path(), e))?;
        self.data_dir.checkpoint_recovery_points()?;
        self.data_dir.checkpoint_log_start_offsets()
    }

    /// For crash tests: how much of each segment file was fsynced.
    pub fn durable_lengths(&self) -> Vec<DurableLength> {
        self.segments
            .iter()
            .map(|s| DurableLength {
                path: s.log_path().to_path_buf(),
                length: s.flushed_size(),
                size: s.size(),
            })
            .collect()
    }
}

/// What [`slice_batches`] took.
struct Taken {
    bytes: u64,
    next_offset: u64,
    /// Stopped before the chunk's end for `until`.
    stopped: bool,
}

/// Splits a chunk read from a segment into whole batches (slices, no copies).
fn slice_batches(
    mut chunk: Bytes,
    until: u64,
    entries: &mut Vec<LogEntry<KafkaBatch>>,
) -> Result<Taken, String> {
    let mut taken = Taken {
        bytes: 0,
        next_offset: 0,
        stopped: false,
    };
    while chunk.len() >= super::batch::HEADER_BYTES {
        let header = super::batch::BatchHeader::parse(&chunk).map_err(|e| e.to_string())?;
        if header.total_bytes > chunk.len() as u64 {
            break;
        }
        let next_offset = header.base_offset as u64 + header.record_count();
        if next_offset > until {
            taken.stopped = true;
            break;
        }
        let batch = KafkaBatch::new(chunk.split_to(header.total_bytes as usize))
            .map_err(|e| e.to_string())?;
        entries.push(LogEntry {
            base_offset: Offset(header.base_offset as u64),
            leader_epoch: LeaderEpoch(header.partition_leader_epoch.max(0) as u32),
            batch,
        });
        taken.bytes += header.total_bytes;
        taken.next_offset = next_offset;
    }
    Ok(taken)
}

/// The segments' base offsets, from the `.log` files; leftover temporary files and indexes
/// without their `.log` are deleted.
fn list_segments(path: &Path) -> Result<Vec<u64>, StorageError> {
    let io = |e| StorageError::io(path, e);
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file = entry.path();
        if name.ends_with(".tmp") || name.ends_with(".deleted") {
            fs::remove_file(&file).map_err(|e| StorageError::io(&file, e))?;
            continue;
        }
        let Some((stem, extension)) = name.split_once('.') else {
            continue;
        };
        let base = stem.parse::<u64>().ok().filter(|_| stem.len() == 20);
        match (base, extension) {
            (Some(base), "log") => logs.push(base),
            (Some(base), "index" | "timeindex") => indexes.push((base, file)),
            (None, "log" | "index" | "timeindex") => {
                return Err(StorageError::Layout {
                    path: file,
                    why: "a segment file not named by a 20-digit base offset".into(),
                })
            }
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, file) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!("{}: an index without its .log; deleting it", file.display());
            fs::remove_file(&file).map_err(|e| StorageError::io(&file, e))?;
        }
    }
    Ok(logs)
}
