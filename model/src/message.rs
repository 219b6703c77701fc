//! Every message the actors exchange, and the timers they arm. All derive serde so the runtime
//! can send them between processes and save them unchanged.

use crate::log::{EpochEndOffset, LogEntry};
use crate::types::{Acks, BrokerId, Isr, LeaderEpoch, Offset, PartitionEpoch};
use serde::{Deserialize, Serialize};

/// A Kafka error code carried in a response (a value, not a Rust error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// NOT_LEADER_OR_FOLLOWER (6): the receiver does not lead the partition.
    NotLeaderOrFollower,
    /// FENCED_LEADER_EPOCH (74): the requester's leader epoch is older than the receiver's.
    FencedLeaderEpoch,
    /// UNKNOWN_LEADER_EPOCH (75): the requester's leader epoch is newer than the receiver's.
    UnknownLeaderEpoch,
    /// OFFSET_OUT_OF_RANGE (1): the fetch offset is past the leader's log end offset.
    OffsetOutOfRange,
    /// NOT_ENOUGH_REPLICAS (19): acks=all and the ISR is smaller than min.insync.replicas.
    NotEnoughReplicas,
    /// INVALID_UPDATE_VERSION (108): AlterPartition with a stale partition epoch or leader.
    InvalidUpdateVersion,
    /// INELIGIBLE_REPLICA (107): AlterPartition adds a broker the controller considers dead.
    IneligibleReplica,
}

impl ErrorCode {
    /// Kafka's name for the code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
        }
    }

    /// Kafka's numeric code.
    pub fn code(self) -> i16 {
        match self {
            ErrorCode::NotLeaderOrFollower => 6,
            ErrorCode::FencedLeaderEpoch => 74,
            ErrorCode::UnknownLeaderEpoch => 75,
            ErrorCode::OffsetOutOfRange => 1,
            ErrorCode::NotEnoughReplicas => 19,
            ErrorCode::InvalidUpdateVersion => 108,
            ErrorCode::IneligibleReplica => 107,
        }
    }
}

/// The partition's leader and ISR as the controller decided them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaderAndIsr {
    /// `None`: the partition is offline (no live ISR member, unclean election disabled).
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub isr: Isr,
    pub partition_epoch: PartitionEpoch,
}

/// A fetch, from a follower (`replica` set) or a consumer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The follower fetching, or `None` for a consumer (Kafka's replica id -1).
    pub replica: Option<BrokerId>,
    /// The requester's current leader epoch (KIP-320), when the variant sends it.
    pub current_leader_epoch: Option<LeaderEpoch>,
    pub fetch_offset: Offset,
    /// The high watermark the requester knows: the leader holds (long-polls) a fetch that would
    /// return neither records nor a newer high watermark, as Kafka's fetch purgatory does.
    pub high_watermark: Offset,
}

/// The answer to a fetch: records from the fetch offset, and the leader's high watermark.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchResponse<B> {
    /// The responder's leader epoch.
    pub leader_epoch: LeaderEpoch,
    /// Echoes the request's fetch offset, so a stale answer is recognised.
    pub fetch_offset: Offset,
    pub high_watermark: Offset,
    /// With OFFSET_OUT_OF_RANGE: the leader's log end offset, which the follower truncates to
    /// (Kafka's follower asks ListOffsets for it).
    pub log_end_offset: Option<Offset>,
    pub batches: Vec<LogEntry<B>>,
    pub error: Option<ErrorCode>,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg<B> {
    /// Controller -> broker: who leads, in which epoch, with which ISR.
    LeaderAndIsr(LeaderAndIsr),
    /// Controller -> broker: the session of this broker epoch expired; register again.
    SessionExpired {
        broker_epoch: u32,
    },
    /// Broker -> controller: the broker (re)started, or its session expired, and asks to be
    /// considered alive. The broker epoch counts the broker's registrations, so the controller
    /// tells a bounced broker (which may have lost data) from a stale registration (KIP-380).
    BrokerRegistration {
        broker_epoch: u32,
    },
    /// Leader -> controller: a proposed ISR (KIP-497), fenced by leader and partition epoch.
    AlterPartition {
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
        isr: Isr,
    },
    /// Controller -> leader: the ISR now in force, or why the proposal was refused.
    AlterPartitionResponse {
        /// The leader epoch of the proposal answered.
        leader_epoch: LeaderEpoch,
        result: Result<LeaderAndIsr, ErrorCode>,
    },
    /// Follower -> leader: where does my last epoch end in your log?
    OffsetForLeaderEpoch {
        current_leader_epoch: Option<LeaderEpoch>,
        leader_epoch: LeaderEpoch,
    },
    /// Leader -> follower: the answer (its meaning depends on the variant).
    OffsetForLeaderEpochResponse {
        /// The responder's current leader epoch.
        leader_epoch: LeaderEpoch,
        requested_epoch: LeaderEpoch,
        result: Result<EpochEndOffset, ErrorCode>,
    },
    Fetch(FetchRequest),
    FetchResponse(FetchResponse<B>),
    /// Producer -> leader: one batch.
    Produce {
        sequence: u32,
        acks: Acks,
        batch: B,
    },
    ProduceResponse {
        sequence: u32,
        result: Result<Offset, ErrorCode>,
    },
    /// Controller -> clients, after every leader change: who leads now. (Kafka's clients
    /// refresh metadata on errors and periodically; here the refresh that follows a leader
    /// change is delivered as a message.)
    Metadata {
        leader: Option<BrokerId>,
        leader_epoch: LeaderEpoch,
    },
}

/// Every timer. Timers carry no time: any armed timer may fire at any moment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Controller: the broker's session expired (it stopped heartbeating, or looks so).
    SessionExpiry(BrokerId),
    /// Leader: the follower has not caught up within `replica.lag.time.max.ms`.
    ReplicaLag(BrokerId),
    /// Follower: back off, then retry a fetch or OffsetForLeaderEpoch that got a retriable error.
    FetchBackoff,
    /// Client: back off after a retriable error, then retry (`retry.backoff.ms`).
    RetryBackoff,
}
