//! The producer: creates its topic if asked to, takes a producer id when idempotent, then sends
//! its batches one at a time (batch k to partition k mod partitions) to the leader it knows,
//! with the configured acks, and records which were acknowledged and at which offset.
//!
//! A failed attempt — an error answer, or no answer within `request.timeout.ms` (the leader
//! may have crashed holding it, or the answer was lost) — is retried, a bounded number of
//! times per batch, after a backoff and a metadata refresh. An idempotent producer numbers each
//! partition's batches, so a retry of a batch already written is recognised by the leader; when
//! it gives a batch up, or the leader no longer knows its sequence, it bumps its producer epoch
//! and numbers from 0 again (KIP-360). Without idempotence a retry may write a batch twice, as
//! Kafka's producer without idempotence may.

use super::{broker_of, ClientConfig, ClientEffects, ClientMetadata};
use crate::effects::{Address, Ignored};
use crate::log::{ProducerBatch, RecordBatch};
use crate::message::{AdminRequest, ErrorCode, Msg, NewTopic, ProduceRequest, Timer};
use crate::types::{Acks, BrokerId, Map, Offset, ProducerEpoch, ProducerId, Sequence};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerConfig<B> {
    pub client: ClientConfig,
    /// A topic to create before producing.
    pub create: Option<NewTopic>,
    pub batches: Vec<B>,
    pub acks: Acks,
    /// Attempts per batch, the first included (`retries` + 1).
    pub attempts_max: u8,
    /// `enable.idempotence`.
    pub idempotence: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    CreatingTopic,
    InitializingProducerId,
    Producing,
}

/// What the producer waits for: an answer (and the broker asked), or the end of a backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    Admin(BrokerId),
    InitProducerId(BrokerId),
    Produce {
        broker: BrokerId,
        request: u32,
    },
    /// Metadata, to learn who leads the next batch's partition.
    Metadata,
    /// A retry after `retry.backoff.ms`, asking who leads first if the leader may have moved.
    Backoff {
        refresh: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducerState {
    pub phase: Phase,
    pub metadata: ClientMetadata,
    pub producer: Option<(ProducerId, ProducerEpoch)>,
    /// Each partition's next sequence number.
    pub sequences: Map<u32, Sequence>,
    /// The index of the batch being sent; `batches.len()` once all are done.
    pub next_batch: usize,
    /// Which attempt at that batch, from 0.
    pub attempt: u8,
    pub pending: Option<Pending>,
    /// Each batch acknowledged, and where the leader said it was written.
    pub acknowledged: Vec<Acknowledged>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Acknowledged {
    pub batch: usize,
    pub partition: u32,
    pub offset: Offset,
    /// On which attempt (0: the first).
    pub attempt: u8,
}

impl ProducerState {
    /// The request's number: one per (batch, attempt), so a late answer to an abandoned
    /// attempt is recognised.
    fn request<B>(&self, config: &ProducerConfig<B>) -> u32 {
        (self.next_batch as u32) * u32::from(config.attempts_max) + u32::from(self.attempt)
    }

    pub fn is_done<B>(&self, config: &ProducerConfig<B>) -> bool {
        self.next_batch >= config.batches.len()
    }
}

pub fn on_start<B: RecordBatch>(
    config: &ProducerConfig<B>,
    out: &mut ClientEffects<B>,
) -> ProducerState {
    let mut state = ProducerState {
        phase: Phase::CreatingTopic,
        metadata: ClientMetadata::default(),
        producer: None,
        sequences: Map::default(),
        next_batch: 0,
        attempt: 0,
        pending: None,
        acknowledged: Vec::new(),
    };
    match &config.create {
        Some(_) => send_admin(config, &mut state, out),
        None => start_producing(config, &mut state, out),
    }
    state
}

fn bootstrap<B>(config: &ProducerConfig<B>, state: &ProducerState) -> BrokerId {
    let brokers = &config.client.bootstrap;
    brokers[state.metadata.next_bootstrap % brokers.len()]
}

fn send_admin<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut ClientEffects<B>,
) {
    let topic = config.create.clone().expect("a topic to create");
    let broker = bootstrap(config, state);
    state.pending = Some(Pending::Admin(broker));
    out.send(
        Address::Broker(broker),
        Msg::Admin(AdminRequest::CreateTopics(vec![topic])),
    );
    out.set_timer(Timer::RequestTimeout(broker), config.client.request_timeout);
}

fn start_producing<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut ClientEffects<B>,
) {
    if config.idempotence && state.producer.is_none() {
        state.phase = Phase::InitializingProducerId;
        let broker = bootstrap(config, state);
        state.pending = Some(Pending::InitProducerId(broker));
        out.send(Address::Broker(broker), Msg::InitProducerId);
        out.set_timer(Timer::RequestTimeout(broker), config.client.request_timeout);
        return;
    }
    state.phase = Phase::Producing;
    state.pending = Some(Pending::Metadata);
    state.metadata.refresh(&config.client, out);
}

