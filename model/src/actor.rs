//! The roles as one `stateright` actor, so the model checker hosts the very handlers the
//! runtime runs: `Controller | Broker | Producer | Consumer | Member`, generic over the broker's log.
//!
//! This module is a host like any other: it turns stateright's actor ids into the roles'
//! addresses (`Layout`), executes the commands the handlers emit by the contract in
//! `crate::effects`, and keeps, as stateright's storage, what a crash would leave of each actor.

use crate::broker::{self, BrokerState, BrokerStorage};
use crate::client::consumer::{self, ConsumerConfig, ConsumerState};
use crate::client::member::{self, MemberConfig, MemberState};
use crate::client::producer::{self, ProducerConfig, ProducerState};
use crate::config::{BrokerConfig, ControllerConfig};
use crate::controller::{self, ControllerState};
use crate::effects::{Address, Command, Effects};
use crate::log::ReplicaLog;
use crate::message::{Msg, Timer};
use crate::types::{BrokerId, ClientId};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id};
use std::borrow::Cow;
use std::sync::Arc;

/// The commands stateright executes.
pub type Out<L> = stateright::actor::Out<GregorActor<L>>;

/// How actor ids are laid out, as a Kafka cluster's nodes would be numbered: the controller is
/// 0, broker `n` is `n` (1..=brokers), then the clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    pub brokers: u32,
}

impl Layout {
    pub fn id(&self, address: Address) -> Id {
        Id::from(match address {
            Address::Controller => 0,
            Address::Broker(broker) => broker.0 as usize,
            Address::Client(client) => (self.brokers + 1 + client.0) as usize,
        })
    }

    pub fn address(&self, id: Id) -> Address {
        let index = usize::from(id) as u32;
        match index {
            0 => Address::Controller,
            _ if index <= self.brokers => Address::Broker(BrokerId(index)),
            _ => Address::Client(ClientId(index - self.brokers - 1)),
        }
    }
}

/// Every role, with its configuration.
#[derive(Clone, Debug)]
pub enum Role<L: ReplicaLog> {
    Controller(ControllerConfig),
    Broker {
        config: BrokerConfig,
        log_config: L::Config,
    },
    Producer(ProducerConfig<L::Batch>),
    Consumer(ConsumerConfig),
    /// A consumer group member (`gregor check --groups`).
    Member(MemberConfig),
}

#[derive(Clone, Debug)]
pub struct GregorActor<L: ReplicaLog> {
    pub layout: Layout,
    pub role: Role<L>,
}

/// Every role's state.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum ActorState<L: ReplicaLog> {
    Controller(ControllerState),
    Broker(BrokerState<L>),
    Producer(ProducerState),
    Consumer(ConsumerState<L::Batch>),
    Member(MemberState),
}

/// What survives a crash: the controller's decisions, what a broker's disk holds (shared, so
/// the checker's copies of a system state share them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Storage<D> {
    Controller(Arc<ControllerState>),
    Broker(Arc<BrokerStorage<D>>),
}

impl<L: ReplicaLog> ActorState<L> {
    pub fn controller(&self) -> Option<&ControllerState> {
        match self {
            ActorState::Controller(s) => Some(s),
            _ => None,
        }
    }
    pub fn broker(&self) -> Option<&BrokerState<L>> {
        match self {
            ActorState::Broker(s) => Some(s),
            _ => None,
        }
    }
    pub fn producer(&self) -> Option<&ProducerState> {
        match self {
            ActorState::Producer(s) => Some(s),
            _ => None,
        }
    }
    pub fn consumer(&self) -> Option<&ConsumerState<L::Batch>> {
        match self {
            ActorState::Consumer(s) => Some(s),
            _ => None,
        }
    }
    pub fn member(&self) -> Option<&MemberState> {
        match self {
            ActorState::Member(s) => Some(s),
            _ => None,
        }
    }
}

/// Runs `handle` on one variant of the state, keeping it borrowed unless the handler changes
/// it (a handler that changes nothing is a no-op for the checker); true if it changed.
fn on_variant<L: ReplicaLog, S: Clone>(
    state: &mut Cow<ActorState<L>>,
    project: fn(&ActorState<L>) -> Option<&S>,
    wrap: fn(S) -> ActorState<L>,
    handle: impl FnOnce(&mut Cow<S>),
) -> bool {
    let Some(inner) = project(state) else {
        return false;
    };
    let mut inner = Cow::Borrowed(inner);
    handle(&mut inner);
    match inner {
        Cow::Owned(inner) => {
            *state = Cow::Owned(wrap(inner));
            true
        }
        Cow::Borrowed(_) => false,
    }
}

impl<L: ReplicaLog> GregorActor<L> {
    /// Executes a handler's commands; saves go through `save`.
    fn execute<S>(
        &self,
        effects: Effects<Msg<L::Batch>, S>,
        out: &mut Out<L>,
        mut save: impl FnMut(S, &mut Out<L>),
    ) {
        for command in effects {
            match command {
                Command::Send(to, msg) => out.send(self.layout.id(to), msg),
                Command::SetTimer(timer, after) => out.set_timer(timer, after..after),
                Command::CancelTimer(timer) => out.cancel_timer(timer),
                Command::Save(saved) => save(saved, out),
                Command::Stop(why) => panic!("the model's logs never fail, yet: {why}"),
                Command::Ignore(_) => {}
            }
        }
    }

