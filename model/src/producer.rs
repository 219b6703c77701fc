//! The producer: sends its batches one at a time to the leader it knows, with the configured
//! acks, and records which were acknowledged and at which offset.
//!
//! A failed attempt — an error answer, or a leader change while the request is in flight (the
//! old leader may have crashed holding it) — is retried, a bounded number of times per batch,
//! after a backoff on errors or at once to a new leader. The producer is not idempotent, so a
//! retry may write a batch twice, as Kafka's producer without idempotence may.

use crate::actor::{Ctx, Out};
use crate::log::{RecordBatch, ReplicaLog};
use crate::message::{Msg, Timer};
use crate::types::{Acks, BrokerId, LeaderEpoch, Offset};
use stateright::actor::Id;
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducerConfig<B> {
    pub batches: Vec<B>,
    pub acks: Acks,
    /// Attempts per batch, the first included (`retries` + 1).
    pub attempts_max: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducerState {
    /// The index of the batch being sent; `batches.len()` once all are done.
    pub next_batch: usize,
    /// Which attempt at that batch, from 0.
    pub attempt: u8,
    /// The leader and its epoch, as the latest metadata said.
    pub leader: Option<(BrokerId, LeaderEpoch)>,
    /// The leader epoch the request in flight was sent in; `None` when none is in flight.
    pub in_flight: Option<LeaderEpoch>,
    /// Each batch acknowledged, and the offset the leader said it was written at.
    pub acknowledged: Vec<Acknowledged>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Acknowledged {
    pub batch: usize,
    pub offset: Offset,
}

impl ProducerState {
    /// The request's sequence number: one per (batch, attempt), so a late answer to an
    /// abandoned attempt is recognised.
    fn sequence<B>(&self, config: &ProducerConfig<B>) -> u32 {
        (self.next_batch as u32) * u32::from(config.attempts_max) + u32::from(self.attempt)
    }
}

/// The cluster as first formed: broker 1 leads epoch 1.
pub fn on_start<L: ReplicaLog>(
    config: &ProducerConfig<L::Batch>,
    out: &mut Out<L>,
) -> ProducerState {
    let mut state = ProducerState {
        next_batch: 0,
        attempt: 0,
        leader: Some((BrokerId(1), LeaderEpoch(1))),
        in_flight: None,
        acknowledged: Vec::new(),
    };
    if !config.batches.is_empty() {
        send_produce(config, &mut state, out);
    }
    state
}

pub fn on_msg<L: ReplicaLog>(
    ctx: &Ctx,
    config: &ProducerConfig<L::Batch>,
    state: &mut Cow<ProducerState>,
    src: Id,
    msg: Msg<L::Batch>,
    out: &mut Out<L>,
) {
    match msg {
        Msg::Metadata {
            leader,
            leader_epoch,
        } if src == Ctx::controller_actor_id()
            && state.leader.is_none_or(|(_, known)| known < leader_epoch) =>
        {
            let next = state.to_mut();
            next.leader = leader.map(|leader| (leader, leader_epoch));
            if next.in_flight.is_some() {
                // The old leader may never answer: this attempt failed.
                next.in_flight = None;
                fail_attempt(config, next, out);
            }
            if next.in_flight.is_none() && next.leader.is_some() && !is_done(config, next) {
                send_produce(config, next, out);
            }
        }
        Msg::ProduceResponse { sequence, result } => {
            let awaited = state.in_flight.is_some()
                && state.leader.map(|(leader, _)| Ctx::broker_actor_id(leader)) == Some(src)
                && sequence == state.sequence(config);
            if !awaited {
                return;
            }
            let next = state.to_mut();
            next.in_flight = None;
            match result {
                Ok(offset) => {
                    next.acknowledged.push(Acknowledged {
                        batch: next.next_batch,
                        offset,
                    });
                    next_batch(config, next, out);
                }
                Err(_) => {
                    if fail_attempt(config, next, out) {
                        out.set_timer(Timer::RetryBackoff, ctx.timeout(&Timer::RetryBackoff));
                    }
                }
            }
        }
        _ => {}
    }
}

pub fn on_timeout<L: ReplicaLog>(
    config: &ProducerConfig<L::Batch>,
    state: &mut Cow<ProducerState>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    let ready = state.in_flight.is_none() && state.leader.is_some() && !is_done(config, state);
    if *timer == Timer::RetryBackoff && ready {
        send_produce(config, state.to_mut(), out);
    }
}

fn is_done<B>(config: &ProducerConfig<B>, state: &ProducerState) -> bool {
    state.next_batch >= config.batches.len()
}

fn send_produce<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) {
    let (leader, leader_epoch) = state.leader.expect("a known leader");
    out.send(
        Ctx::broker_actor_id(leader),
        Msg::Produce {
            sequence: state.sequence(config),
            acks: config.acks,
            batch: config.batches[state.next_batch].clone(),
        },
    );
    if config.acks == Acks::None {
        // Fire and forget: nothing will answer.
        return next_batch(config, state, out);
    }
    state.in_flight = Some(leader_epoch);
}

/// Counts a failed attempt; gives the batch up once its attempts are spent (and moves on).
/// Returns whether the batch is to be tried again.
fn fail_attempt<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) -> bool {
    state.attempt += 1;
    if state.attempt < config.attempts_max {
        return true;
    }
    next_batch(config, state, out);
    false
}

fn next_batch<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) {
    state.next_batch += 1;
    state.attempt = 0;
    if !is_done(config, state) && state.leader.is_some() {
        send_produce(config, state, out);
    }
}
