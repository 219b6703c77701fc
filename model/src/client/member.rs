//! A consumer group member as the checker and the simulator run it: Kafka's classic consumer
//! protocol from the client's side, one request at a time. It finds the group's coordinator
//! (FindCoordinator at a bootstrap broker), joins (JoinGroup; a first join is answered
//! MEMBER_ID_REQUIRED with the id to join with, KIP-394), syncs (SyncGroup; the leader member
//! assigns the topic's partitions round-robin over the members, in member id order), commits
//! its partitions once per generation (OffsetCommit with the member id and generation, offset =
//! the generation, so later generations commit higher offsets) and then heartbeats to learn of
//! rebalances. As Kafka's consumer does, it gives its partitions up whenever it rejoins (the
//! eager protocol), forgets its member id on UNKNOWN_MEMBER_ID, and looks for the coordinator
//! again on NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a request unanswered for
//! `request.timeout.ms`; a commit that failed that way is sent again to the new coordinator.
//!
//! The runtime never runs this actor (real clients are the members there); it is the client
//! side of `gregor check --groups`. It reads no records and does not ask for metadata: it knows
//! the topic's partition count from its configuration.

use super::{broker_of, ClientConfig, ClientEffects};
use crate::effects::{Address, Ignored};
use crate::group::{Answer, CommittedOffset, JoinRequest, Joined, MemberId, SyncRequest};
use crate::message::OffsetCommit;
use crate::message::{ErrorCode, GroupAnswer, GroupOp, GroupRequest, GroupResponse, Msg, Timer};
use crate::types::BrokerId;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

