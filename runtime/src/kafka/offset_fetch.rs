//! OffsetFetch (v1-8): a group's committed offsets — of the partitions asked, or (a null topic
//! list, v2+) of every partition the group has committed; -1 where none is. v8 asks for several
//! groups at once, each answered on its own. Only committed records count: a commit whose
//! records are not yet replicated is not returned.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{CommittedOffset, GroupPartition};
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: OffsetFetchRequest = decode(ApiKey::OffsetFetch, version, &mut frame)?;
    let asked = |topics: Vec<(String, Vec<i32>)>| -> Vec<GroupPartition> {
        topics
            .into_iter()
            .flat_map(|(name, partitions)| {
                partitions
                    .into_iter()
                    .filter_map(move |p| Some((name.clone(), u32::try_from(p).ok()?)))
            })
            .collect()
    };
    let mut requests = Vec::new();
    let mut groups_asked = Vec::new();
    if version < 8 {
        let topics = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect::<Vec<_>>()
        });
        requests.push((
            request.group_id.0.to_string(),
            GroupOp::OffsetFetch(topics.clone().map(asked)),
        ));
        groups_asked.push((request.group_id, topics));
    } else {
        for group in request.groups {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect::<Vec<_>>()
            });
            requests.push((
                group.group_id.0.to_string(),
                GroupOp::OffsetFetch(topics.clone().map(asked)),
            ));
            groups_asked.push((group.group_id, topics));
        }
    }
    let call = Box::new(Fetch {
        groups: groups_asked,
    });
    groups::submit(conn, correlation_id, version, requests, false, call).await
}

/// A topic's partitions as asked (a negative index is answered UNKNOWN_TOPIC_OR_PARTITION).
type Asked = Vec<(String, Vec<i32>)>;

struct Fetch {
    /// Per group, the partitions asked (`None`: every committed one).
    groups: Vec<(GroupId, Option<Asked>)>,
}

/// One partition's answer: offset, leader epoch, metadata, error code.
type Found = (i64, i32, String, i16);

/// Per topic, each partition with what was found.
type PerTopic = Vec<(String, Vec<(i32, Found)>)>;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// A group's answer per topic, in the order asked (or the coordinator's order for every
/// committed one), each partition with what was found; the group's error code.
fn per_topic(asked: Option<Asked>, answer: GroupAnswer) -> Result<(PerTopic, i16), String> {
    let none = |code: i16| (-1, -1, String::new(), code);
    let found = |c: Option<CommittedOffset>| match c {
        Some(c) => (
            c.offset as i64,
            c.leader_epoch.map_or(-1, |e| e as i32),
            c.metadata,
            0,
        ),
        None => none(0),
    };
    let committed = match answer {
        GroupAnswer::OffsetFetch(committed) => committed,
        GroupAnswer::Refused(code) => {
            let topics = asked
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    (
                        name,
                        partitions
                            .into_iter()
                            .map(|p| (p, none(code.code())))
                            .collect(),
                    )
                })
                .collect();
            return Ok((topics, code.code()));
        }
        other => return Err(format!("an OffsetFetch answered with {other:?}")),
    };
    let mut committed = committed.into_iter();
    let topics = match asked {
        Some(asked) => asked
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|p| {
                        if p < 0 {
                            (p, none(UNKNOWN_TOPIC_OR_PARTITION))
                        } else {
                            // The coordinator answers the valid partitions in the order asked.
                            (p, found(committed.next().and_then(|(_, c)| c)))
                        }
                    })
                    .collect();
                (name, partitions)
            })
            .collect(),
        None => {
            let mut topics: PerTopic = Vec::new();
            for ((topic, partition), c) in committed {
                let entry = (partition as i32, found(c));
                match topics.last_mut() {
                    Some((name, partitions)) if *name == topic => partitions.push(entry),
                    _ => topics.push((topic, vec![entry])),
                }
            }
            topics
        }
    };
    Ok((topics, 0))
}

impl Call for Fetch {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let text = |s: String| StrBytes::from_string(s);
        let mut body = OffsetFetchResponse::default();
        for ((group, asked), answer) in self.groups.into_iter().zip(answers) {
            let (topics, code) = per_topic(asked, answer)?;
            if version < 8 {
                body.error_code = code;
                body.topics = topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(text(name)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, (offset, epoch, metadata, error))| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(text(metadata)))
                                            .with_error_code(error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
            } else {
                let topics = topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(text(name)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, (offset, epoch, metadata, error))| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(text(metadata)))
                                            .with_error_code(error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                body.groups.push(
                    OffsetFetchResponseGroup::default()
                        .with_group_id(group)
                        .with_topics(topics)
                        .with_error_code(code),
                );
            }
        }
        encode(ApiKey::OffsetFetch, version, correlation_id, &body)
    }
}
