//! What a handler sees of the world and what it asks of it: the addresses of its peers, and the
//! commands it emits. Handlers do no I/O, read no clock and draw no randomness; a host (the
//! model checker, the virtual-clock simulator, the runtime) executes these commands by the
//! contract in `specs/protocol.md` ("The host's contract"):
//!
//! - `Send`: FIFO per link; what is in flight when a link breaks is lost, never resent;
//! - `SetTimer`: fires once after the duration; setting an armed timer re-arms it;
//! - `Save`: durable before any later `Send` of the same step leaves;
//! - `Stop`: a log operation failed; nothing else of this step is executed and the process
//!   stops (the protocol treats it as a crash);
//! - `Ignore`: the message was dropped by a fence, for the host's log; it changes nothing.

use crate::message::Timer;
use crate::types::{BrokerEpoch, BrokerId, ClientId, LeaderEpoch, TopicPartition};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Whom a message goes to or came from. Requests name their sender inside the message where
/// the protocol depends on who it is (broker id and broker epoch, as Kafka's requests do); the
/// address is where the answer goes, and for a response, the peer it came from (the host knows
/// which connection it arrived on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Address {
    Controller,
    Broker(BrokerId),
    /// A client: whoever sent a client request (a producer, a consumer, an admin tool).
    Client(ClientId),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Controller => write!(f, "controller"),
            Address::Broker(id) => write!(f, "broker {id}"),
            Address::Client(id) => write!(f, "client {id}"),
        }
    }
}

/// Why a handler dropped a message without acting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Ignored {
    /// A request or update meant for another incarnation of a broker (KIP-380).
    StaleBrokerEpoch {
        expected: Option<BrokerEpoch>,
        got: BrokerEpoch,
    },
    /// Partition news older than what the receiver knows.
    StaleLeaderEpoch {
        partition: TopicPartition,
        known: LeaderEpoch,
        got: LeaderEpoch,
    },
    /// A response to a request that is no longer in flight (answered, abandoned, or sent by an
    /// earlier role of the receiver).
    NotAwaited(&'static str),
    /// A message about a partition the receiver does not hold.
    UnknownPartition(TopicPartition),
    /// A request from a broker the receiver does not know as registered.
    UnknownBroker(BrokerId),
    /// A message this role never handles.
    Unexpected(&'static str),
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::StaleBrokerEpoch { expected, got } => match expected {
                Some(expected) => {
                    write!(f, "broker epoch {got} is not the current one ({expected})")
                }
                None => write!(f, "broker epoch {got} before this broker has registered"),
            },
            Ignored::StaleLeaderEpoch {
                partition,
                known,
                got,
            } => write!(
                f,
                "{partition}: leader epoch {got} is older than the known {known}"
            ),
            Ignored::NotAwaited(what) => write!(f, "{what}: no such request in flight"),
            Ignored::UnknownPartition(partition) => write!(f, "{partition}: not held here"),
            Ignored::UnknownBroker(broker) => write!(f, "broker {broker} is not registered"),
            Ignored::Unexpected(what) => write!(f, "{what}: not handled by this role"),
        }
    }
}

/// One thing a handler asks its host to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Command<M, S> {
    Send(Address, M),
    SetTimer(Timer, Duration),
    CancelTimer(Timer),
    Save(S),
    Stop(String),
    Ignore(Ignored),
}

/// The commands one handler call emitted, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Effects<M, S> {
    commands: Vec<Command<M, S>>,
}

impl<M, S> Default for Effects<M, S> {
    fn default() -> Self {
        Effects {
            commands: Vec::new(),
        }
    }
}

impl<M, S> Effects<M, S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn send(&mut self, to: Address, msg: M) {
        self.commands.push(Command::Send(to, msg));
    }

    pub fn set_timer(&mut self, timer: Timer, after: Duration) {
        self.commands.push(Command::SetTimer(timer, after));
    }

    pub fn cancel_timer(&mut self, timer: Timer) {
        self.commands.push(Command::CancelTimer(timer));
    }

    pub fn save(&mut self, saved: S) {
        self.commands.push(Command::Save(saved));
    }

    /// A log operation failed: the step stops here and the process with it.
    pub fn stop(&mut self, why: impl fmt::Display) {
        self.commands.push(Command::Stop(why.to_string()));
    }

    pub fn ignore(&mut self, why: Ignored) {
        self.commands.push(Command::Ignore(why));
    }

    pub fn commands(&self) -> &[Command<M, S>] {
        &self.commands
    }

    /// Whether the step stopped on a failed log operation.
    pub fn stopped(&self) -> bool {
        self.commands
            .iter()
            .any(|command| matches!(command, Command::Stop(_)))
    }
}

impl<M, S> IntoIterator for Effects<M, S> {
    type Item = Command<M, S>;
    type IntoIter = std::vec::IntoIter<Command<M, S>>;

    fn into_iter(self) -> Self::IntoIter {
        self.commands.into_iter()
    }
}
