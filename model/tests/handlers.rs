//! Handler tests: one step of one actor, and the exact commands it emits (specs/protocol.md,
//! "Messages and handler rules").

use gregor_model::actor::{ActorState, Out, Storage};
use gregor_model::broker::{BrokerState, BrokerStorage, Role};
use gregor_model::log::{EpochEndOffset, LogEntry, Record, ReplicaLog};
use gregor_model::message::{ErrorCode, FetchRequest, FetchResponse, LeaderAndIsr, Msg, Timer};
use gregor_model::model::{CheckConfig, ModelActor, ModelLog};
use gregor_model::types::{
    Acks, BrokerId, CrashKind, LeaderEpoch, Offset, PartitionEpoch, Variant,
};
use stateright::actor::{Actor, Command, Id};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// A command, comparable (stateright's `Command` is not `PartialEq`).
#[derive(Debug, PartialEq)]
enum Cmd {
    Send(usize, Msg<Record>),
    SetTimer(Timer),
    CancelTimer(Timer),
    Save(Storage<Vec<LogEntry<Record>>>),
}

fn commands(out: Out<ModelLog>) -> Vec<Cmd> {
    out.into_iter()
        .map(|command| match command {
            Command::Send(dst, msg) => Cmd::Send(usize::from(dst), msg),
            Command::SetTimer(timer, _) => Cmd::SetTimer(timer),
            Command::CancelTimer(timer) => Cmd::CancelTimer(timer),
            Command::Save(storage) => Cmd::Save(storage),
            Command::ChooseRandom(..) => panic!("the protocol draws no randomness"),
        })
        .collect()
}

fn config(variant: Variant) -> CheckConfig {
    CheckConfig {
        variant,
        ..CheckConfig::default()
    }
}

/// The actors of a 3-broker cluster: 0 controller, 1..=3 brokers, 4 producer, 5 consumer.
fn actors(config: &CheckConfig) -> Vec<ModelActor> {
    config.clone().into_model().actors().to_vec()
}

fn isr(members: &[u32]) -> BTreeSet<BrokerId> {
    members.iter().map(|b| BrokerId(*b)).collect()
}

fn broker_state(state: &ActorState<ModelLog>) -> &BrokerState<ModelLog> {
    state.broker().expect("a broker")
}

/// Starts an actor (first boot) and returns its state, discarding what it emits.
fn started(actor: &ModelActor, index: usize) -> ActorState<ModelLog> {
    actor.on_start(Id::from(index), &None, &mut Out::new())
}

/// Delivers `msg` from `src` and returns the next state and the commands.
fn deliver(
    actor: &ModelActor,
    index: usize,
    state: &ActorState<ModelLog>,
    src: usize,
    msg: Msg<Record>,
) -> (ActorState<ModelLog>, Vec<Cmd>) {
    let mut next = Cow::Borrowed(state);
    let mut out = Out::new();
    actor.on_msg(Id::from(index), &mut next, Id::from(src), msg, &mut out);
    (next.into_owned(), commands(out))
}

fn fire(
    actor: &ModelActor,
    index: usize,
    state: &ActorState<ModelLog>,
    timer: Timer,
) -> (ActorState<ModelLog>, Vec<Cmd>) {
    let mut next = Cow::Borrowed(state);
    let mut out = Out::new();
    actor.on_timeout(Id::from(index), &mut next, &timer, &mut out);
    (next.into_owned(), commands(out))
}

fn broker_storage(log: &[LogEntry<Record>], high_watermark: u64, epoch: u32) -> Cmd {
    Cmd::Save(Storage::Broker(BrokerStorage {
        log: log.to_vec(),
        high_watermark: Offset(high_watermark),
        leader_epoch: LeaderEpoch(epoch),
        high_watermark_lowered: false,
        broker_epoch: 0,
    }))
}

fn entry(record: u8, offset: u64, epoch: u32) -> LogEntry<Record> {
    LogEntry {
        base_offset: Offset(offset),
        leader_epoch: LeaderEpoch(epoch),
        batch: Record(record),
    }
}

#[test]
fn first_boot_followers_fetch_from_broker_1() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let mut out = Out::new();
    actors[2].on_start(Id::from(2), &None, &mut out);
    assert_eq!(
        commands(out),
        vec![
            Cmd::Send(
                1,
                Msg::Fetch(FetchRequest {
                    replica: Some(BrokerId(2)),
                    current_leader_epoch: Some(LeaderEpoch(1)),
                    fetch_offset: Offset(0),
                    high_watermark: Offset(0),
                })
            ),
            broker_storage(&[], 0, 1),
        ]
    );
}

