//! A broker holds one replica of the partition and plays the role the controller last gave it.
//!
//! As **leader** it appends produce requests stamped with its leader epoch, answers fetches
//! (holding a fetch that has nothing new, as Kafka's fetch purgatory does), learns each
//! follower's log end offset from its fetch offset, and advances the high watermark to the
//! smallest log end offset over the maximal ISR (the ISR plus a pending expansion), but only
//! while the ISR has at least `min.insync.replicas` members (KIP-966's guard). It proposes ISR
//! changes to the controller: shrink when a follower lags (a timer), expand when a follower has
//! caught up.
//!
//! As **follower** it first reconciles its log with the leader's, by the rules of its
//! protocol variant (truncate to its own HW, or ask OffsetForLeaderEpoch), then fetches,
//! appends what it gets and adopts min(leader's HW, own log end offset).
//!
//! Every handler fences first: a message from an older leader epoch, from a broker it does not
//! follow, or answering a request it no longer has in flight changes nothing.

use crate::actor::{Ctx, Out, Storage};
use crate::log::ReplicaLog;
use crate::log::{end_offset_for_epoch, next_epoch_start_offset, EpochEndOffset, EpochEntry};
use crate::message::{ErrorCode, FetchRequest, FetchResponse, LeaderAndIsr, Msg, Timer};
use crate::types::Variant;
use crate::types::{Acks, BrokerId, FlushPolicy, Isr, LeaderEpoch, Offset, PartitionEpoch};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// A broker's state: its replica of the partition and its role.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct BrokerState<L> {
    pub log: L,
    pub high_watermark: Offset,
    /// The newest leader epoch this broker has been told of.
    pub leader_epoch: LeaderEpoch,
    pub role: Role,
    /// Set when this replica ever had to lower its high watermark (a truncation or a recovery
    /// below it): Kafka logs this as a warning; `hw_never_decreases` says it never happens.
    pub high_watermark_lowered: bool,
    /// How many times this broker has registered with the controller after its first boot
    /// (Kafka's broker epoch, KIP-380).
    pub broker_epoch: u32,
}

/// What the controller last told this broker to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Just restarted, or the partition is offline: neither leads nor follows.
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
    /// Each follower's log end offset, as its last fetch in this epoch told (absent: none yet).
    pub follower_end_offsets: BTreeMap<BrokerId, Offset>,
    /// Fetches held until there is something new to answer (by requester).
    pub parked_fetches: BTreeMap<Id, FetchRequest>,
    /// acks=all produce requests waiting for the high watermark to pass them.
    pub pending_produces: BTreeSet<PendingProduce>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingProduce {
    /// When the high watermark reaches this offset, the batch is committed.
    pub end_offset: Offset,
    pub producer: Id,
    pub sequence: u32,
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

/// What a broker persists: the log (what a crash leaves of it), the high watermark checkpoint
/// (`replication-offset-checkpoint`) and the newest leader epoch it knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerStorage<D> {
    pub log: D,
    pub high_watermark: Offset,
    pub leader_epoch: LeaderEpoch,
    pub high_watermark_lowered: bool,
    pub broker_epoch: u32,
}

impl<L: ReplicaLog> BrokerState<L> {
    pub fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    fn leader_state_mut(&mut self) -> &mut LeaderState {
        match &mut self.role {
            Role::Leader(leader) => leader,
            _ => unreachable!("called on a broker that does not lead"),
        }
    }

    fn follower_state(&self) -> Option<&FollowerState> {
        match &self.role {
            Role::Follower(follower) => Some(follower),
            _ => None,
        }
    }

    fn follower_state_mut(&mut self) -> &mut FollowerState {
        match &mut self.role {
            Role::Follower(follower) => follower,
            _ => unreachable!("called on a broker that does not follow"),
        }
    }

    fn storage(&self) -> Storage<L::Durable> {
        Storage::Broker(BrokerStorage {
            log: self.log.durable(),
            high_watermark: self.high_watermark,
            leader_epoch: self.leader_epoch,
            high_watermark_lowered: self.high_watermark_lowered,
            broker_epoch: self.broker_epoch,
        })
    }

    /// Truncates the log; the HW follows it down if it must (which Kafka warns about).
    fn truncate(&mut self, to: Offset) {
        if to >= self.log.log_end_offset() {
            return;
        }
        self.log.truncate(to);
        let log_end_offset = self.log.log_end_offset();
        if self.high_watermark > log_end_offset {
            self.high_watermark = log_end_offset;
            self.high_watermark_lowered = true;
        }
    }

