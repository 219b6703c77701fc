//! A small deterministic host with a virtual clock: it runs the roles' handlers as the runtime
//! will, by the contract in `crate::effects` — timers fire after the duration they were set
//! with (setting an armed timer re-arms it), links deliver in order after a fixed latency and
//! lose what was in flight to a process that crashed, saves are kept as a crash leaves them —
//! and lets tests crash and restart brokers, act as clients, and read the clock. The timed
//! scenarios (`model/tests/timed.rs`, `runtime/tests/timed_on_disk.rs`) run on it.

pub mod scenarios;

use crate::actor::Role;
use crate::broker::{self, BrokerSave, BrokerState, BrokerStorage};
use crate::client::{consumer, member, producer};
use crate::config::{BrokerConfig, ControllerConfig};
use crate::controller::{self, ControllerState};
use crate::effects::{Address, Command, Effects};
use crate::log::ReplicaLog;
use crate::message::{Msg, Timer};
use crate::types::{BrokerId, ClientId};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

/// What a hosted role is doing now.
enum Running<L: ReplicaLog> {
    Controller(ControllerState),
    Broker(BrokerState<L>),
    Producer(producer::ProducerState),
    Consumer(consumer::ConsumerState<L::Batch>),
    Member(member::MemberState),
}

struct Node<L: ReplicaLog> {
    role: Role<L>,
    /// `None` while crashed.
    running: Option<Running<L>>,
    /// Counts starts: messages and timers of an earlier incarnation are dropped.
    incarnation: u64,
    controller_saved: Option<ControllerState>,
    broker_saved: Option<BrokerStorage<L::Durable>>,
}

enum Event<B> {
    Deliver {
        from: Address,
        to: Address,
        incarnation: u64,
        msg: Msg<B>,
    },
    Fire {
        at: Address,
        timer: Timer,
        generation: u64,
    },
}

/// A message to a client no role hosts here: what a test acting as that client receives.
#[derive(Clone, Debug)]
pub struct Received<B> {
    pub at: Duration,
    pub to: ClientId,
    pub from: Address,
    pub msg: Msg<B>,
}

/// The simulated cluster.
pub struct Simulation<L: ReplicaLog> {
    now: Duration,
    latency: Duration,
    nodes: BTreeMap<Address, Node<L>>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    events: BTreeMap<u64, Event<L::Batch>>,
    sequence: u64,
    /// Armed timers and the generation of their latest setting.
    timers: BTreeMap<(Address, Timer), u64>,
    received: Vec<Received<L::Batch>>,
    /// Every step that stopped on a failed log operation: (who, why).
    pub stopped: Vec<(Address, String)>,
}

