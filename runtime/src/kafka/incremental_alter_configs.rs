//! IncrementalAlterConfigs (v0-1): a topic's `min.insync.replicas` and
//! `unclean.leader.election.enable` set (SET) or set back to the cluster's default (DELETE),
//! forwarded to the controller (KIP-590), which saves them and tells every broker; DescribeConfigs
//! then reports them as the topic's own. The other topic settings Gregor takes from the broker
//! for every topic (`retention.ms` from `log.retention.ms`, ...) and cannot hold per topic: a
//! change of one is INVALID_CONFIG naming it, as is an unknown setting, a bad value, or APPEND /
//! SUBTRACT (for list settings, which Gregor's topics have none of). A broker resource is
//! INVALID_REQUEST: a broker's settings are its configuration file's (no dynamic broker
//! settings), and so is `validate_only`, rather than be silently ignored.
//!
//! AlterConfigs (`alter_configs.rs`) shares the waiting and the answer.

use super::describe_configs::TOPIC_SETTINGS;
use super::{admin_outcome, decode, encode, Connection, Outcome, Pending, Work};
use gregor_model::message::{AdminRequest, TopicConfigChange, TopicResult};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    alter_configs_response, AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;

/// Resource types.
pub const TOPIC: i8 = 2;

/// Operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// An AlterConfigs or IncrementalAlterConfigs waiting for the controller.
pub struct Waiting {
    pub api: ApiKey,
    /// Per resource: its type, name and outcome (`None` while the controller has it).
    pub resources: Vec<(i8, StrBytes, Option<Outcome>)>,
}

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: IncrementalAlterConfigsRequest =
        decode(ApiKey::IncrementalAlterConfigs, version, &mut frame)?;
    let resources = request
        .resources
        .into_iter()
        .map(|resource| {
            let changes = resource.configs.iter().map(|config| {
                let value = config.value.as_ref().map(|v| v.as_str());
                match config.config_operation {
                    SET => Ok((config.name.as_str(), Some(value.unwrap_or_default()))),
                    DELETE => Ok((config.name.as_str(), None)),
                    op => Err(format!(
                        "{}: operation {op} (APPEND/SUBTRACT are for list settings; Gregor's topics have none)",
                        config.name.as_str()
                    )),
                }
            });
            let change = match resource.resource_type {
                TOPIC => changes.collect::<Result<Vec<_>, _>>().and_then(|c| topic_change(&c)),
                _ => Err(String::new()),
            };
            (resource.resource_type, resource.resource_name, change)
        })
        .collect();
    submit(
        conn,
        ApiKey::IncrementalAlterConfigs,
        request.validate_only,
        resources,
        version,
        correlation_id,
    )
    .await
}

/// A topic's change from settings and their new values (`None`: back to the default).
pub fn topic_change(settings: &[(&str, Option<&str>)]) -> Result<TopicConfigChange, String> {
    let mut change = TopicConfigChange::default();
    for (name, value) in settings {
        match *name {
            "min.insync.replicas" => {
                let value = value
                    .map(|v| match v.parse::<u32>() {
                        Ok(n) if n >= 1 => Ok(n),
                        _ => Err(format!("min.insync.replicas={v}: an integer of at least 1")),
                    })
                    .transpose()?;
                change.min_insync_replicas = Some(value);
            }
            "unclean.leader.election.enable" => {
                let value = value
                    .map(|v| match v {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => Err(format!("unclean.leader.election.enable={v}: true or false")),
                    })
                    .transpose()?;
                change.unclean_leader_election = Some(value);
            }
            other => {
                return Err(match TOPIC_SETTINGS.iter().find(|(topic, _)| *topic == other) {
                    Some((_, "")) | None => format!("{other}: not a topic setting Gregor can change"),
                    Some((_, broker)) => format!(
                        "{other}: Gregor takes it from the broker's {broker} for every topic; it cannot be set per topic"
                    ),
                })
            }
        }
    }
    Ok(change)
}

