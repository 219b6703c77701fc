//! One enum actor for every role, so the model checker and the runtime host the very same
//! handlers: `Controller | Broker | Producer | Consumer`, generic over the broker's log.
//!
//! Actor ids are laid out as a Kafka cluster's would be numbered: the controller is 0, broker
//! `n` is `n` (1..=replication factor), then the producer and the consumer.

use crate::broker::{self, BrokerState, BrokerStorage};
use crate::consumer::{self, ConsumerState};
use crate::controller::{self, ControllerState};
use crate::log::ReplicaLog;
use crate::message::{Msg, Timer};
use crate::producer::{self, ProducerConfig, ProducerState};
use crate::types::{BrokerId, ProtocolConfig};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id};
use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

/// The commands a handler emits.
pub type Out<L> = stateright::actor::Out<GregorActor<L>>;

/// How long each timer waits in the runtime (Kafka's defaults). The model checker ignores
/// durations: any armed timer may fire at any moment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timeouts {
    /// `broker.session.timeout.ms`.
    pub session: Duration,
    /// `replica.lag.time.max.ms`.
    pub replica_lag: Duration,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            session: Duration::from_secs(9),
            replica_lag: Duration::from_secs(30),
            fetch_backoff: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// What every actor knows of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctx {
    pub protocol: ProtocolConfig,
    pub timeouts: Timeouts,
    /// Whether the consumer actor exists (a check may leave it out; the controller then tells
    /// only the producer of leader changes).
    pub consumer: bool,
}

impl Ctx {
    pub fn new(protocol: ProtocolConfig) -> Ctx {
        Ctx {
            protocol,
            timeouts: Timeouts::default(),
            consumer: true,
        }
    }

    pub fn controller_actor_id() -> Id {
        Id::from(0)
    }

    pub fn broker_actor_id(broker: BrokerId) -> Id {
        Id::from(broker.0 as usize)
    }

    /// The broker an actor id names, if it names one.
    pub fn broker_of(&self, id: Id) -> Option<BrokerId> {
        let index = usize::from(id);
        (1..=self.protocol.replication_factor as usize)
            .contains(&index)
            .then_some(BrokerId(index as u32))
    }

    pub fn producer_actor_id(&self) -> Id {
        Id::from(self.protocol.replication_factor as usize + 1)
    }

    pub fn consumer_actor_id(&self) -> Id {
        Id::from(self.protocol.replication_factor as usize + 2)
    }

    /// The duration the runtime waits for `timer`.
    pub fn timeout(&self, timer: &Timer) -> Range<Duration> {
        let duration = match timer {
            Timer::SessionExpiry(_) => self.timeouts.session,
            Timer::ReplicaLag(_) => self.timeouts.replica_lag,
            Timer::FetchBackoff => self.timeouts.fetch_backoff,
            Timer::RetryBackoff => self.timeouts.retry_backoff,
        };
        duration..duration
    }
}

/// Every role, with its configuration.
#[derive(Clone, Debug)]
pub enum GregorActor<L: ReplicaLog> {
    Controller(Ctx),
    Broker {
        ctx: Ctx,
        id: BrokerId,
        log_config: L::Config,
    },
    Producer {
        ctx: Ctx,
        config: ProducerConfig<L::Batch>,
    },
    Consumer(Ctx),
}

/// Every role's state.
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum ActorState<L: ReplicaLog> {
    Controller(ControllerState),
    Broker(BrokerState<L>),
    Producer(ProducerState),
    Consumer(ConsumerState<L::Batch>),
}

/// What survives a crash: the controller's decisions, a broker's log and checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Storage<D> {
    Controller(ControllerState),
    Broker(BrokerStorage<D>),
}

/// Runs `handle` on one variant of the state, keeping it borrowed unless the handler changes
/// it (a handler that changes nothing is a no-op for the checker).
fn on_variant<L: ReplicaLog, S: Clone>(
    state: &mut Cow<ActorState<L>>,
    project: fn(&ActorState<L>) -> Option<&S>,
    wrap: fn(S) -> ActorState<L>,
    handle: impl FnOnce(&mut Cow<S>),
) {
    let Some(inner) = project(state) else {
        return;
    };
    let mut inner = Cow::Borrowed(inner);
    handle(&mut inner);
    if let Cow::Owned(inner) = inner {
        *state = Cow::Owned(wrap(inner));
    }
}

impl<L: ReplicaLog> ActorState<L> {
    fn controller(&self) -> Option<&ControllerState> {
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
    fn producer(&self) -> Option<&ProducerState> {
        match self {
            ActorState::Producer(s) => Some(s),
            _ => None,
        }
    }
    fn consumer(&self) -> Option<&ConsumerState<L::Batch>> {
        match self {
            ActorState::Consumer(s) => Some(s),
            _ => None,
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
        match self {
            GregorActor::Controller(_) => "controller".to_string(),
            GregorActor::Broker { id, .. } => format!("broker {id}"),
            GregorActor::Producer { .. } => "producer".to_string(),
            GregorActor::Consumer(_) => "consumer".to_string(),
        }
    }

    fn on_start(&self, _id: Id, storage: &Option<Self::Storage>, out: &mut Out<L>) -> Self::State {
        match self {
            GregorActor::Controller(ctx) => {
                let saved = match storage {
                    Some(Storage::Controller(saved)) => Some(saved),
                    _ => None,
                };
                ActorState::Controller(controller::on_start(ctx, saved, out))
            }
            GregorActor::Broker {
                ctx,
                id,
                log_config,
            } => {
                let saved = match storage {
                    Some(Storage::Broker(saved)) => Some(saved),
                    _ => None,
                };
                ActorState::Broker(broker::on_start(ctx, *id, log_config, saved, out))
            }
            GregorActor::Producer { config, .. } => {
                ActorState::Producer(producer::on_start(config, out))
            }
            GregorActor::Consumer(ctx) => ActorState::Consumer(consumer::on_start(ctx, out)),
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
        match self {
            GregorActor::Controller(ctx) => {
                on_variant(state, ActorState::controller, ActorState::Controller, |s| {
                    controller::on_msg(ctx, s, src, msg, out)
                })
            }
            GregorActor::Broker { ctx, id, .. } => {
                on_variant(state, ActorState::broker, ActorState::Broker, |s| {
                    broker::on_msg(ctx, *id, s, src, msg, out)
                })
            }
            GregorActor::Producer { ctx, config } => {
                on_variant(state, ActorState::producer, ActorState::Producer, |s| {
                    producer::on_msg(ctx, config, s, src, msg, out)
                })
            }
            GregorActor::Consumer(ctx) => {
                on_variant(state, ActorState::consumer, ActorState::Consumer, |s| {
                    consumer::on_msg(ctx, s, src, msg, out)
                })
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<Self::State>, timer: &Timer, out: &mut Out<L>) {
        match self {
            GregorActor::Controller(ctx) => {
                on_variant(state, ActorState::controller, ActorState::Controller, |s| {
                    controller::on_timeout(ctx, s, timer, out)
                })
            }
            GregorActor::Broker { ctx, id, .. } => {
                on_variant(state, ActorState::broker, ActorState::Broker, |s| {
                    broker::on_timeout(ctx, *id, s, timer, out)
                })
            }
            GregorActor::Producer { config, .. } => {
                on_variant(state, ActorState::producer, ActorState::Producer, |s| {
                    producer::on_timeout(config, s, timer, out)
                })
            }
            GregorActor::Consumer(ctx) => {
                on_variant(state, ActorState::consumer, ActorState::Consumer, |s| {
                    consumer::on_timeout(ctx, s, timer, out)
                })
            }
        }
    }
}