    /// The epoch cache including this leader's own epoch, which Kafka assigns at election even
    /// before any batch of it is written.
    fn leader_epoch_cache(&self, epoch_start_offset: Offset) -> Vec<EpochEntry> {
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

pub fn on_start<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    log_config: &L::Config,
    saved: Option<&BrokerStorage<L::Durable>>,
    out: &mut Out<L>,
) -> BrokerState<L> {
    let Some(saved) = saved else {
        return first_boot(ctx, id, log_config, out);
    };
    // A restart: what the crash left, then register so the controller knows.
    let log = L::open(log_config, Some(&saved.log));
    let log_end_offset = log.log_end_offset();
    let state = BrokerState {
        high_watermark: saved.high_watermark.min(log_end_offset),
        high_watermark_lowered: saved.high_watermark_lowered
            || saved.high_watermark > log_end_offset,
        log,
        leader_epoch: saved.leader_epoch,
        role: Role::Unassigned,
        broker_epoch: saved.broker_epoch + 1,
    };
    out.save(state.storage());
    register(&state, out);
    state
}

/// The cluster as first formed: broker 1 leads epoch 1 with every replica in sync; the others
/// follow it, with nothing to reconcile in their empty logs.
fn first_boot<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    log_config: &L::Config,
    out: &mut Out<L>,
) -> BrokerState<L> {
    let leader = BrokerId(1);
    let mut state = BrokerState {
        log: L::open(log_config, None),
        high_watermark: Offset(0),
        leader_epoch: LeaderEpoch(1),
        role: Role::Unassigned,
        high_watermark_lowered: false,
        broker_epoch: 0,
    };
    if id == leader {
        let isr: Isr = ctx.protocol.replicas().collect();
        state.role = Role::Leader(LeaderState {
            follower_end_offsets: isr
                .iter()
                .filter(|b| **b != id)
                .map(|b| (*b, Offset(0)))
                .collect(),
            isr,
            partition_epoch: PartitionEpoch(1),
            proposed_isr: None,
            epoch_start_offset: Offset(0),
            parked_fetches: BTreeMap::new(),
            pending_produces: BTreeSet::new(),
        });
    } else {
        state.role = Role::Follower(FollowerState {
            leader,
            phase: FollowerPhase::Fetching,
            backing_off: false,
        });
        send_fetch(ctx, id, &state, leader, out);
    }
    out.save(state.storage());
    state
}

pub fn on_msg<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    src: Id,
    msg: Msg<L::Batch>,
    out: &mut Out<L>,
) {
    match msg {
        Msg::LeaderAndIsr(decision) if src == Ctx::controller_actor_id() => {
            on_leader_and_isr(ctx, id, state, decision, out)
        }
        Msg::SessionExpired { broker_epoch }
            if src == Ctx::controller_actor_id() && broker_epoch == state.broker_epoch =>
        {
            let next = state.to_mut();
            next.broker_epoch += 1;
            out.save(next.storage());
            register(next, out);
        }
        Msg::AlterPartitionResponse {
            leader_epoch,
            result,
        } if src == Ctx::controller_actor_id() => {
            on_alter_partition_response(ctx, id, state, leader_epoch, result, out)
        }
        Msg::Produce {
            sequence,
            acks,
            batch,
        } => on_produce(ctx, id, state, src, sequence, acks, batch, out),
        Msg::Fetch(request) => on_fetch(ctx, id, state, src, request, out),
        Msg::FetchResponse(response) => on_fetch_response(ctx, id, state, src, response, out),
        Msg::OffsetForLeaderEpoch {
            current_leader_epoch,
            leader_epoch,
        } => on_offset_for_leader_epoch(ctx, state, src, current_leader_epoch, leader_epoch, out),
        Msg::OffsetForLeaderEpochResponse {
            leader_epoch,
            requested_epoch,
            result,
        } => on_offset_for_leader_epoch_response(
            ctx,
            id,
            state,
            src,
            leader_epoch,
            requested_epoch,
            result,
            out,
        ),
        _ => {}
    }
}

