//! OffsetCommit (v2-8): a group's positions, committed once the coordinator's records of them
//! are (the HW passed them) — or REQUEST_TIMED_OUT after `offsets.commit.timeout.ms`. Refused
//! here, per partition, before the coordinator sees them: a partition of no known topic
//! (UNKNOWN_TOPIC_OR_PARTITION, as Kafka), a negative offset (INVALID_REQUEST; Kafka would store
//! it as "no offset"), metadata longer than `offset.metadata.max.bytes` (4096,
//! OFFSET_METADATA_TOO_LARGE). The rest go as one commit, which the group takes or refuses
//! whole (a member of another generation: ILLEGAL_GENERATION, ...).

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{CommittedOffset, MemberId};
use gregor_model::message::{GroupAnswer, GroupOp, OffsetCommit};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse, TopicName};

/// `offset.metadata.max.bytes`.
const METADATA_MAX_BYTES: usize = 4096;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const INVALID_REQUEST: i16 = 42;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: OffsetCommitRequest = decode(ApiKey::OffsetCommit, version, &mut frame)?;
    let directory = conn.directory();
    let mut offsets = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found = directory.topics.get(topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let metadata = p
                .committed_metadata
                .map(|m| m.to_string())
                .unwrap_or_default();
            let refused = if found.and_then(|t| t.partition(p.partition_index)).is_none() {
                Some(UNKNOWN_TOPIC_OR_PARTITION)
            } else if p.committed_offset < 0 {
                Some(INVALID_REQUEST)
            } else if metadata.len() > METADATA_MAX_BYTES {
                Some(OFFSET_METADATA_TOO_LARGE)
            } else {
                None
            };
            if refused.is_none() {
                let committed = CommittedOffset {
                    offset: p.committed_offset as u64,
                    leader_epoch: u32::try_from(p.committed_leader_epoch).ok(),
                    metadata,
                };
                let partition = (topic.name.0.to_string(), p.partition_index as u32);
                offsets.push((partition, committed));
            }
            partitions.push((p.partition_index, refused));
        }
        topics.push((topic.name, partitions));
    }
    let member_id =
        (!request.member_id.is_empty()).then(|| MemberId(request.member_id.to_string()));
    let commit = OffsetCommit {
        member_id,
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        generation: request.generation_id_or_member_epoch,
        offsets,
    };
    let group = request.group_id.0.to_string();
    let requests = vec![(group, GroupOp::OffsetCommit(commit))];
    groups::submit(
        conn,
        correlation_id,
        version,
        requests,
        true,
        Box::new(Commit { topics }),
    )
    .await
}

struct Commit {
    /// Each partition asked, with the error it was refused with here, if any.
    topics: super::Answers<TopicName, i16>,
}

impl Call for Commit {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let code = match answers.into_iter().next() {
            Some(GroupAnswer::OffsetCommit(result)) => super::code(result.err()),
            Some(GroupAnswer::Refused(code)) => code.code(),
            other => return Err(format!("an OffsetCommit answered with {other:?}")),
        };
        let topics = self
            .topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, refused)| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(refused.unwrap_or(code))
                            })
                            .collect(),
                    )
            })
            .collect();
        let body = OffsetCommitResponse::default().with_topics(topics);
        encode(ApiKey::OffsetCommit, version, correlation_id, &body)
    }
}
