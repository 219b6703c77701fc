//! Request builders, one per API the tools use, each filling only the fields the negotiated
//! version carries (the crate refuses to encode a non-default field a version lacks).

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, ListOffsetsRequest,
    ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::topic_name;

/// ListOffsets timestamps with special meaning.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
/// ListOffsets replica ids: an ordinary consumer, and Kafka's "debug consumer", which this
/// broker answers with the leader's log end offset for LATEST.
pub const CONSUMER_REPLICA_ID: i32 = -1;
pub const DEBUG_REPLICA_ID: i32 = -2;

/// acks=-1 (all), 1 or 0; timeout in ms; one batch per partition.
pub fn produce(
    topic: &str,
    batches: &[(i32, Bytes)],
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(
                batches
                    .iter()
                    .map(|(partition, records)| {
                        PartitionProduceData::default()
                            .with_index(*partition)
                            .with_records(Some(records.clone()))
                    })
                    .collect(),
            )])
}

/// A consumer's Fetch (no fetch session, read uncommitted) of `(partition, offset)`s.
pub fn fetch(topic: &str, positions: &[(i32, i64)], version: i16) -> FetchRequest {
    let partitions = positions
        .iter()
        .map(|&(partition, offset)| {
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let mut request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)]);
    if version >= 7 {
        // No fetch session: id 0, epoch -1 (FINAL_EPOCH) — also the crate's defaults.
        request = request.with_session_id(0).with_session_epoch(-1);
    }
    request
}

/// ListOffsets for partitions of one topic at one timestamp, as `replica_id`.
pub fn list_offsets(
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
    replica_id: i32,
) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )])
}

/// CreateTopics for one topic; -1 partitions or replication factor means the broker's default
/// (only from v4; the caller checks).
pub fn create_topic(
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    timeout_ms: i32,
) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_validate_only(false)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            )])
}

/// DeleteTopics by name: `topic_names` up to v5, `topics` (name or id) from v6.
pub fn delete_topic(name: &str, timeout_ms: i32, version: i16) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(name)))
        ])
    } else {
        request.with_topic_names(vec![topic_name(name)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::{decode_fetched, encode_batch, Outgoing};
    use super::super::{encode_request, CLIENT_ID};
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiKey, RequestHeader};
    use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable};

    fn encodes<R: Encodable>(request: &R, version: i16) -> anyhow::Result<()> {
        request.compute_size(version)?;
        Ok(())
    }

    #[test]
    fn produce_request_round_trip() {
        let batch = encode_batch(
            &[
                Outgoing {
                    key: Some(Bytes::from_static(b"k1")),
                    value: Some(Bytes::from_static(b"hello")),
                },
                Outgoing {
                    key: None,
                    value: Some(Bytes::from_static(b"world")),
                },
            ],
            42,
        )
        .unwrap();
        let request = produce("orders", &[(3, batch.clone())], -1, 30_000);
        for version in 3..=12 {
            let mut frame = encode_request(&request, version, 99, CLIENT_ID)
                .unwrap()
                .freeze();
            let size = frame.get_i32();
            assert_eq!(size as usize, frame.len());
            let header: RequestHeader = decode_request_header_from_buffer(&mut frame).unwrap();
            assert_eq!(header.request_api_key, ApiKey::Produce as i16);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 99);
            assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
            let decoded = ProduceRequest::decode(&mut frame, version).unwrap();
            assert!(!frame.has_remaining(), "v{version}: trailing bytes");
            assert_eq!(decoded, request, "v{version}");
            assert_eq!(decoded.acks, -1);
            let data = &decoded.topic_data[0];
            assert_eq!(data.name.0.as_str(), "orders");
            assert_eq!(data.partition_data[0].index, 3);
            let batches = decode_fetched(data.partition_data[0].records.clone().unwrap()).unwrap();
            let values: Vec<_> = batches[0]
                .records
                .iter()
                .map(|r| r.value.clone().unwrap())
                .collect();
            assert_eq!(values, vec!["hello", "world"]);
            assert_eq!(batches[0].records[0].key.as_deref(), Some(&b"k1"[..]));
        }
    }

    #[test]
    fn every_request_encodes_at_every_version_we_negotiate() {
        use super::super::client_versions;
        for v in client_versions(ApiKey::Fetch).unwrap() {
            let request = fetch("t", &[(0, 5), (1, 7)], v);
            encodes(&request, v).unwrap();
            let frame = encode_request(&request, v, 1, CLIENT_ID).unwrap();
            let mut body = frame.freeze();
            body.advance(4);
            decode_request_header_from_buffer(&mut body).unwrap();
            let decoded = FetchRequest::decode(&mut body, v).unwrap();
            assert_eq!(decoded.topics[0].partitions[1].fetch_offset, 7);
            assert_eq!(decoded.max_wait_ms, 500);
        }
        for v in client_versions(ApiKey::ListOffsets).unwrap() {
            encodes(&list_offsets("t", &[0, 1], LATEST, DEBUG_REPLICA_ID), v).unwrap();
        }
        for v in client_versions(ApiKey::CreateTopics).unwrap() {
            let configs = [("min.insync.replicas".to_string(), "2".to_string())];
            encodes(&create_topic("t", 6, 3, &configs, 30_000), v).unwrap();
        }
        for v in client_versions(ApiKey::DeleteTopics).unwrap() {
            let request = delete_topic("t", 30_000, v);
            let mut body = encode_request(&request, v, 1, CLIENT_ID).unwrap().freeze();
            body.advance(4);
            decode_request_header_from_buffer(&mut body).unwrap();
            let decoded = DeleteTopicsRequest::decode(&mut body, v).unwrap();
            let name = if v >= 6 {
                decoded.topics[0].name.clone().unwrap()
            } else {
                decoded.topic_names[0].clone()
            };
            assert_eq!(name.0.as_str(), "t");
        }
        for v in client_versions(ApiKey::Metadata).unwrap() {
            encodes(&super::super::metadata_request(None, v), v).unwrap();
        }
    }
}
