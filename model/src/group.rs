//! A consumer group at its coordinator: Kafka's classic membership protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup; KIP-345 static members, KIP-394 MEMBER_ID_REQUIRED,
//! `group.initial.rebalance.delay.ms`), as a state machine with no I/O. It answers requests,
//! arms and cancels timers, and asks for the group's record to be stored; its owner (the broker
//! leading the group's `__consumer_offsets` partition) turns those into the protocol's
//! messages, timers and log appends, and calls [`Group::stored`] once the record is committed.
//! `specs/protocol.md`, "Consumer groups", states the rules in prose.
//!
//! The phases, as Kafka names them: `Empty` (no members), `PreparingRebalance` (members are
//! (re)joining; the join completes when every known member has joined, or at the rebalance
//! timeout, or — for a group that was empty — after the initial delay), `CompletingRebalance`
//! (a new generation: the leader member computes the assignment and hands it over in its
//! SyncGroup) and `Stable` (the assignment is stored and handed out).
//!
//! `R` is the requester's reply address: a request that cannot be answered at once (a join
//! waiting for the others, a sync waiting for the leader's assignment) is answered later to it.

use crate::message::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A member's id, handed out by the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(pub String);

/// The coordinator's settings, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms` (3000): a group that was empty waits this long for
    /// more members before its first generation, again while members keep arriving, up to
    /// the rebalance timeout.
    pub initial_rebalance_delay: Duration,
    /// `group.max.size` (Kafka: 2147483647, in effect unbounded).
    pub max_size: usize,
    /// `offsets.retention.minutes` (7 days): a group without members loses its committed
    /// offsets, and is gone, this long after it became empty or last committed.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (10 min): how soon an expiry that could not be
    /// written (too few in-sync replicas) is tried again.
    pub offsets_retention_check: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            max_size: i32::MAX as usize,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

/// A protocol a member can use (e.g. `range`, `cooperative-sticky`) and its subscription
/// metadata, opaque to the coordinator.
pub type Protocol = (String, Vec<u8>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member<R> {
    pub id: MemberId,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    /// Where its connection came from, as DescribeGroups shows it (Kafka: `/127.0.0.1`).
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// Its part of the leader's assignment, once synced.
    pub assignment: Vec<u8>,
    /// A JoinGroup waiting for the join to complete.
    awaiting_join: Option<R>,
    /// A SyncGroup waiting for the leader's assignment to be stored.
    awaiting_sync: Option<R>,
}

/// JoinGroup, as the coordinator reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JoinRequest {
    /// `None` for a member joining for the first time (Kafka's empty member id).
    pub member_id: Option<MemberId>,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: a new member first gets its id with MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

/// A member as the leader's JoinGroup answer lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JoinedMember {
    pub member_id: MemberId,
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// A completed join: the generation the member is in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Joined {
    pub member_id: MemberId,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: MemberId,
    /// Every member, for the leader to assign to; empty for the others.
    pub members: Vec<JoinedMember>,
}

/// SyncGroup, as the coordinator reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SyncRequest {
    pub member_id: MemberId,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// The leader's assignment; empty from the others.
    pub assignments: Vec<(MemberId, Vec<u8>)>,
}

/// One member leaving (LeaveGroup v3+ names several, by member id or instance id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Leaving {
    pub member_id: Option<MemberId>,
    pub instance_id: Option<String>,
}

/// An answer to a member's request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Answer {
    /// JoinGroup: the generation joined, or an error with the member id to use (MEMBER_ID_REQUIRED
    /// hands one out).
    Join(Result<Joined, (ErrorCode, Option<MemberId>)>),
    /// SyncGroup: the member's assignment, with the generation's protocol.
    Sync(Result<(String, Vec<u8>), ErrorCode>),
    Heartbeat(Result<(), ErrorCode>),
    /// LeaveGroup: per member named.
    Leave(Vec<(Leaving, Result<(), ErrorCode>)>),
}

/// The group's timers (the owner names them with the group).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupTimer {
    /// The join phase ends (rebalance timeout, or the initial delay).
    Join,
    /// The members of this generation that have not sent SyncGroup by the rebalance timeout
    /// are removed.
    Sync(i32),
    /// The member has not heartbeaten for its session timeout.
    Session(MemberId),
    /// A member id handed out with MEMBER_ID_REQUIRED was not used within the session timeout.
    Pending(MemberId),
    /// The group has had no members for `offsets.retention.minutes`: its offsets expire (its
    /// owner, the coordinator, handles this one).
    Retention,
}

