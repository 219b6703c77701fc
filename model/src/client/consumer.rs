//! The consumer: reads every partition of its topic from offset 0, fetching from each leader it
//! knows every partition that broker leads, and records every batch it reads. A leader answers
//! consumers only below its high watermark, so everything recorded here was committed. After an
//! error, or a fetch unanswered within `request.timeout.ms`, it backs off, asks who leads, and
//! fetches again; a position below the leader's log start moves to it
//! (`auto.offset.reset=earliest`).

use super::{broker_of, ClientConfig, ClientEffects, ClientMetadata};
use crate::effects::{Address, Ignored};
use crate::log::{LogEntry, RecordBatch};
use crate::message::{ErrorCode, FetchPartition, FetchRequest, FetchResponse, Msg, Timer};
use crate::types::{BrokerId, Map, Offset};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsumerConfig {
    pub client: ClientConfig,
    /// Whether fetches carry the leader epoch the consumer knows (KIP-320).
    pub send_leader_epoch: bool,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: u64,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait_ms: u32,
    /// `fetch.max.bytes` and `max.partition.fetch.bytes`.
    pub fetch_max_bytes: u64,
    pub partition_fetch_max_bytes: u64,
}

/// A batch as the consumer read it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Read<B> {
    pub partition: u32,
    pub entry: LogEntry<B>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerState<B> {
    pub metadata: ClientMetadata,
    /// Each partition's position: the offset of the next record to read.
    pub positions: Map<u32, Offset>,
    /// Leaders a fetch is outstanding at.
    pub in_flight: BTreeSet<BrokerId>,
    /// Waiting for the backoff after an error before fetching again.
    pub backing_off: bool,
    /// Every batch read, in order.
    pub read: Vec<Read<B>>,
}

pub fn on_start<B: RecordBatch>(
    config: &ConsumerConfig,
    out: &mut ClientEffects<B>,
) -> ConsumerState<B> {
    let mut state = ConsumerState {
        metadata: ClientMetadata::default(),
        positions: Map::default(),
        in_flight: BTreeSet::new(),
        backing_off: false,
        read: Vec::new(),
    };
    state.metadata.refresh(&config.client, out);
    state
}

pub fn on_msg<B: RecordBatch>(
    config: &ConsumerConfig,
    state: &mut Cow<ConsumerState<B>>,
    from: Address,
    msg: Msg<B>,
    out: &mut ClientEffects<B>,
) {
    let Some(broker) = broker_of(from) else {
        return out.ignore(Ignored::Unexpected("a message not from a broker"));
    };
    match msg {
        Msg::MetadataResponse(response) => {
            let next = state.to_mut();
            let asked = next.metadata.asking == Some(broker);
            let known = next.metadata.learn(&config.client, broker, &response, out);
            if !asked || next.backing_off {
                return;
            }
            match known {
                true => fetch_all(config, next, out),
                false => back_off(config, next, out),
            }
        }
        Msg::FetchResponse(response) => on_fetch_response(config, state, broker, response, out),
        _ => out.ignore(Ignored::NotAwaited("a response")),
    }
}

fn on_fetch_response<B: RecordBatch>(
    config: &ConsumerConfig,
    state: &mut Cow<ConsumerState<B>>,
    broker: BrokerId,
    response: FetchResponse<B>,
    out: &mut ClientEffects<B>,
) {
    if !state.in_flight.contains(&broker) {
        return out.ignore(Ignored::NotAwaited("Fetch"));
    }
    let next = state.to_mut();
    next.in_flight.remove(&broker);
    out.cancel_timer(Timer::RequestTimeout(broker));
    let mut failed = false;
    for fetched in response.partitions {
        let partition = fetched.topic_partition.partition;
        let Some(position) = next.positions.get_mut(&partition) else {
            continue;
        };
        if fetched.fetch_offset != *position {
            continue;
        }
        match fetched.error {
            Some(ErrorCode::OffsetOutOfRange) if *position < fetched.log_start_offset => {
                *position = fetched.log_start_offset;
            }
            Some(_) => failed = true,
            None => {
                for entry in fetched.batches {
                    if entry.next_offset() > *position {
                        *position = entry.next_offset();
                        next.read.push(Read { partition, entry });
                    }
                }
            }
        }
    }
    if failed {
        // The leader may have moved: after a backoff, ask who leads, then fetch.
        if !next.backing_off && next.metadata.asking.is_none() {
            back_off(config, next, out);
        }
    } else if !next.backing_off && next.metadata.asking.is_none() {
        send_fetch(config, next, broker, out);
    }
}