pub fn on_msg<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut Cow<ProducerState>,
    from: Address,
    msg: Msg<B>,
    out: &mut ClientEffects<B>,
) {
    let Some(broker) = broker_of(from) else {
        return out.ignore(Ignored::Unexpected("a message not from a broker"));
    };
    match msg {
        Msg::AdminResponse(results) if state.pending == Some(Pending::Admin(broker)) => {
            let next = state.to_mut();
            next.pending = None;
            out.cancel_timer(Timer::RequestTimeout(broker));
            let created = results
                .iter()
                .all(|r| matches!(r.result, Ok(_) | Err(ErrorCode::TopicAlreadyExists)));
            match created {
                true => start_producing(config, next, out),
                false => back_off(config, next, false, out),
            }
        }
        Msg::InitProducerIdResponse(result)
            if state.pending == Some(Pending::InitProducerId(broker)) =>
        {
            let next = state.to_mut();
            next.pending = None;
            out.cancel_timer(Timer::RequestTimeout(broker));
            match result {
                Ok(producer) => {
                    next.producer = Some(producer);
                    start_producing(config, next, out);
                }
                Err(_) => back_off(config, next, false, out),
            }
        }
        Msg::MetadataResponse(response) => {
            let next = state.to_mut();
            let known = next.metadata.learn(&config.client, broker, &response, out);
            if next.pending == Some(Pending::Metadata) && next.metadata.asking.is_none() {
                next.pending = None;
                match known {
                    true => send_produce(config, next, out),
                    false => back_off(config, next, true, out),
                }
            }
        }
        Msg::ProduceResponse(response) => {
            let awaited = Some(Pending::Produce {
                broker,
                request: response.request,
            });
            if state.pending != awaited || response.request != state.request(config) {
                return out.ignore(Ignored::NotAwaited("Produce"));
            }
            let next = state.to_mut();
            next.pending = None;
            out.cancel_timer(Timer::RequestTimeout(broker));
            match response.result {
                Ok(offset) => acknowledged(
                    config,
                    next,
                    response.topic_partition.partition,
                    offset,
                    out,
                ),
                Err(error) => fail_attempt(config, next, Some(error), out),
            }
        }
        _ => out.ignore(Ignored::NotAwaited("a response")),
    }
}

pub fn on_timeout<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut Cow<ProducerState>,
    timer: &Timer,
    out: &mut ClientEffects<B>,
) {
    match (timer, state.pending) {
        (Timer::RetryBackoff, Some(Pending::Backoff { refresh })) => {
            let next = state.to_mut();
            next.pending = None;
            match next.phase {
                Phase::CreatingTopic => send_admin(config, next, out),
                Phase::InitializingProducerId => start_producing(config, next, out),
                Phase::Producing if refresh => {
                    next.pending = Some(Pending::Metadata);
                    next.metadata.refresh(&config.client, out);
                }
                Phase::Producing => send_produce(config, next, out),
            }
        }
        (Timer::MetadataTimeout, _) if state.metadata.asking.is_some() => {
            let next = state.to_mut();
            next.metadata.timed_out(&config.client);
            next.metadata.refresh(&config.client, out);
        }
        (Timer::RequestTimeout(broker), Some(Pending::Produce { broker: at, .. }))
            if at == *broker =>
        {
            let next = state.to_mut();
            next.pending = None;
            next.metadata.avoid(&config.client, *broker);
            fail_attempt(config, next, None, out)
        }
        (Timer::RequestTimeout(broker), Some(Pending::Admin(at) | Pending::InitProducerId(at)))
            if at == *broker =>
        {
            let next = state.to_mut();
            next.metadata.avoid(&config.client, *broker);
            back_off(config, next, false, out);
        }
        _ => {}
    }
}

