//! DescribeConfigs (v1-4): a topic's settings and this broker's, answered by the front end
//! from the broker's settings and its copy of the topics' configurations.
//!
//! A topic reports Kafka's topic settings: its own `min.insync.replicas` and
//! `unclean.leader.election.enable` (source TOPIC_CONFIG when they differ from this broker's
//! default for them), and the log settings, which Gregor takes from the broker for every topic
//! (`retention.ms` from `log.retention.ms`, ...: source STATIC_BROKER_CONFIG when the broker's
//! file sets them, DEFAULT_CONFIG otherwise); `cleanup.policy` is `delete`, the only policy.
//! A broker resource is named by its node id and must be this broker, as in Kafka; the empty
//! name (the cluster-wide dynamic defaults) has none. A topic's `min.insync.replicas` and
//! `unclean.leader.election.enable` can be altered (IncrementalAlterConfigs, AlterConfigs); every
//! other setting is read-only.

use super::{decode, encode, Connection, Work};
use crate::config::{ConfigKind, Described};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;

/// Resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Config sources.
const TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// The settings a topic holds for itself, which IncrementalAlterConfigs changes.
const ALTERABLE: [&str; 2] = ["min.insync.replicas", "unclean.leader.election.enable"];

/// A topic's settings by Kafka name, and the broker setting each takes its value from.
pub const TOPIC_SETTINGS: &[(&str, &str)] = &[
    ("cleanup.policy", ""),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.message.bytes", "message.max.bytes"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// One setting of the answer.
struct Entry {
    name: String,
    value: Option<String>,
    source: i8,
    kind: ConfigKind,
    /// Where the value comes from, most specific first, as `(name, value, source)`.
    synonyms: Vec<(String, Option<String>, i8)>,
}

pub fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: DescribeConfigsRequest = decode(ApiKey::DescribeConfigs, version, &mut frame)?;
    let directory = conn.directory();
    let broker = &conn.front_end.settings.configs;
    let node_id = conn.front_end.node_id.0;
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let described = match resource.resource_type {
            TOPIC => match directory.topics.get(name) {
                Some(topic) => Ok(topic_entries(
                    broker,
                    topic.config.min_insync_replicas,
                    topic.config.unclean_leader_election,
                )),
                None => Err((
                    UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic {name:?} does not exist"),
                )),
            },
            BROKER if name.is_empty() => Ok(Vec::new()),
            BROKER => match name.parse::<u32>() {
                Ok(id) if id == node_id => Ok(broker_entries(broker)),
                Ok(_) => Err((
                    INVALID_REQUEST,
                    format!("unexpected broker id {name}: this is broker {node_id}"),
                )),
                Err(_) => Err((
                    INVALID_REQUEST,
                    format!("a broker id must be an integer, not {name:?}"),
                )),
            },
            other => Err((
                INVALID_REQUEST,
                format!("resource type {other} is not supported (topics 2 and brokers 4 are)"),
            )),
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match described {
            Ok(entries) => {
                let wanted = |name: &str| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
                };
                result.configs = entries
                    .into_iter()
                    .filter(|entry| wanted(&entry.name))
                    .map(|entry| {
                        // A topic's own settings can be altered (IncrementalAlterConfigs).
                        let alterable = resource.resource_type == TOPIC
                            && ALTERABLE.contains(&entry.name.as_str());
                        encoded(entry, request.include_synonyms, alterable)
                    })
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        results.push(result);
    }
    let body = DescribeConfigsResponse::default().with_results(results);
    let answer = encode(ApiKey::DescribeConfigs, version, correlation_id, &body)?;
    conn.answer(
        correlation_id,
        ApiKey::DescribeConfigs,
        version,
        Work::Ready(answer),
    );
    Ok(())
}

fn broker_source(described: &Described) -> i8 {
    if described.set {
        STATIC_BROKER_CONFIG
    } else {
        DEFAULT_CONFIG
    }
}

fn broker_entries(broker: &[Described]) -> Vec<Entry> {
    broker
        .iter()
        .map(|described| Entry {
            name: described.name.clone(),
            value: described.value.clone(),
            source: broker_source(described),
            kind: described.kind,
            synonyms: vec![(
                described.name.clone(),
                described.value.clone(),
                broker_source(described),
            )],
        })
        .collect()
}

fn topic_entries(broker: &[Described], min_isr: u32, unclean: bool) -> Vec<Entry> {
    TOPIC_SETTINGS
        .iter()
        .filter_map(|&(name, broker_name)| {
            if name == "cleanup.policy" {
                // Gregor deletes old segments; it does not compact.
                let delete = Some("delete".to_string());
                return Some(Entry {
                    name: name.to_string(),
                    value: delete.clone(),
                    source: DEFAULT_CONFIG,
                    kind: ConfigKind::List,
                    synonyms: vec![(name.to_string(), delete, DEFAULT_CONFIG)],
                });
            }
            let from = broker.iter().find(|d| d.name == broker_name)?;
            let own = match name {
                "min.insync.replicas" => Some(min_isr.to_string()),
                "unclean.leader.election.enable" => Some(unclean.to_string()),
                _ => None,
            };
            let mut synonyms = Vec::new();
            let (value, source) = match own {
                Some(own) if Some(&own) != from.value.as_ref() => {
                    synonyms.push((name.to_string(), Some(own.clone()), TOPIC_CONFIG));
                    (Some(own), TOPIC_CONFIG)
                }
                // Kafka's topic default for flush.ms, when the broker sets no interval.
                _ if name == "flush.ms" && from.value.is_none() => {
                    (Some(i64::MAX.to_string()), broker_source(from))
                }
                _ => (from.value.clone(), broker_source(from)),
            };
            synonyms.push((from.name.clone(), from.value.clone(), broker_source(from)));
            Some(Entry {
                name: name.to_string(),
                value,
                source,
                kind: from.kind,
                synonyms,
            })
        })
        .collect()
}

fn encoded(entry: Entry, include_synonyms: bool, alterable: bool) -> DescribeConfigsResourceResult {
    let kind = match entry.kind {
        ConfigKind::Boolean => 1,
        ConfigKind::String => 2,
        ConfigKind::Int => 3,
        ConfigKind::Short => 4,
        ConfigKind::Long => 5,
        ConfigKind::List => 7,
    };
    let synonyms = match include_synonyms {
        true => entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(value.map(StrBytes::from_string))
                    .with_source(source)
            })
            .collect(),
        false => Vec::new(),
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(entry.value.map(StrBytes::from_string))
        .with_read_only(!alterable)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_config_type(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, value: Option<&str>, set: bool, kind: ConfigKind) -> Described {
        Described {
            name: name.to_string(),
            value: value.map(str::to_string),
            set,
            kind,
        }
    }

    fn broker() -> Vec<Described> {
        vec![
            setting("min.insync.replicas", Some("1"), false, ConfigKind::Int),
            setting(
                "unclean.leader.election.enable",
                Some("false"),
                false,
                ConfigKind::Boolean,
            ),
            setting("log.retention.ms", Some("3600000"), true, ConfigKind::Long),
            setting("log.flush.interval.ms", None, false, ConfigKind::Long),
        ]
    }

    fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn a_topic_reports_its_own_settings_and_the_brokers_log_settings_with_their_sources() {
        let entries = topic_entries(&broker(), 2, false);
        let min_isr = find(&entries, "min.insync.replicas");
        assert_eq!(
            (min_isr.value.as_deref(), min_isr.source),
            (Some("2"), TOPIC_CONFIG)
        );
        assert_eq!(min_isr.synonyms.len(), 2, "the topic's, then the broker's");
        let unclean = find(&entries, "unclean.leader.election.enable");
        assert_eq!(
            (unclean.value.as_deref(), unclean.source),
            (Some("false"), DEFAULT_CONFIG)
        );
        let retention = find(&entries, "retention.ms");
        assert_eq!(
            (retention.value.as_deref(), retention.source),
            (Some("3600000"), STATIC_BROKER_CONFIG)
        );
        let flush = find(&entries, "flush.ms");
        assert_eq!(flush.value, Some(i64::MAX.to_string()));
        let cleanup = find(&entries, "cleanup.policy");
        assert_eq!(cleanup.value.as_deref(), Some("delete"));
        // Settings the broker does not describe are left out, not invented.
        assert!(!entries.iter().any(|e| e.name == "segment.bytes"));
    }

    #[test]
    fn a_broker_reports_each_setting_as_set_in_its_file_or_kafkas_default() {
        let entries = broker_entries(&broker());
        assert_eq!(
            find(&entries, "log.retention.ms").source,
            STATIC_BROKER_CONFIG
        );
        assert_eq!(find(&entries, "min.insync.replicas").source, DEFAULT_CONFIG);
        let encoded = encoded(
            broker_entries(&broker()).remove(0),
            /* include_synonyms */ false,
            /* alterable */ false,
        );
        assert!(encoded.synonyms.is_empty());
        assert!(encoded.read_only);
        assert_eq!(encoded.config_type, 3);
    }
}
