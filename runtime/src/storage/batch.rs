//! Kafka's record batch, format v2 ("magic 2"), as the log stores it: the producer's bytes,
//! never re-encoded. The broker writes only `baseOffset` (bytes 0-7) and
//! `partitionLeaderEpoch` (bytes 12-15) in place; both lie outside the CRC-32C, which covers
//! `attributes` to the end of the batch (Kafka's `DefaultRecordBatch`). An idempotent
//! producer's `producerId`, `producerEpoch` and `baseSequence` lie inside it: only a client
//! writes them ([`KafkaBatch::with_producer`]), and it computes the CRC again.

use bytes::Bytes;
use gregor_model::log::{CoordinatorRecord, ProducerBatch, RecordBatch};
use gregor_model::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `baseOffset` + `batchLength`: the bytes before the length's count starts (Kafka's
/// `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The fixed header of a v2 batch, up to and including `recordsCount`.
pub const HEADER_BYTES: usize = 61;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
/// Kafka's `RecordBatch.NO_PRODUCER_ID`: a plain producer's batch.
pub const NO_PRODUCER_ID: i64 = -1;

/// Why bytes are not a well-formed v2 batch.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    #[error("{0} bytes are shorter than a record batch header ({HEADER_BYTES} bytes)")]
    Short(usize),
    #[error("batchLength {declared} does not fit: {available} bytes follow the length field")]
    Length { declared: i32, available: usize },
    #[error("magic {0} is not 2: only record batch format v2 is stored")]
    Magic(i8),
    #[error("lastOffsetDelta {0} is negative")]
    LastOffsetDelta(i32),
    #[error("CRC-32C is {stored:#010x} but the batch's bytes give {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

