//! The on-disk log behind the model's `ReplicaLog` trait, so the broker actor the checker
//! explores runs unchanged on real segments, one [`DiskLog`] per partition it holds.
//!
//! A broker creates a partition's log when it is assigned the partition and reopens it by name
//! after a restart: what survives a crash is the disk itself, so [`DiskDurable`] is only the
//! partition's name. Every log of a broker shares one [`DataDir`] and its checkpoints.
//!
//! Every operation that may touch the disk returns the storage error's words as a `LogError`;
//! the handler stops its step and the host stops the broker, which the model explores as a
//! crash. The log keeps the first failure too (see [`DiskLog::failure`]) and refuses every
//! later write, so a host that missed one still cannot write after it. A read below the log
//! start offset is an error but no failure: it is the caller's mistake, which the broker
//! answers with OFFSET_OUT_OF_RANGE before it reads.

use super::batch::KafkaBatch;
use super::log::PartitionLog;
use super::{Clock, DataDir, LogConfig, StorageError, TopicPartition};
use gregor_model::log::{EpochEntry, LogEntry, LogError, LogName, ReplicaLog};
use gregor_model::types::{LeaderEpoch, Offset};
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// An open partition log shared by the broker actor's state (which the host may clone) and
/// the host.
#[derive(Clone)]
pub struct DiskLog {
    log: Arc<Mutex<PartitionLog>>,
    path: PathBuf,
}

/// Where a broker's logs live and how they behave: one data folder for all its partitions.
#[derive(Clone, Debug)]
pub struct DiskLogConfig {
    pub data_dir: Arc<DataDir>,
    pub log: LogConfig,
    pub clock: Arc<dyn Clock>,
}

/// What survives a crash of a broker on a disk log: the disk itself, found again by the
/// partition's name (its folder `<topic>-<partition>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskDurable {
    pub topic: String,
    pub partition: u32,
}

impl DiskLog {
    /// Wraps a log the host opened (and recovered) with [`DataDir::open_log`].
    pub fn new(log: PartitionLog) -> DiskLog {
        let path = log.path().to_path_buf();
        DiskLog {
            log: Arc::new(Mutex::new(log)),
            path,
        }
    }

    /// Opens (creating if need be) and recovers the partition's log; opening is where damage
    /// below the recovery point stops a broker, with the error's message.
    fn open(config: &DiskLogConfig, topic: &str, partition: u32) -> Result<DiskLog, LogError> {
        let opened = TopicPartition::new(topic, partition).and_then(|tp| {
            config
                .data_dir
                .open_log(tp, config.log.clone(), config.clock.clone())
        });
        opened
            .map(DiskLog::new)
            .map_err(|e| LogError(e.to_string()))
    }

    /// The log itself, for what the trait does not cover (reads by time, rolling, crash
    /// tests).
    pub fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        // Every change to the log completes or records a failure before it returns.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log, once this is its last handle (to close it cleanly); else this handle back.
    pub fn into_inner(self) -> Result<PartitionLog, DiskLog> {
        let path = self.path;
        match Arc::try_unwrap(self.log) {
            Ok(log) => Ok(log.into_inner().unwrap_or_else(|e| e.into_inner())),
            Err(log) => Err(DiskLog { log, path }),
        }
    }

    /// The first disk error, after which the broker must stop.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure().map(str::to_string)
    }
}

/// The error in the trait's words; a read's error becomes the log's failure here, since reads
/// take `&self` (the log's own writes record theirs), unless it is the caller's mistake.
fn failed(log: &mut PartitionLog, error: StorageError) -> LogError {
    log.note_failure(&error);
    LogError(error.to_string())
}

impl std::fmt::Debug for DiskLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DiskLog({})", self.path.display())
    }
}

/// Two handles are equal when they share one open log.
impl PartialEq for DiskLog {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.log, &other.log)
    }
}

impl Hash for DiskLog {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

impl ReplicaLog for DiskLog {
    type Batch = KafkaBatch;
    type Durable = DiskDurable;
    type Config = DiskLogConfig;

    fn create(config: &DiskLogConfig, name: &LogName) -> Result<Self, LogError> {
        DiskLog::open(config, &name.topic, name.partition)
    }

    fn reopen(config: &DiskLogConfig, durable: &DiskDurable) -> Result<Self, LogError> {
        DiskLog::open(config, &durable.topic, durable.partition)
    }

    fn log_start_offset(&self) -> Offset {
        Offset(self.lock().log_start_offset())
    }

    fn log_end_offset(&self) -> Offset {
        Offset(self.lock().log_end_offset())
    }

    fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.lock().last_epoch()
    }

    fn append(&mut self, leader_epoch: LeaderEpoch, batch: KafkaBatch) -> Result<Offset, LogError> {
        let mut log = self.lock();
        match log.append(leader_epoch, &batch) {
            Ok(base_offset) => Ok(Offset(base_offset)),
            Err(e) => Err(failed(&mut log, e)),
        }
    }

    fn read(
        &self,
        from: Offset,
        until: Offset,
        bytes_max: u64,
    ) -> Result<Vec<LogEntry<KafkaBatch>>, LogError> {
        let mut log = self.lock();
        let read = log.read(from.0, until.0, bytes_max);
        read.map_err(|e| failed(&mut log, e))
    }

    fn bytes_between(&self, from: Offset, until: Offset, enough: u64) -> Result<u64, LogError> {
        let mut log = self.lock();
        let bytes = log.bytes_between(from.0, until.0, enough);
        bytes.map_err(|e| failed(&mut log, e))
    }

    fn truncate(&mut self, to: Offset) -> Result<(), LogError> {
        let mut log = self.lock();
        let result = log.truncate(to.0);
        result.map_err(|e| failed(&mut log, e))
    }

    fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Result<(), LogError> {
        let mut log = self.lock();
        let result = log.truncate_fully_and_start_at(offset.0);
        result.map_err(|e| failed(&mut log, e))
    }

    fn advance_log_start_offset(&mut self, to: Offset) -> Result<(), LogError> {
        let mut log = self.lock();
        let result = log.advance_log_start_offset(to.0);
        result.map_err(|e| failed(&mut log, e))
    }

    fn retention_offset(&self) -> Offset {
        Offset(self.lock().retention_offset())
    }

    fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.lock().epoch_entries().to_vec()
    }

    fn flush(&mut self) -> Result<(), LogError> {
        let mut log = self.lock();
        let result = log.flush();
        result.map_err(|e| failed(&mut log, e))
    }

    fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(Offset, i64)>, LogError> {
        let mut log = self.lock();
        let found = log.offset_for_timestamp(timestamp);
        let found = found.map_err(|e| failed(&mut log, e))?;
        Ok(found.map(|(offset, ts)| (Offset(offset), ts)))
    }

    fn max_timestamp(&self) -> Result<Option<(Offset, i64)>, LogError> {
        let mut log = self.lock();
        let found = log.max_timestamp();
        let found = found.map_err(|e| failed(&mut log, e))?;
        Ok(found.map(|(offset, ts)| (Offset(offset), ts)))
    }

    fn durable(&self) -> DiskDurable {
        let log = self.lock();
        let name = log.topic_partition();
        DiskDurable {
            topic: name.topic.clone(),
            partition: name.partition,
        }
    }

    fn delete(&mut self) -> Result<(), LogError> {
        let mut log = self.lock();
        let result = log.delete();
        result.map_err(|e| failed(&mut log, e))
    }
}
