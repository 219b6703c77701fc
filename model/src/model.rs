//! The checked system: a controller, `brokers` brokers, one producer and (unless left out) one
//! consumer over a network, with the bounds that keep the state space finite, and the properties that
//! `specs/protocol.md` defines word for word (section "Properties").

use crate::actor::{ActorState, Ctx, GregorActor, Storage};
use crate::broker::{BrokerState, Role};
use crate::consumer::ConsumerState;
use crate::controller::ControllerState;
use crate::log::{MemoryLog, Record, ReplicaLog};
use crate::producer::{ProducerConfig, ProducerState};
use crate::types::{
    Acks, BrokerId, CrashKind, FlushPolicy, LeaderEpoch, Offset, ProtocolConfig, Variant,
};
use serde::{Deserialize, Serialize};
use stateright::actor::{ActorModel, ActorModelState, Id, LossyNetwork, Network};
use stateright::{Path, Property};
use std::sync::Arc;

/// The log the model checks: tiny records in memory.
pub type ModelLog = MemoryLog<Record>;
pub type ModelActor = GregorActor<ModelLog>;
pub type ModelState = ActorModelState<ModelActor, ()>;

/// How messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkKind {
    /// Per-link FIFO, as TCP: what the runtime's transport does.
    Ordered,
    /// Any message may overtake any other.
    Unordered,
}

/// One configuration of the checked system: `gregor check`'s flags.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckConfig {
    pub brokers: u32,
    pub records: u8,
    pub acks: Acks,
    pub min_insync_replicas: u32,
    pub variant: Variant,
    pub unclean_leader_election: bool,
    /// How many brokers may be down at the same time.
    pub crashes: usize,
    pub crash: CrashKind,
    pub flush: FlushPolicy,
    /// The largest leader epoch explored.
    pub max_epoch: u32,
    /// The largest partition epoch explored (each leader or ISR change bumps it).
    pub max_partition_epoch: u32,
    /// The most broker registrations after the first boot explored (by restart, or after a
    /// session expiry), all brokers together.
    pub max_registrations: u32,
    pub network: NetworkKind,
    pub lossy: bool,
    /// Whether the controller may expire the session of a broker that is up (slow or cut off),
    /// which goes on as a zombie; otherwise only the sessions of crashed brokers expire.
    pub zombies: bool,
    /// The producer's attempts per record, the first included.
    pub attempts_max: u8,
    /// Consumers: 1, or 0 to leave the consumer out (a smaller state space for checks that
    /// are about the replicas' logs only).
    pub consumers: u8,
}

impl Default for CheckConfig {
    /// The safe default: Kafka today (KIP-320), 3 brokers, acks=all, min ISR 2, one broker
    /// down at a time, process crashes.
    fn default() -> Self {
        CheckConfig {
            brokers: 3,
            records: 2,
            acks: Acks::All,
            min_insync_replicas: 2,
            variant: Variant::Kip320,
            unclean_leader_election: false,
            crashes: 1,
            crash: CrashKind::Process,
            flush: FlushPolicy::Never,
            max_epoch: 2,
            max_partition_epoch: 3,
            max_registrations: 0,
            network: NetworkKind::Ordered,
            lossy: false,
            zombies: false,
            attempts_max: 2,
            consumers: 1,
        }
    }
}

/// Every property: its expectation and name, in the order reports list them.
pub const ALWAYS: [&str; 7] = [
    "leader_in_isr",
    "strong_isr",
    "log_matching",
    "acked_writes_survive",
    "consistent_read",
    "hw_never_decreases",
    "one_leader_per_epoch",
];

impl CheckConfig {
    pub fn protocol(&self) -> ProtocolConfig {
        ProtocolConfig {
            replication_factor: self.brokers,
            min_insync_replicas: self.min_insync_replicas,
            variant: self.variant,
            unclean_leader_election: self.unclean_leader_election,
            flush: self.flush,
            fetch_batches_max: self.records as usize,
        }
    }

    /// The producer's records: 1, 2, ... (0 never appears, so it can mean "none").
    pub fn batches(&self) -> Vec<Record> {
        (1..=self.records).map(Record).collect()
    }

