//! A data folder (one of Kafka's `log.dirs`): the partition folders and the three checkpoints
//! kept per folder, `replication-offset-checkpoint` (high watermarks),
//! `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`, each a line
//! `<topic> <partition> <offset>` per partition.
//!
//! A deleted partition's folder is first renamed `<topic>-<partition>-delete` (one atomic
//! step, as Kafka's `.<id>-delete`), then its checkpoint lines go, then its files; a crash in
//! between leaves a `-delete` folder, which opening the data folder removes.

use super::log::PartitionLog;
use super::{checkpoint, Clock, LogConfig, StorageError, TopicPartition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const HIGH_WATERMARKS: &str = "replication-offset-checkpoint";
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";
const LOG_START_OFFSETS: &str = "log-start-offset-checkpoint";
/// Ends the name of a partition folder being deleted (no partition folder's name does: those
/// end in the partition number).
pub(crate) const DELETE_SUFFIX: &str = "-delete";

/// Which of a partition's offsets a checkpoint file holds.
type OffsetSlot = fn(&mut PartitionOffsets) -> &mut Option<u64>;

/// What the folder's checkpoints hold for one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub high_watermark: Option<u64>,
    pub recovery_point: Option<u64>,
    pub log_start_offset: Option<u64>,
}

/// A data folder and its checkpoints, shared by the partition logs in it.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    offsets: Mutex<BTreeMap<TopicPartition, PartitionOffsets>>,
}

impl DataDir {
    /// Opens (creating if needed) a data folder and reads its checkpoints; a missing
    /// checkpoint is empty, a malformed one an error naming the file and line.
    pub fn open(path: impl Into<PathBuf>) -> Result<Arc<DataDir>, StorageError> {
        let path = path.into();
        std::fs::create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
        remove_deleted_partitions(&path)?;
        let mut offsets: BTreeMap<TopicPartition, PartitionOffsets> = BTreeMap::new();
        let files: [(&str, OffsetSlot); 3] = [
            (HIGH_WATERMARKS, |o| &mut o.high_watermark),
            (RECOVERY_POINTS, |o| &mut o.recovery_point),
            (LOG_START_OFFSETS, |o| &mut o.log_start_offset),
        ];
        for (name, slot) in files {
            let file = path.join(name);
            let Some(entries) = checkpoint::read(&file, 3)? else {
                continue;
            };
            for (line, entry) in entries.iter().enumerate() {
                let partition = checkpoint::field(&file, line, &entry[1])?;
                let tp = TopicPartition::new(&entry[0], partition).map_err(|_| {
                    StorageError::Checkpoint {
                        path: file.clone(),
                        line: line + 3,
                        why: format!("{:?} is not a topic name", entry[0]),
                    }
                })?;
                *slot(offsets.entry(tp).or_default()) =
                    Some(checkpoint::field(&file, line, &entry[2])?);
            }
        }
        Ok(Arc::new(DataDir {
            path,
            offsets: Mutex::new(offsets),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creating if needed) a partition's log in this folder, recovering it.
    pub fn open_log(
        self: &Arc<Self>,
        topic_partition: TopicPartition,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<PartitionLog, StorageError> {
        PartitionLog::open(self.clone(), topic_partition, config, clock)
    }

    /// What the checkpoints (or the logs since) say of a partition.
    pub fn offsets(&self, topic_partition: &TopicPartition) -> PartitionOffsets {
        self.lock()
            .get(topic_partition)
            .copied()
            .unwrap_or_default()
    }

    /// Records a partition's high watermark for the next `replication-offset-checkpoint`.
    pub fn set_high_watermark(&self, topic_partition: &TopicPartition, high_watermark: u64) {
        self.update(topic_partition, |o| o.high_watermark = Some(high_watermark));
    }

    pub(crate) fn update(
        &self,
        topic_partition: &TopicPartition,
        change: impl FnOnce(&mut PartitionOffsets),
    ) {
        change(self.lock().entry(topic_partition.clone()).or_default());
    }

    /// Drops a deleted partition from every checkpoint, rewriting the three files.
    pub(crate) fn forget(&self, topic_partition: &TopicPartition) -> Result<(), StorageError> {
        self.lock().remove(topic_partition);
        self.checkpoint_high_watermarks()?;
        self.checkpoint_recovery_points()?;
        self.checkpoint_log_start_offsets()
    }

    pub fn checkpoint_high_watermarks(&self) -> Result<(), StorageError> {
        self.write(HIGH_WATERMARKS, |o| o.high_watermark)
    }

    pub fn checkpoint_recovery_points(&self) -> Result<(), StorageError> {
        self.write(RECOVERY_POINTS, |o| o.recovery_point)
    }

    pub fn checkpoint_log_start_offsets(&self) -> Result<(), StorageError> {
        self.write(LOG_START_OFFSETS, |o| o.log_start_offset)
    }

    fn write(
        &self,
        name: &str,
        value: fn(&PartitionOffsets) -> Option<u64>,
    ) -> Result<(), StorageError> {
        let offsets = self.lock();
        let lines: Vec<String> = offsets
            .iter()
            .filter_map(|(tp, o)| value(o).map(|v| format!("{} {} {v}", tp.topic, tp.partition)))
            .collect();
        checkpoint::write(&self.path.join(name), &lines)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, PartitionOffsets>> {
        // A panic elsewhere cannot leave the map half-changed: every change is one assignment.
        self.offsets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes what a crash left of deleted partitions: folders named with [`DELETE_SUFFIX`].
fn remove_deleted_partitions(path: &Path) -> Result<(), StorageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| StorageError::io(&path, e)
    };
    for entry in std::fs::read_dir(path).map_err(io(path))? {
        let folder = entry.map_err(io(path))?.path();
        let doomed = folder
            .file_name()
            .is_some_and(|name| name.to_string_lossy().ends_with(DELETE_SUFFIX));
        if doomed && folder.is_dir() {
            tracing::info!("{}: left by a deletion; removing it", folder.display());
            std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
        }
    }
    Ok(())
}
