//! Every message the roles exchange, and the timers they arm. All derive serde so the runtime
//! can send them between processes and trace them unchanged. Requests whose handling depends on
//! who sent them name their sender (broker id and broker epoch), as Kafka's requests do;
//! messages with several fields of one type are named structs.

use crate::config::{Endpoint, TopicConfig};
use crate::group::{
    Answer, CommittedOffset, GroupPartition, GroupTimer, JoinRequest, Leaving, MemberId, Phase,
    StoredMember, SyncRequest,
};
use crate::log::{EpochEndOffset, LogEntry};
use crate::types::{
    Acks, BrokerEpoch, BrokerId, Isr, LeaderEpoch, Offset, PartitionEpoch, ProducerEpoch,
    ProducerId, TopicId, TopicPartition,
};
use serde::{Deserialize, Serialize};

/// A Kafka error code carried in a response (a value, not a Rust error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// OFFSET_OUT_OF_RANGE (1): the fetch offset is below the log start or past the log end.
    OffsetOutOfRange,
    /// UNKNOWN_TOPIC_OR_PARTITION (3).
    UnknownTopicOrPartition,
    /// NOT_LEADER_OR_FOLLOWER (6): the receiver does not lead the partition.
    NotLeaderOrFollower,
    /// REQUEST_TIMED_OUT (7).
    RequestTimedOut,
    /// INVALID_TOPIC_EXCEPTION (17): a client's produce to an internal topic.
    InvalidTopic,
    /// GROUP_SUBSCRIBED_TO_TOPIC (86): OffsetDelete for a group that has members.
    GroupSubscribedToTopic,
    /// NOT_ENOUGH_REPLICAS (19): acks=all and the ISR is smaller than min.insync.replicas.
    NotEnoughReplicas,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20): the ISR shrank below min.insync.replicas while
    /// an acks=all write waited for it.
    NotEnoughReplicasAfterAppend,
    /// COORDINATOR_LOAD_IN_PROGRESS (14): the coordinator is still reading its partition.
    CoordinatorLoadInProgress,
    /// COORDINATOR_NOT_AVAILABLE (15).
    CoordinatorNotAvailable,
    /// NOT_COORDINATOR (16): the receiver is not the group's coordinator.
    NotCoordinator,
    /// ILLEGAL_GENERATION (22): a member's request names another generation than the group's.
    IllegalGeneration,
    /// INVALID_GROUP_ID (24): an empty group id.
    InvalidGroupId,
    /// INCONSISTENT_GROUP_PROTOCOL (23): no protocol in common with the group's members.
    InconsistentGroupProtocol,
    /// UNKNOWN_MEMBER_ID (25).
    UnknownMemberId,
    /// INVALID_SESSION_TIMEOUT (26): outside the coordinator's allowed range.
    InvalidSessionTimeout,
    /// REBALANCE_IN_PROGRESS (27): the member must join again.
    RebalanceInProgress,
    /// NON_EMPTY_GROUP (68): the group still has members.
    NonEmptyGroup,
    /// GROUP_ID_NOT_FOUND (69).
    GroupIdNotFound,
    /// TOPIC_ALREADY_EXISTS (36).
    TopicAlreadyExists,
    /// INVALID_PARTITIONS (37).
    InvalidPartitions,
    /// INVALID_REPLICATION_FACTOR (38): fewer live brokers than the replication factor.
    InvalidReplicationFactor,
    /// INVALID_CONFIG (40).
    InvalidConfig,
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45): an idempotent producer's batch skips sequences.
    OutOfOrderSequenceNumber,
    /// INVALID_PRODUCER_EPOCH (47): a batch from an older epoch of its producer id.
    InvalidProducerEpoch,
    /// UNKNOWN_PRODUCER_ID (59): the leader holds no state for the producer and the batch
    /// does not start its sequence.
    UnknownProducerId,
    /// FENCED_LEADER_EPOCH (74): the requester's leader epoch is older than the receiver's.
    FencedLeaderEpoch,
    /// UNKNOWN_LEADER_EPOCH (75): the requester's leader epoch is newer than the receiver's.
    UnknownLeaderEpoch,
    /// STALE_BROKER_EPOCH (77): the request comes from an earlier incarnation of a broker, or
    /// one whose session expired.
    StaleBrokerEpoch,
    /// MEMBER_ID_REQUIRED (79): a new member must join again with the member id given (KIP-394).
    MemberIdRequired,
    /// GROUP_MAX_SIZE_REACHED (81).
    GroupMaxSizeReached,
    /// FENCED_INSTANCE_ID (82): a static member's instance id is held by another member id.
    FencedInstanceId,
    /// INELIGIBLE_REPLICA (107): AlterPartition adds a broker that is not alive, or whose
    /// broker epoch is not its current one (KIP-903).
    IneligibleReplica,
    /// INVALID_UPDATE_VERSION (108): AlterPartition with a stale partition epoch or leader.
    InvalidUpdateVersion,
}