    /// The `Sometimes` properties that apply: with acks=0 nothing is ever acknowledged.
    pub fn sometimes(&self) -> Vec<&'static str> {
        let mut names = vec!["record_committed"];
        if self.acks != Acks::None {
            names.push("record_acked");
        }
        names.extend(["leader_changed", "isr_shrunk"]);
        if self.consumers > 0 {
            names.push("consumer_read_record");
        }
        names
    }

    /// Builds the model: actors, network, crashes, bounds and properties.
    pub fn into_model(self) -> Model {
        let ctx = Ctx {
            consumer: self.consumers > 0,
            ..Ctx::new(self.protocol())
        };
        let mut actors = vec![GregorActor::Controller(ctx.clone())];
        for id in ctx.protocol.replicas() {
            actors.push(GregorActor::Broker {
                ctx: ctx.clone(),
                id,
                log_config: self.crash,
            });
        }
        actors.push(GregorActor::Producer {
            ctx: ctx.clone(),
            config: ProducerConfig {
                batches: self.batches(),
                acks: self.acks,
                attempts_max: self.attempts_max,
            },
        });
        if ctx.consumer {
            actors.push(GregorActor::Consumer(ctx));
        }
        let network = match self.network {
            NetworkKind::Ordered => Network::new_ordered([]),
            NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
        };
        let lossy = if self.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        };
        let system = ActorModel::new(self.clone(), ())
            .actors(actors)
            .init_network(network)
            .lossy_network(lossy)
            .max_crashes(self.crashes);
        Model { cfg: self, system }
    }
}

/// The checked system: stateright's actor model of the actors above, with the bounds and the
/// properties, and one rule of the network that stateright's lacks: a message to a crashed
/// broker is lost, in flight when it crashed or sent while it is down, as TCP loses what was
/// bound for a host that died (its connections break; a new process gets new connections).
#[derive(Clone)]
pub struct Model {
    pub cfg: CheckConfig,
    system: ActorModel<ModelActor, CheckConfig, ()>,
}

impl Model {
    /// The actors, indexed by actor id: the controller, the brokers, the producer, the consumer.
    pub fn actors(&self) -> &[ModelActor] {
        &self.system.actors
    }
}

pub type ModelAction = <ActorModel<ModelActor, CheckConfig, ()> as stateright::Model>::Action;

impl stateright::Model for Model {
    type State = ModelState;
    type Action = ModelAction;

    fn init_states(&self) -> Vec<ModelState> {
        self.system.init_states()
    }

    fn actions(&self, state: &ModelState, actions: &mut Vec<ModelAction>) {
        self.system.actions(state, actions)
    }