pub fn on_timeout<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    match *timer {
        Timer::ReplicaLag(follower) => on_replica_lag(ctx, state, follower, out),
        Timer::FetchBackoff => {
            let Some(follower) = state.follower_state() else {
                return;
            };
            if !follower.backing_off {
                return;
            }
            let next = state.to_mut();
            next.follower_state_mut().backing_off = false;
            send_follower_request(ctx, id, next, out);
        }
        _ => {}
    }
}

fn register<L: ReplicaLog>(state: &BrokerState<L>, out: &mut Out<L>) {
    out.send(
        Ctx::controller_actor_id(),
        Msg::BrokerRegistration {
            broker_epoch: state.broker_epoch,
        },
    );
}

/// The controller's decision. Older epochs are ignored; the same epoch only updates a leader's
/// ISR (a newer partition epoch) or assigns a broker that restarted.
fn on_leader_and_isr<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    decision: LeaderAndIsr,
    out: &mut Out<L>,
) {
    if decision.leader_epoch < state.leader_epoch {
        return;
    }
    if decision.leader_epoch == state.leader_epoch {
        match &state.role {
            Role::Leader(leader) if decision.leader == Some(id) => {
                if decision.partition_epoch > leader.partition_epoch {
                    let next = state.to_mut();
                    let leader = next.leader_state_mut();
                    leader.isr = decision.isr;
                    leader.partition_epoch = decision.partition_epoch;
                    after_isr_change(ctx, id, next, out);
                }
                return;
            }
            Role::Unassigned => {}
            _ => return,
        }
    }
    let next = state.to_mut();
    resign(next, out);
    next.leader_epoch = decision.leader_epoch;
    match decision.leader {
        Some(leader) if leader == id => become_leader(ctx, id, next, decision, out),
        Some(leader) => become_follower(ctx, id, next, leader, out),
        None => next.role = Role::Unassigned,
    }
    out.save(next.storage());
}

/// Leaving the leader role: every waiting request learns this broker no longer leads.
fn resign<L: ReplicaLog>(state: &mut BrokerState<L>, out: &mut Out<L>) {
    out.cancel_timer(Timer::FetchBackoff);
    let Role::Leader(leader) = std::mem::replace(&mut state.role, Role::Unassigned) else {
        return;
    };
    for follower in leader.isr.iter().chain(leader.follower_end_offsets.keys()) {
        out.cancel_timer(Timer::ReplicaLag(*follower));
    }
    for pending in leader.pending_produces {
        out.send(
            pending.producer,
            Msg::ProduceResponse {
                sequence: pending.sequence,
                result: Err(ErrorCode::NotLeaderOrFollower),
            },
        );
    }
    for (requester, request) in leader.parked_fetches {
        let response = error_response(state, &request, ErrorCode::NotLeaderOrFollower);
        out.send(requester, Msg::FetchResponse(response));
    }
}

fn become_leader<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut BrokerState<L>,
    decision: LeaderAndIsr,
    out: &mut Out<L>,
) {
    state.role = Role::Leader(LeaderState {
        isr: decision.isr,
        partition_epoch: decision.partition_epoch,
        proposed_isr: None,
        epoch_start_offset: state.log.log_end_offset(),
        follower_end_offsets: BTreeMap::new(),
        parked_fetches: BTreeMap::new(),
        pending_produces: BTreeSet::new(),
    });
    sync_lag_timers(ctx, id, state, out);
}

/// Reconciles the log with the new leader's by the variant's rule, then fetches.
fn become_follower<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut BrokerState<L>,
    leader: BrokerId,
    out: &mut Out<L>,
) {
    let phase = match ctx.protocol.variant {
        Variant::HwTruncation => {
            state.truncate(state.high_watermark);
            FollowerPhase::Fetching
        }
        _ if state.log.last_epoch().is_none() => FollowerPhase::Fetching,
        _ => FollowerPhase::Reconciling,
    };
    state.role = Role::Follower(FollowerState {
        leader,
        phase,
        backing_off: false,
    });
    send_follower_request(ctx, id, state, out);
}

/// Sends what the follower's phase calls for to its leader.
fn send_follower_request<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &BrokerState<L>,
    out: &mut Out<L>,
) {
    let follower = state.follower_state().expect("a follower");
    match follower.phase {
        FollowerPhase::Fetching => send_fetch(ctx, id, state, follower.leader, out),
        FollowerPhase::Reconciling => out.send(
            Ctx::broker_actor_id(follower.leader),
            Msg::OffsetForLeaderEpoch {
                current_leader_epoch: current_epoch_if_fenced(ctx, state),
                leader_epoch: state.log.last_epoch().expect("reconciling a non-empty log"),
            },
        ),
    }
}