impl ErrorCode {
    /// Kafka's name for the code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorCode::NonEmptyGroup => "NON_EMPTY_GROUP",
            ErrorCode::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            ErrorCode::InvalidTopic => "INVALID_TOPIC_EXCEPTION",
            ErrorCode::GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorCode::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorCode::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::GroupMaxSizeReached => "GROUP_MAX_SIZE_REACHED",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
        }
    }

    /// Kafka's numeric code.
    pub fn code(self) -> i16 {
        match self {
            ErrorCode::OffsetOutOfRange => 1,
            ErrorCode::UnknownTopicOrPartition => 3,
            ErrorCode::NotLeaderOrFollower => 6,
            ErrorCode::RequestTimedOut => 7,
            ErrorCode::NotEnoughReplicas => 19,
            ErrorCode::NotEnoughReplicasAfterAppend => 20,
            ErrorCode::CoordinatorLoadInProgress => 14,
            ErrorCode::CoordinatorNotAvailable => 15,
            ErrorCode::NotCoordinator => 16,
            ErrorCode::IllegalGeneration => 22,
            ErrorCode::InvalidGroupId => 24,
            ErrorCode::NonEmptyGroup => 68,
            ErrorCode::GroupIdNotFound => 69,
            ErrorCode::InvalidTopic => 17,
            ErrorCode::GroupSubscribedToTopic => 86,
            ErrorCode::InconsistentGroupProtocol => 23,
            ErrorCode::UnknownMemberId => 25,
            ErrorCode::InvalidSessionTimeout => 26,
            ErrorCode::RebalanceInProgress => 27,
            ErrorCode::TopicAlreadyExists => 36,
            ErrorCode::InvalidPartitions => 37,
            ErrorCode::InvalidReplicationFactor => 38,
            ErrorCode::InvalidConfig => 40,
            ErrorCode::OutOfOrderSequenceNumber => 45,
            ErrorCode::InvalidProducerEpoch => 47,
            ErrorCode::UnknownProducerId => 59,
            ErrorCode::FencedLeaderEpoch => 74,
            ErrorCode::UnknownLeaderEpoch => 75,
            ErrorCode::StaleBrokerEpoch => 77,
            ErrorCode::MemberIdRequired => 79,
            ErrorCode::GroupMaxSizeReached => 81,
            ErrorCode::FencedInstanceId => 82,
            ErrorCode::IneligibleReplica => 107,
            ErrorCode::InvalidUpdateVersion => 108,
        }
    }
}

/// KIP-704: whether a partition's leader was elected uncleanly and may have lost records.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum LeaderRecovery {
    #[default]
    Recovered,
    /// Elected from outside the ISR (unclean election), until the next leader or ISR change.
    Recovering,
}

/// A partition's assignment and leadership as the controller decided them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionState {
    pub topic_partition: TopicPartition,
    /// The brokers holding a replica, in replica order (the first is the preferred leader).
    pub replicas: Vec<BrokerId>,
    /// `None`: offline (no live ISR member, unclean election disabled).
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub isr: Isr,
    pub partition_epoch: PartitionEpoch,
    pub leader_recovery: LeaderRecovery,
}