    fn next_state(&self, last_state: &ModelState, action: ModelAction) -> Option<ModelState> {
        let mut next = self.system.next_state(last_state, action)?;
        lose_messages_to_crashed(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &ModelAction) -> String {
        self.system.format_action(action)
    }

    fn format_step(&self, last_state: &ModelState, action: ModelAction) -> Option<String> {
        self.system.format_step(last_state, action)
    }

    fn as_svg(&self, path: Path<ModelState, ModelAction>) -> Option<String> {
        self.system.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let always = ALWAYS
            .into_iter()
            .map(|name| Property::always(name, always_property(name)));
        let sometimes = self
            .cfg
            .sometimes()
            .into_iter()
            .map(|name| Property::sometimes(name, sometimes_property(name)));
        always.chain(sometimes).collect()
    }

    fn within_boundary(&self, state: &ModelState) -> bool {
        within_boundary(&self.cfg, state)
    }
}

/// Drops every message whose destination is down.
fn lose_messages_to_crashed(state: &mut ModelState) {
    if !state.crashed.contains(&true) {
        return;
    }
    let crashed = &state.crashed;
    let up = |id: Id| !crashed[usize::from(id)];
    match &mut state.network {
        Network::Ordered(flows) => {
            // (Not `iter_all`: stateright 0.31's iterator over ordered flows never ends.)
            if !flows.keys().all(|(_, dst)| up(*dst)) {
                flows.retain(|(_, dst), _| up(*dst));
            }
        }
        network => {
            if network.iter_all().all(|envelope| up(envelope.dst)) {
                return;
            }
            let kept: Vec<_> = network
                .iter_all()
                .filter(|envelope| up(envelope.dst))
                .map(|envelope| envelope.to_cloned_msg())
                .collect();
            *network = match network {
                Network::UnorderedDuplicating(..) => Network::new_unordered_duplicating(kept),
                _ => Network::new_unordered_nonduplicating(kept),
            };
        }
    }
}

type Condition = fn(&Model, &ModelState) -> bool;

fn always_property(name: &str) -> Condition {
    match name {
        "leader_in_isr" => leader_in_isr,
        "strong_isr" => strong_isr,
        "log_matching" => log_matching,
        "acked_writes_survive" => acked_writes_survive,
        "consistent_read" => consistent_read,
        "hw_never_decreases" => hw_never_decreases,
        "one_leader_per_epoch" => one_leader_per_epoch,
        _ => unreachable!("unknown property {name}"),
    }
}

fn sometimes_property(name: &str) -> Condition {
    match name {
        "record_committed" => record_committed,
        "record_acked" => record_acked,
        "leader_changed" => leader_changed,
        "isr_shrunk" => isr_shrunk,
        "consumer_read_record" => consumer_read_record,
        _ => unreachable!("unknown property {name}"),
    }
}

/// Only brokers crash (the controller's own replication is out of scope; clients that crash
/// forget what they must report), and epochs stay within their bounds.
fn within_boundary(config: &CheckConfig, state: &ModelState) -> bool {
    let brokers = 1..=config.brokers as usize;
    let only_brokers_crash = state
        .crashed
        .iter()
        .enumerate()
        .all(|(index, crashed)| !crashed || brokers.contains(&index));
    let registrations: u32 = state
        .actor_storages
        .iter()
        .map(|storage| match storage {
            Some(Storage::Broker(broker)) => broker.broker_epoch,
            _ => 0,
        })
        .sum();
    let controller = controller(state);
    let partition = &controller.partition;
    let zombie_free = config.zombies || !has_zombie(controller, state);
    only_brokers_crash
        && zombie_free
        && registrations <= config.max_registrations
        && partition.leader_epoch.0 <= config.max_epoch
        && partition.partition_epoch.0 <= config.max_partition_epoch
}

/// A broker that is up although the controller expired the session of this very broker epoch.
fn has_zombie(controller: &ControllerState, state: &ModelState) -> bool {
    live_brokers(state).any(|(id, broker)| {
        controller
            .brokers
            .get(&id)
            .is_some_and(|r| !r.alive && r.broker_epoch == broker.broker_epoch)
    })
}

/// The state the depth-first checker remembers in place of `state` (stateright's `symmetry_fn`):
/// `state` with every crashed broker's in-memory state blanked. A crashed actor receives
/// nothing, has no timers, and on recovery starts over from its storage alone; no property
/// reads it. So two states that differ only there have the same futures and the same property
/// values, and the checker explores one of them. The checker goes on from `state` itself, so
/// counterexamples are unchanged.
pub fn representative(state: &ModelState) -> ModelState {
    let mut representative = state.clone();
    for (index, crashed) in state.crashed.iter().enumerate() {
        if *crashed && state.actor_states[index].broker().is_some() {
            representative.actor_states[index] = Arc::new(ActorState::Broker(down()));
        }
    }
    representative
}

/// The one state `representative` puts in place of any crashed broker's: an empty log, no role.
fn down() -> BrokerState<ModelLog> {
    BrokerState {
        log: ModelLog::open(&CrashKind::Process, None),
        high_watermark: Offset(0),
        leader_epoch: LeaderEpoch(0),
        role: Role::Unassigned,
        high_watermark_lowered: false,
        broker_epoch: 0,
    }
}

pub fn controller(state: &ModelState) -> &ControllerState {
    match &*state.actor_states[0] {
        ActorState::Controller(controller) => controller,
        _ => unreachable!("actor 0 is the controller"),
    }
}

/// Every broker that is up, with its id.
pub fn live_brokers(
    state: &ModelState,
) -> impl Iterator<Item = (BrokerId, &BrokerState<ModelLog>)> {
    state
        .actor_states
        .iter()
        .enumerate()
        .filter(|(index, _)| !state.crashed[*index])
        .filter_map(|(index, actor)| actor.broker().map(|b| (BrokerId(index as u32), b)))
}

pub fn producer(state: &ModelState) -> &ProducerState {
    state
        .actor_states
        .iter()
        .find_map(|actor| match &**actor {
            ActorState::Producer(producer) => Some(producer),
            _ => None,
        })
        .expect("a producer")
}

/// The consumer, unless the configuration leaves it out.
pub fn consumer(state: &ModelState) -> Option<&ConsumerState<Record>> {
    state.actor_states.iter().find_map(|actor| match &**actor {
        ActorState::Consumer(consumer) => Some(consumer),
        _ => None,
    })
}

/// The broker the controller names as leader, if it is up.
fn current_leader(state: &ModelState) -> Option<&BrokerState<ModelLog>> {
    let leader = controller(state).partition.leader?;
    live_brokers(state)
        .find(|(id, _)| *id == leader)
        .map(|(_, broker)| broker)
}

/// Whether two logs hold the same records, with the same epochs, at every offset below `end`.
fn same_below(a: &ModelLog, b: &ModelLog, end: Offset) -> bool {
    (0..end.0).all(|offset| a.entry_at(Offset(offset)) == b.entry_at(Offset(offset)))
}

/// If the controller names a leader, it is in the controller's ISR.
pub fn leader_in_isr(_: &Model, state: &ModelState) -> bool {
    let partition = &controller(state).partition;
    partition
        .leader
        .is_none_or(|leader| partition.isr.contains(&leader))
}

/// For any replica that believes it is leader with HW h, every live member of the controller's
/// ISR holds the same records as that leader at every offset below h.
pub fn strong_isr(_: &Model, state: &ModelState) -> bool {
    let isr = &controller(state).partition.isr;
    live_brokers(state)
        .filter(|(_, broker)| matches!(broker.role, Role::Leader(_)))
        .all(|(_, leader)| {
            live_brokers(state)
                .filter(|(id, _)| isr.contains(id))
                .all(|(_, member)| same_below(&leader.log, &member.log, leader.high_watermark))
        })
}

/// Any two replicas hold the same records at every offset below the smaller of their HWs.
pub fn log_matching(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).all(|(a_id, a)| {
        live_brokers(state)
            .filter(|(b_id, _)| *b_id > a_id)
            .all(|(_, b)| same_below(&a.log, &b.log, a.high_watermark.min(b.high_watermark)))
    })
}

