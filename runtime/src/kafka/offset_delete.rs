//! OffsetDelete (v0): a group's committed offsets of some partitions deleted, once their
//! tombstones are committed. A partition of no known topic is UNKNOWN_TOPIC_OR_PARTITION here;
//! the coordinator refuses the rest with GROUP_SUBSCRIBED_TO_TOPIC while the group has members,
//! and the whole request with GROUP_ID_NOT_FOUND for a group it does not hold. Times out with
//! REQUEST_TIMED_OUT after `offsets.commit.timeout.ms`, as OffsetCommit does.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: OffsetDeleteRequest = decode(ApiKey::OffsetDelete, version, &mut frame)?;
    let directory = conn.directory();
    let mut asked = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found = directory.topics.get(topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let index = p.partition_index;
            if found.and_then(|t| t.partition(index)).is_some() {
                asked.push((topic.name.0.to_string(), index as u32));
                partitions.push((index, None));
            } else {
                partitions.push((index, Some(UNKNOWN_TOPIC_OR_PARTITION)));
            }
        }
        topics.push((topic.name, partitions));
    }
    let group = request.group_id.0.to_string();
    let requests = vec![(group, GroupOp::OffsetDelete(asked))];
    groups::submit(
        conn,
        correlation_id,
        version,
        requests,
        true,
        Box::new(Delete { topics }),
    )
    .await
}

struct Delete {
    /// Each partition asked, with the error it was refused with here, if any.
    topics: super::Answers<TopicName, i16>,
}

impl Call for Delete {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let (group_code, results) = match answers.into_iter().next() {
            Some(GroupAnswer::OffsetDelete(results)) => (0, results),
            Some(GroupAnswer::Refused(code)) => (code.code(), Vec::new()),
            other => return Err(format!("an OffsetDelete answered with {other:?}")),
        };
        let code_of = |topic: &TopicName, index: i32| {
            results
                .iter()
                .find(|((t, p), _)| t.as_str() == topic.0.as_str() && *p as i32 == index)
                .map_or(group_code, |(_, result)| super::code(result.err()))
        };
        let topics = self
            .topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, refused)| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(refused.unwrap_or_else(|| code_of(&name, index)))
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect();
        let body = OffsetDeleteResponse::default()
            .with_error_code(group_code)
            .with_topics(topics);
        encode(ApiKey::OffsetDelete, version, correlation_id, &body)
    }
}
