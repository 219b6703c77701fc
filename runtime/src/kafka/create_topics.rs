//! CreateTopics (v2-7): forwarded to the controller (KIP-590) as the model's admin request;
//! -1 partitions or replication factor take `num.partitions` / `default.replication.factor`.
//! The topic settings the protocol reads can be given (`min.insync.replicas`,
//! `unclean.leader.election.enable`); any other is refused with INVALID_CONFIG naming it, as
//! are manual replica assignments and `validate_only` (INVALID_REQUEST), rather than be
//! silently ignored.

use super::{admin_outcome, decode, encode, Connection, Outcome, Pending, Work};
use gregor_model::message::{AdminRequest, NewTopic, TopicResult};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

pub struct Waiting {
    /// Per topic: name, and the outcome (`None` while the controller has it): error code,
    /// message, partitions, replication factor.
    topics: Vec<(String, Option<Outcome>, i32, i16)>,
}

/// The topic's settings from its configs, or why they are refused.
fn settings(
    configs: &[kafka_protocol::messages::create_topics_request::CreatableTopicConfig],
) -> Result<(Option<u32>, Option<bool>), String> {
    let mut min_isr = None;
    let mut unclean = None;
    for config in configs {
        let value = config.value.as_ref().map(|v| v.as_str()).unwrap_or("");
        match config.name.as_str() {
            "min.insync.replicas" => match value.parse::<u32>() {
                Ok(n) if n >= 1 => min_isr = Some(n),
                _ => return Err(format!("min.insync.replicas={value}: not a number >= 1")),
            },
            "unclean.leader.election.enable" => match value {
                "true" => unclean = Some(true),
                "false" => unclean = Some(false),
                _ => {
                    return Err(format!(
                        "unclean.leader.election.enable={value}: not true or false"
                    ))
                }
            },
            other => {
                return Err(format!(
                    "{other}: Gregor does not support this topic setting yet (only \
                     min.insync.replicas and unclean.leader.election.enable)"
                ))
            }
        }
    }
    Ok((min_isr, unclean))
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: CreateTopicsRequest = decode(ApiKey::CreateTopics, version, &mut frame)?;
    let defaults = &conn.front_end.settings;
    let mut waiting = Waiting { topics: Vec::new() };
    let mut create = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let partitions = match topic.num_partitions {
            -1 => defaults.num_partitions as i32,
            n => n,
        };
        let replication_factor = match topic.replication_factor {
            -1 => defaults.default_replication_factor as i16,
            n => n,
        };
        let refused = if request.validate_only {
            Some((
                INVALID_REQUEST,
                "validate_only is not supported".to_string(),
            ))
        } else if !topic.assignments.is_empty() {
            Some((
                INVALID_REQUEST,
                "manual replica assignments are not supported".to_string(),
            ))
        } else if partitions < 1 {
            Some((INVALID_PARTITIONS, format!("{partitions} partitions")))
        } else if replication_factor < 1 {
            Some((
                INVALID_REPLICATION_FACTOR,
                format!("replication factor {replication_factor}"),
            ))
        } else {
            match settings(&topic.configs) {
                Err(why) => Some((INVALID_CONFIG, why)),
                Ok((min_insync_replicas, unclean_leader_election)) => {
                    create.push(NewTopic {
                        name: name.clone(),
                        partitions: partitions as u32,
                        replication_factor: replication_factor as u32,
                        min_insync_replicas,
                        unclean_leader_election,
                    });
                    None
                }
            }
        };
        let outcome = refused.map(|(code, why)| (code, Some(why)));
        waiting
            .topics
            .push((name, outcome, partitions, replication_factor));
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::CreateTopics(waiting),
    };
    let request = (!create.is_empty()).then_some(AdminRequest::CreateTopics(create));
    conn.submit_admin(pending, request, finish).await
}

/// The controller's answer.
pub fn complete(pending: &mut Pending, results: &[TopicResult]) -> Result<bool, String> {
    let Work::CreateTopics(waiting) = &mut pending.work else {
        return Ok(false);
    };
    for (name, outcome, _, _) in &mut waiting.topics {
        if outcome.is_some() {
            continue;
        }
        *outcome = Some(admin_outcome(results, name));
    }
    finish(pending)?;
    Ok(true)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let version = pending.version;
    let Work::CreateTopics(waiting) = &mut pending.work else {
        unreachable!("a CreateTopics")
    };
    let topics = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, outcome, partitions, replication_factor)| {
            let (code, message) = outcome.unwrap_or((0, None));
            let mut result = CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string));
            if version >= 5 && code == 0 {
                result = result
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication_factor);
            }
            result
        })
        .collect();
    let body = CreateTopicsResponse::default().with_topics(topics);
    pending.work = Work::Ready(encode(
        ApiKey::CreateTopics,
        version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
