//! A broker's replica of one partition: its log, high watermark, the newest leader epoch it was
//! told, its role, and the producer table kept as it appends. The leader and follower rules
//! (`leader.rs`, `follower.rs`) act on it; every partition rule holds per partition.

use super::idempotence::ProducerStates;
use crate::effects::Address;
use crate::log::{EpochEntry, LogEntry, LogError, ReplicaLog};
use crate::types::{BrokerEpoch, BrokerId, Isr, LeaderEpoch, Map, Offset, PartitionEpoch};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Replica<L> {
    pub log: L,
    pub high_watermark: Offset,
    /// The newest leader epoch this replica has been told of.
    pub leader_epoch: LeaderEpoch,
    /// `min.insync.replicas` of the partition's topic.
    pub min_insync_replicas: u32,
    pub role: Role,
    pub producers: ProducerStates,
}

/// What the controller last told this replica to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Just opened (a restart, a new partition), or the partition is offline.
    Unassigned,
    Leader(LeaderState),
    Follower(FollowerState),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaderState {
    pub isr: Isr,
    pub partition_epoch: PartitionEpoch,
    /// An AlterPartition in flight (KIP-497 allows one at a time).
    pub proposed_isr: Option<Isr>,
    /// The log end offset when this leader's epoch began.
    pub epoch_start_offset: Offset,
    /// Each follower as its fetches in this epoch told (absent: none yet).
    pub followers: Map<BrokerId, FollowerProgress>,
    /// acks=all writes waiting for the high watermark to pass them.
    pub pending_produces: BTreeSet<PendingProduce>,
}

/// A follower as the leader knows it from its fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FollowerProgress {
    /// Its fetch offset: its log end offset.
    pub log_end_offset: Offset,
    /// The broker epoch its fetches named (KIP-903: AlterPartition passes it on).
    pub broker_epoch: BrokerEpoch,
    /// The leader's log end offset when that fetch arrived: a next fetch from at least here
    /// shows the follower was caught up then (Kafka's `lastCaughtUpTimeMs`).
    pub leader_log_end_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingProduce {
    /// When the high watermark reaches this offset, the batch is committed.
    pub end_offset: Offset,
    pub requester: Address,
    pub request: u32,
    pub base_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FollowerState {
    pub leader: BrokerId,
    pub phase: FollowerPhase,
    /// No request in flight: waiting for the backoff timer to retry.
    pub backing_off: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FollowerPhase {
    /// OffsetForLeaderEpoch in flight: the log may still hold records the leader lacks.
    Reconciling,
    /// Fetching from the leader.
    Fetching,
}

impl<L: ReplicaLog> Replica<L> {
    /// A replica over an opened log, with no role yet; its HW is the checkpointed one, at most
    /// the log end offset.
    pub fn opened(log: L, high_watermark: Offset) -> Result<Self, LogError> {
        Ok(Replica {
            high_watermark: high_watermark
                .min(log.log_end_offset())
                .max(log.log_start_offset()),
            leader_epoch: log.last_epoch().unwrap_or_default(),
            min_insync_replicas: 1,
            role: Role::Unassigned,
            producers: rebuilt_producers(&log)?,
            log,
        })
    }

    pub fn leader(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    pub fn leader_mut(&mut self) -> &mut LeaderState {
        match &mut self.role {
            Role::Leader(leader) => leader,
            _ => unreachable!("called on a replica that does not lead"),
        }
    }

    pub fn follower(&self) -> Option<&FollowerState> {
        match &self.role {
            Role::Follower(follower) => Some(follower),
            _ => None,
        }
    }

    pub fn follower_mut(&mut self) -> &mut FollowerState {
        match &mut self.role {
            Role::Follower(follower) => follower,
            _ => unreachable!("called on a replica that does not follow"),
        }
    }

    /// Appends a batch and remembers its producer's numbering.
    pub fn append(&mut self, epoch: LeaderEpoch, batch: L::Batch) -> Result<Offset, LogError> {
        let entry = LogEntry {
            base_offset: self.log.append(epoch, batch.clone())?,
            leader_epoch: epoch,
            batch,
        };
        self.producers.record(&entry);
        Ok(entry.base_offset)
    }

    /// Truncates the log; the HW follows it down if it must (which Kafka warns about, and
    /// `hw_never_decreases` says never happens). Returns whether the HW was lowered.
    pub fn truncate(&mut self, to: Offset) -> Result<bool, LogError> {
        if to >= self.log.log_end_offset() {
            return Ok(false);
        }
        self.log.truncate(to)?;
        self.producers = rebuilt_producers(&self.log)?;
        let log_end_offset = self.log.log_end_offset();
        let lowered = self.high_watermark > log_end_offset;
        self.high_watermark = self.high_watermark.min(log_end_offset);
        Ok(lowered)
    }

    /// Empties the log to start at the leader's log start offset (a follower that fell behind
    /// it, Kafka's `truncateFullyAndStartAt`).
    pub fn restart_at(&mut self, offset: Offset) -> Result<bool, LogError> {
        let lowered = self.high_watermark > offset;
        self.log.truncate_fully_and_start_at(offset)?;
        self.producers = ProducerStates::default();
        self.high_watermark = offset;
        Ok(lowered)
    }

    /// The epoch cache including this leader's own epoch, which Kafka assigns at election even
    /// before any batch of it is written.
    pub fn leader_epoch_cache(&self, epoch_start_offset: Offset) -> Vec<EpochEntry> {
        let mut cache = self.log.epoch_entries();
        if cache.last().map(|e| e.leader_epoch) < Some(self.leader_epoch) {
            cache.push(EpochEntry {
                leader_epoch: self.leader_epoch,
                start_offset: epoch_start_offset,
            });
        }
        cache
    }
}

/// The producer table as the log's batches give it.
fn rebuilt_producers<L: ReplicaLog>(log: &L) -> Result<ProducerStates, LogError> {
    let mut batches = Vec::new();
    let mut from = log.log_start_offset();
    let end = log.log_end_offset();
    while from < end {
        let read = log.read(from, end, 1 << 20)?;
        let Some(last) = read.last() else {
            break;
        };
        from = last.next_offset();
        batches.extend(read);
    }
    Ok(ProducerStates::rebuild(&batches))
}