impl<L: ReplicaLog> Simulation<L> {
    /// An empty cluster whose links deliver after `latency`.
    pub fn new(latency: Duration) -> Self {
        Simulation {
            now: Duration::ZERO,
            latency,
            nodes: BTreeMap::new(),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            sequence: 0,
            timers: BTreeMap::new(),
            received: Vec::new(),
            stopped: Vec::new(),
        }
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    /// Starts the controller.
    pub fn add_controller(&mut self, config: ControllerConfig) {
        self.add(Address::Controller, Role::Controller(config));
    }

    /// Starts a broker (it registers at once).
    pub fn add_broker(&mut self, config: BrokerConfig, log_config: L::Config) {
        let address = Address::Broker(config.id);
        self.add(address, Role::Broker { config, log_config });
    }

    /// Starts a hosted client (the checker's producer or consumer role).
    pub fn add_client(&mut self, id: ClientId, role: Role<L>) {
        self.add(Address::Client(id), role);
    }

    fn add(&mut self, address: Address, role: Role<L>) {
        let node = Node {
            role,
            running: None,
            incarnation: 0,
            controller_saved: None,
            broker_saved: None,
        };
        self.nodes.insert(address, node);
        self.start(address);
    }

    /// The process at `address` dies: its memory and timers go, and so does every message in
    /// flight to it; what it saved stays.
    pub fn crash(&mut self, address: Address) {
        let node = self.nodes.get_mut(&address).expect("a hosted node");
        node.running = None;
        node.incarnation += 1;
        self.timers.retain(|(at, _), _| *at != address);
    }

    /// Restarts a crashed node from what it saved.
    pub fn restart(&mut self, address: Address) {
        assert!(!self.is_up(address), "{address} is running");
        self.start(address);
    }

    pub fn is_up(&self, address: Address) -> bool {
        self.nodes
            .get(&address)
            .is_some_and(|node| node.running.is_some())
    }

    /// A test acting as client `client` sends `msg` to `to`.
    pub fn send_as(&mut self, client: ClientId, to: Address, msg: Msg<L::Batch>) {
        self.send(Address::Client(client), to, msg);
    }

    /// Takes what was sent to clients no role hosts since the last call.
    pub fn take_received(&mut self) -> Vec<Received<L::Batch>> {
        std::mem::take(&mut self.received)
    }

    pub fn controller(&self) -> Option<&ControllerState> {
        match self.nodes.get(&Address::Controller)?.running.as_ref()? {
            Running::Controller(state) => Some(state),
            _ => None,
        }
    }

    pub fn broker(&self, id: BrokerId) -> Option<&BrokerState<L>> {
        match self.nodes.get(&Address::Broker(id))?.running.as_ref()? {
            Running::Broker(state) => Some(state),
            _ => None,
        }
    }

    pub fn producer(&self, id: ClientId) -> Option<&producer::ProducerState> {
        match self.nodes.get(&Address::Client(id))?.running.as_ref()? {
            Running::Producer(state) => Some(state),
            _ => None,
        }
    }

    pub fn consumer(&self, id: ClientId) -> Option<&consumer::ConsumerState<L::Batch>> {
        match self.nodes.get(&Address::Client(id))?.running.as_ref()? {
            Running::Consumer(state) => Some(state),
            _ => None,
        }
    }

    pub fn member(&self, id: ClientId) -> Option<&member::MemberState> {
        match self.nodes.get(&Address::Client(id))?.running.as_ref()? {
            Running::Member(state) => Some(state),
            _ => None,
        }
    }

    /// Runs every event due up to `until`, then sets the clock there.
    pub fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((at, sequence))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let event = self.events.remove(&sequence).expect("queued");
            self.handle(event);
        }
        self.now = until;
    }

    /// Runs for `duration` more.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `done` holds (checked after every event), at most until `deadline`; returns
    /// whether it held.
    pub fn run_until_true(
        &mut self,
        deadline: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some(Reverse((at, sequence))) = self.queue.peek().copied() else {
                return false;
            };
            if at > deadline {
                self.now = deadline;
                return done(self);
            }
            self.queue.pop();
            self.now = at;
            let event = self.events.remove(&sequence).expect("queued");
            self.handle(event);
        }
    }

    fn schedule(&mut self, at: Duration, event: Event<L::Batch>) {
        self.sequence += 1;
        self.events.insert(self.sequence, event);
        self.queue.push(Reverse((at, self.sequence)));
    }

    fn send(&mut self, from: Address, to: Address, msg: Msg<L::Batch>) {
        let incarnation = self.nodes.get(&to).map_or(0, |node| node.incarnation);
        let at = self.now + self.latency;
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                incarnation,
                msg,
            },
        );
    }

    fn handle(&mut self, event: Event<L::Batch>) {
        match event {
            Event::Deliver {
                from,
                to,
                incarnation,
                msg,
            } => {
                let Some(node) = self.nodes.get(&to) else {
                    if let Address::Client(client) = to {
                        self.received.push(Received {
                            at: self.now,
                            to: client,
                            from,
                            msg,
                        });
                    }
                    return;
                };
                if node.incarnation != incarnation || node.running.is_none() {
                    return;
                }
                self.step(to, |node, effects| on_msg(node, from, msg, effects));
            }
            Event::Fire {
                at,
                timer,
                generation,
            } => {
                let key = (at, timer);
                if self.timers.get(&key) != Some(&generation) {
                    return;
                }
                let (at, timer) = key;
                self.timers.remove(&(at, timer.clone()));
                self.step(at, |node, effects| on_timeout(node, &timer, effects));
            }
        }
    }

    fn start(&mut self, address: Address) {
        self.step(address, |node, effects| {
            node.incarnation += 1;
            node.running = Some(on_start(node, effects));
        });
    }

    /// One handler call: its commands executed in order, unless it stopped on a log failure,
    /// which stops the node before anything of the step leaves.
    fn step(
        &mut self,
        address: Address,
        handle: impl FnOnce(&mut Node<L>, &mut StepEffects<L::Batch>),
    ) {
        let node = self.nodes.get_mut(&address).expect("a hosted node");
        let mut effects = StepEffects::default();
        handle(node, &mut effects);
        if let Some(why) = effects.stopped() {
            self.stopped.push((address, why));
            self.crash(address);
            return;
        }
        let node = self.nodes.get_mut(&address).expect("a hosted node");
        if let Some(Running::Broker(state)) = &node.running {
            node.broker_saved = Some(state.storage());
        }
        for command in effects.commands {
            match command {
                StepCommand::Send(to, msg) => self.send(address, to, msg),
                StepCommand::SetTimer(timer, after) => {
                    self.sequence += 1;
                    let generation = self.sequence;
                    self.timers.insert((address, timer.clone()), generation);
                    self.schedule(
                        self.now + after,
                        Event::Fire {
                            at: address,
                            timer,
                            generation,
                        },
                    );
                }
                StepCommand::CancelTimer(timer) => {
                    self.timers.remove(&(address, timer));
                }
                StepCommand::SaveController(state) => {
                    let node = self.nodes.get_mut(&address).expect("a hosted node");
                    node.controller_saved = Some(state);
                }
            }
        }
    }
}

