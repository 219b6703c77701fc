//! ApiVersions: the APIs and versions this broker offers. A version the broker does not know
//! gets a v0 answer with UNSUPPORTED_VERSION and the ranges (KIP-511), and the client retries
//! with one it knows. Produce is offered from v0, as librdkafka wants to see (older versions of
//! it silently turn compression off otherwise), though v0-2 are refused when sent.

use super::{decode, encode};
use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;

/// The versions this broker serves, per API.
pub fn supported(api: ApiKey) -> Option<(i16, i16)> {
    Some(match api {
        ApiKey::Produce => (3, 12),
        ApiKey::Fetch => (4, 12),
        ApiKey::ListOffsets => (1, 8),
        ApiKey::OffsetForLeaderEpoch => (2, 4),
        ApiKey::Metadata => (0, 12),
        ApiKey::ApiVersions => (0, 3),
        ApiKey::CreateTopics => (2, 7),
        ApiKey::DeleteTopics => (1, 6),
        ApiKey::InitProducerId => (0, 4),
        ApiKey::DescribeConfigs => (1, 4),
        ApiKey::FindCoordinator => (0, 4),
        ApiKey::JoinGroup => (0, 9),
        ApiKey::SyncGroup => (0, 5),
        ApiKey::Heartbeat => (0, 4),
        ApiKey::LeaveGroup => (0, 5),
        ApiKey::OffsetCommit => (2, 8),
        ApiKey::OffsetFetch => (1, 8),
        ApiKey::ListGroups => (0, 5),
        ApiKey::DescribeGroups => (0, 5),
        ApiKey::DeleteGroups => (0, 2),
        ApiKey::OffsetDelete => (0, 0),
        ApiKey::DescribeCluster => (0, 1),
        ApiKey::CreatePartitions => (0, 3),
        ApiKey::AlterConfigs => (0, 2),
        ApiKey::IncrementalAlterConfigs => (0, 1),
        _ => return None,
    })
}

/// The ranges as advertised.
fn advertised() -> Vec<ApiVersion> {
    ApiKey::iter()
        .filter_map(|api| {
            let (min, max) = supported(api)?;
            let min = if api == ApiKey::Produce { 0 } else { min };
            Some(
                ApiVersion::default()
                    .with_api_key(api as i16)
                    .with_min_version(min)
                    .with_max_version(max),
            )
        })
        .collect()
}

pub fn answer(frame: &mut Bytes, version: i16, correlation_id: i32) -> Result<Bytes, String> {
    let (min, max) = supported(ApiKey::ApiVersions).expect("offered");
    if version < min || version > max {
        let body = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(advertised());
        return encode(ApiKey::ApiVersions, 0, correlation_id, &body);
    }
    let header_version = ApiKey::ApiVersions.request_header_version(version);
    RequestHeader::decode(frame, header_version)
        .map_err(|e| format!("a malformed ApiVersions request header: {e}"))?;
    let _request: ApiVersionsRequest = decode(ApiKey::ApiVersions, version, frame)?;
    let body = ApiVersionsResponse::default().with_api_keys(advertised());
    encode(ApiKey::ApiVersions, version, correlation_id, &body)
}
