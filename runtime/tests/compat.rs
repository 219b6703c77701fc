//! What the log stores and returns is what a Kafka consumer can read: batches encoded by
//! `kafka-protocol` (uncompressed, gzip, snappy, lz4, zstd) come back from `read` with a valid
//! CRC-32C, decode with its `RecordBatchDecoder`, carry the offsets and leader epoch the log
//! wrote in place and the producer's timestamps, keys and values; the batches concatenated (a
//! fetch response's records) decode with `decode_all`; and a reopened log returns the same bytes.

use bytes::{Bytes, BytesMut};
use gregor_model::types::LeaderEpoch;
use gregor_runtime::storage::{
    testing, DataDir, KafkaBatch, LogConfig, ManualClock, PartitionLog, TopicPartition,
};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};
use std::path::Path;
use std::sync::Arc;

const COMPRESSIONS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

const T0: i64 = 1_700_000_000_000;

/// What the producer sent in record `i` of batch `b`: (timestamp, key, value).
fn sent(b: usize, i: usize) -> (i64, Bytes, Bytes) {
    let value = format!("batch {b} record {i} ").repeat(10 + i);
    (
        T0 + (100 * b + i) as i64,
        Bytes::from(format!("key-{b}-{i}")),
        Bytes::from(value),
    )
}

/// Batch `b` of `records` records, as a plain (non-idempotent) producer encodes it.
fn encode(b: usize, records: usize, compression: Compression) -> KafkaBatch {
    let records: Vec<Record> = (0..records)
        .map(|i| {
            let (timestamp, key, value) = sent(b, i);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps offset - sequence constant within a batch; base sequence
                // -1 (no idempotence).
                sequence: i as i32 - 1,
                timestamp,
                key: Some(key),
                value: Some(value),
                headers: Default::default(),
            }
        })
        .collect();
    testing::encode(&records, compression)
}

/// Small reads, so that several reads are exercised too.
const READ_BYTES_MAX: u64 = 1500;

fn open(dir: &Path) -> PartitionLog {
    let config = LogConfig {
        // Small segments, so that rolls are exercised too.
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    DataDir::open(dir)
        .unwrap()
        .open_log(
            TopicPartition::new("compat", 0).unwrap(),
            config,
            // Around the records' timestamps, so that `segment.ms` does not roll every batch.
            Arc::new(ManualClock::new(T0)),
        )
        .unwrap()
}

/// Every batch of the log, in as many reads as the byte limit takes.
fn read_all(log: &PartitionLog) -> Vec<KafkaBatch> {
    let mut batches = Vec::new();
    let mut from = 0;
    while from < log.log_end_offset() {
        let entries = log
            .read(from, log.log_end_offset(), READ_BYTES_MAX)
            .unwrap();
        let last = entries
            .last()
            .expect("a read below the log end returns a batch");
        from = last.base_offset.0 + last.batch.header().record_count();
        batches.extend(entries.into_iter().map(|e| e.batch));
    }
    batches
}

#[test]
fn stored_batches_decode_as_kafka_batches() {
    for compression in COMPRESSIONS {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        // (batch number, records, epoch): several batches per epoch, epochs rising.
        let plan: Vec<(usize, usize, u32)> =
            (0..12).map(|b| (b, 1 + b % 5, 1 + b as u32 / 4)).collect();
        let mut bases = Vec::new();
        for &(b, records, epoch) in &plan {
            bases.push(
                log.append(LeaderEpoch(epoch), &encode(b, records, compression))
                    .unwrap(),
            );
        }
        let total: usize = plan.iter().map(|&(_, records, _)| records).sum();
        assert_eq!(log.log_end_offset(), total as u64);

        let stored = read_all(&log);
        assert_eq!(stored.len(), plan.len(), "{compression:?}");
        for ((stored, &(b, records, epoch)), &base) in stored.iter().zip(&plan).zip(&bases) {
            let context = format!("{compression:?}, batch {b} at offset {base}");
            stored.verify_crc().expect(&context);
            let set = RecordBatchDecoder::decode(&mut stored.bytes().clone()).expect(&context);
            assert_eq!(set.version, 2, "{context}");
            assert_eq!(set.compression, compression, "{context}");
            assert_eq!(set.records.len(), records, "{context}");
            for (i, record) in set.records.iter().enumerate() {
                let (timestamp, key, value) = sent(b, i);
                assert_eq!(record.offset, (base + i as u64) as i64, "{context}");
                assert_eq!(record.partition_leader_epoch, epoch as i32, "{context}");
                assert_eq!(record.timestamp, timestamp, "{context}");
                assert_eq!(record.key.as_ref(), Some(&key), "{context}");
                assert_eq!(record.value.as_ref(), Some(&value), "{context}");
            }
        }

        // A fetch response's records: the batches back to back.
        let mut fetched = BytesMut::new();
        for batch in &stored {
            fetched.extend_from_slice(batch.bytes());
        }
        let sets = RecordBatchDecoder::decode_all(&mut fetched.freeze()).unwrap();
        assert_eq!(sets.len(), plan.len(), "{compression:?}");
        let decoded: usize = sets.iter().map(|s| s.records.len()).sum();
        assert_eq!(decoded, total, "{compression:?}");

        log.close().unwrap();
        let reopened = open(dir.path());
        assert_eq!(
            read_all(&reopened),
            stored,
            "{compression:?} after reopening"
        );
    }
}
