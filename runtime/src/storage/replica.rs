//! The on-disk log behind the model's `ReplicaLog` trait, so the broker actor the checker
//! explores runs unchanged on real segments.
//!
//! The trait's operations cannot fail; the disk's can. A [`DiskLog`] whose disk failed keeps
//! the first error (see [`DiskLog::failure`]) and refuses every later write; the host checks
//! it after each step and stops the broker before sending anything that step emitted. The
//! model already explores a broker crashing at any point, so that is a protocol-safe outcome.

use super::batch::KafkaBatch;
use super::log::PartitionLog;
use gregor_model::log::{EpochEntry, LogEntry, ReplicaLog};
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

/// What survives a crash of a broker on a disk log: the disk itself, named by the partition's
/// folder.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskDurable {
    pub path: PathBuf,
}

impl DiskLog {
    /// Wraps a log the host opened (and recovered) with [`super::DataDir::open_log`]; opening
    /// is where disk errors stop a broker, with the error's message.
    pub fn new(log: PartitionLog) -> DiskLog {
        let path = log.path().to_path_buf();
        DiskLog {
            log: Arc::new(Mutex::new(log)),
            path,
        }
    }

    /// The log itself, for what the trait does not cover (retention, reads by time, close).
    pub fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        // Every change to the log completes or records a failure before it returns.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first disk error, after which the broker must stop.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure().map(str::to_string)
    }
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
    /// The log, already opened by the host: both a first boot (an empty folder) and a restart
    /// (what the crash left, recovered) start from it.
    type Config = DiskLog;

    fn open(config: &DiskLog, durable: Option<&DiskDurable>) -> Self {
        if let Some(durable) = durable {
            debug_assert_eq!(durable.path, config.path, "a broker reopens its own log");
        }
        config.clone()
    }

    fn log_end_offset(&self) -> Offset {
        Offset(self.lock().log_end_offset())
    }

    fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.lock().last_epoch()
    }

    fn append(&mut self, leader_epoch: LeaderEpoch, batch: KafkaBatch) -> Offset {
        let mut log = self.lock();
        let base_offset = log.log_end_offset();
        // On failure the error is kept for the host, which stops the broker.
        let _ = log.append(leader_epoch, &batch);
        Offset(base_offset)
    }

    /// Reads from the log start offset when `from` lies below it.
    fn read(&self, from: Offset, until: Offset, batches_max: usize) -> Vec<LogEntry<KafkaBatch>> {
        let mut log = self.lock();
        let from = from.0.max(log.log_start_offset());
        let read = log.read(from, until.0, batches_max);
        read.unwrap_or_else(|e| {
            log.note_failure(&e);
            Vec::new()
        })
    }

    fn truncate(&mut self, to: Offset) {
        let _ = self.lock().truncate(to.0);
    }

    fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.lock().epoch_entries().to_vec()
    }

    fn flush(&mut self) {
        let _ = self.lock().flush();
    }

    fn durable(&self) -> DiskDurable {
        DiskDurable {
            path: self.path.clone(),
        }
    }
}
