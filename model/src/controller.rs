//! The controller: it tracks which brokers are alive, elects the partition's leader from the
//! ISR and bumps the leader epoch, takes the leader's ISR proposals (AlterPartition, fenced by
//! the partition epoch), and persists every decision before announcing it.
//!
//! Kafka's controller (KRaft) is itself a replicated state machine; here it is one actor that
//! never loses what it saved. It learns that a broker died only through a session-expiry timer,
//! which may fire at any moment, for a broker that is really down or for one that is merely
//! slow (a zombie that still believes what it was last told). A broker that restarts registers
//! again, and the controller treats that as the failure and return of that broker, as Kafka's
//! controller treats a bounced broker.

use crate::actor::{Ctx, Out, Storage};
use crate::log::ReplicaLog;
use crate::message::{ErrorCode, LeaderAndIsr, Msg, Timer};
use crate::types::{BrokerId, Isr, LeaderEpoch, PartitionEpoch};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// What the controller knows and has decided.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ControllerState {
    /// Each broker's last registration, and whether its session is still alive.
    pub brokers: BTreeMap<BrokerId, Registration>,
    /// The partition's leader, leader epoch, ISR and partition epoch.
    pub partition: LeaderAndIsr,
}

/// A broker's registration as the controller knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Registration {
    /// The broker epoch it registered with (KIP-380).
    pub broker_epoch: u32,
    /// Whether its session has not expired since.
    pub alive: bool,
}

impl ControllerState {
    pub fn is_alive(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|r| r.alive)
    }

    /// The cluster as first formed: every broker alive, broker 1 leading epoch 1, all in sync.
    pub fn initial(ctx: &Ctx) -> ControllerState {
        let replicas: Isr = ctx.protocol.replicas().collect();
        ControllerState {
            brokers: replicas
                .iter()
                .map(|b| {
                    let registration = Registration {
                        broker_epoch: 0,
                        alive: true,
                    };
                    (*b, registration)
                })
                .collect(),
            partition: LeaderAndIsr {
                leader: Some(BrokerId(1)),
                leader_epoch: LeaderEpoch(1),
                isr: replicas,
                partition_epoch: PartitionEpoch(1),
            },
        }
    }
}

pub fn on_start<L: ReplicaLog>(
    ctx: &Ctx,
    storage: Option<&ControllerState>,
    out: &mut Out<L>,
) -> ControllerState {
    let state = storage
        .cloned()
        .unwrap_or_else(|| ControllerState::initial(ctx));
    for broker in state.brokers.keys().filter(|b| state.is_alive(**b)) {
        out.set_timer(
            Timer::SessionExpiry(*broker),
            ctx.timeout(&Timer::SessionExpiry(*broker)),
        );
    }
    out.save(Storage::Controller(state.clone()));
    state
}

pub fn on_msg<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ControllerState>,
    src: stateright::actor::Id,
    msg: Msg<L::Batch>,
    out: &mut Out<L>,
) {
    match msg {
        Msg::BrokerRegistration { broker_epoch } => {
            let Some(broker) = ctx.broker_of(src) else {
                return;
            };
            on_broker_registration(ctx, state, broker, broker_epoch, out);
        }
        Msg::AlterPartition {
            leader_epoch,
            partition_epoch,
            isr,
        } => {
            let Some(broker) = ctx.broker_of(src) else {
                return;
            };
            on_alter_partition(state, broker, leader_epoch, partition_epoch, isr, out);
        }
        _ => {}
    }
}

pub fn on_timeout<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ControllerState>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    let Timer::SessionExpiry(broker) = *timer else {
        return;
    };
    let Some(registration) = state.brokers.get(&broker).copied().filter(|r| r.alive) else {
        return;
    };
    let before = state.partition.clone();
    let next = state.to_mut();
    next.brokers.insert(
        broker,
        Registration {
            alive: false,
            ..registration
        },
    );
    fence_broker(ctx, next, broker);
    out.save(Storage::Controller(next.clone()));
    announce(ctx, &before, next, out);
    out.send(
        Ctx::broker_actor_id(broker),
        Msg::SessionExpired {
            broker_epoch: registration.broker_epoch,
        },
    );
}

/// A broker registers, with a new broker epoch: after a restart or after its session expired.
/// If the controller thought an older broker epoch alive, the broker bounced: fence it first,
/// since it may have lost what it had not flushed (KIP-380). Then it is alive, and may lead if
/// the partition has no leader. A registration no newer than the last changes nothing.
fn on_broker_registration<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ControllerState>,
    broker: BrokerId,
    broker_epoch: u32,
    out: &mut Out<L>,
) {
    let known = state.brokers.get(&broker).copied();
    if known.is_some_and(|known| known.broker_epoch >= broker_epoch) {
        return;
    }
    let before = state.partition.clone();
    let next = state.to_mut();
    if known.is_some_and(|known| known.alive) {
        next.brokers.insert(
            broker,
            Registration {
                broker_epoch,
                alive: false,
            },
        );
        fence_broker(ctx, next, broker);
    }
    next.brokers.insert(
        broker,
        Registration {
            broker_epoch,
            alive: true,
        },
    );
    if next.partition.leader.is_none() {
        elect_leader(ctx, next);
    }
    out.save(Storage::Controller(next.clone()));
    out.set_timer(
        Timer::SessionExpiry(broker),
        ctx.timeout(&Timer::SessionExpiry(broker)),
    );
    announce(ctx, &before, next, out);
    if before.leader == next.partition.leader {
        // The new broker learns the partition's state even when nothing changed.
        out.send(
            Ctx::broker_actor_id(broker),
            Msg::LeaderAndIsr(next.partition.clone()),
        );
    }
}