    /// A broker's storage as a crash would leave it, after a step that changed its state.
    fn save_broker(state: &ActorState<L>, out: &mut Out<L>) {
        if let ActorState::Broker(broker) = state {
            out.save(Storage::Broker(Arc::new(broker.storage())));
        }
    }
}

impl<L: ReplicaLog> Actor for GregorActor<L> {
    type Msg = Msg<L::Batch>;
    type Timer = Timer;
    type State = ActorState<L>;
    type Storage = Storage<L::Durable>;
    type Random = ();

    fn name(&self) -> String {
        match &self.role {
            Role::Controller(_) => "controller".to_string(),
            Role::Broker { config, .. } => format!("broker {}", config.id),
            Role::Producer(_) => "producer".to_string(),
            Role::Consumer(_) => "consumer".to_string(),
            Role::Member(config) => config.client_id.clone(),
        }
    }

    fn on_start(&self, _id: Id, storage: &Option<Self::Storage>, out: &mut Out<L>) -> Self::State {
        match &self.role {
            Role::Controller(config) => {
                let saved = match storage {
                    Some(Storage::Controller(saved)) => Some(&**saved),
                    _ => None,
                };
                let mut effects = Effects::new();
                let state = controller::on_start(config, saved, &mut effects);
                self.execute(effects, out, |s, out| {
                    out.save(Storage::Controller(Arc::new(s)))
                });
                ActorState::Controller(state)
            }
            Role::Broker { config, log_config } => {
                let saved = match storage {
                    Some(Storage::Broker(saved)) => Some(&**saved),
                    _ => None,
                };
                let mut effects = Effects::new();
                let state = broker::on_start(config, log_config, saved, &mut effects);
                self.execute(effects, out, |_, _| {});
                let state = ActorState::Broker(state);
                Self::save_broker(&state, out);
                state
            }
            Role::Producer(config) => {
                let mut effects = Effects::new();
                let state = producer::on_start(config, &mut effects);
                self.execute(effects, out, |never, _| match never {});
                ActorState::Producer(state)
            }
            Role::Consumer(config) => {
                let mut effects = Effects::new();
                let state = consumer::on_start(config, &mut effects);
                self.execute(effects, out, |never, _| match never {});
                ActorState::Consumer(state)
            }
            Role::Member(config) => {
                let mut effects = Effects::new();
                let state = member::on_start(config, &mut effects);
                self.execute(effects, out, |never, _| match never {});
                ActorState::Member(state)
            }
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: Self::Msg,
        out: &mut Out<L>,
    ) {
        let from = self.layout.address(src);
        match &self.role {
            Role::Controller(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::controller, ActorState::Controller, |s| {
                    controller::on_msg(config, s, from, msg, &mut effects)
                });
                self.execute(effects, out, |s, out| {
                    out.save(Storage::Controller(Arc::new(s)))
                });
            }
            Role::Broker { config, log_config } => {
                let mut effects = Effects::new();
                let changed = on_variant(state, ActorState::broker, ActorState::Broker, |s| {
                    broker::on_msg(config, log_config, s, from, msg, &mut effects)
                });
                self.execute(effects, out, |_, _| {});
                if changed {
                    Self::save_broker(state, out);
                }
            }
            Role::Producer(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::producer, ActorState::Producer, |s| {
                    producer::on_msg(config, s, from, msg, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
            Role::Consumer(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::consumer, ActorState::Consumer, |s| {
                    consumer::on_msg(config, s, from, msg, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
            Role::Member(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::member, ActorState::Member, |s| {
                    member::on_msg(config, s, from, msg, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<Self::State>, timer: &Timer, out: &mut Out<L>) {
        match &self.role {
            Role::Controller(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::controller, ActorState::Controller, |s| {
                    controller::on_timeout(config, s, timer, &mut effects)
                });
                self.execute(effects, out, |s, out| {
                    out.save(Storage::Controller(Arc::new(s)))
                });
            }
            Role::Broker { config, .. } => {
                let mut effects = Effects::new();
                let changed = on_variant(state, ActorState::broker, ActorState::Broker, |s| {
                    broker::on_timeout(config, s, timer, &mut effects)
                });
                self.execute(effects, out, |_, _| {});
                if changed {
                    Self::save_broker(state, out);
                }
            }
            Role::Producer(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::producer, ActorState::Producer, |s| {
                    producer::on_timeout(config, s, timer, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
            Role::Consumer(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::consumer, ActorState::Consumer, |s| {
                    consumer::on_timeout(config, s, timer, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
            Role::Member(config) => {
                let mut effects = Effects::new();
                on_variant(state, ActorState::member, ActorState::Member, |s| {
                    member::on_timeout(config, s, timer, &mut effects)
                });
                self.execute(effects, out, |never, _| match never {});
            }
        }
    }
}
