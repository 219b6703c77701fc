//! The producer: sends its batches one at a time to whoever the controller says leads, with
//! the configured acks, and records which were acknowledged and at which offset. On an error or
//! a request timeout it refreshes its metadata and retries, a bounded number of times; it is not
//! idempotent, so a retry may write a batch twice, as Kafka's producer without idempotence may.

use crate::actor::{Ctx, Out};
use crate::log::{RecordBatch, ReplicaLog};
use crate::message::{Msg, Timer};
use crate::types::{Acks, BrokerId, Offset};
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
    pub awaiting: Awaiting,
    pub leader: Option<BrokerId>,
    /// Each batch acknowledged, and the offset the leader said it was written at.
    pub acknowledged: Vec<Acknowledged>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Awaiting {
    Nothing,
    Metadata,
    Produce,
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

pub fn on_start<L: ReplicaLog>(
    ctx: &Ctx,
    config: &ProducerConfig<L::Batch>,
    out: &mut Out<L>,
) -> ProducerState {
    let mut state = ProducerState {
        next_batch: 0,
        attempt: 0,
        awaiting: Awaiting::Nothing,
        leader: None,
        acknowledged: Vec::new(),
    };
    if !config.batches.is_empty() {
        request_metadata(ctx, &mut state, out);
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
        Msg::MetadataResponse { leader, .. } if state.awaiting == Awaiting::Metadata => {
            let next = state.to_mut();
            match leader {
                Some(leader) => {
                    next.leader = Some(leader);
                    send_produce(ctx, config, next, out);
                }
                None => retry(ctx, config, next, out),
            }
        }
        Msg::ProduceResponse { sequence, result } => {
            let awaited = state.awaiting == Awaiting::Produce
                && state.leader.map(Ctx::broker_actor_id) == Some(src)
                && sequence == state.sequence(config);
            if !awaited {
                return;
            }
            let next = state.to_mut();
            match result {
                Ok(offset) => {
                    next.acknowledged.push(Acknowledged {
                        batch: next.next_batch,
                        offset,
                    });
                    next_batch(ctx, config, next, out);
                }
                Err(_) => retry(ctx, config, next, out),
            }
        }
        _ => {}
    }
}

pub fn on_timeout<L: ReplicaLog>(
    ctx: &Ctx,
    config: &ProducerConfig<L::Batch>,
    state: &mut Cow<ProducerState>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    if *timer == Timer::RequestTimeout && state.awaiting != Awaiting::Nothing {
        retry(ctx, config, state.to_mut(), out);
    }
}

fn request_metadata<L: ReplicaLog>(ctx: &Ctx, state: &mut ProducerState, out: &mut Out<L>) {
    state.awaiting = Awaiting::Metadata;
    state.leader = None;
    out.send(Ctx::controller_actor_id(), Msg::MetadataRequest);
    out.set_timer(Timer::RequestTimeout, ctx.timeout(&Timer::RequestTimeout));
}

fn send_produce<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    ctx: &Ctx,
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) {
    let leader = Ctx::broker_actor_id(state.leader.expect("a known leader"));
    out.send(
        leader,
        Msg::Produce {
            sequence: state.sequence(config),
            acks: config.acks,
            batch: config.batches[state.next_batch].clone(),
        },
    );
    if config.acks == Acks::None {
        // Fire and forget: nothing will answer.
        return next_batch(ctx, config, state, out);
    }
    state.awaiting = Awaiting::Produce;
    out.set_timer(Timer::RequestTimeout, ctx.timeout(&Timer::RequestTimeout));
}

/// The attempt failed (an error or no answer in time): ask who leads and try again, or give the
/// batch up once its attempts are spent.
fn retry<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    ctx: &Ctx,
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) {
    state.attempt += 1;
    if state.attempt >= config.attempts_max {
        return next_batch(ctx, config, state, out);
    }
    request_metadata(ctx, state, out);
}

fn next_batch<B: RecordBatch, L: ReplicaLog<Batch = B>>(
    ctx: &Ctx,
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut Out<L>,
) {
    state.next_batch += 1;
    state.attempt = 0;
    if state.next_batch >= config.batches.len() {
        state.awaiting = Awaiting::Nothing;
        out.cancel_timer(Timer::RequestTimeout);
    } else if state.leader.is_some() {
        send_produce(ctx, config, state, out);
    } else {
        request_metadata(ctx, state, out);
    }
}
