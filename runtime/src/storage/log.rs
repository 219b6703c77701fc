//! A partition's log: its segments in offset order (the last one active), the leader-epoch
//! cache with its `leader-epoch-checkpoint`, the log start offset and the recovery point.
//!
//! The contract is the model's `ReplicaLog` (see `gregor_model::log`), plus what a disk adds:
//! rolling, retention, reads bounded by bytes and by timestamp, flushing, and recovery on open.
//! Any I/O error leaves the log refusing further writes ([`StorageError::Failed`]): the host
//! then stops the broker, which the model treats as a crash.

use super::batch::KafkaBatch;
use super::data_dir::DataDir;
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
    /// The first I/O error; once set, every operation fails.
    failure: Option<String>,
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
            failure: None,
        };
        let recovered = log.load_segments(&bases, saved.log_start_offset.unwrap_or(0))?;
        log.load_epochs(recovered)?;
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
        self.recovery_point = self
            .recovery_point
            .clamp(self.log_start_offset, self.log_end_offset());
        Ok(recovered)
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
    /// epoch not larger than the latest is ignored.
    fn assign_epoch(&mut self, epoch: i32, base_offset: u64) -> bool {
        let epoch = LeaderEpoch(epoch.max(0) as u32);
        if self.epochs.last().is_some_and(|e| e.leader_epoch >= epoch) {
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

    pub fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.last().map(|e| e.leader_epoch)
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
        let caller_mistake = matches!(error, StorageError::BelowLogStart { .. });
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
            Ok(())
        })();
        self.fail_on_error(result)
    }

    /// Up to `batches_max` whole batches in offset order, the first being the one that holds
    /// `from`, none reaching past `until`, and no more than the configured read byte limit
    /// (unless the first batch alone is larger: then just it, as Kafka's KIP-74). Each batch
    /// is a slice of one positioned read per segment. Reading below the log start offset is
    /// an error (Kafka's OFFSET_OUT_OF_RANGE).
    pub fn read(
        &self,
        from: u64,
        until: u64,
        batches_max: usize,
    ) -> Result<Vec<LogEntry<KafkaBatch>>, StorageError> {
        self.check_usable()?;
        if from < self.log_start_offset {
            return Err(StorageError::BelowLogStart {
                offset: from,
                log_start_offset: self.log_start_offset,
            });
        }
        let mut entries = Vec::new();
        let until = until.min(self.log_end_offset());
        if from >= until || batches_max == 0 {
            return Ok(entries);
        }
        let mut bytes_left = self.config.read_bytes_max;
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= from)
            .saturating_sub(1);
        let mut offset = from;
        for segment in &self.segments[first..] {
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
            let chunk = segment.read(position, len).map_err(io)?;
            let taken = slice_batches(chunk, until, batches_max - entries.len(), &mut entries)
                .map_err(|why| StorageError::Layout {
                    path: segment.log_path().to_path_buf(),
                    why: format!("byte {position}: {why}"),
                })?;
            bytes_left = bytes_left.saturating_sub(taken.bytes);
            offset = taken.next_offset;
            // Go on to the next segment only after taking this one to its end.
            let segment_left = position + taken.bytes < segment.size();
            if entries.len() == batches_max || taken.stopped || taken.bytes == 0 || segment_left {
                break;
            }
        }
        Ok(entries)
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

    /// Removes every batch whose last offset is at or past `to` (what a follower does after
    /// OffsetForLeaderEpoch), across segments, and the epochs that started there. Below the
    /// log start offset the whole log goes and starts again at `to` (Kafka's
    /// `truncateFullyAndStartAt`).
    pub fn truncate(&mut self, to: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        if to >= self.log_end_offset() {
            return Ok(());
        }
        let result = self.truncate_inner(to);
        self.fail_on_error(result)
    }

    fn truncate_inner(&mut self, to: u64) -> Result<(), StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StorageError::io(&path, e)
        };
        if to < self.log_start_offset {
            for segment in self.segments.drain(..) {
                let path = segment.log_path().to_path_buf();
                segment.delete().map_err(io(&path))?;
            }
            let segment = Segment::create(&self.path, to).map_err(io(&self.path))?;
            self.segments.push(segment);
            self.log_start_offset = to;
            self.data_dir
                .update(&self.topic_partition, |o| o.log_start_offset = Some(to));
            self.data_dir.checkpoint_log_start_offsets()?;
        } else {
            let keep = self
                .segments
                .partition_point(|s| s.base_offset <= to)
                .max(1);
            for segment in self.segments.drain(keep..) {
                let path = segment.log_path().to_path_buf();
                segment.delete().map_err(io(&path))?;
            }
            let active = self
                .segments
                .last_mut()
                .expect("a log always has a segment");
            active.truncate_to(to).map_err(io(active.log_path()))?;
        }
        checkpoint::sync_dir(&self.path).map_err(io(&self.path))?;
        let end = Offset(self.log_end_offset());
        let epochs_before = self.epochs.len();
        self.epochs.retain(|e| e.start_offset < end);
        if self.epochs.len() != epochs_before {
            self.write_epoch_checkpoint()?;
        }
        if self.recovery_point > end.0 {
            // A recovery point above the new end would make a later torn append look like
            // flushed data lost: checkpoint the lower one now (as Kafka does after truncating).
            self.recovery_point = end.0;
            self.data_dir
                .update(&self.topic_partition, |o| o.recovery_point = Some(end.0));
            self.data_dir.checkpoint_recovery_points()?;
        }
        Ok(())
    }

    /// Deletes the oldest segments that `retention.ms` or `retention.bytes` let go, never the
    /// active one nor any holding offsets at or past `high_watermark`; advances the log start
    /// offset (checkpointed before any file goes). Returns how many segments were deleted.
    pub fn delete_retained(&mut self, high_watermark: u64) -> Result<usize, StorageError> {
        self.check_usable()?;
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
            if segment.next_offset() > high_watermark || !(expired || oversize) {
                break;
            }
            size -= segment.size();
            deletable += 1;
        }
        if deletable == 0 {
            return Ok(0);
        }
        let result = self.delete_oldest(deletable);
        self.fail_on_error(result).map(|()| deletable)
    }

    fn delete_oldest(&mut self, count: usize) -> Result<(), StorageError> {
        self.log_start_offset = self.segments[count].base_offset;
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        let (start, recovery_point) = (self.log_start_offset, self.recovery_point);
        self.data_dir.update(&self.topic_partition, |o| {
            o.log_start_offset = Some(start);
            o.recovery_point = Some(recovery_point);
        });
        self.data_dir.checkpoint_log_start_offsets()?;
        self.clamp_epochs_to_log_start();
        self.write_epoch_checkpoint()?;
        for segment in self.segments.drain(..count) {
            let path = segment.log_path().to_path_buf();
            tracing::info!("{}: deleted by retention", path.display());
            segment.delete().map_err(|e| StorageError::io(&path, e))?;
        }
        self.dir_dirty = true;
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
    /// Stopped before the chunk's end for `until` or the batch count.
    stopped: bool,
}

/// Splits a chunk read from a segment into whole batches (slices, no copies).
fn slice_batches(
    mut chunk: Bytes,
    until: u64,
    batches_max: usize,
    entries: &mut Vec<LogEntry<KafkaBatch>>,
) -> Result<Taken, String> {
    let mut taken = Taken {
        bytes: 0,
        next_offset: 0,
        stopped: false,
    };
    let mut count = 0;
    while chunk.len() >= super::batch::HEADER_BYTES {
        let header = super::batch::BatchHeader::parse(&chunk).map_err(|e| e.to_string())?;
        if header.total_bytes > chunk.len() as u64 {
            break;
        }
        let next_offset = header.base_offset as u64 + header.record_count();
        if next_offset > until || count == batches_max {
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
        count += 1;
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