fn current_epoch_if_fenced<L: ReplicaLog>(
    ctx: &Ctx,
    state: &BrokerState<L>,
) -> Option<LeaderEpoch> {
    ctx.protocol
        .variant
        .fences_leader_epoch()
        .then_some(state.leader_epoch)
}

fn send_fetch<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &BrokerState<L>,
    leader: BrokerId,
    out: &mut Out<L>,
) {
    out.send(
        Ctx::broker_actor_id(leader),
        Msg::Fetch(FetchRequest {
            replica: Some(id),
            current_leader_epoch: current_epoch_if_fenced(ctx, state),
            fetch_offset: state.log.log_end_offset(),
            high_watermark: state.high_watermark,
        }),
    );
}

/// The controller's answer to this leader's AlterPartition.
fn on_alter_partition_response<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    leader_epoch: LeaderEpoch,
    result: Result<LeaderAndIsr, ErrorCode>,
    out: &mut Out<L>,
) {
    let Some(leader) = state.leader_state() else {
        return;
    };
    if leader.proposed_isr.is_none() || leader_epoch != state.leader_epoch {
        return;
    }
    let next = state.to_mut();
    let leader = next.leader_state_mut();
    leader.proposed_isr = None;
    if let Ok(decision) = result {
        if decision.partition_epoch > leader.partition_epoch {
            leader.isr = decision.isr;
            leader.partition_epoch = decision.partition_epoch;
        }
    }
    after_isr_change(ctx, id, next, out);
}

/// The ISR (or the maximal ISR) changed: the HW may advance, lag timers follow the members.
fn after_isr_change<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut BrokerState<L>,
    out: &mut Out<L>,
) {
    sync_lag_timers(ctx, id, state, out);
    if advance_high_watermark(ctx, id, state, out) {
        wake_parked_fetches(ctx, state, out);
        out.save(state.storage());
    }
}

#[allow(clippy::too_many_arguments)]
fn on_produce<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    producer: Id,
    sequence: u32,
    acks: Acks,
    batch: L::Batch,
    out: &mut Out<L>,
) {
    let respond = |out: &mut Out<L>, result| {
        if acks != Acks::None {
            out.send(producer, Msg::ProduceResponse { sequence, result });
        }
    };
    let Some(leader) = state.leader_state() else {
        respond(out, Err(ErrorCode::NotLeaderOrFollower));
        return;
    };
    if acks == Acks::All && (leader.isr.len() as u32) < ctx.protocol.min_insync_replicas {
        respond(out, Err(ErrorCode::NotEnoughReplicas));
        return;
    }
    let next = state.to_mut();
    let base_offset = next.log.append(next.leader_epoch, batch);
    if ctx.protocol.flush == FlushPolicy::Always {
        next.log.flush();
    }
    match acks {
        Acks::None => {}
        Acks::Leader => respond(out, Ok(base_offset)),
        Acks::All => {
            let end_offset = next.log.log_end_offset();
            next.leader_state_mut()
                .pending_produces
                .insert(PendingProduce {
                    end_offset,
                    producer,
                    sequence,
                    base_offset,
                });
        }
    }
    sync_lag_timers(ctx, id, next, out);
    advance_high_watermark(ctx, id, next, out);
    wake_parked_fetches(ctx, next, out);
    out.save(next.storage());
}

