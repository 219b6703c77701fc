//! OffsetForLeaderEpoch (v2-4, Kafka 4's range), as consumers use it (KIP-320): after a leader
//! change a consumer asks where the epoch of the last record it read ends in the new leader's
//! log, and if that is below its position, the log was truncated under it. Each partition goes
//! to the actor as the model's OffsetForLeaderEpoch — the one followers send, fenced by the
//! current leader epoch the same way, its answer capped at the HW for a consumer — and the
//! answers are joined.

use super::{decode, encode, Answers, Connection, Pending, Work};
use gregor_model::message::{
    Msg, OffsetForLeaderEpochRequest as ModelRequest, OffsetForLeaderEpochResponse as ModelResponse,
};
use gregor_model::types::{LeaderEpoch, TopicPartition};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const REQUEST_TIMED_OUT: i16 = 7;

pub struct Waiting {
    topics: Answers<TopicName, EpochEndOffset>,
    /// What went to the actor: the partition and epoch asked, where its answer goes.
    sent: Vec<(TopicPartition, LeaderEpoch, usize, usize)>,
}

/// An answer without an epoch: Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
fn error(index: i32, code: i16) -> EpochEndOffset {
    EpochEndOffset::default()
        .with_partition(index)
        .with_error_code(code)
        .with_leader_epoch(-1)
        .with_end_offset(-1)
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: OffsetForLeaderEpochRequest =
        decode(ApiKey::OffsetForLeaderEpoch, version, &mut frame)?;
    let directory = conn.directory();
    let mut waiting = Waiting {
        topics: Vec::new(),
        sent: Vec::new(),
    };
    let mut to_actor = Vec::new();
    for topic in request.topics {
        let found = directory.topics.get(topic.topic.0.as_str());
        let mut answers = Vec::new();
        for partition in topic.partitions {
            let index = partition.partition;
            let tp = found.and_then(|t| t.partition(index));
            let Some(tp) = tp.filter(|_| partition.leader_epoch >= 0) else {
                answers.push((index, Some(error(index, UNKNOWN_TOPIC_OR_PARTITION))));
                continue;
            };
            let asked = LeaderEpoch(partition.leader_epoch as u32);
            waiting
                .sent
                .push((tp, asked, waiting.topics.len(), answers.len()));
            answers.push((index, None));
            to_actor.push(Msg::OffsetForLeaderEpoch(ModelRequest {
                replica: None,
                topic_partition: tp,
                current_leader_epoch: (partition.current_leader_epoch >= 0)
                    .then_some(LeaderEpoch(partition.current_leader_epoch as u32)),
                leader_epoch: asked,
            }));
        }
        waiting.topics.push((topic.topic, answers));
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::OffsetForLeaderEpoch(waiting),
    };
    conn.submit(pending, to_actor, finish).await
}

/// Offers the actor's answer for one partition to a waiting request; whether it took it.
pub fn complete(pending: &mut Pending, response: &ModelResponse) -> Result<bool, String> {
    let Work::OffsetForLeaderEpoch(waiting) = &mut pending.work else {
        unreachable!("matched by the caller")
    };
    let Some(at) = waiting.sent.iter().position(|(tp, asked, _, _)| {
        *tp == response.topic_partition && *asked == response.requested_epoch
    }) else {
        return Ok(false);
    };
    let (_, _, topic, partition) = waiting.sent.remove(at);
    let index = waiting.topics[topic].1[partition].0;
    let answer = match response.result {
        Err(code) => error(index, code.code()),
        Ok(found) => EpochEndOffset::default()
            .with_partition(index)
            .with_leader_epoch(found.leader_epoch.map_or(-1, |e| e.0 as i32))
            .with_end_offset(match found.leader_epoch {
                Some(_) => found.end_offset.0 as i64,
                None => -1,
            }),
    };
    waiting.topics[topic].1[partition].1 = Some(answer);
    if waiting.sent.is_empty() {
        finish(pending)?;
    }
    Ok(true)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::OffsetForLeaderEpoch(waiting) = &mut pending.work else {
        unreachable!("an OffsetForLeaderEpoch")
    };
    let topics = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, partitions)| {
            OffsetForLeaderTopicResult::default()
                .with_topic(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, answer)| {
                            answer.unwrap_or_else(|| error(index, REQUEST_TIMED_OUT))
                        })
                        .collect(),
                )
        })
        .collect();
    let body = OffsetForLeaderEpochResponse::default().with_topics(topics);
    pending.work = Work::Ready(encode(
        ApiKey::OffsetForLeaderEpoch,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
