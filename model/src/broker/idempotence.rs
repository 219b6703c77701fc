//! Idempotent producers at a replica: for each producer id, its epoch and its last five batches
//! (Kafka's window, `ProducerStateManager`), kept by every replica as it appends, so a new
//! leader already has it. A retried batch is recognised by its sequence numbers and answered
//! with the offset it was first written at; a gap in the sequence is refused.

use crate::log::{LogEntry, ProducerBatch, RecordBatch};
use crate::message::ErrorCode;
use crate::types::{Map, Offset, ProducerEpoch, ProducerId, Sequence};
use std::collections::VecDeque;

/// How many batches per producer a replica remembers (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const BATCHES_REMEMBERED: usize = 5;

/// A batch as remembered: its sequence numbers and where it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WrittenBatch {
    pub first_sequence: Sequence,
    pub last_sequence: Sequence,
    pub base_offset: Offset,
    /// The offset just past it: an acks=all retry waits for the HW to reach it.
    pub next_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducerEntry {
    pub epoch: ProducerEpoch,
    pub batches: VecDeque<WrittenBatch>,
}

/// What the producer table says of a batch about to be appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// Written before: answer with where it was written.
    Duplicate(WrittenBatch),
    Refuse(ErrorCode),
}

/// Every producer's entry at one replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProducerStates {
    entries: Map<ProducerId, ProducerEntry>,
}

impl ProducerStates {
    /// Rebuilt from a log's batches (after a truncation or a restart).
    pub fn rebuild<'a, B: RecordBatch + 'a>(
        entries: impl IntoIterator<Item = &'a LogEntry<B>>,
    ) -> ProducerStates {
        let mut states = ProducerStates::default();
        for entry in entries {
            states.record(entry);
        }
        states
    }

    pub fn entry(&self, producer: ProducerId) -> Option<&ProducerEntry> {
        self.entries.get(&producer)
    }

    /// Kafka's checks, in Kafka's order: an older epoch is fenced; a batch the window holds is
    /// a duplicate; a newer epoch must start its sequence at 0; the same epoch must go on
    /// where the last batch ended; an unknown producer must start at 0.
    pub fn verdict(&self, batch: ProducerBatch, record_count: u64) -> Verdict {
        let last_sequence = batch.base_sequence.after(record_count - 1);
        let Some(entry) = self.entries.get(&batch.producer_id) else {
            return match batch.base_sequence == Sequence(0) {
                true => Verdict::Append,
                false => Verdict::Refuse(ErrorCode::UnknownProducerId),
            };
        };
        if batch.producer_epoch < entry.epoch {
            return Verdict::Refuse(ErrorCode::InvalidProducerEpoch);
        }
        if batch.producer_epoch > entry.epoch {
            return match batch.base_sequence == Sequence(0) {
                true => Verdict::Append,
                false => Verdict::Refuse(ErrorCode::OutOfOrderSequenceNumber),
            };
        }
        let duplicate = entry.batches.iter().find(|written| {
            written.first_sequence == batch.base_sequence && written.last_sequence == last_sequence
        });
        if let Some(written) = duplicate {
            return Verdict::Duplicate(*written);
        }
        let expected = entry
            .batches
            .back()
            .map_or(Sequence(0), |last| last.last_sequence.after(1));
        match batch.base_sequence == expected {
            true => Verdict::Append,
            false => Verdict::Refuse(ErrorCode::OutOfOrderSequenceNumber),
        }
    }

    /// Remembers an appended batch (leaders and followers alike).
    pub fn record<B: RecordBatch>(&mut self, entry: &LogEntry<B>) {
        let Some(batch) = entry.batch.producer() else {
            return;
        };
        let written = WrittenBatch {
            first_sequence: batch.base_sequence,
            last_sequence: batch.base_sequence.after(entry.batch.record_count() - 1),
            base_offset: entry.base_offset,
            next_offset: entry.next_offset(),
        };
        let producer = self
            .entries
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.producer_epoch,
                batches: VecDeque::new(),
            });
        if batch.producer_epoch > producer.epoch {
            producer.epoch = batch.producer_epoch;
            producer.batches.clear();
        }
        producer.batches.push_back(written);
        if producer.batches.len() > BATCHES_REMEMBERED {
            producer.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Record;
    use crate::types::LeaderEpoch;

    fn batch(epoch: u16, sequence: u32) -> ProducerBatch {
        ProducerBatch {
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(epoch),
            base_sequence: Sequence(sequence),
        }
    }

    fn written(value: u8, offset: u64, producer: ProducerBatch) -> LogEntry<Record> {
        LogEntry {
            base_offset: Offset(offset),
            leader_epoch: LeaderEpoch(0),
            batch: Record::new(value).with_producer(producer),
        }
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_with_its_first_offset() {
        let mut states = ProducerStates::default();
        assert_eq!(states.verdict(batch(0, 0), 1), Verdict::Append);
        states.record(&written(1, 4, batch(0, 0)));
        match states.verdict(batch(0, 0), 1) {
            Verdict::Duplicate(first) => assert_eq!(first.base_offset, Offset(4)),
            other => panic!("{other:?}"),
        }
        assert_eq!(states.verdict(batch(0, 1), 1), Verdict::Append);
    }

    #[test]
    fn gaps_old_epochs_and_unknown_producers_are_refused() {
        let mut states = ProducerStates::default();
        assert_eq!(
            states.verdict(batch(0, 3), 1),
            Verdict::Refuse(ErrorCode::UnknownProducerId)
        );
        states.record(&written(1, 0, batch(1, 0)));
        assert_eq!(
            states.verdict(batch(1, 2), 1),
            Verdict::Refuse(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            states.verdict(batch(0, 1), 1),
            Verdict::Refuse(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            states.verdict(batch(2, 0), 1),
            Verdict::Append,
            "KIP-360 bump"
        );
        assert_eq!(
            states.verdict(batch(2, 1), 1),
            Verdict::Refuse(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn the_window_holds_the_last_five_batches() {
        let mut states = ProducerStates::default();
        for sequence in 0..7 {
            states.record(&written(
                sequence as u8,
                u64::from(sequence),
                batch(0, sequence),
            ));
        }
        let entry = states.entry(ProducerId(7)).unwrap();
        assert_eq!(entry.batches.len(), BATCHES_REMEMBERED);
        assert!(matches!(
            states.verdict(batch(0, 6), 1),
            Verdict::Duplicate(_)
        ));
        assert_eq!(
            states.verdict(batch(0, 1), 1),
            Verdict::Refuse(ErrorCode::OutOfOrderSequenceNumber),
            "too old to be recognised"
        );
    }
}
