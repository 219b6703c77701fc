//! DeleteTopics (v1-6, by name): forwarded to the controller (KIP-590) as the model's admin
//! request. A topic named only by id (v6+) is looked up in the broker's metadata.

use super::{admin_outcome, decode, encode, uuid, Connection, Outcome, Pending, Work};
use gregor_model::message::{AdminRequest, TopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_ID: i16 = 100;

pub struct Waiting {
    /// Per topic: name (`None` for an unknown id), the id asked by, and the outcome.
    topics: Vec<(Option<String>, Option<::uuid::Uuid>, Option<Outcome>)>,
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: DeleteTopicsRequest = decode(ApiKey::DeleteTopics, version, &mut frame)?;
    let directory = conn.directory();
    let mut waiting = Waiting { topics: Vec::new() };
    let mut names = Vec::new();
    let asked: Vec<(Option<String>, Option<::uuid::Uuid>)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) => (Some(name.0.to_string()), None),
                None => {
                    let name = directory
                        .topics
                        .iter()
                        .find(|(_, found)| uuid(found.uuid) == t.topic_id)
                        .map(|(name, _)| name.clone());
                    (name, Some(t.topic_id))
                }
            })
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|name| (Some(name.0.to_string()), None))
            .collect()
    };
    for (name, id) in asked {
        match &name {
            Some(name) => {
                names.push(name.clone());
                waiting.topics.push((Some(name.clone()), id, None));
            }
            None => waiting.topics.push((
                None,
                id,
                Some((UNKNOWN_TOPIC_ID, Some("no topic has this id".to_string()))),
            )),
        }
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::DeleteTopics(waiting),
    };
    let request = (!names.is_empty()).then_some(AdminRequest::DeleteTopics(names));
    conn.submit_admin(pending, request, finish).await
}

pub fn complete(pending: &mut Pending, results: &[TopicResult]) -> Result<bool, String> {
    let Work::DeleteTopics(waiting) = &mut pending.work else {
        return Ok(false);
    };
    for (name, _, outcome) in &mut waiting.topics {
        if outcome.is_some() {
            continue;
        }
        *outcome = Some(admin_outcome(results, name.as_deref().unwrap_or("")));
    }
    finish(pending)?;
    Ok(true)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let version = pending.version;
    let Work::DeleteTopics(waiting) = &mut pending.work else {
        unreachable!("a DeleteTopics")
    };
    let responses = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, id, outcome)| {
            let (code, message) = outcome.unwrap_or((0, None));
            let mut result = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                .with_error_code(code);
            if version >= 5 {
                result = result.with_error_message(message.map(StrBytes::from_string));
            }
            if version >= 6 {
                if let Some(id) = id {
                    result = result.with_topic_id(id);
                }
            }
            result
        })
        .collect();
    let body = DeleteTopicsResponse::default().with_responses(responses);
    pending.work = Work::Ready(encode(
        ApiKey::DeleteTopics,
        version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
