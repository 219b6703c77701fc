//! CreatePartitions (v0-3): forwarded to the controller (KIP-590) as the model's admin request;
//! each topic grows to its new count, the new partitions placed as a new topic's are. Manual
//! replica assignments and `validate_only` are refused with INVALID_REQUEST rather than be
//! silently ignored; a count below 1 is INVALID_PARTITIONS here, one that does not grow the
//! topic is the controller's INVALID_PARTITIONS.

use super::{admin_outcome, decode, encode, Connection, Outcome, Pending, Work};
use gregor_model::message::{AdminRequest, TopicResult};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const INVALID_PARTITIONS: i16 = 37;
const INVALID_REQUEST: i16 = 42;

pub struct Waiting {
    /// Per topic: its name and outcome (`None` while the controller has it).
    topics: Vec<(TopicName, Option<Outcome>)>,
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: CreatePartitionsRequest = decode(ApiKey::CreatePartitions, version, &mut frame)?;
    let mut waiting = Waiting { topics: Vec::new() };
    let mut grow = Vec::new();
    for topic in request.topics {
        let refused = if request.validate_only {
            Some((
                INVALID_REQUEST,
                "validate_only is not supported".to_string(),
            ))
        } else if topic.assignments.is_some() {
            Some((
                INVALID_REQUEST,
                "manual replica assignments are not supported".to_string(),
            ))
        } else if topic.count < 1 {
            Some((INVALID_PARTITIONS, format!("{} partitions", topic.count)))
        } else {
            grow.push((topic.name.0.to_string(), topic.count as u32));
            None
        };
        let outcome = refused.map(|(code, why)| (code, Some(why)));
        waiting.topics.push((topic.name, outcome));
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::CreatePartitions(waiting),
    };
    let request = (!grow.is_empty()).then_some(AdminRequest::CreatePartitions(grow));
    conn.submit_admin(pending, request, finish).await
}

/// The controller's answer.
pub fn complete(pending: &mut Pending, results: &[TopicResult]) -> Result<bool, String> {
    let Work::CreatePartitions(waiting) = &mut pending.work else {
        return Ok(false);
    };
    for (name, outcome) in &mut waiting.topics {
        if outcome.is_some() {
            continue;
        }
        *outcome = Some(admin_outcome(results, name.0.as_str()));
    }
    finish(pending)?;
    Ok(true)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::CreatePartitions(waiting) = &mut pending.work else {
        unreachable!("a CreatePartitions")
    };
    let results = std::mem::take(&mut waiting.topics)
        .into_iter()
        .map(|(name, outcome)| {
            let (code, message) = outcome.unwrap_or((0, None));
            CreatePartitionsTopicResult::default()
                .with_name(name)
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    let body = CreatePartitionsResponse::default().with_results(results);
    pending.work = Work::Ready(encode(
        ApiKey::CreatePartitions,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
