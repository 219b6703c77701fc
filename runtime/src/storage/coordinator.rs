//! A group coordinator's records as Kafka writes them to `__consumer_offsets`: each record's
//! key and value start with an `int16` schema version, then the fields in Kafka's classic
//! (non-flexible) encoding — strings with an `int16` length, nullable ones with -1, bytes with
//! an `int32` length. A tombstone is a record without a value.
//!
//! - `OffsetCommitKey` v1: group, topic, partition (`int32`);
//!   `OffsetCommitValue` v3: offset (`int64`), leader epoch (`int32`, -1 for none), metadata,
//!   commit timestamp (`int64`).
//! - `GroupMetadataKey` v2: group; `GroupMetadataValue` v3: protocol type, generation
//!   (`int32`), protocol (nullable), leader (nullable), current state timestamp (`int64`),
//!   members (`int32` count): member id, group instance id (nullable), client id, client host,
//!   rebalance timeout (`int32`), session timeout (`int32`), subscription (bytes), assignment
//!   (bytes).
//!
//! Kafka's tools (`kafka-console-consumer --formatter ...OffsetsMessageFormatter`) read these;
//! Gregor reads back the versions it writes, and Kafka's older value versions 0-2 of both.
//! The batch's timestamps and the commit timestamp are the wall clock at writing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_model::group::{
    CommittedOffset, CoordinatorRecord, GroupRecord, MemberId, StoredMember,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_KEY_VERSION: i16 = 2;
const GROUP_VALUE_VERSION: i16 = 3;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

/// The key and value of one record.
pub fn encode_record(record: &CoordinatorRecord, now_ms: i64) -> (Bytes, Option<Bytes>) {
    let mut key = BytesMut::new();
    match record {
        CoordinatorRecord::Offset {
            group,
            partition: (topic, partition),
            offset,
        } => {
            key.put_i16(OFFSET_KEY_VERSION);
            put_string(&mut key, group);
            put_string(&mut key, topic);
            key.put_i32(*partition as i32);
            let value = offset.as_ref().map(|committed| {
                let mut value = BytesMut::new();
                value.put_i16(OFFSET_VALUE_VERSION);
                value.put_i64(committed.offset as i64);
                value.put_i32(committed.leader_epoch.map_or(-1, |e| e as i32));
                put_string(&mut value, &committed.metadata);
                value.put_i64(now_ms);
                value.freeze()
            });
            (key.freeze(), value)
        }
        CoordinatorRecord::Group { group, record } => {
            key.put_i16(GROUP_KEY_VERSION);
            put_string(&mut key, group);
            let value = record.as_ref().map(|record| {
                let mut value = BytesMut::new();
                value.put_i16(GROUP_VALUE_VERSION);
                put_string(&mut value, record.protocol_type.as_deref().unwrap_or(""));
                value.put_i32(record.generation);
                put_nullable(&mut value, record.protocol.as_deref());
                put_nullable(&mut value, record.leader.as_ref().map(|l| l.0.as_str()));
                value.put_i64(now_ms);
                value.put_i32(record.members.len() as i32);
                for member in &record.members {
                    put_string(&mut value, &member.member_id.0);
                    put_nullable(&mut value, member.instance_id.as_deref());
                    put_string(&mut value, &member.client_id);
                    put_string(&mut value, &member.client_host);
                    value.put_i32(member.rebalance_timeout.as_millis() as i32);
                    value.put_i32(member.session_timeout.as_millis() as i32);
                    put_bytes(&mut value, &member.metadata);
                    put_bytes(&mut value, &member.assignment);
                }
                value.freeze()
            });
            (key.freeze(), value)
        }
    }
}

/// A reader of the fields above that fails on short input instead of panicking.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Option<()> {
        (self.0.remaining() >= n).then_some(())
    }
    fn i16(&mut self) -> Option<i16> {
        self.need(2)?;
        Some(self.0.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        self.need(4)?;
        Some(self.0.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        self.need(8)?;
        Some(self.0.get_i64())
    }
    fn nullable(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        self.need(len as usize)?;
        let raw = self.0.split_to(len as usize);
        Some(Some(String::from_utf8(raw.to_vec()).ok()?))
    }
    fn string(&mut self) -> Option<String> {
        self.nullable()?
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Vec::new());
        }
        self.need(len as usize)?;
        Some(self.0.split_to(len as usize).to_vec())
    }
}

/// One record from its key and value; `None` if it is not a record Gregor reads.
pub fn decode_record(key: Bytes, value: Option<Bytes>) -> Option<CoordinatorRecord> {
    let mut key = Reader(key);
    match key.i16()? {
        0 | 1 => {
            let group = key.string()?;
            let topic = key.string()?;
            let partition = u32::try_from(key.i32()?).ok()?;
            let offset = match value {
                None => None,
                Some(value) => Some(decode_offset(Reader(value))?),
            };
            Some(CoordinatorRecord::Offset {
                group,
                partition: (topic, partition),
                offset,
            })
        }
        2 => {
            let group = key.string()?;
            let record = match value {
                None => None,
                Some(value) => Some(decode_group(Reader(value))?),
            };
            Some(CoordinatorRecord::Group { group, record })
        }
        _ => None,
    }
}

fn decode_offset(mut value: Reader) -> Option<CommittedOffset> {
    let version = value.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let offset = u64::try_from(value.i64()?).ok()?;
    let leader_epoch = match version >= 3 {
        true => u32::try_from(value.i32()?).ok(),
        false => None,
    };
    let metadata = value.string()?;
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
    })
}

