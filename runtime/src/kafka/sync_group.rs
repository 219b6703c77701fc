//! SyncGroup (v0-5): a member of the current generation asks for its assignment; the leader
//! member's request carries everyone's.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{Answer, MemberId, SyncRequest};
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: SyncGroupRequest = decode(ApiKey::SyncGroup, version, &mut frame)?;
    let sync = SyncRequest {
        member_id: MemberId(request.member_id.to_string()),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        generation: request.generation_id,
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (MemberId(a.member_id.to_string()), a.assignment.to_vec()))
            .collect(),
    };
    let requests = vec![(request.group_id.0.to_string(), GroupOp::Sync(sync))];
    groups::submit(
        conn,
        correlation_id,
        version,
        requests,
        false,
        Box::new(Sync),
    )
    .await
}

struct Sync;

impl Call for Sync {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let body = match answers.into_iter().next() {
            Some(GroupAnswer::Member(Answer::Sync(Ok((protocol, assignment))))) => {
                SyncGroupResponse::default()
                    .with_protocol_name(Some(StrBytes::from_string(protocol)))
                    .with_assignment(Bytes::from(assignment))
            }
            Some(GroupAnswer::Member(Answer::Sync(Err(code))))
            | Some(GroupAnswer::Refused(code)) => {
                SyncGroupResponse::default().with_error_code(code.code())
            }
            other => return Err(format!("a SyncGroup answered with {other:?}")),
        };
        encode(ApiKey::SyncGroup, version, correlation_id, &body)
    }
}
