//! FindCoordinator (v0-4; v4 asks for several groups at once, KIP-699): the broker leading each
//! group's partition of `__consumer_offsets`, its endpoint on the listener the request came in
//! on. The first request creates `__consumer_offsets` (the model asks the controller); until it
//! has leaders the answer is COORDINATOR_NOT_AVAILABLE and clients retry. Transactions are not
//! offered: a transaction coordinator is refused with INVALID_REQUEST.

use super::{decode, encode, Connection, Pending, Work};
use bytes::Bytes;
use gregor_model::message::{BrokerInfo, ErrorCode, Msg};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const INVALID_REQUEST: i16 = 42;
const GROUP_KEY: i8 = 0;

pub struct Waiting {
    pub request: u32,
}

pub async fn request(
    conn: &mut Connection,
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: FindCoordinatorRequest = decode(ApiKey::FindCoordinator, version, &mut frame)?;
    let keys: Vec<String> = if version < 4 {
        vec![request.key.to_string()]
    } else {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    };
    if request.key_type != GROUP_KEY {
        let why = "Gregor does not support transactions (no transaction coordinator)";
        let answers = keys
            .into_iter()
            .map(|key| (key, Err((INVALID_REQUEST, why))))
            .collect();
        let body = response(version, answers);
        let answer = encode(ApiKey::FindCoordinator, version, correlation_id, &body)?;
        conn.answer(
            correlation_id,
            ApiKey::FindCoordinator,
            version,
            Work::Ready(answer),
        );
        return Ok(());
    }
    let number = conn.request_number();
    conn.answer(
        correlation_id,
        ApiKey::FindCoordinator,
        version,
        Work::FindCoordinator(Waiting { request: number }),
    );
    conn.to_actor(Msg::FindCoordinator {
        request: number,
        groups: keys,
    })
    .await;
    Ok(())
}

/// The actor's answer.
pub fn complete(
    conn: &Connection,
    pending: &mut Pending,
    coordinators: &[(String, Result<BrokerInfo, ErrorCode>)],
) -> Result<(), String> {
    let answers = coordinators
        .iter()
        .map(|(key, found)| {
            let found = match found {
                Ok(broker) => conn
                    .endpoint(broker)
                    .map(|e| (broker.id.0 as i32, e.host.clone(), i32::from(e.port)))
                    .ok_or((
                        ErrorCode::CoordinatorNotAvailable.code(),
                        "the coordinator has no endpoint on this listener",
                    )),
                Err(code) => Err((code.code(), code.name())),
            };
            (key.clone(), found)
        })
        .collect();
    let body = response(pending.version, answers);
    pending.work = Work::Ready(encode(
        ApiKey::FindCoordinator,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}

type Found = Result<(i32, String, i32), (i16, &'static str)>;

fn response(version: i16, answers: Vec<(String, Found)>) -> FindCoordinatorResponse {
    let coordinators: Vec<Coordinator> = answers
        .into_iter()
        .map(|(key, found)| {
            let c = Coordinator::default().with_key(StrBytes::from_string(key));
            match found {
                Ok((id, host, port)) => c
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port),
                Err((code, why)) => c
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str(why))),
            }
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let one = coordinators.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(one.error_message)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}