/// The commands of one step, whatever role emitted them.
enum StepCommand<B> {
    Send(Address, Msg<B>),
    SetTimer(Timer, Duration),
    CancelTimer(Timer),
    SaveController(ControllerState),
}

struct StepEffects<B> {
    commands: Vec<StepCommand<B>>,
    stopped: Option<String>,
}

impl<B> Default for StepEffects<B> {
    fn default() -> Self {
        StepEffects {
            commands: Vec::new(),
            stopped: None,
        }
    }
}

impl<B> StepEffects<B> {
    fn stopped(&self) -> Option<String> {
        self.stopped.clone()
    }

    /// Takes a role's commands; a broker's saves are what its storage image shows after the
    /// step (the log writes through, the broker epoch and HW checkpoint are in its state).
    fn take<S>(
        &mut self,
        effects: Effects<Msg<B>, S>,
        mut save: impl FnMut(S) -> Option<ControllerState>,
    ) {
        for command in effects {
            match command {
                Command::Send(to, msg) => self.commands.push(StepCommand::Send(to, msg)),
                Command::SetTimer(timer, after) => {
                    self.commands.push(StepCommand::SetTimer(timer, after))
                }
                Command::CancelTimer(timer) => self.commands.push(StepCommand::CancelTimer(timer)),
                Command::Save(saved) => {
                    if let Some(state) = save(saved) {
                        self.commands.push(StepCommand::SaveController(state));
                    }
                }
                Command::Stop(why) => {
                    self.stopped.get_or_insert(why);
                }
                Command::Ignore(_) => {}
            }
        }
    }
}

fn broker_save(_: BrokerSave) -> Option<ControllerState> {
    None
}

