//! Record batches: building a v2 batch for Produce and splitting a Fetch response's records
//! into whole batches.

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

impl Outgoing {
    /// Bytes this record adds to a batch, roughly (for batch size limits).
    pub fn approximate_size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len) + self.value.as_ref().map_or(0, Bytes::len) + 16
    }
}

/// One v2 record batch, uncompressed, CreateTime timestamps, no producer id (not idempotent).
/// Offsets are 0.. (the broker assigns the real ones).
pub fn encode_batch(records: &[Outgoing], timestamp_ms: i64) -> Result<Bytes> {
    if records.is_empty() {
        bail!("a record batch needs at least one record");
    }
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch only while offset - sequence stays
            // constant, and writes base sequence = first sequence - first offset delta:
            // sequence = offset - 1 gives one batch with base sequence -1 (NO_SEQUENCE).
            sequence: (i as i32).wrapping_sub(1),
            timestamp: timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .context("encoding a record batch")?;
    Ok(buf.freeze())
}

/// A whole batch from a Fetch response.
#[derive(Debug)]
pub struct FetchedBatch {
    /// base offset + last offset delta: where the next fetch starts after this batch, minus 1
    /// (records may have been compacted away, so this is not the last record's offset).
    pub last_offset: i64,
    /// A control batch (transaction markers): not for the application.
    pub control: bool,
    pub records: Vec<Record>,
}

/// Batch header layout (v2): base offset i64, batch length i32, partition leader epoch i32,
/// magic i8, crc u32, attributes i16, last offset delta i32, ...
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MIN_BATCH: usize = 61;

/// Split a Fetch response's records into whole batches and decode them. A partial batch at
/// the end (cut by the fetch size) is ignored: the next fetch asks for it again.
pub fn decode_fetched(mut bytes: Bytes) -> Result<Vec<FetchedBatch>> {
    let mut batches = Vec::new();
    while bytes.len() >= LOG_OVERHEAD {
        let base_offset = (&bytes[0..8]).get_i64();
        let length = (&bytes[8..12]).get_i32();
        let Ok(length) = usize::try_from(length) else {
            bail!("record batch at offset {base_offset} has negative length {length}");
        };
        let total = LOG_OVERHEAD + length;
        if bytes.len() < total {
            break;
        }
        if total < MIN_BATCH {
            let magic = bytes.get(MAGIC_AT).copied().unwrap_or(0);
            bail!(
                "record batch at offset {base_offset} is too short ({total} bytes, magic {magic})"
            );
        }
        let magic = bytes[MAGIC_AT] as i8;
        if magic != 2 {
            bail!("record batch at offset {base_offset} has message format v{magic}; only v2 is supported");
        }
        let attributes = (&bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]).get_i16();
        let last_offset_delta = (&bytes[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]).get_i32();
        let mut batch = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .with_context(|| format!("decoding the record batch at offset {base_offset}"))?;
        batches.push(FetchedBatch {
            last_offset: base_offset + i64::from(last_offset_delta),
            control: attributes & (1 << 5) != 0,
            records: set.records,
        });
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(key: Option<&'static str>, value: &'static str) -> Outgoing {
        Outgoing {
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Some(Bytes::from_static(value.as_bytes())),
        }
    }

    #[test]
    fn batch_round_trip_is_one_batch_without_sequence() {
        let records = vec![
            outgoing(None, "a"),
            outgoing(Some("k"), "bb"),
            outgoing(None, "ccc"),
        ];
        let bytes = encode_batch(&records, 1_700_000_000_000).unwrap();
        let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
        assert_eq!(info.len(), 1, "all records in one batch");
        assert_eq!(info[0].record_count, 3);
        assert_eq!(info[0].base_sequence, -1);
        assert_eq!(info[0].producer_id, -1);
        assert_eq!(info[0].timestamp_type, TimestampType::Creation);
        let batches = decode_fetched(bytes).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].last_offset, 2);
        assert!(!batches[0].control);
        let values: Vec<_> = batches[0]
            .records
            .iter()
            .map(|r| r.value.clone().unwrap())
            .collect();
        assert_eq!(values, vec!["a", "bb", "ccc"]);
        assert_eq!(batches[0].records[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(batches[0].records[2].offset, 2);
        assert_eq!(batches[0].records[0].timestamp, 1_700_000_000_000);
    }

    #[test]
    fn partial_trailing_batch_is_ignored() {
        let first = encode_batch(&[outgoing(None, "x")], 1).unwrap();
        let second = encode_batch(&[outgoing(None, "y"), outgoing(None, "z")], 1).unwrap();
        let mut both = BytesMut::new();
        both.extend_from_slice(&first);
        both.extend_from_slice(&second[..second.len() - 5]);
        let batches = decode_fetched(both.freeze()).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records.len(), 1);
        assert!(decode_fetched(Bytes::new()).unwrap().is_empty());
    }
}
