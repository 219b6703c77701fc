//! DeleteGroups (v0-2): each group with no members is deleted — its record and committed
//! offsets — once the tombstones are committed; a group with members is NON_EMPTY_GROUP, an
//! unknown one GROUP_ID_NOT_FOUND.

use super::groups::{self, Call};
use super::{decode, encode, Connection};
use bytes::Bytes;
use gregor_model::message::{GroupAnswer, GroupOp};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: DeleteGroupsRequest = decode(ApiKey::DeleteGroups, version, &mut frame)?;
    let requests = request
        .groups_names
        .iter()
        .map(|g| (g.0.to_string(), GroupOp::Delete))
        .collect();
    let call = Box::new(Delete {
        groups: request.groups_names,
    });
    groups::submit(conn, correlation_id, version, requests, true, call).await
}

struct Delete {
    groups: Vec<GroupId>,
}

impl Call for Delete {
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String> {
        let mut results = Vec::with_capacity(answers.len());
        for (group, answer) in self.groups.into_iter().zip(answers) {
            let code = match answer {
                GroupAnswer::Delete(result) => super::code(result.err()),
                GroupAnswer::Refused(code) => code.code(),
                other => return Err(format!("a DeleteGroups answered with {other:?}")),
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group)
                    .with_error_code(code),
            );
        }
        let body = DeleteGroupsResponse::default().with_results(results);
        encode(ApiKey::DeleteGroups, version, correlation_id, &body)
    }
}
