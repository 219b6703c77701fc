//! Produce (v3-12, topics by name): each partition's record batch goes to the actor as the
//! model's ProduceRequest, stored as the bytes the producer sent; the answers are joined into
//! one response. Checked here, before the protocol sees the batch, as Kafka's broker checks it
//! on arrival: exactly one v2 batch (INVALID_RECORD otherwise), its CRC-32C (CORRUPT_MESSAGE),
//! its size against `message.max.bytes` (MESSAGE_TOO_LARGE), the acks value
//! (INVALID_REQUIRED_ACKS). acks=0 gets no answer at all. An acks=all request whose partitions
//! are not all answered within its `timeout_ms` is answered REQUEST_TIMED_OUT for those, as
//! Kafka's broker answers it: the outcome is unknown to the client (the records may yet be
//! committed), and the model's later answer is dropped.

use super::{decode, encode, Answers, Connection, Pending, Work};
use crate::storage::batch::BatchHeader;
use crate::storage::KafkaBatch;
use gregor_model::message::{
    Msg, ProduceRequest as ModelRequest, ProduceResponse as ModelResponse,
};
use gregor_model::types::{Acks, TopicPartition};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};

const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const REQUEST_TIMED_OUT: i16 = 7;
const INVALID_REQUIRED_ACKS: i16 = 21;
const INVALID_REQUEST: i16 = 42;
const INVALID_RECORD: i16 = 87;

pub struct Waiting {
    pub request: u32,
    /// Per topic, per partition: (partition, error, base offset); `None` while the actor has it.
    topics: Answers<TopicName, (i16, i64)>,
    /// Where each partition the actor has sits in `topics`.
    with_actor: Vec<(TopicPartition, usize, usize)>,
    /// acks=all: when the request's `timeout_ms` is up.
    pub deadline: Option<tokio::time::Instant>,
}

/// Checks a partition's records as Kafka does on arrival.
fn check(records: Option<bytes::Bytes>, max_bytes: u64) -> Result<KafkaBatch, i16> {
    let Some(records) = records else {
        return Err(INVALID_RECORD);
    };
    if records.len() as u64 > max_bytes {
        return Err(MESSAGE_TOO_LARGE);
    }
    if records.len() < crate::storage::batch::HEADER_BYTES {
        return Err(CORRUPT_MESSAGE);
    }
    let header = BatchHeader::parse(&records).map_err(|_| CORRUPT_MESSAGE)?;
    if header.total_bytes != records.len() as u64 {
        // Several batches, or a truncated one.
        return Err(INVALID_RECORD);
    }
    let batch = KafkaBatch::new(records).map_err(|_| CORRUPT_MESSAGE)?;
    batch.verify_crc().map_err(|_| CORRUPT_MESSAGE)?;
    Ok(batch)
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: ProduceRequest = decode(ApiKey::Produce, version, &mut frame)?;
    let acks = match request.acks {
        -1 => Some(Acks::All),
        1 => Some(Acks::Leader),
        0 => Some(Acks::None),
        _ => None,
    };
    let transactional = request.transactional_id.is_some();
    let number = conn.request_number();
    let directory = conn.directory();
    let max_bytes = conn.front_end.settings.message_max_bytes;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut waiting = Waiting {
        request: number,
        topics: Vec::new(),
        with_actor: Vec::new(),
        deadline: (acks == Some(Acks::All)).then(|| tokio::time::Instant::now() + timeout),
    };
    let mut to_actor = Vec::new();
    for topic in request.topic_data {
        let found = directory.topics.get(topic.name.0.as_str());
        let mut partitions = Vec::new();
        for partition in topic.partition_data {
            let index = partition.index;
            let tp = found.and_then(|t| t.partition(index));
            let early = if acks.is_none() {
                Some(INVALID_REQUIRED_ACKS)
            } else if transactional {
                Some(INVALID_REQUEST)
            } else if tp.is_none() {
                Some(UNKNOWN_TOPIC_OR_PARTITION)
            } else {
                None
            };
            let outcome = match early {
                Some(error) => Err(error),
                None => check(partition.records, max_bytes),
            };
            match outcome {
                Err(error) => partitions.push((index, Some((error, -1)))),
                Ok(batch) => {
                    let tp = tp.expect("checked");
                    waiting
                        .with_actor
                        .push((tp, waiting.topics.len(), partitions.len()));
                    partitions.push((index, None));
                    to_actor.push(Msg::Produce(ModelRequest {
                        request: number,
                        topic_partition: tp,
                        acks: acks.expect("checked"),
                        batch,
                    }));
                }
            }
        }
        waiting.topics.push((topic.name, partitions));
    }
    if acks != Some(Acks::None) {
        let pending = Pending {
            correlation_id,
            version,
            work: Work::Produce(waiting),
        };
        return conn.submit(pending, to_actor, finish).await;
    }
    for msg in to_actor {
        conn.to_actor(msg).await;
    }
    Ok(())
}

/// One partition's answer.
pub fn complete(pending: &mut Pending, response: &ModelResponse) -> Result<(), String> {
    let Work::Produce(waiting) = &mut pending.work else {
        unreachable!("matched by the caller")
    };
    let Some(at) = waiting
        .with_actor
        .iter()
        .position(|(tp, _, _)| *tp == response.topic_partition)
    else {
        return Ok(());
    };
    let (_, topic, partition) = waiting.with_actor.swap_remove(at);
    waiting.topics[topic].1[partition].1 = Some(match response.result {
        Ok(offset) => (0, offset.0 as i64),
        Err(error) => (error.code(), -1),
    });
    if waiting.with_actor.is_empty() {
        finish(pending)?;
    }
    Ok(())
}

/// The request's `timeout_ms` is up: what the actor has not answered is REQUEST_TIMED_OUT.
pub fn expire(pending: &mut Pending) -> Result<(), String> {
    let Work::Produce(waiting) = &mut pending.work else {
        unreachable!("matched by the caller")
    };
    for (_, topic, partition) in waiting.with_actor.drain(..) {
        waiting.topics[topic].1[partition].1 = Some((REQUEST_TIMED_OUT, -1));
    }
    finish(pending)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::Produce(waiting) = &mut pending.work else {
        unreachable!("a produce")
    };
    let responses = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, partitions)| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(
                    partitions
                        .into_iter()
                        .map(|(index, outcome)| {
                            let (error, offset) = outcome.unwrap_or((0, -1));
                            PartitionProduceResponse::default()
                                .with_index(index)
                                .with_error_code(error)
                                .with_base_offset(offset)
                        })
                        .collect(),
                )
        })
        .collect();
    let body = ProduceResponse::default().with_responses(responses);
    pending.work = Work::Ready(encode(
        ApiKey::Produce,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
