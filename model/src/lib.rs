//! Gregor's protocol: Kafka's partition replication as `stateright` actors, with no I/O.
//!
//! A controller elects a leader from the in-sync replicas and bumps the leader epoch; brokers
//! lead or follow, replicate by fetching, truncate by leader epoch, and advance the high
//! watermark; a producer writes with acks 0/1/all and a consumer reads what is committed. The
//! same handlers run in the model checker (on an in-memory log of tiny records) and in the
//! runtime (on the on-disk log of record batches): see `ReplicaLog`.
//!
//! `specs/protocol.md` states the protocol and every property in prose; `model::CheckConfig`
//! builds the checked system.

pub mod actor;
pub mod broker;
pub mod consumer;
pub mod controller;
pub mod describe;
pub mod log;
pub mod message;
pub mod model;
pub mod producer;
pub mod types;
