//! The settings the roles run with, under Kafka's names: which era of the protocol, which of its
//! rules are in force (all of them, except in checks that show why a rule exists), the
//! controller's, a broker's and a topic's configuration, and their timers' durations.

use crate::types::{BrokerId, FlushPolicy, Variant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// A fence or guard of the protocol that a check may switch off, to show what goes wrong
/// without it (`gregor check --without RULE`; `specs/protocol.md`, "Why each rule exists").
/// A running cluster enforces every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// KIP-380: metadata updates carry the recipient's broker epoch, and a broker drops one
    /// meant for another incarnation of itself.
    UpdateBrokerEpochFence,
    /// KIP-380: a registration that finds an older incarnation of the broker alive fences that
    /// incarnation first (it may have lost what it had not flushed).
    BounceFence,
    /// KIP-320: a leader refuses a Fetch whose current leader epoch is not its own.
    FetchLeaderEpochFence,
    /// KIP-497: the controller refuses an AlterPartition with a stale partition epoch.
    PartitionEpochFence,
    /// KIP-903: AlterPartition names each member's broker epoch, and the controller refuses
    /// members whose registration changed since the follower fetched.
    IsrBrokerEpochFence,
    /// KIP-966: the leader advances the HW only while the ISR has min.insync.replicas members.
    MinIsrHighWatermarkGuard,
    /// A follower's HW never exceeds its own log end offset.
    FollowerHighWatermarkCap,
    /// Retention never deletes records at or past the HW.
    RetentionBelowHighWatermark,
    /// An idempotent producer's retried batch is answered with its original offset, not
    /// written again.
    DuplicateDetection,
    /// The group coordinator answers an OffsetCommit, and its offsets take effect, once the
    /// HW has passed the commit's records (Kafka's `offsets.commit.required.acks=-1`); without,
    /// once they are appended to the coordinator's own log.
    CommitAcksAll,
    /// The group coordinator refuses a member's OffsetCommit unless the member is in the
    /// group's current generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION).
    CommitGenerationFence,
    /// The group coordinator hands a generation's assignment out (answers SyncGroup) once the
    /// HW has passed the group's record; without, once the record is appended.
    GroupRecordAcksAll,
}

impl Rule {
    pub const ALL: [Rule; 12] = [
        Rule::UpdateBrokerEpochFence,
        Rule::BounceFence,
        Rule::FetchLeaderEpochFence,
        Rule::PartitionEpochFence,
        Rule::IsrBrokerEpochFence,
        Rule::MinIsrHighWatermarkGuard,
        Rule::FollowerHighWatermarkCap,
        Rule::RetentionBelowHighWatermark,
        Rule::DuplicateDetection,
        Rule::CommitAcksAll,
        Rule::CommitGenerationFence,
        Rule::GroupRecordAcksAll,
    ];

    /// The name `--without` takes.
    pub fn name(self) -> &'static str {
        match self {
            Rule::UpdateBrokerEpochFence => "kip380-update-fence",
            Rule::BounceFence => "kip380-bounce-fence",
            Rule::FetchLeaderEpochFence => "kip320-fetch-fence",
            Rule::PartitionEpochFence => "kip497-partition-epoch-fence",
            Rule::IsrBrokerEpochFence => "kip903-broker-epoch-fence",
            Rule::MinIsrHighWatermarkGuard => "kip966-min-isr-guard",
            Rule::FollowerHighWatermarkCap => "follower-hw-cap",
            Rule::RetentionBelowHighWatermark => "retention-below-hw",
            Rule::DuplicateDetection => "duplicate-detection",
            Rule::CommitAcksAll => "offsets-commit-acks-all",
            Rule::CommitGenerationFence => "commit-generation-fence",
            Rule::GroupRecordAcksAll => "group-record-acks-all",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The protocol every role follows: its era, the flush policy, and the rules switched off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtocolConfig {
    pub variant: Variant,
    /// `log.flush.interval.messages`: 1 (always) or never.
    pub flush: FlushPolicy,
    /// Rules switched off (checks only; empty in a running cluster).
    pub without: BTreeSet<Rule>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            variant: Variant::Kip320,
            flush: FlushPolicy::Never,
            without: BTreeSet::new(),
        }
    }
}

impl ProtocolConfig {
    /// Whether `rule` is in force.
    pub fn enforces(&self, rule: Rule) -> bool {
        !self.without.contains(&rule)
    }
}