/// A topic as the controller created it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub id: TopicId,
    /// The topic id clients see (Kafka's UUID): the cluster's prefix and the creation number.
    pub uuid: u128,
    pub partitions: u32,
    pub config: TopicConfig,
}

/// A registered broker and where clients reach it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: BrokerId,
    pub endpoints: Vec<Endpoint>,
}

/// The controller's news for one broker (KRaft's metadata records, pushed): the live brokers,
/// topics created and deleted, and partitions whose leader, ISR or assignment changed (with
/// their topics). The
/// broker acts on the partitions it holds a replica of and keeps the rest to answer clients'
/// Metadata requests.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetadataUpdate {
    /// The recipient's broker epoch as the controller knows it (KIP-380): an update meant for
    /// another incarnation is dropped.
    pub broker_epoch: BrokerEpoch,
    /// The whole metadata (to a broker that just registered), as of this many topics ever
    /// created: topics it does not name among those are gone. (A topic id's low 64 bits count
    /// creations, so a full update overtaken by a later creation deletes nothing newer.)
    pub full: Option<u64>,
    /// The live brokers, whenever one registered (all of them, not a difference).
    pub live_brokers: Option<Vec<BrokerInfo>>,
    /// The topics of the partitions it mentions, and topics just created.
    pub topics: Vec<TopicInfo>,
    pub deleted_topics: Vec<TopicId>,
    pub partitions: Vec<PartitionState>,
}

/// A follower naming itself in a request (KIP-903's `ReplicaState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    pub broker: BrokerId,
    pub broker_epoch: BrokerEpoch,
}

/// One partition of a fetch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchPartition {
    pub topic_partition: TopicPartition,
    /// The requester's current leader epoch (KIP-320), when the variant sends it.
    pub current_leader_epoch: Option<LeaderEpoch>,
    pub fetch_offset: Offset,
    /// `partition_max_bytes`.
    pub bytes_max: u64,
}

/// A fetch, from a follower (`replica` set) or a consumer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The follower fetching, or `None` for a consumer (Kafka's replica id -1).
    pub replica: Option<ReplicaId>,
    /// `min_bytes`: the leader holds the fetch until this many bytes are there to return.
    pub min_bytes: u64,
    /// `max_wait_ms`: ... or until this long has passed.
    pub max_wait_ms: u32,
    /// `max_bytes`, for the whole response (KIP-74).
    pub bytes_max: u64,
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a fetch's answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchedPartition<B> {
    pub topic_partition: TopicPartition,
    pub error: Option<ErrorCode>,
    /// The responder's leader epoch for the partition.
    pub leader_epoch: LeaderEpoch,
    /// Echoes the request's fetch offset, so a stale answer is recognised.
    pub fetch_offset: Offset,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// With OFFSET_OUT_OF_RANGE past the log end: the leader's log end offset, which the
    /// follower truncates to (Kafka's follower asks ListOffsets for it).
    pub log_end_offset: Option<Offset>,
    pub batches: Vec<LogEntry<B>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FetchResponse<B> {
    pub partitions: Vec<FetchedPartition<B>>,
}

/// Follower -> leader: where does my last epoch end in your log? Also asked by a consumer
/// (KIP-320), about the epoch of the last record it read, to detect a truncation below its
/// position.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetForLeaderEpochRequest {
    /// The asking follower; `None` for a consumer.
    pub replica: Option<ReplicaId>,
    pub topic_partition: TopicPartition,
    /// The requester's current leader epoch (KIP-320), when the variant sends it.
    pub current_leader_epoch: Option<LeaderEpoch>,
    /// The epoch of the requester's last batch.
    pub leader_epoch: LeaderEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetForLeaderEpochResponse {
    pub topic_partition: TopicPartition,
    /// The responder's current leader epoch.
    pub leader_epoch: LeaderEpoch,
    pub requested_epoch: LeaderEpoch,
    pub result: Result<EpochEndOffset, ErrorCode>,
}

/// An ISR member as the leader proposes it: with the broker epoch its fetches carried
/// (KIP-903), or `None` for a member not heard from in this leader epoch (not checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IsrMember {
    pub broker: BrokerId,
    pub broker_epoch: Option<BrokerEpoch>,
}

