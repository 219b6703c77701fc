//! The host: runs one role's handlers (the controller's or a broker's, the very code the model
//! checker explores) over real time, disk and TCP, by the contract in `specs/protocol.md`
//! ("The host's contract"). It decides nothing: one handler call per event, then the commands
//! the handler emitted, in order:
//!
//! - `Save` is written durable (temporary file, fsync, rename, folder fsync) before the step's
//!   next command runs, so before any later `Send` of the step leaves;
//! - `Send` goes on the link to a peer ([`transport`]) or to the client connection that asked;
//! - `SetTimer` arms a timer on tokio's clock (setting an armed timer re-arms it), `CancelTimer`
//!   disarms it;
//! - `Stop` (a failed log operation) executes nothing else of the step and stops the process;
//! - `Ignore` is logged.
//!
//! The actor runs on a thread of its own (a current-thread tokio runtime: its timers and its
//! inbox), so the disk I/O the handlers do through the logs never blocks the network reactor,
//! which runs on other threads (`specs/protocol.md`, "The runtime").

pub mod roles;
pub mod transport;

use crate::storage::KafkaBatch;
use futures_util::StreamExt;
use gregor_model::effects::{Address, Command, Effects};
use gregor_model::message::{Msg, Timer};
use gregor_model::types::ClientId;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::time::{delay_queue, DelayQueue};
pub use transport::Links;

/// The protocol's messages as the runtime carries them: record batches as Kafka's bytes.
pub type Message = Msg<KafkaBatch>;

/// What reaches an actor.
pub enum Event {
    /// A message from a peer process or a client connection.
    Message { from: Address, msg: Message },
    /// The link to a peer broke (or was replaced): the role hears `Disconnected`.
    LinkDown { peer: Address },
    /// A link to a peer is up: if messages to the peer were lost while it was down, the role
    /// hears `Disconnected` now, so that what it sends again goes on this link.
    LinkUp { peer: Address },
    /// A client connection opened: answers to `Client(client)` go to `replies`.
    ClientOpen {
        client: ClientId,
        replies: mpsc::UnboundedSender<Message>,
    },
    /// A client connection closed: the role hears `Disconnected` from it.
    ClientClosed { client: ClientId },
    /// Stop cleanly (Ctrl-C, SIGTERM).
    Shutdown,
}

/// A role as the host runs it: the model's handlers for it, and what the host does for it.
pub trait HostedRole {
    type Save: Serialize;

    fn address(&self) -> Address;
    fn start(&mut self, out: &mut Effects<Message, Self::Save>);
    fn on_msg(&mut self, from: Address, msg: Message, out: &mut Effects<Message, Self::Save>);
    fn on_timer(&mut self, timer: &Timer, out: &mut Effects<Message, Self::Save>);
    /// Makes a `Save` durable; an error stops the process (a crash, to the protocol).
    fn save(&mut self, saved: Self::Save) -> Result<(), String>;
    /// After each step: what the host derives from the new state for the transport and the
    /// front end (peers to dial, the topic directory). Reads the state, decides nothing.
    fn after_step(&mut self, _links: &Arc<Links>) {}
    /// A clean stop: flush what is unflushed.
    fn shutdown(&mut self) {}
}

#[derive(Serialize)]
enum TraceEvent<'a> {
    Start,
    Message { from: Address, msg: &'a Message },
    Timer(&'a Timer),
}

#[derive(Serialize)]
struct TraceLine<'a, S> {
    actor: Address,
    event: serde_json::Value,
    commands: &'a Effects<Message, S>,
}

/// One actor and what it needs to run.
pub struct Host<R: HostedRole> {
    role: R,
    links: Arc<Links>,
    clients: HashMap<ClientId, mpsc::UnboundedSender<Message>>,
    timers: DelayQueue<Timer>,
    armed: HashMap<Timer, delay_queue::Key>,
    /// Peers a message to was lost because no link was up: the role hears `Disconnected` from
    /// them when the link comes up (telling it at once would only make it send again into no
    /// link, in a loop).
    owed: HashSet<Address>,
    trace: Option<Box<dyn Write + Send>>,
}

