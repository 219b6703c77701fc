//! JoinGroup (v0-9): a member (re)joins its group at the coordinator. From v4 a member without
//! an id first gets MEMBER_ID_REQUIRED and an id to join with (KIP-394); v0 has no rebalance
//! timeout, so the session timeout stands for it, as in Kafka.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::group::{Answer, JoinRequest, MemberId};
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<(), String> {
    let request: JoinGroupRequest = decode(ApiKey::JoinGroup, version, &mut frame)?;
    let millis = |ms: i32| Duration::from_millis(ms.max(0) as u64);
    let rebalance_timeout = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let member_id =
        (!request.member_id.is_empty()).then(|| MemberId(request.member_id.to_string()));
    let join = JoinRequest {
        member_id: member_id.clone(),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        client_id: client_id.to_string(),
        client_host: conn.client_host.to_string(),
        session_timeout: millis(request.session_timeout_ms),
        rebalance_timeout: millis(rebalance_timeout),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let group = request.group_id.0.to_string();
    let call = Box::new(Join { member_id });
    let requests = vec![(group, GroupOp::Join(Box::new(join)))];
    groups::submit(conn, correlation_id, version, requests, false, call).await
}

struct Join {
    /// The member id the request carried, echoed in an error answer.
    member_id: Option<MemberId>,
}

impl Call for Join {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let text = |s: &str| StrBytes::from_string(s.to_string());
        let failed = |code: i16, member: Option<MemberId>| {
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1)
                .with_protocol_name((version < 7).then(StrBytes::default))
                .with_member_id(member.map_or_else(StrBytes::default, |m| text(&m.0)))
        };
        let body = match answers.into_iter().next() {
            Some(GroupAnswer::Member(Answer::Join(Ok(joined)))) => JoinGroupResponse::default()
                .with_generation_id(joined.generation)
                .with_protocol_type(Some(text(&joined.protocol_type)))
                .with_protocol_name(Some(text(&joined.protocol)))
                .with_leader(text(&joined.leader.0))
                .with_member_id(text(&joined.member_id.0))
                .with_members(
                    joined
                        .members
                        .into_iter()
                        .map(|m| {
                            JoinGroupResponseMember::default()
                                .with_member_id(text(&m.member_id.0))
                                .with_group_instance_id(m.instance_id.as_deref().map(text))
                                .with_metadata(Bytes::from(m.metadata))
                        })
                        .collect(),
                ),
            Some(GroupAnswer::Member(Answer::Join(Err((code, member))))) => {
                failed(code.code(), member.or(self.member_id))
            }
            Some(GroupAnswer::Refused(code)) => failed(code.code(), self.member_id),
            other => return Err(format!("a JoinGroup answered with {other:?}")),
        };
        encode(ApiKey::JoinGroup, version, correlation_id, &body)
    }
}
