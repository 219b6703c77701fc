//! The protocol's quantities and identities as newtypes, named as Kafka names them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

macro_rules! quantity {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize,
            Deserialize,
        )]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

quantity!(
    /// A position in a partition's log: the offset the next record gets is the log end offset.
    Offset(u64)
);
quantity!(
    /// The epoch of a partition's leader; bumped by the controller on every change of leader.
    LeaderEpoch(u32)
);
quantity!(
    /// The version of a partition's leader-and-ISR record; bumped on every leader or ISR change.
    /// AlterPartition carries it so the controller can fence stale proposals (KIP-497).
    PartitionEpoch(u32)
);
quantity!(
    /// A broker's identity, Kafka's `node.id`.
    BrokerId(u32)
);
quantity!(
    /// One registration of a broker with the controller, assigned by the controller and larger
    /// than every epoch assigned before (KIP-380; KRaft's broker epoch). A broker that restarts
    /// or whose session expired registers again and gets a new one, so requests and
    /// assignments meant for an earlier incarnation are recognised.
    BrokerEpoch(u64)
);
quantity!(
    /// An idempotent producer's identity, allocated by the controller, never handed out twice.
    ProducerId(u64)
);
quantity!(
    /// The epoch of a producer id; a producer bumps it to reset its sequence numbers (KIP-360).
    ProducerEpoch(u16)
);
quantity!(
    /// The sequence number of a producer's first record in a batch, counted per partition.
    Sequence(u32)
);
quantity!(
    /// A requester that is not a broker, as the host names it (a client connection).
    ClientId(u32)
);

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

impl BrokerEpoch {
    pub fn next(self) -> BrokerEpoch {
        BrokerEpoch(self.0 + 1)
    }
}

impl ProducerEpoch {
    pub fn next(self) -> ProducerEpoch {
        ProducerEpoch(self.0.wrapping_add(1))
    }
}

impl Sequence {
    /// The sequence after a batch of `count` records starting here (Kafka wraps at i32::MAX).
    pub fn after(self, count: u64) -> Sequence {
        Sequence(((u64::from(self.0) + count) % (i32::MAX as u64 + 1)) as u32)
    }
}

/// A topic's identity within the cluster: the controller numbers topics as it creates them, so
/// a topic deleted and created again under the same name gets a new id and a broker never
/// mixes the two. Clients see it as a UUID (`TopicInfo::uuid`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct TopicId(pub u64);

impl TopicId {
    /// Which creation this topic was.
    pub fn creation(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A topic's id as Kafka's clients see it (a UUID), in its usual 8-4-4-4-12 form.
pub fn format_uuid(uuid: u128) -> String {
    let hex = format!("{uuid:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One partition of one topic: what every replica message, timer and log names.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct TopicPartition {
    pub topic_id: TopicId,
    pub partition: u32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.topic_id, self.partition)
    }
}

/// The map the model's state uses: a sorted vector. The checker clones and hashes states by the
/// million, and a `BTreeMap` allocates a node of eleven entries even for one.
pub type Map<K, V> = litemap::LiteMap<K, V>;

/// The in-sync replica set: brokers that hold every committed record.
pub type Isr = BTreeSet<BrokerId>;

/// Formats a set of brokers as `{1,2,3}`.
pub fn format_isr(isr: &Isr) -> String {
    let members: Vec<String> = isr.iter().map(|b| b.0.to_string()).collect();
    format!("{{{}}}", members.join(","))
}

/// The producer's `acks` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Acks {
    /// `0`: no response at all.
    None,
    /// `1`: the leader answers once it has appended the batch.
    Leader,
    /// `all` (`-1`): the leader answers once the high watermark has passed the batch.
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
    /// fsync after every append, before anything is acknowledged or replicated.
    Always,
}