impl<R: HostedRole> Host<R> {
    pub fn new(role: R, links: Arc<Links>, trace: Option<Box<dyn Write + Send>>) -> Host<R> {
        Host {
            role,
            links,
            clients: HashMap::new(),
            timers: DelayQueue::new(),
            armed: HashMap::new(),
            owed: HashSet::new(),
            trace,
        }
    }

    /// Runs the actor until a clean stop (`Ok`) or a `Stop` command (`Err` with its reason).
    pub async fn run(mut self, mut inbox: mpsc::Receiver<Event>) -> Result<(), String> {
        let mut out = Effects::new();
        self.role.start(&mut out);
        self.trace_step(|| serde_json::to_value(TraceEvent::Start), &out);
        self.execute(out)?;
        loop {
            tokio::select! {
                event = inbox.recv() => match event {
                    None | Some(Event::Shutdown) => break,
                    Some(Event::Message { from, msg }) => self.message(from, msg)?,
                    Some(Event::LinkDown { peer }) => {
                        self.owed.remove(&peer);
                        self.message(peer, Msg::Disconnected)?;
                    }
                    Some(Event::LinkUp { peer }) => {
                        if self.owed.remove(&peer) {
                            self.message(peer, Msg::Disconnected)?;
                        }
                    }
                    Some(Event::ClientOpen { client, replies }) => {
                        self.clients.insert(client, replies);
                    }
                    Some(Event::ClientClosed { client }) => {
                        self.clients.remove(&client);
                        self.message(Address::Client(client), Msg::Disconnected)?;
                    }
                },
                Some(expired) = self.timers.next(), if !self.timers.is_empty() => {
                    let timer = expired.into_inner();
                    self.armed.remove(&timer);
                    let mut out = Effects::new();
                    self.role.on_timer(&timer, &mut out);
                    self.trace_step(|| serde_json::to_value(TraceEvent::Timer(&timer)), &out);
                    self.execute(out)?;
                }
            }
        }
        self.role.shutdown();
        Ok(())
    }

    fn message(&mut self, from: Address, msg: Message) -> Result<(), String> {
        let mut out = Effects::new();
        if self.tracing() {
            let event = serde_json::to_value(TraceEvent::Message { from, msg: &msg });
            self.role.on_msg(from, msg, &mut out);
            self.trace_step(|| event, &out);
        } else {
            self.role.on_msg(from, msg, &mut out);
        }
        self.execute(out)
    }

    /// Whether steps are traced: to the `--trace` file, or as `tracing` events of target
    /// `gregor::trace` at level TRACE (`RUST_LOG=gregor::trace=trace`).
    fn tracing(&self) -> bool {
        self.trace.is_some() || tracing::enabled!(target: "gregor::trace", tracing::Level::TRACE)
    }

    fn trace_step(
        &mut self,
        event: impl FnOnce() -> serde_json::Result<serde_json::Value>,
        out: &Effects<Message, R::Save>,
    ) {
        if !self.tracing() {
            return;
        }
        let line = event().and_then(|event| {
            serde_json::to_string(&TraceLine {
                actor: self.role.address(),
                event,
                commands: out,
            })
        });
        let line = match line {
            Ok(line) => line,
            Err(e) => return tracing::warn!("tracing a step: {e}"),
        };
        tracing::trace!(target: "gregor::trace", "{line}");
        if let Some(trace) = self.trace.as_mut() {
            // Flushed at every step: the steps before a crash are the ones to replay.
            if let Err(e) = writeln!(trace, "{line}").and_then(|()| trace.flush()) {
                tracing::warn!("writing the trace: {e}; tracing stops");
                self.trace = None;
            }
        }
    }

