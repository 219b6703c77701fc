//! ListGroups (v0-5): the groups this broker coordinates (an admin asks every broker), filtered
//! by state (v4+) and type (v5+; every group is a `classic` one).

use super::{decode, encode, Connection, Pending, Work};
use bytes::Bytes;
use gregor_model::group::Phase;
use gregor_model::message::{ListedGroup, Msg};
use kafka_protocol::messages::list_groups_response::ListedGroup as KafkaListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

pub struct Waiting {
    pub request: u32,
    states: Vec<String>,
    types: Vec<String>,
}

/// Kafka's name of a group's state.
pub fn state_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Empty => "Empty",
        Phase::PreparingRebalance => "PreparingRebalance",
        Phase::CompletingRebalance => "CompletingRebalance",
        Phase::Stable => "Stable",
    }
}

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: ListGroupsRequest = decode(ApiKey::ListGroups, version, &mut frame)?;
    let number = conn.request_number();
    let waiting = Waiting {
        request: number,
        states: request
            .states_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        types: request
            .types_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
    };
    conn.answer(
        correlation_id,
        ApiKey::ListGroups,
        version,
        Work::ListGroups(waiting),
    );
    conn.to_actor(Msg::ListGroups { request: number }).await;
    Ok(())
}

pub fn complete(pending: &mut Pending, groups: &[ListedGroup]) -> Result<(), String> {
    let Work::ListGroups(waiting) = &pending.work else {
        unreachable!("a ListGroups")
    };
    let wanted = |g: &&ListedGroup| {
        (waiting.states.is_empty() || waiting.states.contains(&state_name(g.phase).to_lowercase()))
            && (waiting.types.is_empty() || waiting.types.iter().any(|t| t == "classic"))
    };
    let groups = groups
        .iter()
        .filter(wanted)
        .map(|g| {
            KafkaListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group.clone())))
                .with_protocol_type(StrBytes::from_string(
                    g.protocol_type.clone().unwrap_or_default(),
                ))
                .with_group_state(StrBytes::from_static_str(state_name(g.phase)))
                .with_group_type(StrBytes::from_static_str("classic"))
        })
        .collect();
    let body = ListGroupsResponse::default().with_groups(groups);
    pending.work = Work::Ready(encode(
        ApiKey::ListGroups,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
