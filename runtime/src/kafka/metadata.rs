//! Metadata: the brokers (their endpoints on the listener the request came in on) and topics as
//! the controller last told this broker, with topic ids (v10+) and leader epochs (v7+). A topic
//! asked for and unknown is created if `auto.create.topics.enable` (and the request allows it,
//! v4+) with `num.partitions` and `default.replication.factor`, and answered
//! LEADER_NOT_AVAILABLE meanwhile, as Kafka does; the client asks again.

use super::{decode, encode, uuid, Connection, Pending, Work};
use gregor_model::config::OFFSETS_TOPIC;
use gregor_model::controller::is_legal_topic_name;
use gregor_model::message::{MetadataResponse as ModelResponse, Msg, NewTopic};
use gregor_model::types::BrokerId;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const LEADER_NOT_AVAILABLE: i16 = 5;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

pub struct Waiting {
    /// The topics asked for; `None` for every topic.
    topics: Option<Vec<String>>,
    allow_auto_create: bool,
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: MetadataRequest = decode(ApiKey::Metadata, version, &mut frame)?;
    let topics: Option<Vec<String>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .filter_map(|t| t.name.map(|name| name.0.to_string()))
            .collect()
    });
    // v0 asks for every topic with an empty list; later versions with null.
    let topics = match topics {
        Some(topics) if topics.is_empty() && version == 0 => None,
        topics => topics,
    };
    let waiting = Waiting {
        topics: topics.clone(),
        allow_auto_create: version < 4 || request.allow_auto_topic_creation,
    };
    conn.answer(
        correlation_id,
        ApiKey::Metadata,
        version,
        Work::Metadata(waiting),
    );
    // The model answers every topic for an empty list.
    let asked = match topics {
        Some(topics) if topics.is_empty() => vec![String::new()],
        Some(topics) => topics,
        None => Vec::new(),
    };
    conn.to_actor(Msg::Metadata { topics: asked }).await;
    Ok(())
}

/// Encodes the answer; returns the topics to create.
pub fn complete(
    conn: &Connection,
    pending: &mut Pending,
    response: &ModelResponse,
) -> Result<Vec<NewTopic>, String> {
    let Work::Metadata(waiting) = &pending.work else {
        unreachable!("matched by the caller")
    };
    let version = pending.version;
    let settings = &conn.front_end.settings;
    let directory = conn.directory();
    let live: Vec<BrokerId> = response.brokers.iter().map(|b| b.id).collect();
    let brokers = response
        .brokers
        .iter()
        .filter_map(|broker| {
            let endpoint = conn.endpoint(broker)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id((broker.id.0 as i32).into())
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port)),
            )
        })
        .collect();
    let mut create = Vec::new();
    let mut topics = Vec::new();
    for (name, result) in &response.topics {
        if matches!(&waiting.topics, Some(asked) if asked.is_empty()) {
            break;
        }
        let topic_name = Some(TopicName(StrBytes::from_string(name.clone())));
        match result {
            Ok(metadata) => {
                let partitions = metadata
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut partition = MetadataResponsePartition::default()
                            .with_error_code(match p.leader {
                                Some(_) => 0,
                                None => LEADER_NOT_AVAILABLE,
                            })
                            .with_partition_index(p.partition as i32)
                            .with_leader_id(p.leader.map_or(-1, |l| l.0 as i32).into())
                            .with_replica_nodes(
                                p.replicas.iter().map(|r| (r.0 as i32).into()).collect(),
                            )
                            .with_isr_nodes(p.isr.iter().map(|r| (r.0 as i32).into()).collect());
                        if version >= 7 {
                            partition = partition.with_leader_epoch(p.leader_epoch.0 as i32);
                        }
                        if version >= 5 {
                            partition = partition.with_offline_replicas(
                                p.replicas
                                    .iter()
                                    .filter(|r| !live.contains(r))
                                    .map(|r| (r.0 as i32).into())
                                    .collect(),
                            );
                        }
                        partition
                    })
                    .collect();
                let mut topic = MetadataResponseTopic::default()
                    .with_name(topic_name)
                    .with_is_internal(name == OFFSETS_TOPIC)
                    .with_partitions(partitions);
                if version >= 10 {
                    if let Some(found) = directory.topics.get(name) {
                        topic = topic.with_topic_id(uuid(found.uuid));
                    }
                }
                topics.push(topic);
            }
            Err(error) => {
                let legal = is_legal_topic_name(name);
                let error_code = if !legal {
                    INVALID_TOPIC_EXCEPTION
                } else if waiting.allow_auto_create && settings.auto_create_topics {
                    create.push(NewTopic {
                        name: name.clone(),
                        partitions: settings.num_partitions,
                        replication_factor: settings.default_replication_factor,
                        min_insync_replicas: None,
                        unclean_leader_election: None,
                    });
                    LEADER_NOT_AVAILABLE
                } else {
                    error.code()
                };
                topics.push(
                    MetadataResponseTopic::default()
                        .with_name(topic_name)
                        .with_error_code(error_code),
                );
            }
        }
    }
    let mut body = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        body = body.with_controller_id((conn.front_end.node_id.0 as i32).into());
    }
    if version >= 2 {
        body = body.with_cluster_id(Some(StrBytes::from_static_str(super::CLUSTER_ID)));
    }
    pending.work = Work::Ready(encode(
        ApiKey::Metadata,
        version,
        pending.correlation_id,
        &body,
    )?);
    Ok(create)
}