/// Refuses what cannot be done here and forwards the topics' changes to the controller.
pub async fn submit(
    conn: &mut Connection,
    api: ApiKey,
    validate_only: bool,
    resources: Vec<(i8, StrBytes, Result<TopicConfigChange, String>)>,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let mut waiting = Waiting {
        api,
        resources: Vec::new(),
    };
    let mut topics = Vec::new();
    for (resource_type, name, change) in resources {
        let outcome = if validate_only {
            Some((
                INVALID_REQUEST,
                Some("validate_only is not supported".to_string()),
            ))
        } else if resource_type != TOPIC {
            let why =
                "only topics' settings can be altered; a broker's are its configuration file's";
            Some((INVALID_REQUEST, Some(why.to_string())))
        } else {
            match change {
                Err(why) => Some((INVALID_CONFIG, Some(why))),
                Ok(change) => {
                    topics.push((name.to_string(), change));
                    None
                }
            }
        };
        waiting.resources.push((resource_type, name, outcome));
    }
    let pending = Pending {
        correlation_id,
        version,
        work: Work::AlterConfigs(waiting),
    };
    let request = (!topics.is_empty()).then_some(AdminRequest::AlterTopicConfigs(topics));
    conn.submit_admin(pending, request, finish).await
}

/// The controller's answer.
pub fn complete(pending: &mut Pending, results: &[TopicResult]) -> Result<bool, String> {
    let Work::AlterConfigs(waiting) = &mut pending.work else {
        return Ok(false);
    };
    for (_, name, outcome) in &mut waiting.resources {
        if outcome.is_none() {
            *outcome = Some(admin_outcome(results, name.as_str()));
        }
    }
    finish(pending)?;
    Ok(true)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::AlterConfigs(waiting) = &mut pending.work else {
        unreachable!("an AlterConfigs")
    };
    let api = waiting.api;
    let outcomes: Vec<_> = std::mem::take(&mut waiting.resources)
        .into_iter()
        .map(|(resource_type, name, outcome)| {
            let (code, message) = outcome.unwrap_or((0, None));
            (
                resource_type,
                name,
                code,
                message.map(StrBytes::from_string),
            )
        })
        .collect();
    let bytes = match api {
        ApiKey::IncrementalAlterConfigs => {
            let responses = outcomes
                .into_iter()
                .map(|(resource_type, name, code, message)| {
                    AlterConfigsResourceResponse::default()
                        .with_resource_type(resource_type)
                        .with_resource_name(name)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            let body = IncrementalAlterConfigsResponse::default().with_responses(responses);
            encode(api, pending.version, pending.correlation_id, &body)?
        }
        _ => {
            let responses = outcomes
                .into_iter()
                .map(|(resource_type, name, code, message)| {
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(resource_type)
                        .with_resource_name(name)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            let body = AlterConfigsResponse::default().with_responses(responses);
            encode(api, pending.version, pending.correlation_id, &body)?
        }
    };
    pending.work = Work::Ready(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_per_topic_settings_change_and_bad_values_are_named() {
        let change = topic_change(&[
            ("min.insync.replicas", Some("3")),
            ("unclean.leader.election.enable", None),
        ])
        .unwrap();
        assert_eq!(change.min_insync_replicas, Some(Some(3)));
        assert_eq!(change.unclean_leader_election, Some(None));
        let zero = topic_change(&[("min.insync.replicas", Some("0"))]).unwrap_err();
        assert!(zero.contains("at least 1"), "{zero}");
        let yes = topic_change(&[("unclean.leader.election.enable", Some("yes"))]).unwrap_err();
        assert!(yes.contains("true or false"), "{yes}");
        let retention = topic_change(&[("retention.ms", Some("1000"))]).unwrap_err();
        assert!(retention.contains("log.retention.ms"), "{retention}");
        let unknown = topic_change(&[("no.such.setting", Some("1"))]).unwrap_err();
        assert!(unknown.contains("no.such.setting"), "{unknown}");
    }
}
