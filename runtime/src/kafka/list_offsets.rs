//! ListOffsets (v1-8): each partition goes to the actor as the model's ListOffsets — the log
//! start (-2), the HW (-1; the log end for Kafka's debug reader, replica id -2), the largest
//! timestamp (-3, KIP-734) or a time — and the answers are joined.

use super::{decode, encode, Answers, Connection, Pending, Work};
use gregor_model::message::{
    ListOffsetsRequest as ModelRequest, ListOffsetsResponse as ModelResponse, Msg, OffsetQuery,
};
use gregor_model::types::{LeaderEpoch, TopicPartition};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;

pub struct Waiting {
    pub request: u32,
    topics: Answers<TopicName, ListOffsetsPartitionResponse>,
    sent: Vec<(TopicPartition, usize, usize)>,
}

fn error(index: i32, code: i16) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_timestamp(-1)
        .with_offset(-1)
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: ListOffsetsRequest = decode(ApiKey::ListOffsets, version, &mut frame)?;
    let number = conn.request_number();
    let directory = conn.directory();
    let to_log_end = request.replica_id.0 == -2;
    let mut waiting = Waiting {
        request: number,
        topics: Vec::new(),
        sent: Vec::new(),
    };
    let mut to_actor = Vec::new();
    for topic in request.topics {
        let found = directory.topics.get(topic.name.0.as_str());
        let mut answers = Vec::new();
        for partition in topic.partitions {
            let index = partition.partition_index;
            let tp = found.and_then(|t| t.partition(index));
            let query = match partition.timestamp {
                -2 => Some(OffsetQuery::Earliest),
                -1 => Some(OffsetQuery::Latest),
                -3 if version >= 7 => Some(OffsetQuery::MaxTimestamp),
                t if t >= 0 => Some(OffsetQuery::Timestamp(t)),
                _ => None,
            };
            match (tp, query) {
                (None, _) => answers.push((index, Some(error(index, UNKNOWN_TOPIC_OR_PARTITION)))),
                (_, None) => answers.push((index, Some(error(index, UNSUPPORTED_VERSION)))),
                (Some(tp), Some(query)) => {
                    waiting.sent.push((tp, waiting.topics.len(), answers.len()));
                    answers.push((index, None));
                    to_actor.push(Msg::ListOffsets(ModelRequest {
                        request: number,
                        topic_partition: tp,
                        current_leader_epoch: (version >= 4 && partition.current_leader_epoch >= 0)
                            .then_some(LeaderEpoch(partition.current_leader_epoch as u32)),
                        query,
                        to_log_end,
                    }));
                }
            }
        }
        waiting.topics.push((topic.name, answers));
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::ListOffsets(waiting),
    };
    conn.submit(pending, to_actor, finish).await
}

pub fn complete(pending: &mut Pending, response: &ModelResponse) -> Result<(), String> {
    let version = pending.version;
    let Work::ListOffsets(waiting) = &mut pending.work else {
        unreachable!("matched by the caller")
    };
    let Some(at) = waiting
        .sent
        .iter()
        .position(|(tp, _, _)| *tp == response.topic_partition)
    else {
        return Ok(());
    };
    let (_, topic, partition) = waiting.sent.swap_remove(at);
    let index = waiting.topics[topic].1[partition].0;
    let answer = match response.result {
        Err(code) => error(index, code.code()),
        Ok(listed) => {
            let mut answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(index)
                .with_timestamp(listed.timestamp.unwrap_or(-1))
                .with_offset(listed.offset.map_or(-1, |o| o.0 as i64));
            if version >= 4 {
                answer = answer.with_leader_epoch(listed.leader_epoch.0 as i32);
            }
            answer
        }
    };
    waiting.topics[topic].1[partition].1 = Some(answer);
    if waiting.sent.is_empty() {
        finish(pending)?;
    }
    Ok(())
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::ListOffsets(waiting) = &mut pending.work else {
        unreachable!("a ListOffsets")
    };
    let topics = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, partitions)| {
            ListOffsetsTopicResponse::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, answer)| answer.unwrap_or_else(|| error(index, 7)))
                        .collect(),
                )
        })
        .collect();
    let body = ListOffsetsResponse::default().with_topics(topics);
    pending.work = Work::Ready(encode(
        ApiKey::ListOffsets,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
