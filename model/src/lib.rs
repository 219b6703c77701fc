//! Gregor's protocol: Kafka's replicated log as `stateright` actors, with no I/O.
//!
//! A controller registers brokers, creates topics and places their partitions' replicas,
//! elects each partition's leader from its ISR and bumps the leader epoch; brokers hold many
//! replicas, lead or follow each, replicate by fetching, truncate by leader epoch, advance each
//! partition's high watermark, and keep idempotent producers' sequence numbers; clients ask
//! brokers who leads and produce and consume. The same handlers run in the model checker (on an
//! in-memory log of tiny records), in the virtual-clock simulator and in the runtime (on the
//! on-disk log of record batches): see `ReplicaLog` and `effects`.
//!
//! `specs/protocol.md` states the protocol, the host's contract and every property in prose;
//! `check::CheckConfig` builds the checked system.

pub mod actor;
pub mod broker;
pub mod check;
pub mod client;
pub mod config;
pub mod controller;
pub mod effects;
pub mod group;
pub mod log;
pub mod message;
pub mod sim;
pub mod types;