/// The fields of a batch header the log uses, parsed from its first [`HEADER_BYTES`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The whole batch, `LOG_OVERHEAD` included.
    pub total_bytes: u64,
    pub partition_leader_epoch: i32,
    pub last_offset_delta: u32,
    pub max_timestamp: i64,
    pub crc: u32,
    /// -1 ([`NO_PRODUCER_ID`]) unless the producer is idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchHeader {
    /// Parses a header; `buf` must hold at least [`HEADER_BYTES`] bytes. Checks the magic, that
    /// `batchLength` covers the header and that `lastOffsetDelta` is not negative; the batch's
    /// length against what follows is the caller's to check.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_BYTES {
            return Err(BatchError::Short(buf.len()));
        }
        let magic = buf[MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        let declared = i32_at(buf, BATCH_LENGTH);
        if declared < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Length {
                declared,
                available: buf.len() - LOG_OVERHEAD,
            });
        }
        let last_offset_delta = i32_at(buf, LAST_OFFSET_DELTA);
        if last_offset_delta < 0 {
            return Err(BatchError::LastOffsetDelta(last_offset_delta));
        }
        Ok(BatchHeader {
            base_offset: i64_at(buf, BASE_OFFSET),
            total_bytes: LOG_OVERHEAD as u64 + declared as u64,
            partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH),
            last_offset_delta: last_offset_delta as u32,
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            crc: i32_at(buf, CRC) as u32,
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16_at(buf, PRODUCER_EPOCH),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
        })
    }

    /// Checks the CRC-32C of `batch`, the whole batch this header was parsed from.
    pub fn verify_crc(&self, batch: &[u8]) -> Result<(), BatchError> {
        let computed = crc32c::crc32c(&batch[ATTRIBUTES..]);
        if self.crc != computed {
            return Err(BatchError::Crc {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }

    /// How many offsets the batch occupies.
    pub fn record_count(&self) -> u64 {
        u64::from(self.last_offset_delta) + 1
    }

    /// The idempotent producer's numbering: `None` for a plain producer's batch
    /// ([`NO_PRODUCER_ID`]), and for a negative epoch or base sequence, which no idempotent
    /// producer sends (a transaction marker has base sequence -1).
    pub fn producer(&self) -> Option<ProducerBatch> {
        if self.producer_id == NO_PRODUCER_ID {
            return None;
        }
        Some(ProducerBatch {
            producer_id: ProducerId(u64::try_from(self.producer_id).ok()?),
            producer_epoch: ProducerEpoch(u16::try_from(self.producer_epoch).ok()?),
            base_sequence: Sequence(u32::try_from(self.base_sequence).ok()?),
        })
    }
}

/// One v2 record batch: a cheap handle on its bytes (a slice of a read, or a request's frame).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Bytes", into = "Bytes")]
pub struct KafkaBatch(Bytes);

impl KafkaBatch {
    /// Wraps `bytes` after checking they are exactly one batch with a well-formed header. The
    /// CRC is not checked here (see [`KafkaBatch::verify_crc`]).
    pub fn new(bytes: Bytes) -> Result<KafkaBatch, BatchError> {
        let header = BatchHeader::parse(&bytes)?;
        if header.total_bytes != bytes.len() as u64 {
            return Err(BatchError::Length {
                declared: i32_at(&bytes, BATCH_LENGTH),
                available: bytes.len() - LOG_OVERHEAD,
            });
        }
        Ok(KafkaBatch(bytes))
    }

    /// The header's fields.
    pub fn header(&self) -> BatchHeader {
        BatchHeader::parse(&self.0).expect("checked when the batch was made")
    }

    /// Checks the CRC-32C over `attributes` to the end, as a consumer (or recovery) does.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        self.header().verify_crc(&self.0)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first 16 bytes as the broker writes them for a batch placed at `base_offset` in
    /// `leader_epoch`: `baseOffset`, `batchLength` (unchanged), `partitionLeaderEpoch`.
    pub fn stamped_prefix(&self, base_offset: Offset, leader_epoch: LeaderEpoch) -> [u8; 16] {
        let mut prefix = [0u8; 16];
        prefix[BASE_OFFSET..BATCH_LENGTH].copy_from_slice(&(base_offset.0 as i64).to_be_bytes());
        prefix[BATCH_LENGTH..PARTITION_LEADER_EPOCH]
            .copy_from_slice(&self.0[BATCH_LENGTH..PARTITION_LEADER_EPOCH]);
        prefix[PARTITION_LEADER_EPOCH..].copy_from_slice(&(leader_epoch.0 as i32).to_be_bytes());
        prefix
    }

    /// The batch as the log stores it at `base_offset` in `leader_epoch` (one copy; the log's
    /// own append writes the stamped prefix and the rest without copying).
    pub fn stamped(&self, base_offset: Offset, leader_epoch: LeaderEpoch) -> KafkaBatch {
        let mut bytes = self.0.to_vec();
        bytes[..16].copy_from_slice(&self.stamped_prefix(base_offset, leader_epoch));
        KafkaBatch(Bytes::from(bytes))
    }

    /// The batch numbered by an idempotent producer: `producerId`, `producerEpoch` and
    /// `baseSequence` rewritten and the CRC-32C computed again, since it covers them. Each
    /// record's sequence is the base sequence plus its offset delta, so no record changes.
    /// Panics on numbers outside Kafka's non-negative int64/int16/int32 ranges.
    pub fn with_producer(&self, producer: ProducerBatch) -> KafkaBatch {
        let id = i64::try_from(producer.producer_id.0).expect("a producer id fits an int64");
        let epoch =
            i16::try_from(producer.producer_epoch.0).expect("a producer epoch fits an int16");
        let sequence =
            i32::try_from(producer.base_sequence.0).expect("a base sequence fits an int32");
        let mut bytes = self.0.to_vec();
        bytes[PRODUCER_ID..PRODUCER_EPOCH].copy_from_slice(&id.to_be_bytes());
        bytes[PRODUCER_EPOCH..BASE_SEQUENCE].copy_from_slice(&epoch.to_be_bytes());
        bytes[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES..]);
        bytes[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
        KafkaBatch(Bytes::from(bytes))
    }
}

impl TryFrom<Bytes> for KafkaBatch {
    type Error = BatchError;

    fn try_from(bytes: Bytes) -> Result<Self, BatchError> {
        KafkaBatch::new(bytes)
    }
}

impl From<KafkaBatch> for Bytes {
    fn from(batch: KafkaBatch) -> Bytes {
        batch.0
    }
}

impl RecordBatch for KafkaBatch {
    fn record_count(&self) -> u64 {
        self.header().record_count()
    }

    fn size_bytes(&self) -> u64 {
        self.0.len() as u64
    }

    fn producer(&self) -> Option<ProducerBatch> {
        self.header().producer()
    }

    fn with_producer(&self, producer: ProducerBatch) -> KafkaBatch {
        KafkaBatch::with_producer(self, producer)
    }

    fn coordinator(records: Vec<CoordinatorRecord>) -> KafkaBatch {
        KafkaBatch::new(super::coordinator::encode_batch(&records))
            .expect("an encoded batch is well formed")
    }

    fn coordinator_records(&self) -> Option<Vec<CoordinatorRecord>> {
        super::coordinator::decode_batch(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{batch, compressed_batch};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    #[test]
    fn header_fields_and_record_count() {
        let b = batch(3, 1_000, 40);
        let header = b.header();
        assert_eq!(header.total_bytes, b.len() as u64);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(b.record_count(), 3);
        assert_eq!(header.max_timestamp, 1_002);
        b.verify_crc().unwrap();
    }

    #[test]
    fn stamping_keeps_the_crc_valid() {
        let b = batch(2, 5, 10).stamped(Offset(77), LeaderEpoch(9));
        let header = b.header();
        assert_eq!(header.base_offset, 77);
        assert_eq!(header.partition_leader_epoch, 9);
        b.verify_crc().unwrap();
    }

    #[test]
    fn a_plain_producers_batch_has_no_producer() {
        let b = batch(2, 0, 10);
        assert_eq!(b.header().producer_id, NO_PRODUCER_ID);
        assert_eq!(b.producer(), None);
        assert_eq!(b.size_bytes(), b.len() as u64);
    }

    #[test]
    fn with_producer_round_trips_and_keeps_the_crc_valid() {
        let numbering = ProducerBatch {
            producer_id: ProducerId(4_000_000_007),
            producer_epoch: ProducerEpoch(3),
            base_sequence: Sequence(41),
        };
        for compression in [Compression::None, Compression::Zstd] {
            let plain = compressed_batch(3, 1_000, 25, compression);
            let numbered = plain.with_producer(numbering);
            assert_eq!(numbered.producer(), Some(numbering));
            numbered.verify_crc().unwrap();
            assert_ne!(numbered.header().crc, plain.header().crc);
            assert_eq!(numbered.len(), plain.len());
            assert_eq!(numbered.bytes()[..CRC], plain.bytes()[..CRC]);
            assert_eq!(
                numbered.bytes()[HEADER_BYTES..],
                plain.bytes()[HEADER_BYTES..],
                "the records are untouched"
            );
            // Stamping in place afterwards (outside the CRC) keeps the numbering and the CRC.
            let stored = numbered.stamped(Offset(9), LeaderEpoch(2));
            assert_eq!(stored.producer(), Some(numbering));
            stored.verify_crc().unwrap();
            // A consumer sees each record numbered from the base sequence.
            let set = RecordBatchDecoder::decode(&mut stored.bytes().clone()).unwrap();
            for (i, record) in set.records.iter().enumerate() {
                assert_eq!(record.producer_id, 4_000_000_007);
                assert_eq!(record.producer_epoch, 3);
                assert_eq!(record.sequence, 41 + i as i32);
            }
        }
    }

    #[test]
    fn negative_numbering_is_no_idempotent_producers() {
        let mut marker = batch(1, 0, 8).bytes().to_vec();
        marker[PRODUCER_ID..PRODUCER_EPOCH].copy_from_slice(&5i64.to_be_bytes());
        // base sequence stays -1, as in a transaction marker.
        let marker = KafkaBatch::new(Bytes::from(marker)).unwrap();
        assert_eq!(marker.header().producer_id, 5);
        assert_eq!(marker.header().base_sequence, -1);
        assert_eq!(marker.producer(), None);
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let good = batch(1, 0, 8);
        assert_eq!(
            KafkaBatch::new(good.bytes().slice(..20)),
            Err(BatchError::Short(20))
        );
        let mut longer = good.bytes().to_vec();
        longer.push(0);
        assert!(matches!(
            KafkaBatch::new(Bytes::from(longer)),
            Err(BatchError::Length { .. })
        ));
        let mut magic = good.bytes().to_vec();
        magic[MAGIC] = 1;
        assert_eq!(
            KafkaBatch::new(Bytes::from(magic)),
            Err(BatchError::Magic(1))
        );
        let mut flipped = good.bytes().to_vec();
        *flipped.last_mut().unwrap() ^= 0x40;
        let flipped = KafkaBatch::new(Bytes::from(flipped)).unwrap();
        assert!(matches!(flipped.verify_crc(), Err(BatchError::Crc { .. })));
    }

    #[test]
    fn serde_checks_what_it_reads() {
        let b = batch(1, 0, 8);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<KafkaBatch>(&json).unwrap(), b);
        let short = serde_json::to_string(&b.bytes().slice(..30)).unwrap();
        let error = serde_json::from_str::<KafkaBatch>(&short).unwrap_err();
        assert!(error
            .to_string()
            .contains("shorter than a record batch header"));
    }
}
