//! Fetch (v4-12, topics by name) for consumers: the partitions go to the actor as one model
//! FetchRequest (replica `None`), which answers at once when `min_bytes` are there and holds
//! the fetch otherwise, up to `max_wait_ms`; the batches come back as the bytes stored, only
//! below the HW, whole (an offset inside a batch returns that batch), within the byte limits
//! per partition and per response (KIP-74). No fetch sessions (KIP-227): the answer's session
//! id 0 tells the client to send full fetches; an incremental one is answered
//! FETCH_SESSION_ID_NOT_FOUND, which makes it start over with a full fetch.

use super::{decode, encode, Answers, Connection, Pending, Work};
use crate::host::Message;
use crate::storage::KafkaBatch;
use bytes::{Bytes, BytesMut};
use gregor_model::log::RecordBatch;
use gregor_model::message::{
    FetchPartition, FetchRequest as ModelRequest, FetchResponse as ModelResponse,
};
use gregor_model::types::{LeaderEpoch, Offset, TopicPartition};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

pub struct Waiting {
    /// Whether the model's request is with the actor now.
    pub with_actor: bool,
    /// The model's request, until it is handed to the actor.
    request: Option<ModelRequest>,
    /// Per topic, per partition (in request order): the answer; `None` until there is one.
    topics: Answers<TopicName, PartitionData>,
    /// Where each partition sent to the actor sits in `topics`.
    sent: Vec<(TopicPartition, usize, usize)>,
}

/// A partition answered with an error: its records empty, not null, as Kafka's (librdkafka
/// refuses a null records field: "invalid MessageSetSize -1").
fn error_data(index: i32, error: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_high_watermark(-1)
        .with_records(Some(Bytes::new()))
}

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: FetchRequest = decode(ApiKey::Fetch, version, &mut frame)?;
    if request.replica_id.0 >= 0 {
        return Err(format!(
            "a replica fetch (replica id {}) on a client listener: Gregor's brokers replicate \
             over their own links",
            request.replica_id.0
        ));
    }
    if version >= 7 && request.session_epoch > 0 {
        let body = FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
        let answer = encode(ApiKey::Fetch, version, correlation_id, &body)?;
        conn.answer(correlation_id, ApiKey::Fetch, version, Work::Ready(answer));
        return Ok(());
    }
    let directory = conn.directory();
    let mut waiting = Waiting {
        with_actor: false,
        request: None,
        topics: Vec::new(),
        sent: Vec::new(),
    };
    let mut partitions = Vec::new();
    for topic in request.topics {
        let found = directory.topics.get(topic.topic.0.as_str());
        let mut answers = Vec::new();
        for partition in topic.partitions {
            let index = partition.partition;
            let tp = found.and_then(|t| t.partition(index));
            match tp {
                None => answers.push((index, Some(error_data(index, UNKNOWN_TOPIC_OR_PARTITION)))),
                Some(_) if partition.fetch_offset < 0 => {
                    answers.push((index, Some(error_data(index, OFFSET_OUT_OF_RANGE))))
                }
                Some(tp) => {
                    waiting.sent.push((tp, waiting.topics.len(), answers.len()));
                    answers.push((index, None));
                    partitions.push(FetchPartition {
                        topic_partition: tp,
                        current_leader_epoch: (version >= 9 && partition.current_leader_epoch >= 0)
                            .then_some(LeaderEpoch(partition.current_leader_epoch as u32)),
                        fetch_offset: Offset(partition.fetch_offset as u64),
                        bytes_max: partition.partition_max_bytes.max(0) as u64,
                    });
                }
            }
        }
        waiting.topics.push((topic.topic, answers));
    }
    let mut pending = Pending {
        correlation_id,
        version,
        work: Work::Fetch(waiting),
    };
    if partitions.is_empty() {
        finish(&mut pending)?;
        conn.pending.push_back(pending);
        return Ok(());
    }
    let model = ModelRequest {
        replica: None,
        min_bytes: request.min_bytes.max(0) as u64,
        max_wait_ms: request.max_wait_ms.max(0) as u32,
        bytes_max: request.max_bytes.max(0) as u64,
        partitions,
    };
    if let Work::Fetch(waiting) = &mut pending.work {
        waiting.request = Some(model);
    }
    conn.pending.push_back(pending);
    submit_next(conn).await;
    Ok(())
}

/// Hands the actor the oldest fetch waiting for its turn, if none of this connection's is
/// with it (the model holds one fetch per requester).
pub async fn submit_next(conn: &mut Connection) {
    if conn.fetch_with_actor {
        return;
    }
    let next = conn.pending.iter_mut().find_map(|p| match &mut p.work {
        Work::Fetch(waiting) if waiting.request.is_some() => {
            waiting.with_actor = true;
            waiting.request.take()
        }
        _ => None,
    });
    if let Some(request) = next {
        conn.fetch_with_actor = true;
        conn.to_actor(Message::Fetch(request)).await;
    }
}

/// The batches of a partition as one records field: the stored bytes, back to back.
fn records(batches: &[gregor_model::log::LogEntry<KafkaBatch>]) -> Bytes {
    match batches {
        [] => Bytes::new(),
        [one] => one.batch.bytes().clone(),
        many => {
            let size = many.iter().map(|e| e.batch.size_bytes() as usize).sum();
            let mut out = BytesMut::with_capacity(size);
            for entry in many {
                out.extend_from_slice(entry.batch.bytes());
            }
            out.freeze()
        }
    }
}

pub fn complete(pending: &mut Pending, response: ModelResponse<KafkaBatch>) -> Result<(), String> {
    let version = pending.version;
    let Work::Fetch(waiting) = &mut pending.work else {
        unreachable!("matched by the caller")
    };
    for fetched in response.partitions {
        let Some(at) = waiting
            .sent
            .iter()
            .position(|(tp, _, _)| *tp == fetched.topic_partition)
        else {
            continue;
        };
        let (_, topic, partition) = waiting.sent.swap_remove(at);
        let index = waiting.topics[topic].1[partition].0;
        let data = match fetched.error {
            Some(error) => error_data(index, error.code()),
            None => {
                let high_watermark = fetched.high_watermark.0 as i64;
                let mut data = PartitionData::default()
                    .with_partition_index(index)
                    .with_high_watermark(high_watermark)
                    .with_last_stable_offset(high_watermark)
                    .with_records(Some(records(&fetched.batches)));
                if version >= 5 {
                    data = data.with_log_start_offset(fetched.log_start_offset.0 as i64);
                }
                data
            }
        };
        waiting.topics[topic].1[partition].1 = Some(data);
    }
    finish(pending)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::Fetch(waiting) = &mut pending.work else {
        unreachable!("a fetch")
    };
    let responses = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, partitions)| {
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, data)| {
                            // A partition the actor left out of its answer: nothing this time.
                            data.unwrap_or_else(|| {
                                PartitionData::default()
                                    .with_partition_index(index)
                                    .with_high_watermark(-1)
                            })
                        })
                        .collect(),
                )
        })
        .collect();
    let body = FetchResponse::default().with_responses(responses);
    pending.work = Work::Ready(encode(
        ApiKey::Fetch,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