/// Leader -> controller: a proposed ISR (KIP-497), fenced by leader and partition epoch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub leader: ReplicaId,
    pub topic_partition: TopicPartition,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub isr: Vec<IsrMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlterPartitionResponse {
    pub topic_partition: TopicPartition,
    /// The leader epoch of the proposal answered.
    pub leader_epoch: LeaderEpoch,
    pub result: Result<PartitionState, ErrorCode>,
}

/// A topic to create, as CreateTopics asks for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    /// Overrides of the controller's defaults (`min.insync.replicas`, ...).
    pub min_insync_replicas: Option<u32>,
    pub unclean_leader_election: Option<bool>,
}

/// A client's request that only the controller can answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AdminRequest {
    CreateTopics(Vec<NewTopic>),
    DeleteTopics(Vec<String>),
    /// CreatePartitions: each topic named grows to this many partitions.
    CreatePartitions(Vec<(String, u32)>),
    /// IncrementalAlterConfigs / AlterConfigs for topics: each topic named gets these settings.
    AlterTopicConfigs(Vec<(String, TopicConfigChange)>),
}

/// Changes to a topic's settings: `None` leaves a setting as it is, `Some(None)` sets it back
/// to the cluster's default, `Some(Some(v))` sets it to `v`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicConfigChange {
    /// `min.insync.replicas`.
    pub min_insync_replicas: Option<Option<u32>>,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: Option<Option<bool>>,
}

/// A client's request to the controller, forwarded by the broker it reached (KIP-590).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Forwarded<T> {
    /// The broker that forwarded it, and the client it answers (`None`: the broker's own
    /// request, creating `__consumer_offsets` for a FindCoordinator).
    pub broker: BrokerId,
    pub client: Option<crate::types::ClientId>,
    pub request: T,
}

/// The outcome for one topic of CreateTopics or DeleteTopics.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicResult {
    pub name: String,
    pub result: Result<TopicId, ErrorCode>,
}

/// A produce request for one partition (the Kafka front end splits a request by partition
/// and joins the answers).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProduceRequest<B> {
    /// The requester's number for this request, echoed in the answer.
    pub request: u32,
    pub topic_partition: TopicPartition,
    pub acks: Acks,
    pub batch: B,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProduceResponse {
    pub request: u32,
    pub topic_partition: TopicPartition,
    /// The batch's base offset.
    pub result: Result<Offset, ErrorCode>,
}

/// What a ListOffsets request asks for (Kafka's special timestamps -2, -1, -3, or a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OffsetQuery {
    /// The log start offset (timestamp -2).
    Earliest,
    /// The HW, or the log end offset for a request that reads to the log end (timestamp -1).
    Latest,
    /// The first record with the largest timestamp (timestamp -3, KIP-734).
    MaxTimestamp,
    /// The first record whose timestamp is at or past this many ms since the epoch.
    Timestamp(i64),
}

/// ListOffsets for one partition (the Kafka front end splits a request by partition).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListOffsetsRequest {
    /// The requester's number for this request, echoed in the answer.
    pub request: u32,
    pub topic_partition: TopicPartition,
    /// The requester's current leader epoch (KIP-320), when it sends one.
    pub current_leader_epoch: Option<LeaderEpoch>,
    pub query: OffsetQuery,
    /// Whether the answer may lie past the HW, up to the log end offset (Kafka's debug
    /// consumer, replica id -2); a consumer's answers lie below the HW.
    pub to_log_end: bool,
}

/// The offset a ListOffsets found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListedOffset {
    /// `None` when no record matches (Kafka answers offset -1).
    pub offset: Option<Offset>,
    /// The found record's timestamp, for the queries by time; else `None` (Kafka's -1).
    pub timestamp: Option<i64>,
    /// The leader epoch of the batch holding the offset (the current one for Earliest and
    /// Latest).
    pub leader_epoch: LeaderEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    pub request: u32,
    pub topic_partition: TopicPartition,
    pub result: Result<ListedOffset, ErrorCode>,
}