/// Broker 1, leading epoch 1 at first boot, handles the producer's record 1 with acks=all.
fn produce_to_first_leader(actors: &[ModelActor]) -> (ActorState<ModelLog>, Vec<Cmd>) {
    let leader = started(&actors[1], 1);
    let produce = Msg::Produce {
        sequence: 0,
        acks: Acks::All,
        batch: Record(1),
    };
    deliver(&actors[1], 1, &leader, 4, produce)
}

#[test]
fn leader_appends_acks_all_produce_and_waits_for_the_high_watermark() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let (next, commands) = produce_to_first_leader(&actors);
    assert_eq!(
        commands,
        vec![
            Cmd::SetTimer(Timer::ReplicaLag(BrokerId(2))),
            Cmd::SetTimer(Timer::ReplicaLag(BrokerId(3))),
            broker_storage(&[entry(1, 0, 1)], 0, 1),
        ],
        "no answer yet: acks=all waits for the followers"
    );
    let leader_state = broker_state(&next).leader_state().unwrap();
    assert_eq!(leader_state.pending_produces.len(), 1);
}

#[test]
fn follower_fetches_advance_the_high_watermark_and_answer_the_producer() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let (leader, _) = produce_to_first_leader(&actors);
    let fetch = |replica: u32| {
        Msg::Fetch(FetchRequest {
            replica: Some(BrokerId(replica)),
            current_leader_epoch: Some(LeaderEpoch(1)),
            fetch_offset: Offset(1),
            high_watermark: Offset(0),
        })
    };
    // Broker 2 has the record: the HW cannot pass it until broker 3 has it too.
    let (leader, commands) = deliver(&actors[1], 1, &leader, 2, fetch(2));
    assert_eq!(
        commands,
        vec![
            Cmd::CancelTimer(Timer::ReplicaLag(BrokerId(2))),
            Cmd::SetTimer(Timer::ReplicaLag(BrokerId(3)))
        ]
    );
    assert_eq!(broker_state(&leader).high_watermark, Offset(0));
    // Broker 3 has it: the HW is 1, the producer is answered, broker 2's held fetch too.
    let (leader, commands) = deliver(&actors[1], 1, &leader, 3, fetch(3));
    let response = |high_watermark| {
        Msg::FetchResponse(FetchResponse {
            leader_epoch: LeaderEpoch(1),
            fetch_offset: Offset(1),
            high_watermark: Offset(high_watermark),
            log_end_offset: None,
            batches: vec![],
            error: None,
        })
    };
    assert_eq!(
        commands,
        vec![
            Cmd::CancelTimer(Timer::ReplicaLag(BrokerId(2))),
            Cmd::CancelTimer(Timer::ReplicaLag(BrokerId(3))),
            Cmd::Send(
                4,
                Msg::ProduceResponse {
                    sequence: 0,
                    result: Ok(Offset(0))
                }
            ),
            Cmd::Send(2, response(1)),
            broker_storage(&[entry(1, 0, 1)], 1, 1),
            Cmd::Send(3, response(1)),
        ]
    );
    assert_eq!(broker_state(&leader).high_watermark, Offset(1));
}

#[test]
fn kip320_leader_fences_a_fetch_from_an_older_epoch_and_changes_nothing() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let leader = started(&actors[1], 1);
    let stale = Msg::Fetch(FetchRequest {
        replica: Some(BrokerId(2)),
        current_leader_epoch: Some(LeaderEpoch(0)),
        fetch_offset: Offset(0),
        high_watermark: Offset(0),
    });
    let (next, commands) = deliver(&actors[1], 1, &leader, 2, stale);
    assert_eq!(next, leader);
    assert_eq!(
        commands,
        vec![Cmd::Send(
            2,
            Msg::FetchResponse(FetchResponse {
                leader_epoch: LeaderEpoch(1),
                fetch_offset: Offset(0),
                high_watermark: Offset(0),
                log_end_offset: None,
                batches: vec![],
                error: Some(ErrorCode::FencedLeaderEpoch),
            })
        )]
    );
}

