//! Kafka's on-disk log: one folder per partition (`<topic>-<partition>/`) of segments named by
//! their base offset, each a `.log` of v2 record batches exactly as producers sent them, a
//! sparse `.index` and a `.timeindex`; text checkpoints for the leader-epoch cache and, per data
//! folder, the high watermark, recovery point and log start offset. Section 5 of the project's
//! Kafka notes gives the layout; [`DiskLog`] plugs it into the model's broker actor, one log
//! per partition the broker holds, all sharing one [`DataDir`] and its checkpoints.

pub mod batch;
pub mod checkpoint;
pub mod coordinator;
mod data_dir;
mod index;
mod log;
mod replica;
mod segment;
#[doc(hidden)]
pub mod testing;

pub use batch::{BatchError, BatchHeader, KafkaBatch};
pub use data_dir::{DataDir, PartitionOffsets};
pub use log::{DurableLength, PartitionLog};
pub use replica::{DiskDurable, DiskLog, DiskLogConfig};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// What went wrong in storage. Every variant names the file it concerns.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: malformed checkpoint: {why}")]
    Checkpoint {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error(
        "{path}, byte {position}: {why}; this lies below the recovery point {recovery_point} \
         (flushed data), so the log is not opened rather than lose it"
    )]
    CorruptFlushed {
        path: PathBuf,
        position: u64,
        recovery_point: u64,
        why: String,
    },
    #[error("{path}: {why}")]
    Layout { path: PathBuf, why: String },
    #[error("invalid log configuration: {0}")]
    Config(String),
    #[error("the log at {path} failed earlier ({first}) and takes no more writes")]
    Failed { path: PathBuf, first: String },
    #[error("offset {offset} is below the log start offset {log_start_offset}")]
    BelowLogStart { offset: u64, log_start_offset: u64 },
    #[error("the log at {path} was deleted")]
    Deleted { path: PathBuf },
}

impl StorageError {
    pub fn io(path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A topic's partition, named as its folder is: `<topic>-<partition>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    /// Checks the topic name as Kafka does: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.`
    /// or `..`.
    pub fn new(topic: &str, partition: u32) -> Result<TopicPartition, StorageError> {
        let legal = topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if topic.is_empty() || topic.len() > 249 || !legal || topic == "." || topic == ".." {
            return Err(StorageError::Config(format!(
                "{topic:?} is not a legal topic name (1-249 of [a-zA-Z0-9._-], not . or ..)"
            )));
        }
        Ok(TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }

    /// Parses a partition folder's name.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        TopicPartition::new(topic, partition.parse().ok()?).ok()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// When the log fsyncs on its own (Kafka's `flush.messages` / `flush.ms`); `None` is never,
/// Kafka's default: the page cache holds acknowledged data. A broker that flushes before
/// acknowledging (the model's `--flush always`) calls [`PartitionLog::flush`] itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushConfig {
    /// Flush once this many records are unflushed (1: before every acknowledgement).
    pub messages: Option<u64>,
    /// Flush once the oldest unflushed data is this old (checked at appends and by
    /// [`PartitionLog::flush_if_due`]).
    pub ms: Option<i64>,
}

/// A partition log's settings, with Kafka's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older; `None` keeps them.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest segments while the log is larger; `None` keeps them.
    pub retention_bytes: Option<u64>,
    /// `index.interval.bytes`: bytes between two entries of the offset index.
    pub index_interval_bytes: u64,
    pub flush: FlushConfig,
    /// `log.flush.offset.checkpoint.interval.ms`: how often a flush also rewrites the data
    /// folder's recovery-point checkpoint.
    pub recovery_checkpoint_interval_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            flush: FlushConfig::default(),
            recovery_checkpoint_interval_ms: 60_000,
        }
    }
}

impl LogConfig {
    /// Refuses settings the log cannot honour, naming the setting.
    pub fn validate(&self) -> Result<(), StorageError> {
        let fail = |why: &str| Err(StorageError::Config(why.to_string()));
        if self.segment_bytes < batch::HEADER_BYTES as u64 || self.segment_bytes > i32::MAX as u64 {
            return fail("segment.bytes must be between 61 and 2147483647");
        }
        if self.segment_ms <= 0 {
            return fail("segment.ms must be positive");
        }
        if self.retention_ms.is_some_and(|ms| ms < 0) {
            return fail("retention.ms must not be negative (leave it unset to keep everything)");
        }
        if self.index_interval_bytes == 0 {
            return fail("index.interval.bytes must be positive");
        }
        if self.flush.messages == Some(0) || self.flush.ms.is_some_and(|ms| ms < 0) {
            return fail("flush.messages must be positive and flush.ms not negative");
        }
        Ok(())
    }
}

/// Wall-clock milliseconds, injectable so tests control time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
