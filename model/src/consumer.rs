//! The consumer: fetches from the leader it knows, from its position onwards, and records every
//! batch it reads. A leader answers consumers only below its high watermark, so everything
//! recorded here was committed. After an error it backs off and fetches again; a leader change
//! makes it fetch from the new leader at once (the old one may have crashed holding its fetch).

use crate::actor::{Ctx, Out};
use crate::log::{LogEntry, ReplicaLog};
use crate::message::{FetchRequest, Msg, Timer};
use crate::types::{BrokerId, LeaderEpoch, Offset};
use stateright::actor::Id;
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerState<B> {
    /// The leader and its epoch, as the latest metadata said.
    pub leader: Option<(BrokerId, LeaderEpoch)>,
    /// The consumer's position: the offset of the next record to read.
    pub fetch_offset: Offset,
    /// Every batch read, in order.
    pub read: Vec<LogEntry<B>>,
}

/// The cluster as first formed: broker 1 leads epoch 1.
pub fn on_start<L: ReplicaLog>(ctx: &Ctx, out: &mut Out<L>) -> ConsumerState<L::Batch> {
    let state = ConsumerState {
        leader: Some((BrokerId(1), LeaderEpoch(1))),
        fetch_offset: Offset(0),
        read: Vec::new(),
    };
    send_fetch(ctx, &state, out);
    state
}

pub fn on_msg<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ConsumerState<L::Batch>>,
    src: Id,
    msg: Msg<L::Batch>,
    out: &mut Out<L>,
) {
    match msg {
        Msg::Metadata {
            leader,
            leader_epoch,
        } if src == Ctx::controller_actor_id()
            && state.leader.is_none_or(|(_, known)| known < leader_epoch) =>
        {
            let next = state.to_mut();
            next.leader = leader.map(|leader| (leader, leader_epoch));
            if next.leader.is_some() {
                send_fetch(ctx, next, out);
            }
        }
        Msg::FetchResponse(response) => {
            let Some((leader, _)) = state.leader else {
                return;
            };
            if Ctx::broker_actor_id(leader) != src || response.fetch_offset != state.fetch_offset {
                return;
            }
            if response.error.is_some() {
                out.set_timer(Timer::RetryBackoff, ctx.timeout(&Timer::RetryBackoff));
                return;
            }
            let next = state.to_mut();
            for entry in response.batches {
                if entry.next_offset() > next.fetch_offset {
                    next.fetch_offset = entry.next_offset();
                    next.read.push(entry);
                }
            }
            send_fetch(ctx, next, out);
        }
        _ => {}
    }
}

pub fn on_timeout<L: ReplicaLog>(
    ctx: &Ctx,
    state: &mut Cow<ConsumerState<L::Batch>>,
    timer: &Timer,
    out: &mut Out<L>,
) {
    if *timer == Timer::RetryBackoff && state.leader.is_some() {
        send_fetch(ctx, state, out);
    }
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
}
