//! AlterConfigs (v0-2), the API IncrementalAlterConfigs replaced: each topic named gets exactly
//! the settings listed — a per-topic setting left out goes back to the cluster's default — with
//! IncrementalAlterConfigs' rules for what can be set (`incremental_alter_configs.rs`).

use super::incremental_alter_configs::{submit, topic_change, TOPIC};
use super::{decode, Connection};
use gregor_model::message::TopicConfigChange;
use kafka_protocol::messages::{AlterConfigsRequest, ApiKey};

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: AlterConfigsRequest = decode(ApiKey::AlterConfigs, version, &mut frame)?;
    let resources = request
        .resources
        .into_iter()
        .map(|resource| {
            let settings: Vec<(&str, Option<&str>)> = resource
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str(),
                        Some(c.value.as_deref().unwrap_or_default()),
                    )
                })
                .collect();
            let change = match resource.resource_type {
                TOPIC => topic_change(&settings).map(replace),
                _ => Err(String::new()),
            };
            (resource.resource_type, resource.resource_name, change)
        })
        .collect();
    submit(
        conn,
        ApiKey::AlterConfigs,
        request.validate_only,
        resources,
        version,
        correlation_id,
    )
    .await
}

/// What AlterConfigs means: every per-topic setting not given goes back to the default.
fn replace(mut change: TopicConfigChange) -> TopicConfigChange {
    change.min_insync_replicas.get_or_insert(None);
    change.unclean_leader_election.get_or_insert(None);
    change
}
