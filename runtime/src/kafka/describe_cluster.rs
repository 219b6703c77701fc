//! DescribeCluster (v0-1): the cluster id, the controller as Metadata names it (this broker,
//! which forwards admin requests to Gregor's controller), and the live brokers with their
//! endpoints on this listener. Only brokers are described (endpoint type 1): asking for
//! controllers (2) is UNSUPPORTED_ENDPOINT_TYPE, as a broker that is not a controller answers.

use super::{decode, encode, Connection, Pending, Work};
use gregor_model::message::{MetadataResponse as ModelResponse, Msg};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;
const BROKERS: i8 = 1;

pub async fn request(
    conn: &mut Connection,
    mut frame: bytes::Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<(), String> {
    let request: DescribeClusterRequest = decode(ApiKey::DescribeCluster, version, &mut frame)?;
    if request.endpoint_type != BROKERS {
        let body = DescribeClusterResponse::default()
            .with_error_code(UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(StrBytes::from_static_str(
                "Gregor's controller has no Kafka endpoint; describe the brokers",
            )))
            .with_endpoint_type(request.endpoint_type);
        let answer = encode(ApiKey::DescribeCluster, version, correlation_id, &body)?;
        conn.answer(
            correlation_id,
            ApiKey::DescribeCluster,
            version,
            Work::Ready(answer),
        );
        return Ok(());
    }
    conn.answer(
        correlation_id,
        ApiKey::DescribeCluster,
        version,
        Work::DescribeCluster,
    );
    // The brokers only: a topic named "" (none is) keeps the answer small.
    conn.to_actor(Msg::Metadata {
        topics: vec![String::new()],
    })
    .await;
    Ok(())
}

pub fn complete(
    conn: &Connection,
    pending: &mut Pending,
    response: &ModelResponse,
) -> Result<(), String> {
    let brokers = response
        .brokers
        .iter()
        .filter_map(|broker| {
            let endpoint = conn.endpoint(broker)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(broker.id.0 as i32))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port)),
            )
        })
        .collect();
    let body = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_static_str(super::CLUSTER_ID))
        .with_controller_id(BrokerId(conn.front_end.node_id.0 as i32))
        .with_brokers(brokers);
    pending.work = Work::Ready(encode(
        ApiKey::DescribeCluster,
        pending.version,
        pending.correlation_id,
        &body,
    )?);
    Ok(())
}