/// The protocol type and the one assignor members offer.
pub const PROTOCOL_TYPE: &str = "consumer";
pub const ASSIGNOR: &str = "roundrobin";

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberConfig {
    /// `client.topic` is the topic whose partitions the group splits; `bootstrap` the brokers
    /// it asks for the coordinator.
    pub client: ClientConfig,
    /// `group.id`.
    pub group: String,
    /// `client.id` (the coordinator builds member ids from it).
    pub client_id: String,
    /// The topic's partitions.
    pub partitions: u32,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms` (the rebalance timeout).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
}

/// The requests a member sends; each kind's number is the request number, so an answer is
/// matched to the one request of its kind outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Request {
    FindCoordinator,
    Join,
    Sync,
    Commit,
    Heartbeat,
}

impl Request {
    fn number(self) -> u32 {
        self as u32
    }
}

/// Where the member stands in the group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Membership {
    /// In no generation: it (re)joins.
    Unjoined,
    /// Joined `generation`; its SyncGroup is outstanding.
    Joined { generation: i32 },
    /// Synced: its partitions in `generation`, and whether that generation's commit was
    /// acknowledged.
    Assigned {
        generation: i32,
        partitions: Vec<u32>,
        committed: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemberState {
    /// The coordinator it knows.
    pub coordinator: Option<BrokerId>,
    pub member_id: Option<MemberId>,
    pub membership: Membership,
    /// The request outstanding, and where.
    pub waiting: Option<(BrokerId, Request)>,
    pub backing_off: bool,
    /// Which bootstrap broker to ask next.
    pub next_bootstrap: usize,
    /// The commits acknowledged to it: per partition, the highest offset.
    pub acknowledged: BTreeMap<u32, u64>,
}

impl MemberState {
    /// Its partitions and their generation, once synced.
    pub fn assignment(&self) -> Option<(i32, &[u32])> {
        match &self.membership {
            Membership::Assigned {
                generation,
                partitions,
                ..
            } => Some((*generation, partitions)),
            _ => None,
        }
    }
}

pub fn on_start<B>(config: &MemberConfig, out: &mut ClientEffects<B>) -> MemberState {
    let mut state = MemberState {
        coordinator: None,
        member_id: None,
        membership: Membership::Unjoined,
        waiting: None,
        backing_off: false,
        next_bootstrap: 0,
        acknowledged: BTreeMap::new(),
    };
    proceed(config, &mut state, out);
    state
}

pub fn on_msg<B>(
    config: &MemberConfig,
    state: &mut Cow<MemberState>,
    from: Address,
    msg: Msg<B>,
    out: &mut ClientEffects<B>,
) {
    let Some(broker) = broker_of(from) else {
        return out.ignore(Ignored::Unexpected("a message not from a broker"));
    };
    match msg {
        Msg::FindCoordinatorResponse {
            request,
            coordinators,
        } => {
            if !awaited(state, broker, Request::FindCoordinator, request) {
                return out.ignore(Ignored::NotAwaited("FindCoordinator"));
            }
            let next = answered(state, broker, out);
            let found = coordinators
                .into_iter()
                .find(|(group, _)| *group == config.group)
                .and_then(|(_, found)| found.ok());
            match found {
                Some(coordinator) => {
                    next.coordinator = Some(coordinator.id);
                    proceed(config, next, out);
                }
                None => {
                    next.next_bootstrap = (next.next_bootstrap + 1) % bootstrap_len(config);
                    back_off(config, next, out);
                }
            }
        }
        Msg::GroupResponse(response) => on_group_response(config, state, broker, *response, out),
        _ => out.ignore(Ignored::NotAwaited("a response")),
    }
}

/// Whether an answer is to the request outstanding.
fn awaited(state: &MemberState, broker: BrokerId, kind: Request, number: u32) -> bool {
    state.waiting == Some((broker, kind)) && kind.number() == number
}

/// The outstanding request is answered.
fn answered<'a, B>(
    state: &'a mut Cow<MemberState>,
    broker: BrokerId,
    out: &mut ClientEffects<B>,
) -> &'a mut MemberState {
    out.cancel_timer(Timer::RequestTimeout(broker));
    let next = state.to_mut();
    next.waiting = None;
    next
}

fn on_group_response<B>(
    config: &MemberConfig,
    state: &mut Cow<MemberState>,
    broker: BrokerId,
    response: GroupResponse,
    out: &mut ClientEffects<B>,
) {
    let kind = match state.waiting {
        Some((at, kind)) if at == broker && kind != Request::FindCoordinator => kind,
        _ => return out.ignore(Ignored::NotAwaited("a group answer")),
    };
    if response.request != kind.number() || response.group != config.group {
        return out.ignore(Ignored::NotAwaited("a group answer"));
    }
    let next = answered(state, broker, out);
    let error = match response.answer {
        GroupAnswer::Refused(code) => Some(code),
        GroupAnswer::Member(Answer::Join(result)) => match result {
            Ok(joined) => return on_joined(config, next, joined, out),
            Err((ErrorCode::MemberIdRequired, Some(id))) => {
                next.member_id = Some(id);
                return send(config, next, Request::Join, out);
            }
            Err((code, _)) => Some(code),
        },
        GroupAnswer::Member(Answer::Sync(result)) => match result {
            Ok((_, assignment)) => {
                let Membership::Joined { generation } = next.membership else {
                    return out.ignore(Ignored::NotAwaited("SyncGroup"));
                };
                next.membership = Membership::Assigned {
                    generation,
                    partitions: assignment.iter().map(|p| u32::from(*p)).collect(),
                    committed: false,
                };
                return proceed(config, next, out);
            }
            Err(code) => Some(code),
        },
        GroupAnswer::Member(Answer::Heartbeat(result)) => result.err(),
        GroupAnswer::OffsetCommit(result) => match result {
            Ok(()) => {
                let acknowledged = &mut next.acknowledged;
                if let Membership::Assigned {
                    generation,
                    partitions,
                    committed,
                } = &mut next.membership
                {
                    *committed = true;
                    for partition in partitions.iter() {
                        let offset = acknowledged.entry(*partition).or_default();
                        *offset = (*offset).max(*generation as u64);
                    }
                }
                None
            }
            Err(code) => Some(code),
        },
        _ => return out.ignore(Ignored::Unexpected("an answer a member never asks for")),
    };
    match error {
        None => proceed(config, next, out),
        Some(code) => on_error(config, next, code, out),
    }
}

/// A generation joined: the leader assigns the partitions, every member syncs.
fn on_joined<B>(
    config: &MemberConfig,
    state: &mut MemberState,
    joined: Joined,
    out: &mut ClientEffects<B>,
) {
    state.member_id = Some(joined.member_id.clone());
    state.membership = Membership::Joined {
        generation: joined.generation,
    };
    let assignments = match joined.leader == joined.member_id {
        true => assign(config.partitions, &joined),
        false => Vec::new(),
    };
    let sync = SyncRequest {
        member_id: joined.member_id,
        instance_id: None,
        generation: joined.generation,
        assignments,
    };
    request(config, state, Request::Sync, GroupOp::Sync(sync), out);
}

/// The round-robin assignment: partition `p` to the `p mod n`-th member in member id order.
pub fn assign(partitions: u32, joined: &Joined) -> Vec<(MemberId, Vec<u8>)> {
    let mut members: Vec<&MemberId> = joined.members.iter().map(|m| &m.member_id).collect();
    members.sort();
    members
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let mine = (0..partitions)
                .filter(|p| *p as usize % members.len() == index)
                .map(|p| p as u8)
                .collect();
            ((*id).clone(), mine)
        })
        .collect()
}

/// What a member does about an error, as Kafka's consumer does.
fn on_error<B>(
    config: &MemberConfig,
    state: &mut MemberState,
    code: ErrorCode,
    out: &mut ClientEffects<B>,
) {
    match code {
        ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::CoordinatorLoadInProgress => {
            state.coordinator = None;
            if matches!(state.membership, Membership::Joined { .. }) {
                state.membership = Membership::Unjoined;
            }
            back_off(config, state, out);
        }
        ErrorCode::UnknownMemberId => {
            state.member_id = None;
            rejoin(config, state, out);
        }
        ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => rejoin(config, state, out),
        _ => back_off(config, state, out),
    }
}

/// Gives its partitions up and joins again.
fn rejoin<B>(config: &MemberConfig, state: &mut MemberState, out: &mut ClientEffects<B>) {
    state.membership = Membership::Unjoined;
    proceed(config, state, out);
}

/// Sends what its standing calls for, unless a request is outstanding or it backs off.
fn proceed<B>(config: &MemberConfig, state: &mut MemberState, out: &mut ClientEffects<B>) {
    if state.waiting.is_some() || state.backing_off {
        return;
    }
    if state.coordinator.is_none() {
        return send(config, state, Request::FindCoordinator, out);
    }
    match &state.membership {
        Membership::Unjoined | Membership::Joined { .. } => {
            state.membership = Membership::Unjoined;
            send(config, state, Request::Join, out)
        }
        Membership::Assigned {
            partitions,
            committed: false,
            ..
        } if !partitions.is_empty() => send(config, state, Request::Commit, out),
        Membership::Assigned { .. } => out.set_timer(Timer::Heartbeat, config.heartbeat_interval),
    }
}

/// Sends a request of `kind` (a SyncGroup is sent by `on_joined`).
fn send<B>(
    config: &MemberConfig,
    state: &mut MemberState,
    kind: Request,
    out: &mut ClientEffects<B>,
) {
    let op = match kind {
        Request::FindCoordinator => {
            let bootstrap = &config.client.bootstrap;
            let broker = bootstrap[state.next_bootstrap % bootstrap.len()];
            state.waiting = Some((broker, kind));
            out.send(
                Address::Broker(broker),
                Msg::FindCoordinator {
                    request: kind.number(),
                    groups: vec![config.group.clone()],
                },
            );
            out.set_timer(Timer::RequestTimeout(broker), config.client.request_timeout);
            return;
        }
        Request::Join => GroupOp::Join(Box::new(JoinRequest {
            member_id: state.member_id.clone(),
            instance_id: None,
            client_id: config.client_id.clone(),
            client_host: "checked".to_string(),
            session_timeout: config.session_timeout,
            rebalance_timeout: config.rebalance_timeout,
            protocol_type: PROTOCOL_TYPE.to_string(),
            protocols: vec![(ASSIGNOR.to_string(), Vec::new())],
            require_known_member_id: true,
        })),
        Request::Commit | Request::Heartbeat => {
            let (Some(member_id), Some((generation, partitions))) =
                (state.member_id.clone(), state.assignment())
            else {
                return rejoin(config, state, out);
            };
            match kind {
                Request::Commit => GroupOp::OffsetCommit(OffsetCommit {
                    member_id: Some(member_id),
                    instance_id: None,
                    generation,
                    offsets: partitions
                        .iter()
                        .map(|p| {
                            let committed = CommittedOffset {
                                offset: generation as u64,
                                leader_epoch: None,
                                metadata: String::new(),
                            };
                            ((config.client.topic.clone(), *p), committed)
                        })
                        .collect(),
                }),
                _ => GroupOp::Heartbeat {
                    member_id,
                    instance_id: None,
                    generation,
                },
            }
        }
        Request::Sync => unreachable!("sent on joining"),
    };
    request(config, state, kind, op, out);
}

/// Sends a group request to the coordinator.
fn request<B>(
    config: &MemberConfig,
    state: &mut MemberState,
    kind: Request,
    op: GroupOp,
    out: &mut ClientEffects<B>,
) {
    let coordinator = state.coordinator.expect("a coordinator is known");
    state.waiting = Some((coordinator, kind));
    out.send(
        Address::Broker(coordinator),
        Msg::Group(Box::new(GroupRequest {
            request: kind.number(),
            group: config.group.clone(),
            op,
        })),
    );
    // Kafka's consumer waits for a JoinGroup the rebalance timeout longer.
    let timeout = match kind {
        Request::Join => config.client.request_timeout + config.rebalance_timeout,
        _ => config.client.request_timeout,
    };
    out.set_timer(Timer::RequestTimeout(coordinator), timeout);
}

fn back_off<B>(config: &MemberConfig, state: &mut MemberState, out: &mut ClientEffects<B>) {
    state.backing_off = true;
    out.set_timer(Timer::RetryBackoff, config.client.retry_backoff);
}

fn bootstrap_len(config: &MemberConfig) -> usize {
    config.client.bootstrap.len().max(1)
}

pub fn on_timeout<B>(
    config: &MemberConfig,
    state: &mut Cow<MemberState>,
    timer: &Timer,
    out: &mut ClientEffects<B>,
) {
    match *timer {
        Timer::RetryBackoff if state.backing_off => {
            let next = state.to_mut();
            next.backing_off = false;
            proceed(config, next, out);
        }
        Timer::Heartbeat => {
            let idle = state.waiting.is_none() && !state.backing_off;
            if idle && state.coordinator.is_some() && state.assignment().is_some() {
                send(config, state.to_mut(), Request::Heartbeat, out);
            }
        }
        Timer::RequestTimeout(broker) if state.waiting.is_some_and(|(b, _)| b == broker) => {
            // The coordinator (or the broker asked for it) is unreachable: find it again,
            // asking the next bootstrap broker.
            let next = state.to_mut();
            next.waiting = None;
            next.coordinator = None;
            if matches!(next.membership, Membership::Joined { .. }) {
                next.membership = Membership::Unjoined;
            }
            if let Some(index) = config.client.bootstrap.iter().position(|b| *b == broker) {
                next.next_bootstrap = (index + 1) % bootstrap_len(config);
            }
            back_off(config, next, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::JoinedMember;

    fn joined(members: &[&str]) -> Joined {
        Joined {
            member_id: MemberId(members[0].to_string()),
            generation: 1,
            protocol_type: PROTOCOL_TYPE.to_string(),
            protocol: ASSIGNOR.to_string(),
            leader: MemberId(members[0].to_string()),
            members: members
                .iter()
                .map(|m| JoinedMember {
                    member_id: MemberId(m.to_string()),
                    instance_id: None,
                    metadata: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn round_robin_gives_each_partition_to_one_member_in_member_id_order() {
        let assignment = assign(3, &joined(&["b", "a"]));
        assert_eq!(
            assignment,
            vec![
                (MemberId("a".into()), vec![0, 2]),
                (MemberId("b".into()), vec![1])
            ]
        );
        let alone = assign(2, &joined(&["a"]));
        assert_eq!(alone, vec![(MemberId("a".into()), vec![0, 1])]);
    }
}
