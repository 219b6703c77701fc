//! Batches for tests and benchmarks, encoded by `kafka-protocol` as a producer would.

use super::batch::KafkaBatch;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// An uncompressed batch of `records` records, timestamps `base_timestamp`, +1, ..., each
/// carrying a `value_bytes`-byte value.
pub fn batch(records: u32, base_timestamp: i64, value_bytes: usize) -> KafkaBatch {
    compressed_batch(records, base_timestamp, value_bytes, Compression::None)
}

/// As [`batch`], compressed.
pub fn compressed_batch(
    records: u32,
    base_timestamp: i64,
    value_bytes: usize,
    compression: Compression,
) -> KafkaBatch {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // offset - sequence must stay constant within one batch; base sequence -1 (no
            // idempotence), as a plain producer sends.
            sequence: i as i32 - 1,
            timestamp: base_timestamp + i64::from(i),
            key: None,
            value: Some(Bytes::from(
                (0..value_bytes)
                    .map(|b| (b as u32).wrapping_mul(31).wrapping_add(i) as u8 % 61)
                    .collect::<Vec<u8>>(),
            )),
            headers: Default::default(),
        })
        .collect();
    encode(&records, compression)
}

/// `records` as one v2 batch, encoded by kafka-protocol as a client would.
pub fn encode(records: &[Record], compression: Compression) -> KafkaBatch {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encodable records");
    KafkaBatch::new(buf.freeze()).expect("kafka-protocol writes one v2 batch")
}