/// A fetch, from a follower or a consumer. Fenced by role and (KIP-320) leader epoch; a
/// follower's fetch offset is its log end offset, which may advance the HW and the ISR.
fn on_fetch<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    src: Id,
    request: FetchRequest,
    out: &mut Out<L>,
) {
    if request.replica.is_some() && request.replica != ctx.broker_of(src) {
        return;
    }
    let error = match (state.leader_state(), request.current_leader_epoch) {
        (None, _) => Some(ErrorCode::NotLeaderOrFollower),
        (Some(_), Some(epoch)) if epoch < state.leader_epoch => Some(ErrorCode::FencedLeaderEpoch),
        (Some(_), Some(epoch)) if epoch > state.leader_epoch => Some(ErrorCode::UnknownLeaderEpoch),
        _ if request.fetch_offset > state.log.log_end_offset() => Some(ErrorCode::OffsetOutOfRange),
        _ => None,
    };
    if let Some(error) = error {
        let response = error_response(state, &request, error);
        out.send(src, Msg::FetchResponse(response));
        return;
    }
    let next = state.to_mut();
    if let Some(follower) = request.replica {
        next.leader_state_mut()
            .follower_end_offsets
            .insert(follower, request.fetch_offset);
        sync_lag_timers(ctx, id, next, out);
        maybe_expand_isr(ctx, id, next, follower, out);
        if advance_high_watermark(ctx, id, next, out) {
            wake_parked_fetches(ctx, next, out);
            out.save(next.storage());
        }
    }
    let response = fetch_response(ctx, next, &request);
    if response.batches.is_empty() && response.high_watermark <= request.high_watermark {
        next.leader_state_mut().parked_fetches.insert(src, request);
    } else {
        next.leader_state_mut().parked_fetches.remove(&src);
        out.send(src, Msg::FetchResponse(response));
    }
}

/// What a fetch returns now: a follower may read to the log end, a consumer to the HW.
fn fetch_response<L: ReplicaLog>(
    ctx: &Ctx,
    state: &BrokerState<L>,
    request: &FetchRequest,
) -> FetchResponse<L::Batch> {
    let until = match request.replica {
        Some(_) => state.log.log_end_offset(),
        None => state.high_watermark,
    };
    FetchResponse {
        leader_epoch: state.leader_epoch,
        fetch_offset: request.fetch_offset,
        high_watermark: state.high_watermark,
        log_end_offset: None,
        batches: state
            .log
            .read(request.fetch_offset, until, ctx.protocol.fetch_batches_max),
        error: None,
    }
}

fn error_response<L: ReplicaLog>(
    state: &BrokerState<L>,
    request: &FetchRequest,
    error: ErrorCode,
) -> FetchResponse<L::Batch> {
    FetchResponse {
        leader_epoch: state.leader_epoch,
        fetch_offset: request.fetch_offset,
        high_watermark: state.high_watermark,
        log_end_offset: (error == ErrorCode::OffsetOutOfRange).then(|| state.log.log_end_offset()),
        batches: Vec::new(),
        error: Some(error),
    }
}

/// Answers every held fetch that now has records or a newer HW to return.
fn wake_parked_fetches<L: ReplicaLog>(ctx: &Ctx, state: &mut BrokerState<L>, out: &mut Out<L>) {
    let parked = std::mem::take(&mut state.leader_state_mut().parked_fetches);
    let mut still_parked = BTreeMap::new();
    for (requester, request) in parked {
        let response = fetch_response(ctx, state, &request);
        if response.batches.is_empty() && response.high_watermark <= request.high_watermark {
            still_parked.insert(requester, request);
        } else {
            out.send(requester, Msg::FetchResponse(response));
        }
    }
    state.leader_state_mut().parked_fetches = still_parked;
}

/// Advances the HW to the smallest log end offset over the maximal ISR, only while the ISR has
/// at least min.insync.replicas members; answers the acks=all requests it commits.
fn advance_high_watermark<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut BrokerState<L>,
    out: &mut Out<L>,
) -> bool {
    let log_end_offset = state.log.log_end_offset();
    let leader = state.leader_state().expect("a leader");
    if (leader.isr.len() as u32) < ctx.protocol.min_insync_replicas {
        return false;
    }
    let proposed = leader.proposed_isr.iter().flatten();
    let committed = leader
        .isr
        .iter()
        .chain(proposed)
        .map(|member| match *member == id {
            true => log_end_offset,
            false => leader
                .follower_end_offsets
                .get(member)
                .copied()
                .unwrap_or_default(),
        })
        .min()
        .unwrap_or(log_end_offset);
    if committed <= state.high_watermark {
        return false;
    }
    state.high_watermark = committed;
    let leader = state.leader_state_mut();
    let still_pending = leader.pending_produces.split_off(&PendingProduce {
        end_offset: committed.plus(1),
        producer: Id::from(0),
        sequence: 0,
        base_offset: Offset(0),
    });
    let done = std::mem::replace(&mut leader.pending_produces, still_pending);
    for pending in done {
        out.send(
            pending.producer,
            Msg::ProduceResponse {
                sequence: pending.sequence,
                result: Ok(pending.base_offset),
            },
        );
    }
    true
}