fn decode_group(mut value: Reader) -> Option<GroupRecord> {
    let version = value.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = value.string()?;
    let generation = value.i32()?;
    let protocol = value.nullable()?;
    let leader = value.nullable()?.map(MemberId);
    if version >= 2 {
        value.i64()?;
    }
    let count = value.i32()?.max(0) as usize;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = MemberId(value.string()?);
        let instance_id = match version >= 3 {
            true => value.nullable()?,
            false => None,
        };
        let client_id = value.string()?;
        let client_host = value.string()?;
        let timeouts = |v: &mut Reader| -> Option<(i32, i32)> {
            let rebalance = match version >= 1 {
                true => Some(v.i32()?),
                false => None,
            };
            let session = v.i32()?;
            Some((session, rebalance.unwrap_or(session)))
        };
        let (session, rebalance) = timeouts(&mut value)?;
        let millis = |ms: i32| Duration::from_millis(ms.max(0) as u64);
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout: millis(session),
            rebalance_timeout: millis(rebalance),
            metadata: value.bytes()?,
            assignment: value.bytes()?,
        });
    }
    Some(GroupRecord {
        generation,
        protocol_type: Some(protocol_type).filter(|t| !t.is_empty()),
        protocol,
        leader,
        members,
    })
}

/// A v2 batch of the records, one offset each, as the coordinator appends it.
pub fn encode_batch(records: &[CoordinatorRecord]) -> Bytes {
    let now = now_ms();
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let (key, value) = encode_record(record, now);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The batch's baseSequence is -1 (no producer); kafka-protocol's encoder keeps
                // records in one batch while offset - sequence stays the same.
                sequence: i as i32 - 1,
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .expect("records of known sizes encode");
    buf.freeze()
}

/// The coordinator's records of a batch; `None` if a record is not one Gregor reads (or the
/// batch does not decode).
pub fn decode_batch(batch: &Bytes) -> Option<Vec<CoordinatorRecord>> {
    let set = RecordBatchDecoder::decode(&mut batch.clone()).ok()?;
    set.records
        .into_iter()
        .map(|record| decode_record(record.key?, record.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_record() -> GroupRecord {
        GroupRecord {
            generation: 4,
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            leader: Some(MemberId("c-1-1".into())),
            members: vec![StoredMember {
                member_id: MemberId("c-1-1".into()),
                instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/10.0.0.7".into(),
                session_timeout: Duration::from_secs(45),
                rebalance_timeout: Duration::from_secs(300),
                metadata: vec![1, 2],
                assignment: vec![3],
            }],
        }
    }

    #[test]
    fn an_offset_commit_is_kafkas_key_v1_and_value_v3_byte_for_byte() {
        let record = CoordinatorRecord::Offset {
            group: "g".into(),
            partition: ("t".into(), 2),
            offset: Some(CommittedOffset {
                offset: 7,
                leader_epoch: Some(1),
                metadata: "m".into(),
            }),
        };
        let (key, value) = encode_record(&record, 0x0102);
        assert_eq!(
            key.as_ref(),
            [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2].as_slice()
        );
        let value = value.unwrap();
        let expected: &[u8] = &[
            0, 3, // version
            0, 0, 0, 0, 0, 0, 0, 7, // offset
            0, 0, 0, 1, // leader epoch
            0, 1, b'm', // metadata
            0, 0, 0, 0, 0, 0, 1, 2, // commit timestamp
        ];
        assert_eq!(value.as_ref(), expected);
        assert_eq!(decode_record(key, Some(value)), Some(record));
    }

    #[test]
    fn records_round_trip_through_a_batch_tombstones_included() {
        let records = vec![
            CoordinatorRecord::Group {
                group: "g".into(),
                record: Some(group_record()),
            },
            CoordinatorRecord::Offset {
                group: "g".into(),
                partition: ("t".into(), 0),
                offset: None,
            },
            CoordinatorRecord::Group {
                group: "h".into(),
                record: None,
            },
        ];
        let batch = encode_batch(&records);
        let stored = crate::storage::batch::KafkaBatch::new(batch.clone()).unwrap();
        stored.verify_crc().unwrap();
        assert_eq!(stored.header().record_count(), 3);
        assert_eq!(decode_batch(&batch), Some(records));
    }

    #[test]
    fn kafkas_older_group_value_versions_are_read_and_unknown_keys_are_not() {
        // GroupMetadataValue v1: no state timestamp, no instance ids.
        let mut value = BytesMut::new();
        value.put_i16(1);
        put_string(&mut value, "consumer");
        value.put_i32(2);
        put_nullable(&mut value, Some("range"));
        put_nullable(&mut value, Some("m"));
        value.put_i32(1);
        put_string(&mut value, "m");
        put_string(&mut value, "client");
        put_string(&mut value, "/127.0.0.1");
        value.put_i32(300_000);
        value.put_i32(10_000);
        put_bytes(&mut value, b"sub");
        put_bytes(&mut value, b"asg");
        let mut key = BytesMut::new();
        key.put_i16(2);
        put_string(&mut key, "g");
        let Some(CoordinatorRecord::Group {
            record: Some(record),
            ..
        }) = decode_record(key.freeze(), Some(value.freeze()))
        else {
            panic!("not read");
        };
        assert_eq!(record.generation, 2);
        assert_eq!(record.members[0].session_timeout, Duration::from_secs(10));
        assert_eq!(
            record.members[0].rebalance_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(record.members[0].assignment, b"asg".to_vec());
        let mut unknown = BytesMut::new();
        unknown.put_i16(9);
        assert_eq!(decode_record(unknown.freeze(), None), None);
        let mut short = BytesMut::new();
        short.put_i16(1);
        put_string(&mut short, "g");
        assert_eq!(decode_record(short.freeze(), None), None, "truncated key");
    }
}
