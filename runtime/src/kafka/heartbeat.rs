//! Heartbeat (v0-4): a member keeps its session; REBALANCE_IN_PROGRESS tells it to rejoin.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{Answer, MemberId};
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: HeartbeatRequest = decode(ApiKey::Heartbeat, version, &mut frame)?;
    let op = GroupOp::Heartbeat {
        member_id: MemberId(request.member_id.to_string()),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        generation: request.generation_id,
    };
    let requests = vec![(request.group_id.0.to_string(), op)];
    groups::submit(
        conn,
        correlation_id,
        version,
        requests,
        false,
        Box::new(Beat),
    )
    .await
}

struct Beat;

impl Call for Beat {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let code = match answers.into_iter().next() {
            Some(GroupAnswer::Member(Answer::Heartbeat(result))) => result.err(),
            Some(GroupAnswer::Refused(code)) => Some(code),
            other => return Err(format!("a Heartbeat answered with {other:?}")),
        };
        let body = HeartbeatResponse::default().with_error_code(super::code(code));
        encode(ApiKey::Heartbeat, version, correlation_id, &body)
    }
}