/// One partition as a Metadata answer describes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub partition: u32,
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<BrokerId>,
    pub isr: Isr,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub id: TopicId,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerInfo>,
    /// Each topic asked for: its metadata, or UNKNOWN_TOPIC_OR_PARTITION.
    pub topics: Vec<(String, Result<TopicMetadata, ErrorCode>)>,
}

/// The requester's address for a group's answer: who, and its number for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupReply {
    pub to: crate::effects::Address,
    pub request: u32,
}

/// A request to a group's coordinator (the broker leading the group's partition of
/// `__consumer_offsets`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupRequest {
    /// The requester's number for this request, echoed in the answer.
    pub request: u32,
    pub group: String,
    pub op: GroupOp,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupOp {
    Join(Box<JoinRequest>),
    Sync(SyncRequest),
    Heartbeat {
        member_id: MemberId,
        instance_id: Option<String>,
        generation: i32,
    },
    Leave(Vec<Leaving>),
    OffsetCommit(OffsetCommit),
    /// The committed offsets of these partitions (`None`: of every partition the group has
    /// committed).
    OffsetFetch(Option<Vec<GroupPartition>>),
    /// DescribeGroups, for one group.
    Describe,
    /// DeleteGroups, for one group: its record and offsets deleted (tombstones), refused while
    /// it has members.
    Delete,
    /// OffsetDelete: these partitions' committed offsets deleted (tombstones), refused while
    /// the group has members.
    OffsetDelete(Vec<GroupPartition>),
}