/// Arms the lag timer of every ISR follower behind the leader's log end, disarms the others.
fn sync_lag_timers<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &BrokerState<L>,
    out: &mut Out<L>,
) {
    let leader = state.leader_state().expect("a leader");
    for follower in leader.isr.iter().filter(|b| **b != id) {
        if is_caught_up(state, leader, *follower) {
            out.cancel_timer(Timer::ReplicaLag(*follower));
        } else {
            let timer = Timer::ReplicaLag(*follower);
            out.set_timer(timer.clone(), ctx.timeout(&timer));
        }
    }
}

fn is_caught_up<L: ReplicaLog>(
    state: &BrokerState<L>,
    leader: &LeaderState,
    follower: BrokerId,
) -> bool {
    leader
        .follower_end_offsets
        .get(&follower)
        .copied()
        .unwrap_or_default()
        >= state.log.log_end_offset()
}

/// ISR shrink: the follower did not catch up in time.
fn on_replica_lag<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<BrokerState<L>>,
    follower: BrokerId,
    out: &mut Out<L>,
) {
    let Some(leader) = state.leader_state() else {
        return;
    };
    if !leader.isr.contains(&follower) || is_caught_up(state, leader, follower) {
        return;
    }
    if leader.proposed_isr.is_some() {
        // One proposal at a time: try again when this timer next fires.
        out.set_timer(
            Timer::ReplicaLag(follower),
            ctx.timeout(&Timer::ReplicaLag(follower)),
        );
        return;
    }
    let mut isr = leader.isr.clone();
    isr.remove(&follower);
    propose_isr(state.to_mut(), isr, out);
}

/// ISR expand: the follower reached the HW (and, with KIP-320, fetched within this epoch).
fn maybe_expand_isr<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut BrokerState<L>,
    follower: BrokerId,
    out: &mut Out<L>,
) {
    let leader = state.leader_state().expect("a leader");
    let follower_end_offset = leader.follower_end_offsets[&follower];
    let caught_up = follower_end_offset >= state.high_watermark
        && (!ctx.protocol.variant.fences_leader_epoch()
            || follower_end_offset >= leader.epoch_start_offset);
    if follower == id
        || leader.isr.contains(&follower)
        || leader.proposed_isr.is_some()
        || !caught_up
    {
        return;
    }
    let mut isr = leader.isr.clone();
    isr.insert(follower);
    propose_isr(state, isr, out);
}

fn propose_isr<L: ReplicaLog>(state: &mut BrokerState<L>, isr: Isr, out: &mut Out<L>) {
    let leader_epoch = state.leader_epoch;
    let leader = state.leader_state_mut();
    leader.proposed_isr = Some(isr.clone());
    out.send(
        Ctx::controller_actor_id(),
        Msg::AlterPartition {
            leader_epoch,
            partition_epoch: leader.partition_epoch,
            isr,
        },
    );
}

/// The leader's answer to a fetch, at a follower.
fn on_fetch_response<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    src: Id,
    response: FetchResponse<L::Batch>,
    out: &mut Out<L>,
) {
    let Some(follower) = state.follower_state() else {
        return;
    };
    let awaited = Ctx::broker_actor_id(follower.leader) == src
        && follower.phase == FollowerPhase::Fetching
        && !follower.backing_off
        && response.fetch_offset == state.log.log_end_offset();
    if !awaited {
        return;
    }
    match response.error {
        // This follower is behind: the controller's news is on its way.
        Some(ErrorCode::FencedLeaderEpoch) => {}
        Some(ErrorCode::OffsetOutOfRange) => {
            let next = state.to_mut();
            next.truncate(response.log_end_offset.unwrap_or_default());
            send_fetch(
                ctx,
                id,
                next,
                next.follower_state().expect("a follower").leader,
                out,
            );
            out.save(next.storage());
        }
        Some(_) => back_off(ctx, state.to_mut(), out),
        None => {
            if ctx.protocol.variant.fences_leader_epoch()
                && response.leader_epoch != state.leader_epoch
            {
                return;
            }
            let next = state.to_mut();
            for entry in response.batches {
                if entry.base_offset != next.log.log_end_offset() {
                    break;
                }
                next.log.append(entry.leader_epoch, entry.batch);
            }
            if ctx.protocol.flush == FlushPolicy::Always {
                next.log.flush();
            }
            let high_watermark = response.high_watermark.min(next.log.log_end_offset());
            next.high_watermark = next.high_watermark.max(high_watermark);
            let leader = next.follower_state().expect("a follower").leader;
            send_fetch(ctx, id, next, leader, out);
            out.save(next.storage());
        }
    }
}

