//! Clients as the checker and the simulator run them: a producer, a consumer and consumer group
//! members that use the brokers as Kafka's clients do. They learn leaders by asking any broker (Metadata), send to
//! the leader they know, and on NOT_LEADER_OR_FOLLOWER, another error or a request that goes
//! unanswered for `request.timeout.ms`, ask again and retry. Metadata about a partition is
//! taken only if its leader epoch is no older than what the client knows (KIP-320).

pub mod consumer;
pub mod member;
pub mod producer;

use crate::effects::{Address, Effects};
use crate::message::{MetadataResponse, Msg, Timer};
use crate::types::{BrokerId, LeaderEpoch, Map, TopicId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;

/// What a client's handlers emit (clients save nothing).
pub type ClientEffects<B> = Effects<Msg<B>, Infallible>;

/// Settings every client has.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The topic it produces to or consumes from.
    pub topic: String,
    /// `bootstrap.servers`: the brokers it asks for metadata, in turn.
    pub bootstrap: Vec<BrokerId>,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
}

/// What a client knows of its topic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientMetadata {
    pub topic_id: Option<TopicId>,
    /// Each partition's leader (or none) and leader epoch, as the newest metadata said.
    pub leaders: Map<u32, (Option<BrokerId>, LeaderEpoch)>,
    /// The broker a Metadata request is outstanding at.
    pub asking: Option<BrokerId>,
    /// Which bootstrap broker to ask next.
    pub next_bootstrap: usize,
}

impl ClientMetadata {
    /// The partition's leader and its epoch, if known.
    pub fn leader(&self, partition: u32) -> Option<(BrokerId, LeaderEpoch)> {
        let (leader, epoch) = self.leaders.get(&partition)?;
        Some(((*leader)?, *epoch))
    }

    pub fn topic_partition(&self, partition: u32) -> Option<TopicPartition> {
        Some(TopicPartition {
            topic_id: self.topic_id?,
            partition,
        })
    }

    pub fn partition_count(&self) -> u32 {
        self.leaders.len() as u32
    }

    /// Asks the next bootstrap broker for the topic's metadata, unless a request is
    /// outstanding.
    pub fn refresh<B>(&mut self, config: &ClientConfig, out: &mut ClientEffects<B>) {
        if self.asking.is_some() || config.bootstrap.is_empty() {
            return;
        }
        let broker = config.bootstrap[self.next_bootstrap % config.bootstrap.len()];
        self.asking = Some(broker);
        out.send(
            Address::Broker(broker),
            Msg::Metadata {
                topics: vec![config.topic.clone()],
            },
        );
        out.set_timer(Timer::MetadataTimeout, config.request_timeout);
    }

    /// Takes what a Metadata answer says of the topic; returns whether the topic exists.
    pub fn learn<B>(
        &mut self,
        config: &ClientConfig,
        from: BrokerId,
        response: &MetadataResponse,
        out: &mut ClientEffects<B>,
    ) -> bool {
        if self.asking == Some(from) {
            self.asking = None;
            out.cancel_timer(Timer::MetadataTimeout);
        }
        let topic = response
            .topics
            .iter()
            .find(|(name, _)| *name == config.topic)
            .and_then(|(_, result)| result.as_ref().ok());
        let Some(topic) = topic else {
            return false;
        };
        if self.topic_id != Some(topic.id) {
            self.topic_id = Some(topic.id);
            self.leaders.clear();
        }
        for partition in &topic.partitions {
            let known = self.leaders.get(&partition.partition).map(|(_, e)| *e);
            if known.is_none_or(|known| known <= partition.leader_epoch) {
                self.leaders.insert(
                    partition.partition,
                    (partition.leader, partition.leader_epoch),
                );
            }
        }
        true
    }

    /// A request to `broker` went unanswered: the next Metadata request goes to the broker
    /// after it (Kafka's clients ask the least loaded node, never one whose connection just
    /// timed out).
    pub fn avoid(&mut self, config: &ClientConfig, broker: BrokerId) {
        if let Some(index) = config.bootstrap.iter().position(|b| *b == broker) {
            self.next_bootstrap = (index + 1) % config.bootstrap.len();
        }
    }

    /// The Metadata request went unanswered: the next one goes to the next broker.
    pub fn timed_out(&mut self, config: &ClientConfig) -> bool {
        if self.asking.is_none() {
            return false;
        }
        self.asking = None;
        self.next_bootstrap = (self.next_bootstrap + 1) % config.bootstrap.len().max(1);
        true
    }
}

/// The broker a response came from.
pub fn broker_of(from: Address) -> Option<BrokerId> {
    match from {
        Address::Broker(broker) => Some(broker),
        _ => None,
    }
}