fn back_off<B>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    refresh: bool,
    out: &mut ClientEffects<B>,
) {
    state.pending = Some(Pending::Backoff { refresh });
    out.set_timer(Timer::RetryBackoff, config.client.retry_backoff);
}

/// Sends the next batch to its partition's leader, or asks who leads it.
fn send_produce<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut ClientEffects<B>,
) {
    if state.is_done(config) {
        return;
    }
    let partitions = state.metadata.partition_count().max(1);
    let partition = (state.next_batch as u32) % partitions;
    let (Some(leader), Some(tp)) = (
        state.metadata.leader(partition),
        state.metadata.topic_partition(partition),
    ) else {
        state.pending = Some(Pending::Metadata);
        return state.metadata.refresh(&config.client, out);
    };
    let mut batch = config.batches[state.next_batch].clone();
    if let Some((producer_id, producer_epoch)) = state.producer {
        batch = batch.with_producer(ProducerBatch {
            producer_id,
            producer_epoch,
            base_sequence: state.sequences.get(&partition).copied().unwrap_or_default(),
        });
    }
    let request = state.request(config);
    out.send(
        Address::Broker(leader.0),
        Msg::Produce(ProduceRequest {
            request,
            topic_partition: tp,
            acks: config.acks,
            batch,
        }),
    );
    if config.acks == Acks::None {
        // Fire and forget: nothing will answer.
        return acknowledged(config, state, partition, Offset(0), out);
    }
    state.pending = Some(Pending::Produce {
        broker: leader.0,
        request,
    });
    out.set_timer(
        Timer::RequestTimeout(leader.0),
        config.client.request_timeout,
    );
}

fn acknowledged<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    partition: u32,
    offset: Offset,
    out: &mut ClientEffects<B>,
) {
    let count = config.batches[state.next_batch].record_count();
    let sequence = state.sequences.entry(partition).or_default();
    *sequence = sequence.after(count);
    if config.acks != Acks::None {
        state.acknowledged.push(Acknowledged {
            batch: state.next_batch,
            partition,
            offset,
            attempt: state.attempt,
        });
    }
    next_batch(config, state, out);
}

/// Counts a failed attempt: retried after a backoff (and a metadata refresh if the leader may
/// have moved), or given up once its attempts are spent.
fn fail_attempt<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    error: Option<ErrorCode>,
    out: &mut ClientEffects<B>,
) {
    let leader_moved = !matches!(
        error,
        Some(ErrorCode::NotEnoughReplicas | ErrorCode::OutOfOrderSequenceNumber)
    );
    if matches!(
        error,
        Some(ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId)
    ) {
        bump_epoch(state);
    }
    state.attempt += 1;
    if state.attempt < config.attempts_max {
        return back_off(config, state, leader_moved, out);
    }
    // Given up: whether or not the batch was written, the next one is numbered afresh, and
    // goes where the newest metadata says.
    bump_epoch(state);
    state.next_batch += 1;
    state.attempt = 0;
    if leader_moved && !state.is_done(config) {
        state.pending = Some(Pending::Metadata);
        return state.metadata.refresh(&config.client, out);
    }
    send_produce(config, state, out);
}

/// KIP-360: a new producer epoch, every partition's sequence from 0.
fn bump_epoch(state: &mut ProducerState) {
    if let Some((id, epoch)) = state.producer {
        state.producer = Some((id, epoch.next()));
        state.sequences.clear();
    }
}

fn next_batch<B: RecordBatch>(
    config: &ProducerConfig<B>,
    state: &mut ProducerState,
    out: &mut ClientEffects<B>,
) {
    state.next_batch += 1;
    state.attempt = 0;
    send_produce(config, state, out);
}
