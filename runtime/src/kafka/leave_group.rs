//! LeaveGroup (v0-5): members leave their group (v0-2 one member by id; v3+ several, by member
//! id or, for static members, instance id, each answered on its own).

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{Answer, Leaving, MemberId};
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: LeaveGroupRequest = decode(ApiKey::LeaveGroup, version, &mut frame)?;
    let member = |id: &StrBytes| (!id.is_empty()).then(|| MemberId(id.to_string()));
    let leaving = if version < 3 {
        vec![Leaving {
            member_id: Some(MemberId(request.member_id.to_string())),
            instance_id: None,
        }]
    } else {
        request
            .members
            .iter()
            .map(|m| Leaving {
                member_id: member(&m.member_id),
                instance_id: m.group_instance_id.as_ref().map(|id| id.to_string()),
            })
            .collect()
    };
    let requests = vec![(request.group_id.0.to_string(), GroupOp::Leave(leaving))];
    groups::submit(
        conn,
        correlation_id,
        version,
        requests,
        false,
        Box::new(Leave),
    )
    .await
}

struct Leave;

impl Call for Leave {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let text = |s: &str| StrBytes::from_string(s.to_string());
        let body = match answers.into_iter().next() {
            Some(GroupAnswer::Member(Answer::Leave(left))) if version < 3 => {
                let code = left.into_iter().next().and_then(|(_, result)| result.err());
                LeaveGroupResponse::default().with_error_code(super::code(code))
            }
            Some(GroupAnswer::Member(Answer::Leave(left))) => LeaveGroupResponse::default()
                .with_members(
                    left.into_iter()
                        .map(|(leaving, result)| {
                            MemberResponse::default()
                                .with_member_id(
                                    leaving
                                        .member_id
                                        .map_or_else(StrBytes::default, |m| text(&m.0)),
                                )
                                .with_group_instance_id(leaving.instance_id.as_deref().map(text))
                                .with_error_code(super::code(result.err()))
                        })
                        .collect(),
                ),
            Some(GroupAnswer::Refused(code)) => {
                LeaveGroupResponse::default().with_error_code(code.code())
            }
            other => return Err(format!("a LeaveGroup answered with {other:?}")),
        };
        encode(ApiKey::LeaveGroup, version, correlation_id, &body)
    }
}
