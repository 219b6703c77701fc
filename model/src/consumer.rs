//! The consumer: fetches from whoever the controller says leads, from its position onwards,
//! and records every batch it reads. A leader answers consumers only below its high watermark,
//! so everything recorded here was committed. On an error it asks again who leads; so it does
//! when a fetch gets no answer in time (the leader may have crashed, losing the held fetch),
//! up to `timeouts_max` times in a row without reading anything new.

use crate::actor::{Ctx, Out};
use crate::log::{LogEntry, ReplicaLog};
use crate::message::{FetchRequest, Msg, Timer};
use crate::types::{BrokerId, LeaderEpoch, Offset};
use stateright::actor::Id;
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerConfig {
    /// Request timeouts in a row, without progress, before the consumer stops.
    pub timeouts_max: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerState<B> {
    /// The leader and its epoch, as the last metadata said; `None` while asking.
    pub leader: Option<(BrokerId, LeaderEpoch)>,
    /// The consumer's position: the offset of the next record to read.
    pub fetch_offset: Offset,
    /// Every batch read, in order.
    pub read: Vec<LogEntry<B>>,
    /// Request timeouts since the last batch read.
    pub timeouts: u8,
}

pub fn on_start<L: ReplicaLog>(out: &mut Out<L>) -> ConsumerState<L::Batch> {
    request_metadata(out);
    ConsumerState {
        leader: None,
        fetch_offset: Offset(0),
        read: Vec::new(),
        timeouts: 0,
    }
}

pub fn on_msg<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ConsumerState<L::Batch>>,
    src: Id,
    msg: Msg<L::Batch>,
    out: &mut Out<L>,
) {
    match msg {
        Msg::MetadataResponse {
            leader: Some(leader),
            leader_epoch,
        } if state.leader.is_none() => {
            let next = state.to_mut();
            next.leader = Some((leader, leader_epoch));
            send_fetch(ctx, next, out);
        }
        Msg::FetchResponse(response) => {
            let Some((leader, _)) = state.leader else {
                return;
            };
            if Ctx::broker_actor_id(leader) != src || response.fetch_offset != state.fetch_offset {
                return;
            }
            let next = state.to_mut();
            out.cancel_timer(Timer::RequestTimeout);
            if response.error.is_some() {
                next.leader = None;
                return request_metadata(out);
            }
            for entry in response.batches {
                if entry.next_offset() > next.fetch_offset {
                    next.fetch_offset = entry.next_offset();
                    next.read.push(entry);
                    next.timeouts = 0;
                }
            }
            send_fetch(ctx, next, out);
        }
        _ => {}
    }
}

/// The fetch got no answer in time: ask who leads now, unless out of patience.
pub fn on_timeout<L: ReplicaLog>(
    config: &ConsumerConfig,
    state: &mut Cow<ConsumerState<L::Batch>>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    if *timer != Timer::RequestTimeout || state.leader.is_none() {
        return;
    }
    let next = state.to_mut();
    next.leader = None;
    next.timeouts += 1;
    if next.timeouts <= config.timeouts_max {
        request_metadata(out);
    }
}

/// The controller always answers (its own failures are out of scope): no timer needed.
fn request_metadata<L: ReplicaLog>(out: &mut Out<L>) {
    out.send(Ctx::controller_actor_id(), Msg::MetadataRequest);
}

fn send_fetch<L: ReplicaLog>(ctx: &Ctx, state: &ConsumerState<L::Batch>, out: &mut Out<L>) {
    let (leader, leader_epoch) = state.leader.expect("a known leader");
    out.send(
        Ctx::broker_actor_id(leader),
        Msg::Fetch(FetchRequest {
            replica: None,
            current_leader_epoch: ctx
                .protocol
                .variant
                .fences_leader_epoch()
                .then_some(leader_epoch),
            fetch_offset: state.fetch_offset,
            // A consumer reads below the HW: a HW past its position means records to read,
            // so the leader holds the fetch until the HW passes the position.
            high_watermark: state.fetch_offset,
        }),
    );
    out.set_timer(Timer::RequestTimeout, ctx.timeout(&Timer::RequestTimeout));
}