fn on_start<L: ReplicaLog>(node: &Node<L>, out: &mut StepEffects<L::Batch>) -> Running<L> {
    match &node.role {
        Role::Controller(config) => {
            let mut effects = Effects::new();
            let state = controller::on_start(config, node.controller_saved.as_ref(), &mut effects);
            out.take(effects, Some);
            Running::Controller(state)
        }
        Role::Broker { config, log_config } => {
            let mut effects = Effects::new();
            let state =
                broker::on_start(config, log_config, node.broker_saved.as_ref(), &mut effects);
            out.take(effects, broker_save);
            Running::Broker(state)
        }
        Role::Producer(config) => {
            let mut effects = Effects::new();
            let state = producer::on_start(config, &mut effects);
            out.take(effects, |never| match never {});
            Running::Producer(state)
        }
        Role::Consumer(config) => {
            let mut effects = Effects::new();
            let state = consumer::on_start(config, &mut effects);
            out.take(effects, |never| match never {});
            Running::Consumer(state)
        }
        Role::Member(config) => {
            let mut effects = Effects::new();
            let state = member::on_start(config, &mut effects);
            out.take(effects, |never| match never {});
            Running::Member(state)
        }
    }
}

/// Runs a handler on owned state, as the runtime does: `to_mut` never clones.
fn owned<S: Clone>(state: S, handle: impl FnOnce(&mut Cow<S>)) -> S {
    let mut cow = Cow::Owned(state);
    handle(&mut cow);
    cow.into_owned()
}

/// A message or a timer, for one handler call.
enum Input<'a, B> {
    Msg(Address, Msg<B>),
    Timer(&'a Timer),
}

fn on_msg<L: ReplicaLog>(
    node: &mut Node<L>,
    from: Address,
    msg: Msg<L::Batch>,
    out: &mut StepEffects<L::Batch>,
) {
    on_input(node, Input::Msg(from, msg), out)
}

fn on_timeout<L: ReplicaLog>(node: &mut Node<L>, timer: &Timer, out: &mut StepEffects<L::Batch>) {
    on_input(node, Input::Timer(timer), out)
}

fn on_input<L: ReplicaLog>(
    node: &mut Node<L>,
    input: Input<'_, L::Batch>,
    out: &mut StepEffects<L::Batch>,
) {
    let Some(running) = node.running.take() else {
        return;
    };
    let running = match (&node.role, running) {
        (Role::Controller(config), Running::Controller(state)) => {
            let mut effects = Effects::new();
            let state = owned(state, |s| match input {
                Input::Msg(from, msg) => controller::on_msg(config, s, from, msg, &mut effects),
                Input::Timer(timer) => controller::on_timeout(config, s, timer, &mut effects),
            });
            out.take(effects, Some);
            Running::Controller(state)
        }
        (Role::Broker { config, log_config }, Running::Broker(state)) => {
            let mut effects = Effects::new();
            let state = owned(state, |s| match input {
                Input::Msg(from, msg) => {
                    broker::on_msg(config, log_config, s, from, msg, &mut effects)
                }
                Input::Timer(timer) => broker::on_timeout(config, s, timer, &mut effects),
            });
            out.take(effects, broker_save);
            Running::Broker(state)
        }
        (Role::Producer(config), Running::Producer(state)) => {
            let mut effects = Effects::new();
            let state = owned(state, |s| match input {
                Input::Msg(from, msg) => producer::on_msg(config, s, from, msg, &mut effects),
                Input::Timer(timer) => producer::on_timeout(config, s, timer, &mut effects),
            });
            out.take(effects, |never| match never {});
            Running::Producer(state)
        }
        (Role::Consumer(config), Running::Consumer(state)) => {
            let mut effects = Effects::new();
            let state = owned(state, |s| match input {
                Input::Msg(from, msg) => consumer::on_msg(config, s, from, msg, &mut effects),
                Input::Timer(timer) => consumer::on_timeout(config, s, timer, &mut effects),
            });
            out.take(effects, |never| match never {});
            Running::Consumer(state)
        }
        (Role::Member(config), Running::Member(state)) => {
            let mut effects = Effects::new();
            let state = owned(state, |s| match input {
                Input::Msg(from, msg) => member::on_msg(config, s, from, msg, &mut effects),
                Input::Timer(timer) => member::on_timeout(config, s, timer, &mut effects),
            });
            out.take(effects, |never| match never {});
            Running::Member(state)
        }
        _ => unreachable!("a node runs its own role"),
    };
    node.running = Some(running);
}
