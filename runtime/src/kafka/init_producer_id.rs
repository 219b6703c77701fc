//! InitProducerId (v0-4), for idempotent producers: a producer id from the broker's block
//! (the model asks the controller for blocks, KIP-730). Transactions are not offered: a
//! request naming a transactional id is refused with INVALID_REQUEST.

use super::{decode, encode, Connection, Pending, Work};
use gregor_model::message::{ErrorCode, Msg};
use gregor_model::types::{ProducerEpoch, ProducerId};
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse};

const INVALID_REQUEST: i16 = 42;

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: InitProducerIdRequest = decode(ApiKey::InitProducerId, version, &mut frame)?;
    if request.transactional_id.is_some() {
        let body = InitProducerIdResponse::default()
            .with_error_code(INVALID_REQUEST)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let answer = encode(ApiKey::InitProducerId, version, correlation_id, &body)?;
        conn.answer(
            correlation_id,
            ApiKey::InitProducerId,
            version,
            Work::Ready(answer),
        );
        return Ok(());
    }
    conn.answer(
        correlation_id,
        ApiKey::InitProducerId,
        version,
        Work::InitProducerId,
    );
    conn.to_actor(Msg::InitProducerId).await;
    Ok(())
}

pub fn complete(
    pending: &mut Pending,
    result: Result<(ProducerId, ProducerEpoch), ErrorCode>,
) -> Result<(), String> {
    let body = match result {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id((id.0 as i64).into())
            .with_producer_epoch(epoch.0 as i16),
        Err(error) => InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    };
    pending.work = Work::Ready(encode(
        ApiKey::InitProducerId,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