/// AlterPartition (KIP-497): accepted only from the current leader, in its current leader
/// epoch, against the current partition epoch, adding only live brokers.
fn on_alter_partition<L: ReplicaLog>(
    state: &mut Cow<ControllerState>,
    broker: BrokerId,
    leader_epoch: LeaderEpoch,
    partition_epoch: PartitionEpoch,
    isr: Isr,
    out: &mut Out<L>,
) {
    let partition = &state.partition;
    let refusal = if partition.leader != Some(broker) || partition.leader_epoch != leader_epoch {
        Some(ErrorCode::FencedLeaderEpoch)
    } else if partition.partition_epoch != partition_epoch || !isr.contains(&broker) {
        Some(ErrorCode::InvalidUpdateVersion)
    } else if !isr.iter().all(|b| state.is_alive(*b)) {
        Some(ErrorCode::IneligibleReplica)
    } else {
        None
    };
    let src = Ctx::broker_actor_id(broker);
    if let Some(error) = refusal {
        out.send(
            src,
            Msg::AlterPartitionResponse {
                leader_epoch,
                result: Err(error),
            },
        );
        return;
    }
    let next = state.to_mut();
    next.partition.isr = isr;
    next.partition.partition_epoch = next.partition.partition_epoch.next();
    out.save(Storage::Controller(next.clone()));
    out.send(
        src,
        Msg::AlterPartitionResponse {
            leader_epoch,
            result: Ok(next.partition.clone()),
        },
    );
}

/// The broker is no longer alive: it leaves the ISR (unless it is the last member, which Kafka
/// keeps so the partition can come back with it) and, if it led, a new leader is elected.
fn fence_broker(ctx: &Ctx, state: &mut ControllerState, broker: BrokerId) {
    let partition = &mut state.partition;
    let mut changed = false;
    if partition.isr.contains(&broker) && partition.isr.len() > 1 {
        partition.isr.remove(&broker);
        changed = true;
    }
    if partition.leader == Some(broker) {
        elect_leader(ctx, state);
    } else if changed {
        state.partition.partition_epoch = state.partition.partition_epoch.next();
    }
}

/// Clean election: the first live ISR member in replica order. Unclean (if enabled): the first
/// live replica, which becomes the whole ISR. Otherwise the partition goes offline. Any change
/// of leader, to none included, bumps the leader epoch.
fn elect_leader(ctx: &Ctx, state: &mut ControllerState) {
    let live = |b: &BrokerId| state.is_alive(*b);
    let clean = ctx
        .protocol
        .replicas()
        .find(|b| live(b) && state.partition.isr.contains(b));
    let unclean = ctx
        .protocol
        .replicas()
        .find(live)
        .filter(|_| ctx.protocol.unclean_leader_election);
    let partition = &mut state.partition;
    let leader = match (clean, unclean) {
        (Some(leader), _) => Some(leader),
        (None, Some(leader)) => {
            partition.isr = BTreeSet::from([leader]);
            Some(leader)
        }
        (None, None) => None,
    };
    if leader != partition.leader {
        partition.leader = leader;
        partition.leader_epoch = partition.leader_epoch.next();
    }
    partition.partition_epoch = partition.partition_epoch.next();
}

/// Tells the brokers what changed: every replica when the leader changed (followers must
/// follow someone else), only the leader when just the ISR changed (it needs the new partition
/// epoch for its next AlterPartition). Clients learn of every leader change.
fn announce<L: ReplicaLog>(
    ctx: &Ctx,
    before: &LeaderAndIsr,
    state: &ControllerState,
    out: &mut Out<L>,
) {
    let now = &state.partition;
    if now == before {
        return;
    }
    let message = Msg::LeaderAndIsr(now.clone());
    if now.leader_epoch != before.leader_epoch {
        for broker in ctx.protocol.replicas() {
            out.send(Ctx::broker_actor_id(broker), message.clone());
        }
        let metadata = Msg::Metadata {
            leader: now.leader,
            leader_epoch: now.leader_epoch,
        };
        out.send(ctx.producer_actor_id(), metadata.clone());
        if ctx.consumer {
            out.send(ctx.consumer_actor_id(), metadata);
        }
    } else if let Some(leader) = now.leader {
        out.send(Ctx::broker_actor_id(leader), message);
    }
}