/// Every record acknowledged to the producer is in the log of the controller's current leader
/// (while that leader is up), at the offset it was acknowledged at.
pub fn acked_writes_survive(model: &Model, state: &ModelState) -> bool {
    let Some(leader) = current_leader(state) else {
        return true;
    };
    let batches = model.cfg.batches();
    producer(state).acknowledged.iter().all(|acked| {
        leader
            .log
            .entry_at(acked.offset)
            .is_some_and(|entry| entry.batch == batches[acked.batch])
    })
}

/// Every record the consumer has read is at the same offset on the current leader (while it is
/// up): what a consumer saw never disappears.
pub fn consistent_read(_: &Model, state: &ModelState) -> bool {
    let Some(leader) = current_leader(state) else {
        return true;
    };
    let Some(consumer) = consumer(state) else {
        return true;
    };
    consumer.read.iter().all(|read| {
        leader
            .log
            .entry_at(read.base_offset)
            .is_some_and(|entry| entry.batch == read.batch)
    })
}

/// No replica ever lowers its high watermark (by truncating below it, or by recovering a log
/// shorter than its checkpoint): the committed offset never moves backwards.
pub fn hw_never_decreases(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).all(|(_, broker)| !broker.high_watermark_lowered)
}

/// No two live replicas believe they lead in the same leader epoch.
pub fn one_leader_per_epoch(_: &Model, state: &ModelState) -> bool {
    let mut epochs: Vec<_> = live_brokers(state)
        .filter(|(_, broker)| matches!(broker.role, Role::Leader(_)))
        .map(|(_, broker)| broker.leader_epoch)
        .collect();
    let leaders = epochs.len();
    epochs.sort();
    epochs.dedup();
    epochs.len() == leaders
}

/// Some replica's HW passed a record.
pub fn record_committed(_: &Model, state: &ModelState) -> bool {
    live_brokers(state).any(|(_, broker)| broker.high_watermark > Offset(0))
}

/// The producer got an acknowledgement.
pub fn record_acked(_: &Model, state: &ModelState) -> bool {
    !producer(state).acknowledged.is_empty()
}

/// The controller elected a leader after the first.
pub fn leader_changed(_: &Model, state: &ModelState) -> bool {
    controller(state).partition.leader_epoch.0 > 1
}

/// The controller's ISR lost a member.
pub fn isr_shrunk(model: &Model, state: &ModelState) -> bool {
    (controller(state).partition.isr.len() as u32) < model.cfg.brokers
}

/// The consumer read a record.
pub fn consumer_read_record(_: &Model, state: &ModelState) -> bool {
    consumer(state).is_some_and(|consumer| !consumer.read.is_empty())
}