pub fn on_timeout<B: RecordBatch>(
    config: &ConsumerConfig,
    state: &mut Cow<ConsumerState<B>>,
    timer: &Timer,
    out: &mut ClientEffects<B>,
) {
    match *timer {
        Timer::RetryBackoff if state.backing_off => {
            let next = state.to_mut();
            next.backing_off = false;
            next.metadata.refresh(&config.client, out);
        }
        Timer::MetadataTimeout if state.metadata.asking.is_some() => {
            let next = state.to_mut();
            next.metadata.timed_out(&config.client);
            next.metadata.refresh(&config.client, out);
        }
        Timer::RequestTimeout(broker) if state.in_flight.contains(&broker) => {
            let next = state.to_mut();
            next.in_flight.remove(&broker);
            next.metadata.avoid(&config.client, broker);
            if !next.backing_off && next.metadata.asking.is_none() {
                back_off(config, next, out);
            }
        }
        _ => {}
    }
}

fn back_off<B>(config: &ConsumerConfig, state: &mut ConsumerState<B>, out: &mut ClientEffects<B>) {
    state.backing_off = true;
    out.set_timer(Timer::RetryBackoff, config.client.retry_backoff);
}

/// Fetches from every leader it knows that has no fetch of its outstanding.
fn fetch_all<B: RecordBatch>(
    config: &ConsumerConfig,
    state: &mut ConsumerState<B>,
    out: &mut ClientEffects<B>,
) {
    let leaders: BTreeSet<BrokerId> = state
        .metadata
        .leaders
        .values()
        .filter_map(|(leader, _)| *leader)
        .collect();
    for leader in leaders {
        if !state.in_flight.contains(&leader) {
            send_fetch(config, state, leader, out);
        }
    }
}

/// Fetches, from `leader`, every partition it leads by the consumer's metadata.
fn send_fetch<B: RecordBatch>(
    config: &ConsumerConfig,
    state: &mut ConsumerState<B>,
    leader: BrokerId,
    out: &mut ClientEffects<B>,
) {
    let led: Vec<u32> = state
        .metadata
        .leaders
        .iter()
        .filter(|(_, (l, _))| *l == Some(leader))
        .map(|(partition, _)| *partition)
        .collect();
    let mut partitions = Vec::new();
    for partition in led {
        let (Some(tp), Some((_, epoch))) = (
            state.metadata.topic_partition(partition),
            state.metadata.leader(partition),
        ) else {
            continue;
        };
        let position = *state.positions.entry(partition).or_default();
        partitions.push(FetchPartition {
            topic_partition: tp,
            current_leader_epoch: config.send_leader_epoch.then_some(epoch),
            fetch_offset: position,
            bytes_max: config.partition_fetch_max_bytes,
        });
    }
    if partitions.is_empty() {
        return;
    }
    state.in_flight.insert(leader);
    out.send(
        Address::Broker(leader),
        Msg::Fetch(FetchRequest {
            replica: None,
            min_bytes: config.fetch_min_bytes,
            max_wait_ms: config.fetch_max_wait_ms,
            bytes_max: config.fetch_max_bytes,
            partitions,
        }),
    );
    let timeout = config.client.request_timeout
        + std::time::Duration::from_millis(u64::from(config.fetch_max_wait_ms));
    out.set_timer(Timer::RequestTimeout(leader), timeout);
}