/// A member as the group's record stores it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StoredMember {
    pub member_id: MemberId,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// Its metadata for the generation's protocol.
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// The group's record in `__consumer_offsets` (Kafka's `GroupMetadataValue`): a generation and
/// its assignment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupRecord {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<MemberId>,
    pub members: Vec<StoredMember>,
}

/// A partition's committed position (Kafka's `OffsetCommitValue`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: u64,
    /// The leader epoch of the last record read, if the consumer gave it (KIP-320).
    pub leader_epoch: Option<u32>,
    /// The consumer's metadata string, returned as committed.
    pub metadata: String,
}

/// A topic partition as a group names it: by topic name, as commits carry it.
pub type GroupPartition = (String, u32);

/// A record of a coordinator's partition of `__consumer_offsets`, keyed as Kafka keys them: the
/// last record of a key is what counts, and `None` deletes the key (a tombstone).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CoordinatorRecord {
    /// Kafka's `OffsetCommitKey` / `OffsetCommitValue`.
    Offset {
        group: String,
        partition: GroupPartition,
        offset: Option<CommittedOffset>,
    },
    /// Kafka's `GroupMetadataKey` / `GroupMetadataValue`.
    Group {
        group: String,
        record: Option<GroupRecord>,
    },
}

/// What a call asks of the group's owner, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<R> {
    Answer(R, Answer),
    SetTimer(GroupTimer, Duration),
    CancelTimer(GroupTimer),
    /// Append the group's record; call [`Group::stored`] with its generation once committed.
    Store(GroupRecord),
}

/// A consumer group at its coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group<R> {
    pub id: String,
    pub phase: Phase,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<MemberId>,
    pub members: BTreeMap<MemberId, Member<R>>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pub pending: BTreeSet<MemberId>,
    /// Static members: instance id to member id.
    pub instances: BTreeMap<String, MemberId>,
    /// Members of this generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<MemberId>,
    /// The generation whose record is being stored (SyncGroups wait for it).
    pub storing: Option<i32>,
    /// The committed offsets: those whose records are committed in the group's partition.
    pub offsets: BTreeMap<GroupPartition, CommittedOffset>,
    /// The initial delay's budget left (a group that was empty), and whether a member joined
    /// during the current delay.
    delay_left: Option<Duration>,
    joined_during_delay: bool,
    /// Member ids are `<client id>-<epoch>-<n>`: `epoch` is the coordinator's (its partition's
    /// leader epoch), so ids handed out by an earlier coordinator are never handed out again.
    epoch: u32,
    next_member: u32,
    config: GroupConfig,
}

impl<R: Clone> Group<R> {
    /// A group the coordinator has no record of.
    pub fn new(id: String, coordinator_epoch: u32, config: GroupConfig) -> Group<R> {
        Group {
            id,
            phase: Phase::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            instances: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            storing: None,
            offsets: BTreeMap::new(),
            delay_left: None,
            joined_during_delay: false,
            epoch: coordinator_epoch,
            next_member: 0,
            config,
        }
    }