    /// Executes a step's commands in order (nothing of a step that stopped).
    fn execute(&mut self, out: Effects<Message, R::Save>) -> Result<(), String> {
        if let Some(Command::Stop(why)) = out
            .commands()
            .iter()
            .find(|c| matches!(c, Command::Stop(_)))
        {
            return Err(why.clone());
        }
        for command in out {
            match command {
                Command::Send(Address::Client(client), msg) => {
                    if let Some(replies) = self.clients.get(&client) {
                        let _ = replies.send(msg);
                    }
                }
                Command::Send(peer, msg) => {
                    if !self.links.send(peer, msg) {
                        self.owed.insert(peer);
                    }
                }
                Command::SetTimer(timer, after) => match self.armed.get(&timer) {
                    Some(key) => self.timers.reset(key, after),
                    None => {
                        let key = self.timers.insert(timer.clone(), after);
                        self.armed.insert(timer, key);
                    }
                },
                Command::CancelTimer(timer) => {
                    if let Some(key) = self.armed.remove(&timer) {
                        self.timers.remove(&key);
                    }
                }
                Command::Save(saved) => self.role.save(saved)?,
                Command::Stop(_) => unreachable!("checked above"),
                Command::Ignore(why) => tracing::debug!("{}: ignored: {why}", self.role.address()),
            }
        }
        self.role.after_step(&self.links);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The host's timers on tokio's clock, in virtual time: a timer fires once, its duration
    //! after it was set; setting an armed timer re-arms it; a cancelled one never fires.
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::time::Instant;

    /// Arms `Heartbeat` for 2 s at start; a `Metadata` message re-arms it, an
    /// `InitProducerId` cancels it; records when it fires.
    struct TimerRole {
        fired: Arc<Mutex<Vec<Duration>>>,
        start: Instant,
    }

    impl HostedRole for TimerRole {
        type Save = ();
        fn address(&self) -> Address {
            Address::Controller
        }
        fn start(&mut self, out: &mut Effects<Message, ()>) {
            out.set_timer(Timer::Heartbeat, Duration::from_secs(2));
        }
        fn on_msg(&mut self, _: Address, msg: Message, out: &mut Effects<Message, ()>) {
            match msg {
                Msg::Metadata { .. } => out.set_timer(Timer::Heartbeat, Duration::from_secs(2)),
                Msg::InitProducerId => out.cancel_timer(Timer::Heartbeat),
                _ => {}
            }
        }
        fn on_timer(&mut self, _: &Timer, _: &mut Effects<Message, ()>) {
            self.fired.lock().unwrap().push(self.start.elapsed());
        }
        fn save(&mut self, _: ()) -> Result<(), String> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timers_fire_once_after_their_duration_rearm_and_cancel() {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel(16);
        let links = Links::new(
            Address::Controller,
            tx.clone(),
            transport::LinkLimits::default(),
            tokio::runtime::Handle::current(),
        );
        let role = TimerRole {
            fired: fired.clone(),
            start: Instant::now(),
        };
        let host = tokio::spawn(Host::new(role, links, None).run(rx));
        let client = Address::Client(ClientId(1));
        let send = |msg| {
            let tx = tx.clone();
            async move {
                tx.send(Event::Message { from: client, msg }).await.unwrap();
            }
        };
        // Re-armed at 1 s: fires at 3 s, not 2 s, and once.
        tokio::time::sleep(Duration::from_secs(1)).await;
        send(Msg::Metadata { topics: vec![] }).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        {
            let fired = fired.lock().unwrap();
            assert_eq!(fired.len(), 1, "{fired:?}");
            // DelayQueue counts whole milliseconds.
            let at = fired[0];
            assert!(
                at >= Duration::from_secs(3) && at < Duration::from_millis(3010),
                "{at:?}"
            );
        }
        // Armed again at 11 s and cancelled at 12 s: never fires.
        send(Msg::Metadata { topics: vec![] }).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        send(Msg::InitProducerId).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(fired.lock().unwrap().len(), 1);
        tx.send(Event::Shutdown).await.unwrap();
        host.await.unwrap().unwrap();
    }
}
