//! DescribeGroups (v0-5): each group's state, protocol and members (with their client id and
//! host, metadata and assignment); a group the coordinator does not hold is `Dead`.

use super::groups::{self, Call};
use super::list_groups::state_name;
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: DescribeGroupsRequest = decode(ApiKey::DescribeGroups, version, &mut frame)?;
    let requests = request
        .groups
        .iter()
        .map(|g| (g.0.to_string(), GroupOp::Describe))
        .collect();
    let call = Box::new(Describe {
        groups: request.groups,
    });
    groups::submit(conn, correlation_id, version, requests, false, call).await
}

struct Describe {
    groups: Vec<GroupId>,
}

impl Call for Describe {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let text = |s: &str| StrBytes::from_string(s.to_string());
        let mut described = Vec::with_capacity(answers.len());
        for (group, answer) in self.groups.into_iter().zip(answers) {
            let d = DescribedGroup::default().with_group_id(group);
            described.push(match answer {
                GroupAnswer::Describe(None) => d.with_group_state(text("Dead")),
                GroupAnswer::Describe(Some(g)) => d
                    .with_group_state(text(state_name(g.phase)))
                    .with_protocol_type(text(g.protocol_type.as_deref().unwrap_or("")))
                    .with_protocol_data(text(g.protocol.as_deref().unwrap_or("")))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(text(&m.member_id.0))
                                    .with_group_instance_id(m.instance_id.as_deref().map(text))
                                    .with_client_id(text(&m.client_id))
                                    .with_client_host(text(&m.client_host))
                                    .with_member_metadata(Bytes::from(m.metadata))
                                    .with_member_assignment(Bytes::from(m.assignment))
                            })
                            .collect(),
                    ),
                GroupAnswer::Refused(code) => d.with_error_code(code.code()),
                other => return Err(format!("a DescribeGroups answered with {other:?}")),
            });
        }
        let body = DescribeGroupsResponse::default().with_groups(described);
        encode(ApiKey::DescribeGroups, version, correlation_id, &body)
    }
}