/// OffsetCommit: a member's (member id and generation), or one without (an admin's, or a
/// consumer's that assigns partitions itself: generation -1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetCommit {
    pub member_id: Option<MemberId>,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub offsets: Vec<(GroupPartition, CommittedOffset)>,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupDescription {
    pub phase: Phase,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub members: Vec<StoredMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupResponse {
    pub request: u32,
    pub group: String,
    pub answer: GroupAnswer,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupAnswer {
    /// The coordinator did not take the request (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
    /// INVALID_GROUP_ID).
    Refused(ErrorCode),
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
    Member(Answer),
    /// OffsetCommit: its offsets are committed (the HW passed their records), or why not.
    OffsetCommit(Result<(), ErrorCode>),
    OffsetFetch(Vec<(GroupPartition, Option<CommittedOffset>)>),
    /// DescribeGroups (a group the coordinator does not know is `Dead`: `None`).
    Describe(Option<GroupDescription>),
    Delete(Result<(), ErrorCode>),
    /// OffsetDelete, per partition asked (the group's own refusals are `Refused`).
    OffsetDelete(Vec<(GroupPartition, Result<(), ErrorCode>)>),
}

/// A group a coordinator holds, as ListGroups lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListedGroup {
    pub group: String,
    pub protocol_type: Option<String>,
    pub phase: Phase,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg<B> {
    // Broker <-> controller.
    /// A broker (re)starting, or whose session expired, asks to be considered alive.
    BrokerRegistration {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        endpoints: Vec<Endpoint>,
    },
    /// The controller refuses a registration no newer than one it has seen, naming the newest.
    BrokerRegistrationRefused {
        broker_epoch: BrokerEpoch,
        newest: BrokerEpoch,
    },
    BrokerHeartbeat {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    /// `error`: STALE_BROKER_EPOCH when the session of this broker epoch is over.
    BrokerHeartbeatResponse {
        broker_epoch: BrokerEpoch,
        error: Option<ErrorCode>,
    },
    MetadataUpdate(Box<MetadataUpdate>),
    AlterPartition(AlterPartitionRequest),
    AlterPartitionResponse(Box<AlterPartitionResponse>),
    /// A broker asks for a block of producer ids to hand out (KIP-730).
    AllocateProducerIds {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    AllocateProducerIdsResponse {
        broker_epoch: BrokerEpoch,
        first: ProducerId,
        count: u64,
    },
    /// A client's admin request, forwarded by the broker it reached (KIP-590).
    Forward(Box<Forwarded<AdminRequest>>),
    /// The controller's answer to a forwarded request, for the broker to pass on.
    ForwardResponse(Box<Forwarded<Vec<TopicResult>>>),

    // Broker <-> broker (and consumers).
    Fetch(FetchRequest),
    FetchResponse(FetchResponse<B>),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    OffsetForLeaderEpochResponse(OffsetForLeaderEpochResponse),

    // Client <-> broker.
    Metadata {
        topics: Vec<String>,
    },
    MetadataResponse(Box<MetadataResponse>),
    Admin(AdminRequest),
    AdminResponse(Vec<TopicResult>),
    InitProducerId,
    InitProducerIdResponse(Result<(ProducerId, ProducerEpoch), ErrorCode>),
    Produce(ProduceRequest<B>),
    ProduceResponse(ProduceResponse),

    ListOffsets(ListOffsetsRequest),
    ListOffsetsResponse(ListOffsetsResponse),

    /// FindCoordinator, for one or more groups (KIP-699): any broker answers from its metadata.
    FindCoordinator {
        request: u32,
        groups: Vec<String>,
    },
    /// Per group asked: the broker leading its partition of `__consumer_offsets`, or
    /// COORDINATOR_NOT_AVAILABLE (the topic is being created, or the partition has no leader).
    FindCoordinatorResponse {
        request: u32,
        coordinators: Vec<(String, Result<BrokerInfo, ErrorCode>)>,
    },
    Group(Box<GroupRequest>),
    GroupResponse(Box<GroupResponse>),
    /// ListGroups: the groups this broker coordinates.
    ListGroups {
        request: u32,
    },
    ListGroupsResponse {
        request: u32,
        groups: Vec<ListedGroup>,
    },

    /// Host -> broker: the connection to this message's sender closed; what it was waiting
    /// for (held fetches, acks=all writes) will never be read.
    Disconnected,
}

/// Every timer. The model checker lets any armed timer fire at any moment; a host fires it
/// after the duration it was set with (`specs/protocol.md`, "Timers").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Controller: the broker has not heartbeaten for `broker.session.timeout.ms`.
    SessionExpiry(BrokerId),
    /// Broker: time to heartbeat (`broker.heartbeat.interval.ms`).
    Heartbeat,
    /// Leader: the follower has not caught up for `replica.lag.time.max.ms` (re-armed at
    /// each fetch that shows it caught up).
    ReplicaLag(TopicPartition, BrokerId),
    /// Follower: back off, then retry a partition's fetch or OffsetForLeaderEpoch.
    FetchBackoff(TopicPartition),
    /// Leader: the held fetch of this requester has waited its `max_wait_ms`.
    FetchExpiry(crate::effects::Address),
    /// Broker: write the HW checkpoint (`replica.high.watermark.checkpoint.interval.ms`).
    HighWatermarkCheckpoint,
    /// Broker: apply retention (`log.retention.check.interval.ms`).
    Retention,
    /// Client: back off after a retriable error, then retry (`retry.backoff.ms`).
    RetryBackoff,
    /// Client: a request to this broker went unanswered (`request.timeout.ms`).
    RequestTimeout(BrokerId),
    /// Client: its Metadata request went unanswered (`request.timeout.ms`).
    MetadataTimeout,
    /// Coordinator: a timer of a group of this partition of `__consumer_offsets`.
    Group(TopicPartition, String, GroupTimer),
}

/// Shorthand for the answer to a partition's fetch that carries only an error.
pub fn fetch_error<B>(
    topic_partition: TopicPartition,
    fetch_offset: Offset,
    error: ErrorCode,
) -> FetchedPartition<B> {
    FetchedPartition {
        topic_partition,
        error: Some(error),
        leader_epoch: LeaderEpoch(0),
        fetch_offset,
        high_watermark: Offset(0),
        log_start_offset: Offset(0),
        log_end_offset: None,
        batches: Vec::new(),
    }
}

/// The ISR of a partition as a set, from AlterPartition's members.
pub fn isr_of(members: &[IsrMember]) -> Isr {
    members.iter().map(|m| m.broker).collect()
}