fn back_off<L: ReplicaLog>(ctx: &Ctx, state: &mut BrokerState<L>, out: &mut Out<L>) {
    state.follower_state_mut().backing_off = true;
    out.set_timer(Timer::FetchBackoff, ctx.timeout(&Timer::FetchBackoff));
}

/// OffsetForLeaderEpoch at the leader: where does the requested epoch end here?
fn on_offset_for_leader_epoch<L: ReplicaLog>(
    ctx: &Ctx,
    state: &BrokerState<L>,
    src: Id,
    current_leader_epoch: Option<LeaderEpoch>,
    requested_epoch: LeaderEpoch,
    out: &mut Out<L>,
) {
    let result = match (state.leader_state(), current_leader_epoch) {
        (None, _) => Err(ErrorCode::NotLeaderOrFollower),
        (Some(_), Some(epoch)) if epoch < state.leader_epoch => Err(ErrorCode::FencedLeaderEpoch),
        (Some(_), Some(epoch)) if epoch > state.leader_epoch => Err(ErrorCode::UnknownLeaderEpoch),
        (Some(leader), _) => {
            let cache = state.leader_epoch_cache(leader.epoch_start_offset);
            let log_end_offset = state.log.log_end_offset();
            Ok(match ctx.protocol.variant {
                Variant::HwTruncation | Variant::Kip101 => EpochEndOffset {
                    leader_epoch: Some(requested_epoch),
                    end_offset: next_epoch_start_offset(&cache, log_end_offset, requested_epoch),
                },
                Variant::Kip279 | Variant::Kip320 => {
                    end_offset_for_epoch(&cache, log_end_offset, requested_epoch)
                }
            })
        }
    };
    out.send(
        src,
        Msg::OffsetForLeaderEpochResponse {
            leader_epoch: state.leader_epoch,
            requested_epoch,
            result,
        },
    );
}

/// The leader's answer, at a reconciling follower: truncate, then fetch (or ask again).
#[allow(clippy::too_many_arguments)]
fn on_offset_for_leader_epoch_response<L: ReplicaLog>(
    ctx: &Ctx,
    id: BrokerId,
    state: &mut Cow<BrokerState<L>>,
    src: Id,
    leader_epoch: LeaderEpoch,
    requested_epoch: LeaderEpoch,
    result: Result<EpochEndOffset, ErrorCode>,
    out: &mut Out<L>,
) {
    let Some(follower) = state.follower_state() else {
        return;
    };
    let awaited = Ctx::broker_actor_id(follower.leader) == src
        && follower.phase == FollowerPhase::Reconciling
        && !follower.backing_off
        && state.log.last_epoch() == Some(requested_epoch);
    if !awaited {
        return;
    }
    let answer = match result {
        Err(ErrorCode::FencedLeaderEpoch) => return,
        Err(_) => return back_off(ctx, state.to_mut(), out),
        Ok(answer) => answer,
    };
    if ctx.protocol.variant.fences_leader_epoch() && leader_epoch != state.leader_epoch {
        return;
    }
    let next = state.to_mut();
    let log_end_offset = next.log.log_end_offset();
    let reconciled = match (ctx.protocol.variant, answer.leader_epoch) {
        (Variant::Kip279 | Variant::Kip320, Some(epoch)) if epoch < requested_epoch => {
            // The leader does not know our last epoch: cut at the end of the epoch it does know,
            // and ask again unless our log now ends in that very epoch (KIP-279).
            let own = end_offset_for_epoch(&next.log.epoch_entries(), log_end_offset, epoch);
            next.truncate(own.end_offset.min(answer.end_offset));
            next.log.last_epoch().is_none_or(|last| last == epoch)
        }
        _ => {
            next.truncate(answer.end_offset.min(log_end_offset));
            true
        }
    };
    if reconciled {
        next.follower_state_mut().phase = FollowerPhase::Fetching;
    }
    send_follower_request(ctx, id, next, out);
    out.save(next.storage());
}
