//! The protocol's quantities as newtypes, named as Kafka names them, and the configuration
//! that selects which era of Kafka's replication protocol the actors follow.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A position in the partition's log: the offset the next record gets is the log end offset.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Offset(pub u64);

/// The epoch of a partition leader; bumped by the controller on every election.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LeaderEpoch(pub u32);

/// The version of the partition's leader-and-ISR record; bumped on every leader or ISR change.
/// AlterPartition carries it so the controller can fence stale proposals (KIP-497).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PartitionEpoch(pub u32);

/// A broker's identity; brokers are numbered from 1, as in a Kafka cluster's `node.id`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct BrokerId(pub u32);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for PartitionEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for BrokerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Offset {
    pub fn plus(self, count: u64) -> Offset {
        Offset(self.0 + count)
    }
}

impl LeaderEpoch {
    pub fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }
}

impl PartitionEpoch {
    pub fn next(self) -> PartitionEpoch {
        PartitionEpoch(self.0 + 1)
    }
}

/// The in-sync replica set: brokers that hold every committed record.
pub type Isr = BTreeSet<BrokerId>;

/// Formats an ISR as `{1,2,3}`.
pub fn format_isr(isr: &Isr) -> String {
    let members: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
    format!("{{{}}}", members.join(","))
}

/// The producer's `acks` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Acks {
    /// No response at all.
    None,
    /// The leader answers once it has appended the batch.
    Leader,
    /// The leader answers once the high watermark has passed the batch (`acks=all`, `-1`).
    All,
}

/// Which era of Kafka's follower truncation and fencing rules the brokers follow
/// (`../shared/notes/kafka-protocol.md`, section 3; `specs/protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Variant {
    /// Kafka <= 0.10: a replica that becomes follower truncates its log to its own HW.
    HwTruncation,
    /// Kafka 0.11: OffsetForLeaderEpoch, but the leader answers with the start offset of the
    /// next larger epoch it knows and the follower truncates to that answer.
    Kip101,
    /// Kafka 2.0: the leader answers with the largest epoch it knows that is not larger than the
    /// one asked and that epoch's end offset; no current-epoch fencing of requests.
    Kip279,
    /// Kafka 2.1 and later: requests carry the requester's current leader epoch and are fenced.
    Kip320,
}

impl Variant {
    /// Whether Fetch and OffsetForLeaderEpoch carry and check the current leader epoch, and
    /// ISR expansion requires a fetch within the current epoch (KIP-320).
    pub fn fences_leader_epoch(self) -> bool {
        self == Variant::Kip320
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::HwTruncation => "hw-truncation",
            Variant::Kip101 => "kip101",
            Variant::Kip279 => "kip279",
            Variant::Kip320 => "kip320",
        }
    }
}

/// What a crash takes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CrashKind {
    /// The process dies; the operating system's page cache keeps everything written.
    Process,
    /// The machine loses power; only what was flushed (fsynced) survives.
    Power,
}

/// When the log is flushed to stable storage (`flush.messages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FlushPolicy {
    /// Kafka's default: the page cache holds acknowledged data.
    Never,
    /// fsync after every append, before anything is acknowledged or sent.
    Always,
}

/// The settings every broker shares, Kafka's broker and topic configuration in this model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtocolConfig {
    /// How many brokers hold a replica of the partition (all of them: RF = brokers).
    pub replication_factor: u32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: u32,
    /// The truncation and fencing rules.
    pub variant: Variant,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
    /// `flush.messages`: 1 (always) or never.
    pub flush: FlushPolicy,
    /// The most batches one fetch response carries (`fetch.max.bytes`, counted in batches).
    pub fetch_batches_max: usize,
}

impl ProtocolConfig {
    /// The brokers that hold a replica, in replica order.
    pub fn replicas(&self) -> impl Iterator<Item = BrokerId> {
        (1..=self.replication_factor).map(BrokerId)
    }
}