    /// A group as its last record left it (a coordinator loading its partition): `Stable` with
    /// the stored members, each with a session to keep up, or `Empty`.
    pub fn load(
        id: String,
        record: &GroupRecord,
        coordinator_epoch: u32,
        config: GroupConfig,
        out: &mut Vec<Output<R>>,
    ) -> Group<R> {
        let mut group = Group::new(id, coordinator_epoch, config);
        group.generation = record.generation;
        group.protocol_type = record.protocol_type.clone();
        group.protocol = record.protocol.clone();
        group.leader = record.leader.clone();
        for stored in &record.members {
            let protocol = record.protocol.clone().unwrap_or_default();
            group.members.insert(
                stored.member_id.clone(),
                Member {
                    id: stored.member_id.clone(),
                    instance_id: stored.instance_id.clone(),
                    client_id: stored.client_id.clone(),
                    client_host: stored.client_host.clone(),
                    session_timeout: stored.session_timeout,
                    rebalance_timeout: stored.rebalance_timeout,
                    protocols: vec![(protocol, stored.metadata.clone())],
                    assignment: stored.assignment.clone(),
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
            if let Some(instance) = &stored.instance_id {
                group
                    .instances
                    .insert(instance.clone(), stored.member_id.clone());
            }
            out.push(Output::SetTimer(
                GroupTimer::Session(stored.member_id.clone()),
                stored.session_timeout,
            ));
        }
        group.phase = match group.members.is_empty() {
            true => Phase::Empty,
            false => Phase::Stable,
        };
        group
    }

    /// The group's record as it stands.
    pub fn record(&self) -> GroupRecord {
        let protocol = self.protocol.as_deref();
        GroupRecord {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: m.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    metadata: protocol.and_then(|p| m.metadata(p)).unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // JoinGroup.

    pub fn join(&mut self, request: JoinRequest, reply: R, out: &mut Vec<Output<R>>) {
        let refuse = |out: &mut Vec<Output<R>>, code, id: Option<MemberId>| {
            out.push(Output::Answer(reply.clone(), Answer::Join(Err((code, id)))));
        };
        if request.session_timeout < self.config.min_session_timeout
            || request.session_timeout > self.config.max_session_timeout
        {
            return refuse(out, ErrorCode::InvalidSessionTimeout, request.member_id);
        }
        if !self.supports(&request.protocol_type, &request.protocols) {
            return refuse(out, ErrorCode::InconsistentGroupProtocol, request.member_id);
        }
        match request.member_id.clone() {
            None => self.join_unknown(request, reply, out),
            Some(id) if self.pending.contains(&id) => {
                self.pending.remove(&id);
                out.push(Output::CancelTimer(GroupTimer::Pending(id.clone())));
                self.add_member(id, request, reply, out);
            }
            Some(id) => {
                if let Err(code) = self.check_instance(&id, request.instance_id.as_deref()) {
                    return refuse(out, code, Some(id));
                }
                if !self.members.contains_key(&id) {
                    return refuse(out, ErrorCode::UnknownMemberId, Some(id));
                }
                self.join_known(id, request, reply, out);
            }
        }
    }

    fn join_unknown(&mut self, request: JoinRequest, reply: R, out: &mut Vec<Output<R>>) {
        if self.members.len() + self.pending.len() >= self.config.max_size {
            out.push(Output::Answer(
                reply,
                Answer::Join(Err((ErrorCode::GroupMaxSizeReached, None))),
            ));
            return;
        }
        let id = self.new_member_id(&request.client_id);
        if let Some(instance) = request.instance_id.clone() {
            if let Some(old) = self.instances.get(&instance).cloned() {
                return self.replace_static_member(old, id, request, reply, out);
            }
            return self.add_member(id, request, reply, out);
        }
        if request.require_known_member_id {
            self.pending.insert(id.clone());
            out.push(Output::SetTimer(
                GroupTimer::Pending(id.clone()),
                request.session_timeout,
            ));
            out.push(Output::Answer(
                reply,
                Answer::Join(Err((ErrorCode::MemberIdRequired, Some(id)))),
            ));
            return;
        }
        self.add_member(id, request, reply, out);
    }

    /// A static member rejoining with a new member id: it takes the old member's place (its
    /// assignment, its leadership) and the old id is fenced. A stable group with unchanged
    /// protocols does not rebalance (KIP-345).
    fn replace_static_member(
        &mut self,
        old: MemberId,
        id: MemberId,
        request: JoinRequest,
        reply: R,
        out: &mut Vec<Output<R>>,
    ) {
        let Some(mut member) = self.members.remove(&old) else {
            return self.add_member(id, request, reply, out);
        };
        out.push(Output::CancelTimer(GroupTimer::Session(old.clone())));
        if let Some(waiting) = member.awaiting_join.take() {
            out.push(Output::Answer(
                waiting,
                Answer::Join(Err((ErrorCode::FencedInstanceId, Some(old.clone())))),
            ));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            out.push(Output::Answer(
                waiting,
                Answer::Sync(Err(ErrorCode::FencedInstanceId)),
            ));
        }
        let unchanged = member.protocols == request.protocols;
        member.id = id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.protocols = request.protocols.clone();
        if self.leader.as_ref() == Some(&old) {
            self.leader = Some(id.clone());
        }
        if self.pending_sync.remove(&old) {
            self.pending_sync.insert(id.clone());
        }
        self.instances
            .insert(request.instance_id.clone().expect("static"), id.clone());
        self.members.insert(id.clone(), member);
        out.push(Output::SetTimer(
            GroupTimer::Session(id.clone()),
            request.session_timeout,
        ));
        if self.phase == Phase::Stable && unchanged {
            let joined = self.joined(&id);
            out.push(Output::Answer(reply, Answer::Join(Ok(joined))));
            return;
        }
        self.members.get_mut(&id).expect("inserted").awaiting_join = Some(reply);
        self.rebalance_or_try_complete(out);
    }

    fn add_member(
        &mut self,
        id: MemberId,
        request: JoinRequest,
        reply: R,
        out: &mut Vec<Output<R>>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.instance_id {
            self.instances.insert(instance.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: request.instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols,
                assignment: Vec::new(),
                awaiting_join: Some(reply),
                awaiting_sync: None,
            },
        );
        if self.phase == Phase::PreparingRebalance {
            self.joined_during_delay = true;
        }
        self.rebalance_or_try_complete(out);
    }

    fn join_known(
        &mut self,
        id: MemberId,
        request: JoinRequest,
        reply: R,
        out: &mut Vec<Output<R>>,
    ) {
        let member = self.members.get_mut(&id).expect("checked");
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_ref() == Some(&id);
        match self.phase {
            // Rejoining with what it had: the current generation back, unless the leader
            // rejoins a stable group (that asks for a new assignment, as in Kafka).
            Phase::CompletingRebalance | Phase::Stable
                if unchanged && !(is_leader && self.phase == Phase::Stable) =>
            {
                let joined = self.joined(&id);
                out.push(Output::Answer(reply, Answer::Join(Ok(joined))));
            }
            Phase::Empty => out.push(Output::Answer(
                reply,
                Answer::Join(Err((ErrorCode::UnknownMemberId, Some(id)))),
            )),
            _ => {
                member.protocols = request.protocols;
                member.session_timeout = request.session_timeout;
                member.rebalance_timeout = request.rebalance_timeout;
                if let Some(earlier) = member.awaiting_join.replace(reply) {
                    // A second join from the same member replaces the first, which is told
                    // to join again.
                    out.push(Output::Answer(
                        earlier,
                        Answer::Join(Err((ErrorCode::RebalanceInProgress, Some(id)))),
                    ));
                }
                self.rebalance_or_try_complete(out);
            }
        }
    }

    /// Whether a member with these protocols may join: the group's protocol type, and a
    /// protocol every member supports.
    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    fn new_member_id(&mut self, client_id: &str) -> MemberId {
        self.next_member += 1;
        MemberId(format!("{client_id}-{}-{}", self.epoch, self.next_member))
    }

    /// FENCED_INSTANCE_ID when a static member's instance id is held by another member id.
    fn check_instance(&self, id: &MemberId, instance: Option<&str>) -> Result<(), ErrorCode> {
        match instance.and_then(|i| self.instances.get(i)) {
            Some(holder) if holder != id => Err(ErrorCode::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// The answer to a member of the current generation.
    fn joined(&self, id: &MemberId) -> Joined {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_else(|| id.clone());
        let members = match &leader == id {
            true => self
                .members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol).unwrap_or_default(),
                })
                .collect(),
            false => Vec::new(),
        };
        Joined {
            member_id: id.clone(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            leader,
            members,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Rebalancing.

    fn rebalance_or_try_complete(&mut self, out: &mut Vec<Output<R>>) {
        match self.phase {
            Phase::PreparingRebalance => self.try_complete_join(out),
            _ => self.prepare_rebalance(out),
        }
    }

    fn prepare_rebalance(&mut self, out: &mut Vec<Output<R>>) {
        if self.phase == Phase::CompletingRebalance {
            // The generation's assignment is void: its waiting syncs must join again.
            for member in self.members.values_mut() {
                member.assignment.clear();
                if let Some(waiting) = member.awaiting_sync.take() {
                    out.push(Output::Answer(
                        waiting,
                        Answer::Sync(Err(ErrorCode::RebalanceInProgress)),
                    ));
                }
            }
        }
        let was_empty = self.phase == Phase::Empty;
        self.phase = Phase::PreparingRebalance;
        self.pending_sync.clear();
        out.push(Output::CancelTimer(GroupTimer::Sync(self.generation)));
        if was_empty {
            let delay = self.config.initial_rebalance_delay;
            self.delay_left = Some(self.rebalance_timeout().saturating_sub(delay));
            self.joined_during_delay = false;
            out.push(Output::SetTimer(GroupTimer::Join, delay));
        } else {
            self.delay_left = None;
            out.push(Output::SetTimer(GroupTimer::Join, self.rebalance_timeout()));
            self.try_complete_join(out);
        }
    }

    /// The longest rebalance timeout of the members: how long the join phase waits.
    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Completes the join once every member has joined and no handed-out id is pending —
    /// unless the initial delay is running, which only its timer ends.
    fn try_complete_join(&mut self, out: &mut Vec<Output<R>>) {
        let all_joined =
            self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some());
        if self.delay_left.is_none() && all_joined {
            out.push(Output::CancelTimer(GroupTimer::Join));
            self.complete_join(out);
        }
    }

    fn complete_join(&mut self, out: &mut Vec<Output<R>>) {
        // Members that did not join in time are out.
        let gone: Vec<MemberId> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, out);
        }
        self.delay_left = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.protocol = None;
            self.leader = None;
            out.push(Output::Store(self.record()));
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.phase = Phase::CompletingRebalance;
        self.pending_sync = self.members.keys().cloned().collect();
        let ids: Vec<MemberId> = self.members.keys().cloned().collect();
        for id in ids {
            let joined = self.joined(&id);
            let member = self.members.get_mut(&id).expect("listed");
            let reply = member.awaiting_join.take().expect("joined");
            out.push(Output::Answer(reply, Answer::Join(Ok(joined))));
            out.push(Output::SetTimer(
                GroupTimer::Session(id),
                member.session_timeout,
            ));
        }
        out.push(Output::SetTimer(
            GroupTimer::Sync(self.generation),
            self.rebalance_timeout(),
        ));
    }

    /// Kafka's vote: every member votes for its most preferred protocol among those all
    /// support; the most votes win (ties: the smallest name).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| &n == name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|&(_, v)| v == most)
            .map(|(name, _)| name.clone())
    }

    fn remove_member(&mut self, id: &MemberId, out: &mut Vec<Output<R>>) {
        let Some(member) = self.members.remove(id) else {
            return;
        };
        out.push(Output::CancelTimer(GroupTimer::Session(id.clone())));
        if let Some(instance) = &member.instance_id {
            if self.instances.get(instance) == Some(id) {
                self.instances.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if let Some(waiting) = member.awaiting_join {
            out.push(Output::Answer(
                waiting,
                Answer::Join(Err((ErrorCode::UnknownMemberId, Some(id.clone())))),
            ));
        }
        if let Some(waiting) = member.awaiting_sync {
            out.push(Output::Answer(
                waiting,
                Answer::Sync(Err(ErrorCode::UnknownMemberId)),
            ));
        }
    }

    /// A member is gone (session expired, left): the others rebalance.
    fn member_gone(&mut self, id: &MemberId, out: &mut Vec<Output<R>>) {
        self.remove_member(id, out);
        match self.phase {
            Phase::Stable | Phase::CompletingRebalance => self.prepare_rebalance(out),
            Phase::PreparingRebalance => self.try_complete_join(out),
            Phase::Empty => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // SyncGroup, Heartbeat, LeaveGroup.

    pub fn sync(&mut self, request: SyncRequest, reply: R, out: &mut Vec<Output<R>>) {
        let answer = |out: &mut Vec<Output<R>>, result| {
            out.push(Output::Answer(reply.clone(), Answer::Sync(result)));
        };
        if let Err(code) = self.check_member(
            &request.member_id,
            request.instance_id.as_deref(),
            request.generation,
        ) {
            return answer(out, Err(code));
        }
        match self.phase {
            Phase::Empty => answer(out, Err(ErrorCode::UnknownMemberId)),
            Phase::PreparingRebalance => answer(out, Err(ErrorCode::RebalanceInProgress)),
            Phase::Stable => {
                self.pending_sync.remove(&request.member_id);
                let member = &self.members[&request.member_id];
                let protocol = self.protocol.clone().unwrap_or_default();
                answer(out, Ok((protocol, member.assignment.clone())));
            }
            Phase::CompletingRebalance => {
                self.pending_sync.remove(&request.member_id);
                let member = self.members.get_mut(&request.member_id).expect("checked");
                if let Some(earlier) = member.awaiting_sync.replace(reply) {
                    out.push(Output::Answer(
                        earlier,
                        Answer::Sync(Err(ErrorCode::RebalanceInProgress)),
                    ));
                }
                let is_leader = self.leader.as_ref() == Some(&request.member_id);
                // (A record of an earlier generation may still be on its way: this one is
                // stored regardless, and the earlier one's completion is then ignored.)
                if is_leader && self.storing != Some(self.generation) {
                    let mut assignments: BTreeMap<MemberId, Vec<u8>> =
                        request.assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment = assignments.remove(&member.id).unwrap_or_default();
                    }
                    self.storing = Some(self.generation);
                    out.push(Output::Store(self.record()));
                }
            }
        }
    }

    /// The group's record of `generation` is committed: a completing generation becomes
    /// stable and its waiting syncs get their assignments.
    pub fn stored(&mut self, generation: i32, out: &mut Vec<Output<R>>) {
        if self.storing != Some(generation) {
            return;
        }
        self.storing = None;
        if self.phase != Phase::CompletingRebalance || self.generation != generation {
            return;
        }
        self.phase = Phase::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        for member in self.members.values_mut() {
            if let Some(waiting) = member.awaiting_sync.take() {
                out.push(Output::Answer(
                    waiting,
                    Answer::Sync(Ok((protocol.clone(), member.assignment.clone()))),
                ));
            }
        }
    }

    /// The group's record could not be committed (the coordinator lost its partition's
    /// leadership, or the write failed): the generation is void.
    pub fn store_failed(&mut self, generation: i32, out: &mut Vec<Output<R>>) {
        if self.storing != Some(generation) {
            return;
        }
        self.storing = None;
        if self.phase == Phase::CompletingRebalance && self.generation == generation {
            self.prepare_rebalance(out);
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &MemberId,
        instance_id: Option<&str>,
        generation: i32,
        reply: R,
        out: &mut Vec<Output<R>>,
    ) {
        let result = match self.check_member(member_id, instance_id, generation) {
            Err(code) => Err(code),
            Ok(()) if self.phase == Phase::Empty => Err(ErrorCode::UnknownMemberId),
            Ok(()) => {
                let session = self.members[member_id].session_timeout;
                out.push(Output::SetTimer(
                    GroupTimer::Session(member_id.clone()),
                    session,
                ));
                match self.phase {
                    Phase::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
                    _ => Ok(()),
                }
            }
        };
        out.push(Output::Answer(reply, Answer::Heartbeat(result)));
    }

    pub fn leave(&mut self, leaving: Vec<Leaving>, reply: R, out: &mut Vec<Output<R>>) {
        let mut results = Vec::with_capacity(leaving.len());
        for who in leaving {
            let found = match (&who.instance_id, &who.member_id) {
                (Some(instance), member) => match self.instances.get(instance) {
                    None => Err(ErrorCode::UnknownMemberId),
                    Some(holder) if member.as_ref().is_some_and(|m| m != holder) => {
                        Err(ErrorCode::FencedInstanceId)
                    }
                    Some(holder) => Ok(holder.clone()),
                },
                (None, Some(member)) if self.members.contains_key(member) => Ok(member.clone()),
                (None, Some(member)) if self.pending.contains(member) => {
                    self.pending.remove(member);
                    out.push(Output::CancelTimer(GroupTimer::Pending(member.clone())));
                    results.push((who, Ok(())));
                    self.try_complete_if_preparing(out);
                    continue;
                }
                (None, _) => Err(ErrorCode::UnknownMemberId),
            };
            match found {
                Ok(id) => {
                    self.member_gone(&id, out);
                    results.push((who, Ok(())));
                }
                Err(code) => results.push((who, Err(code))),
            }
        }
        out.push(Output::Answer(reply, Answer::Leave(results)));
    }

    fn try_complete_if_preparing(&mut self, out: &mut Vec<Output<R>>) {
        if self.phase == Phase::PreparingRebalance {
            self.try_complete_join(out);
        }
    }

    /// The member-and-generation check of SyncGroup, Heartbeat and OffsetCommit.
    fn check_member(
        &self,
        id: &MemberId,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        self.check_instance(id, instance)?;
        if !self.members.contains_key(id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        Ok(())
    }

    /// Whether an OffsetCommit may be written, as Kafka decides it: a commit without member
    /// and generation (an admin's, or a consumer's that assigns partitions itself) only to a
    /// group without members; a member's only in its current generation, and not while the
    /// generation's assignment is being handed out.
    /// `fence_generation` off (`--without commit-generation-fence`, checks only) lets any
    /// commit that names a member id through, from whichever member and generation.
    pub fn check_commit(
        &self,
        member_id: Option<&MemberId>,
        instance_id: Option<&str>,
        generation: i32,
        fence_generation: bool,
    ) -> Result<(), ErrorCode> {
        if !fence_generation && member_id.is_some() {
            return Ok(());
        }
        match member_id {
            None if generation < 0 && instance_id.is_none() => match self.phase {
                Phase::Empty => Ok(()),
                _ => Err(ErrorCode::IllegalGeneration),
            },
            None => Err(ErrorCode::UnknownMemberId),
            Some(id) => {
                self.check_member(id, instance_id, generation)?;
                match self.phase {
                    Phase::CompletingRebalance => Err(ErrorCode::RebalanceInProgress),
                    _ => Ok(()),
                }
            }
        }
    }

    /// A commit's offsets are committed in the group's partition: they are what OffsetFetch
    /// returns from now on (a later commit of a partition replaces an earlier one).
    pub fn offsets_stored(
        &mut self,
        offsets: impl IntoIterator<Item = (GroupPartition, CommittedOffset)>,
    ) {
        self.offsets.extend(offsets);
    }

    /// OffsetDelete's tombstones are committed: these partitions have no offset any more.
    pub fn offsets_deleted(&mut self, partitions: &[GroupPartition]) {
        for partition in partitions {
            self.offsets.remove(partition);
        }
    }

    /// Whether the group has an offset committed for `partition`.
    pub fn has_offset(&self, partition: &GroupPartition) -> bool {
        self.offsets.contains_key(partition)
    }

    /// OffsetFetch: the committed offset of each partition asked (`None`: every partition the
    /// group has committed); a partition without one is `None` (Kafka answers -1).
    pub fn committed(
        &self,
        partitions: Option<&[GroupPartition]>,
    ) -> Vec<(GroupPartition, Option<CommittedOffset>)> {
        match partitions {
            Some(asked) => asked
                .iter()
                .map(|p| (p.clone(), self.offsets.get(p).cloned()))
                .collect(),
            None => self
                .offsets
                .iter()
                .map(|(p, c)| (p.clone(), Some(c.clone())))
                .collect(),
        }
    }

    /// The coordinator gives the group up (its partition's leadership moved): every waiting
    /// request is answered NOT_COORDINATOR (the members find the new coordinator and rejoin
    /// there) and every timer the group may have armed is cancelled.
    pub fn unload(&mut self, out: &mut Vec<Output<R>>) {
        let refused = Err((ErrorCode::NotCoordinator, None));
        for member in self.members.values_mut() {
            if let Some(waiting) = member.awaiting_join.take() {
                out.push(Output::Answer(waiting, Answer::Join(refused.clone())));
            }
            if let Some(waiting) = member.awaiting_sync.take() {
                out.push(Output::Answer(
                    waiting,
                    Answer::Sync(Err(ErrorCode::NotCoordinator)),
                ));
            }
            out.push(Output::CancelTimer(GroupTimer::Session(member.id.clone())));
        }
        for id in &self.pending {
            out.push(Output::CancelTimer(GroupTimer::Pending(id.clone())));
        }
        out.push(Output::CancelTimer(GroupTimer::Join));
        out.push(Output::CancelTimer(GroupTimer::Sync(self.generation)));
    }

    /// How many member ids this coordinator has handed out for the group.
    pub fn member_ids_handed_out(&self) -> u32 {
        self.next_member
    }

    /// The requests it holds for an answer: joins waiting for the join to complete, syncs
    /// waiting for the assignment.
    pub fn waiting(&self) -> impl Iterator<Item = &R> {
        self.members
            .values()
            .flat_map(|m| m.awaiting_join.iter().chain(m.awaiting_sync.iter()))
    }

    /// Whether the group keeps only what expires: no members, but offsets or a stored
    /// generation.
    pub fn is_expiring(&self) -> bool {
        self.phase == Phase::Empty && self.pending.is_empty() && !self.is_vacant()
    }

    /// Whether the group holds nothing worth keeping: no members, no generation stored, no
    /// offsets (a group looked up for a request and never joined).
    pub fn is_vacant(&self) -> bool {
        self.phase == Phase::Empty
            && self.generation == 0
            && self.offsets.is_empty()
            && self.pending.is_empty()
            && self.storing.is_none()
    }

    // ---------------------------------------------------------------------------------------
    // Timers.

    pub fn timer(&mut self, timer: GroupTimer, out: &mut Vec<Output<R>>) {
        match timer {
            GroupTimer::Join => {
                if self.phase != Phase::PreparingRebalance {
                    return;
                }
                if let Some(left) = self.delay_left {
                    if self.joined_during_delay && !left.is_zero() {
                        // Members keep arriving: wait again, within the rebalance timeout.
                        let delay = self.config.initial_rebalance_delay.min(left);
                        self.delay_left = Some(left - delay);
                        self.joined_during_delay = false;
                        out.push(Output::SetTimer(GroupTimer::Join, delay));
                        return;
                    }
                }
                self.complete_join(out);
            }
            GroupTimer::Sync(generation) => {
                let completing = matches!(self.phase, Phase::CompletingRebalance | Phase::Stable);
                if !completing || generation != self.generation || self.pending_sync.is_empty() {
                    return;
                }
                let late: Vec<MemberId> = self.pending_sync.iter().cloned().collect();
                for id in late {
                    self.remove_member(&id, out);
                }
                self.prepare_rebalance(out);
            }
            GroupTimer::Session(id) => {
                let Some(member) = self.members.get(&id) else {
                    return;
                };
                if member.awaiting_join.is_some() || member.awaiting_sync.is_some() {
                    // A member waiting on the coordinator is alive.
                    out.push(Output::SetTimer(
                        GroupTimer::Session(id),
                        member.session_timeout,
                    ));
                    return;
                }
                self.member_gone(&id, out);
            }
            GroupTimer::Pending(id) => {
                if self.pending.remove(&id) {
                    self.try_complete_if_preparing(out);
                }
            }
            // The coordinator's: it writes the tombstones.
            GroupTimer::Retention => {}
        }
    }
}

impl<R> Member<R> {
    /// Its metadata for a protocol.
    fn metadata(&self, protocol: &str) -> Option<Vec<u8>> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
    }
}

/// The partition of `__consumer_offsets` a group belongs to, as Kafka computes it:
/// `abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16 code
/// units (so a group keeps its coordinator partition when clients move between Kafka and
/// Gregor's metadata). Kafka's `abs` maps `i32::MIN` to 0.
pub fn coordinator_partition(group: &str, partitions: u32) -> u32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs as u32 % partitions.max(1)
}

/// Every group of a coordinator's partition, rebuilt from its records in log order (a
/// coordinator taking over its partition): each group from its last group record (`Stable`
/// with its members, or `Empty`), and its offsets as the last record of each partition left
/// them; a tombstone deletes. A group with offsets and no group record is `Empty` (its
/// consumers assign partitions themselves).
pub fn load_groups<R: Clone>(
    records: impl IntoIterator<Item = CoordinatorRecord>,
    coordinator_epoch: u32,
    config: GroupConfig,
    out: &mut Vec<(String, Output<R>)>,
) -> BTreeMap<String, Group<R>> {
    let mut last_group: BTreeMap<String, Option<GroupRecord>> = BTreeMap::new();
    let mut offsets: BTreeMap<String, BTreeMap<GroupPartition, CommittedOffset>> = BTreeMap::new();
    for record in records {
        match record {
            CoordinatorRecord::Group { group, record } => {
                last_group.insert(group, record);
            }
            CoordinatorRecord::Offset {
                group,
                partition,
                offset,
            } => {
                let table = offsets.entry(group).or_default();
                match offset {
                    Some(offset) => table.insert(partition, offset),
                    None => table.remove(&partition),
                };
            }
        }
    }
    let mut groups = BTreeMap::new();
    for (id, record) in last_group {
        if let Some(record) = record {
            let mut outputs = Vec::new();
            let group = Group::load(id.clone(), &record, coordinator_epoch, config, &mut outputs);
            out.extend(outputs.into_iter().map(|o| (id.clone(), o)));
            groups.insert(id, group);
        }
    }
    for (id, table) in offsets {
        if table.is_empty() {
            continue;
        }
        groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(id, coordinator_epoch, config))
            .offsets_stored(table);
    }
    groups
}