#[test]
fn follower_appends_fetched_batches_and_adopts_the_leaders_high_watermark() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let follower = started(&actors[2], 2);
    let response = Msg::FetchResponse(FetchResponse {
        leader_epoch: LeaderEpoch(1),
        fetch_offset: Offset(0),
        high_watermark: Offset(1),
        log_end_offset: None,
        batches: vec![entry(1, 0, 1), entry(2, 1, 1)],
        error: None,
    });
    let (next, commands) = deliver(&actors[2], 2, &follower, 1, response);
    assert_eq!(
        commands,
        vec![
            Cmd::Send(
                1,
                Msg::Fetch(FetchRequest {
                    replica: Some(BrokerId(2)),
                    current_leader_epoch: Some(LeaderEpoch(1)),
                    fetch_offset: Offset(2),
                    high_watermark: Offset(1),
                })
            ),
            broker_storage(&[entry(1, 0, 1), entry(2, 1, 1)], 1, 1),
        ]
    );
    assert_eq!(broker_state(&next).high_watermark, Offset(1));
}

#[test]
fn controller_elects_the_next_isr_member_when_the_leaders_session_expires() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let controller = started(&actors[0], 0);
    let (_, commands) = fire(
        &actors[0],
        0,
        &controller,
        Timer::SessionExpiry(BrokerId(1)),
    );
    let decision = LeaderAndIsr {
        leader: Some(BrokerId(2)),
        leader_epoch: LeaderEpoch(2),
        isr: isr(&[2, 3]),
        partition_epoch: PartitionEpoch(2),
    };
    let metadata = Msg::Metadata {
        leader: Some(BrokerId(2)),
        leader_epoch: LeaderEpoch(2),
    };
    let saved = match &commands[0] {
        Cmd::Save(Storage::Controller(saved)) => saved.clone(),
        other => panic!("the decision is saved first, got {other:?}"),
    };
    assert_eq!(saved.partition, decision);
    assert!(!saved.is_alive(BrokerId(1)));
    assert_eq!(
        commands[1..],
        [
            Cmd::Send(1, Msg::LeaderAndIsr(decision.clone())),
            Cmd::Send(2, Msg::LeaderAndIsr(decision.clone())),
            Cmd::Send(3, Msg::LeaderAndIsr(decision)),
            Cmd::Send(4, metadata.clone()),
            Cmd::Send(5, metadata),
            Cmd::Send(1, Msg::SessionExpired { broker_epoch: 0 }),
        ]
    );
}

#[test]
fn controller_refuses_an_alter_partition_with_a_stale_partition_epoch() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let controller = started(&actors[0], 0);
    let stale = Msg::AlterPartition {
        leader_epoch: LeaderEpoch(1),
        partition_epoch: PartitionEpoch(0),
        isr: isr(&[1, 2]),
    };
    let (next, commands) = deliver(&actors[0], 0, &controller, 1, stale);
    assert_eq!(next, controller);
    assert_eq!(
        commands,
        vec![Cmd::Send(
            1,
            Msg::AlterPartitionResponse {
                leader_epoch: LeaderEpoch(1),
                result: Err(ErrorCode::InvalidUpdateVersion),
            }
        )]
    );
}

/// Broker `index` restarted with a log of (record, epoch) batches and a HW, then told by the
/// controller to follow `leader` (or lead) in `epoch`.
struct Restart {
    variant: Variant,
    index: usize,
    log: &'static [(u8, u32)],
    high_watermark: u64,
}

impl Restart {
    fn then(self, decision: LeaderAndIsr) -> (ModelActor, ActorState<ModelLog>, Vec<Cmd>) {
        let actor = actors(&config(self.variant)).swap_remove(self.index);
        let mut log = ModelLog::open(&CrashKind::Process, None);
        for (record, epoch) in self.log {
            log.append(LeaderEpoch(*epoch), Record(*record));
        }
        let saved = Storage::Broker(BrokerStorage {
            leader_epoch: log.last_epoch().unwrap_or_default(),
            log: log.durable(),
            high_watermark: Offset(self.high_watermark),
            high_watermark_lowered: false,
            broker_epoch: 0,
        });
        let id = Id::from(self.index);
        let restarted = actor.on_start(id, &Some(saved), &mut Out::new());
        let (state, commands) = deliver(
            &actor,
            self.index,
            &restarted,
            0,
            Msg::LeaderAndIsr(decision),
        );
        (actor, state, commands)
    }
}