/// A topic's settings that the protocol reads, with Kafka's names.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct TopicConfig {
    /// `min.insync.replicas`.
    pub min_insync_replicas: u32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
}

/// Where a broker's listeners are, as it registers them: opaque to the protocol, handed to
/// clients in Metadata answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// The controller's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ControllerConfig {
    pub protocol: ProtocolConfig,
    /// `broker.session.timeout.ms`: a broker that has not heartbeaten for this long is dead.
    pub session_timeout: Duration,
    /// The configuration a topic gets for what CreateTopics leaves out (the brokers'
    /// `min.insync.replicas` and `unclean.leader.election.enable`).
    pub topic_defaults: TopicConfig,
    /// How many producer ids one AllocateProducerIds hands a broker (Kafka: 1000).
    pub producer_id_block_size: u64,
    /// The high 64 bits of every topic id this cluster assigns (the host draws it once, at the
    /// controller's first start, and keeps it in the controller's configuration); the low 64
    /// bits count topics created.
    pub topic_id_prefix: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            protocol: ProtocolConfig::default(),
            session_timeout: Duration::from_secs(9),
            topic_defaults: TopicConfig {
                min_insync_replicas: 1,
                unclean_leader_election: false,
            },
            producer_id_block_size: 1000,
            topic_id_prefix: 0,
        }
    }
}

/// A broker's timers, Kafka's defaults. `None` switches a periodic task off (the checker does,
/// for tasks whose effect no bound of the configuration lets it observe).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerTimeouts {
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Option<Duration>,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_max: Duration,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff: Duration,
    /// `replica.fetch.wait.max.ms`: how long a leader holds a follower's fetch.
    pub replica_fetch_wait_max: Duration,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub high_watermark_checkpoint_interval: Option<Duration>,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Option<Duration>,
}

impl Default for BrokerTimeouts {
    fn default() -> Self {
        BrokerTimeouts {
            heartbeat_interval: Some(Duration::from_secs(2)),
            replica_lag_max: Duration::from_secs(30),
            fetch_backoff: Duration::from_secs(1),
            replica_fetch_wait_max: Duration::from_millis(500),
            high_watermark_checkpoint_interval: Some(Duration::from_secs(5)),
            retention_check_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// A broker's limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerLimits {
    /// Fetches held at once (Kafka's fetch purgatory); when full, the oldest is answered.
    pub fetches_held_max: usize,
    /// `replica.fetch.min.bytes`.
    pub replica_fetch_min_bytes: u32,
    /// `replica.fetch.max.bytes`, per partition of a follower's fetch.
    pub replica_fetch_max_bytes: u32,
    /// `replica.fetch.response.max.bytes`, for a follower's whole fetch.
    pub replica_fetch_response_max_bytes: u32,
    /// InitProducerId requests waiting for a block of producer ids.
    pub producer_id_requests_max: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            fetches_held_max: 1000,
            replica_fetch_min_bytes: 1,
            replica_fetch_max_bytes: 1 << 20,
            replica_fetch_response_max_bytes: 10 << 20,
            producer_id_requests_max: 1000,
        }
    }
}

/// The group coordinator's internal topic, `__consumer_offsets`, as a broker creates it for
/// the first FindCoordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OffsetsTopicConfig {
    /// `offsets.topic.num.partitions` (50).
    pub partitions: u32,
    /// `offsets.topic.replication.factor` (3): creation waits until this many brokers are
    /// alive (FindCoordinator answers COORDINATOR_NOT_AVAILABLE meanwhile), as Kafka does.
    pub replication_factor: u32,
}

impl Default for OffsetsTopicConfig {
    fn default() -> Self {
        OffsetsTopicConfig {
            partitions: 50,
            replication_factor: 3,
        }
    }
}

/// The name of the group coordinator's internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A broker's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub id: BrokerId,
    pub endpoints: Vec<Endpoint>,
    pub protocol: ProtocolConfig,
    pub timeouts: BrokerTimeouts,
    pub limits: BrokerLimits,
    pub offsets_topic: OffsetsTopicConfig,
    pub groups: crate::group::GroupConfig,
}

impl BrokerConfig {
    pub fn new(id: BrokerId, protocol: ProtocolConfig) -> BrokerConfig {
        BrokerConfig {
            id,
            endpoints: Vec::new(),
            protocol,
            timeouts: BrokerTimeouts::default(),
            limits: BrokerLimits::default(),
            offsets_topic: OffsetsTopicConfig::default(),
            groups: crate::group::GroupConfig::default(),
        }
    }
}