/// A follower whose log is [1@e1, 2@e2] and which is told to follow broker 3 in epoch 3.
fn follower_with_divergent_tail(variant: Variant) -> (ModelActor, ActorState<ModelLog>, Vec<Cmd>) {
    let restart = Restart {
        variant,
        index: 2,
        log: &[(1, 1), (2, 2)],
        high_watermark: 1,
    };
    restart.then(LeaderAndIsr {
        leader: Some(BrokerId(3)),
        leader_epoch: LeaderEpoch(3),
        isr: isr(&[2, 3]),
        partition_epoch: PartitionEpoch(4),
    })
}

#[test]
fn hw_truncation_follower_truncates_to_its_high_watermark() {
    let (_, state, commands) = follower_with_divergent_tail(Variant::HwTruncation);
    assert_eq!(broker_state(&state).log.entries(), &[entry(1, 0, 1)]);
    assert!(
        matches!(&commands[..], [Cmd::CancelTimer(Timer::FetchBackoff), Cmd::Send(3, Msg::Fetch(f)), Cmd::Save(_)] if f.fetch_offset == Offset(1))
    );
}

#[test]
fn kip279_follower_asks_again_until_its_log_ends_in_an_epoch_the_leader_knows() {
    let (actor, state, commands) = follower_with_divergent_tail(Variant::Kip279);
    assert_eq!(
        commands[..2],
        [
            Cmd::CancelTimer(Timer::FetchBackoff),
            Cmd::Send(
                3,
                Msg::OffsetForLeaderEpoch {
                    current_leader_epoch: None,
                    leader_epoch: LeaderEpoch(2),
                }
            ),
        ]
    );
    // The leader never had epoch 2: its largest epoch <= 2 is 1, which ends at offset 1.
    let answer = Msg::OffsetForLeaderEpochResponse {
        leader_epoch: LeaderEpoch(3),
        requested_epoch: LeaderEpoch(2),
        result: Ok(EpochEndOffset {
            leader_epoch: Some(LeaderEpoch(1)),
            end_offset: Offset(1),
        }),
    };
    let (state, commands) = deliver(&actor, 2, &state, 3, answer);
    assert_eq!(broker_state(&state).log.entries(), &[entry(1, 0, 1)]);
    assert!(
        matches!(&commands[..], [Cmd::Send(3, Msg::Fetch(f)), Cmd::Save(_)] if f.fetch_offset == Offset(1))
    );
    assert!(matches!(broker_state(&state).role, Role::Follower(_)));
}

#[test]
fn kip101_leader_answers_with_the_next_epochs_start_even_for_an_epoch_it_never_had() {
    let restart = Restart {
        variant: Variant::Kip101,
        index: 1,
        log: &[(1, 1), (3, 3)],
        high_watermark: 0,
    };
    let (actor, leader, _) = restart.then(LeaderAndIsr {
        leader: Some(BrokerId(1)),
        leader_epoch: LeaderEpoch(4),
        isr: isr(&[1, 2]),
        partition_epoch: PartitionEpoch(5),
    });
    let question = Msg::OffsetForLeaderEpoch {
        current_leader_epoch: None,
        leader_epoch: LeaderEpoch(2),
    };
    let (_, commands) = deliver(&actor, 1, &leader, 2, question);
    assert_eq!(
        commands,
        vec![Cmd::Send(
            2,
            Msg::OffsetForLeaderEpochResponse {
                leader_epoch: LeaderEpoch(4),
                requested_epoch: LeaderEpoch(2),
                result: Ok(EpochEndOffset {
                    leader_epoch: Some(LeaderEpoch(2)),
                    end_offset: Offset(1),
                }),
            }
        )]
    );
}

#[test]
fn producer_retries_at_the_new_leader_when_the_leader_changes_mid_request() {
    let config = config(Variant::Kip320);
    let actors = actors(&config);
    let producer = started(&actors[4], 4);
    let metadata = Msg::Metadata {
        leader: Some(BrokerId(2)),
        leader_epoch: LeaderEpoch(2),
    };
    let (_, commands) = deliver(&actors[4], 4, &producer, 0, metadata);
    assert_eq!(
        commands,
        vec![Cmd::Send(
            2,
            Msg::Produce {
                sequence: 1,
                acks: Acks::All,
                batch: Record(1),
            }
        )]
    );
}
