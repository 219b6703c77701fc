//! The checked system: a controller, `brokers` brokers, one producer and (unless left out) one
//! consumer — or, with `groups`, the members of one consumer group — over a network, started
//! from a fixed formation (every broker registers, the producer creates the topic; or the
//! members' first FindCoordinator creates `__consumer_offsets` and they join), with the bounds
//! that keep the state space finite, and the properties that `specs/protocol.md` defines word
//! for word (section "Properties").
//!
//! What only the checker needs lives here: the bounds, the network rule stateright lacks (a
//! message to a crashed broker is lost), what it observes of steps for the `Sometimes`
//! properties that show a flag's behaviour happened, and the counterexample prose.

pub mod describe;
pub mod properties;

use crate::actor::{ActorState, GregorActor, Layout, Role, Storage};
use crate::broker::BrokerState;
use crate::client::consumer::ConsumerConfig;
use crate::client::member::MemberConfig;
use crate::client::producer::ProducerConfig;
use crate::client::ClientConfig;
use crate::config::{
    BrokerConfig, BrokerTimeouts, ControllerConfig, OffsetsTopicConfig, ProtocolConfig, Rule,
    TopicConfig,
};
use crate::controller::ControllerState;
use crate::effects::Address;
use crate::group::{GroupTimer, Phase};
use crate::log::{MemoryLog, MemoryLogConfig, Record, RecordBatch};
use crate::message::Timer;
use crate::message::{ErrorCode, GroupAnswer, GroupOp, Msg, NewTopic};
use crate::types::{Acks, BrokerEpoch, BrokerId, CrashKind, FlushPolicy, TopicPartition, Variant};
use serde::{Deserialize, Serialize};
use stateright::actor::{ActorModel, ActorModelAction, ActorModelState, Id, LossyNetwork, Network};
use stateright::{Path, Property};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The log the model checks: tiny records in memory.
pub type ModelLog = MemoryLog<Record>;
pub type ModelActor = GregorActor<ModelLog>;
pub type ModelState = ActorModelState<ModelActor, Observed>;
pub type ModelAction = ActorModelAction<Msg<Record>, Timer, ()>;

/// The name of the checked topic.
pub const TOPIC: &str = "t";

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
    /// Partitions of the topic, each replicated to every broker.
    pub partitions: u32,
    pub records: u8,
    pub acks: Acks,
    pub min_insync_replicas: u32,
    pub variant: Variant,
    pub unclean_leader_election: bool,
    /// How many brokers may be down at the same time.
    pub crashes: usize,
    pub crash: CrashKind,
    pub flush: FlushPolicy,
    /// The largest leader epoch explored, per partition (the first leader's is 0).
    pub max_epoch: u32,
    /// The largest partition epoch explored, per partition (each leader or ISR change bumps
    /// it; the first is 0).
    pub max_partition_epoch: u32,
    /// The most broker registrations after formation explored (by restart, or after a session
    /// expired), all brokers together.
    pub max_registrations: u32,
    pub network: NetworkKind,
    pub lossy: bool,
    /// Whether the controller may expire the session of a broker that is up (slow or cut off),
    /// which goes on as a zombie; otherwise only the sessions of crashed brokers expire.
    pub zombies: bool,
    /// Whether brokers heartbeat (a zombie learns from the answer that its session expired and
    /// registers again); without, sessions still expire at any moment.
    pub heartbeats: bool,
    /// Whether retention deletes records (the oldest batch below the HW, at any moment).
    pub retention: bool,
    /// Whether brokers write their HW checkpoint (at any moment, as Kafka's every 5 s does);
    /// without, a restarted broker finds none (HW 0, the oldest it could find).
    pub checkpoints: bool,
    /// `enable.idempotence` at the producer.
    pub idempotence: bool,
    /// The producer's attempts per record, the first included.
    pub attempts_max: u8,
    /// Consumers: 1, or 0 to leave the consumer out.
    pub consumers: u8,
    /// Rules switched off, to show what goes wrong without them.
    pub without: BTreeSet<Rule>,
    /// The consumer group check (`--groups`): in place of the producer and the consumer,
    /// `members` members of one group split the topic's partitions and commit their positions
    /// through the coordinator, which keeps them in `__consumer_offsets` (one partition,
    /// replicated to every broker).
    pub groups: bool,
    /// Group members (with `groups`).
    pub members: u8,
    /// The largest group generation explored (with `groups`; the first is 1).
    pub max_generation: i32,
}

impl Default for CheckConfig {
    /// The safe default: Kafka today (KIP-320), 3 brokers, one partition, acks=all, min ISR 2,
    /// idempotence, one broker down at a time, process crashes.
    fn default() -> Self {
        CheckConfig {
            brokers: 3,
            partitions: 1,
            records: 2,
            acks: Acks::All,
            min_insync_replicas: 2,
            variant: Variant::Kip320,
            unclean_leader_election: false,
            crashes: 1,
            crash: CrashKind::Process,
            flush: FlushPolicy::Never,
            max_epoch: 1,
            max_partition_epoch: 2,
            max_registrations: 0,
            network: NetworkKind::Ordered,
            lossy: false,
            zombies: false,
            heartbeats: false,
            retention: false,
            checkpoints: false,
            idempotence: true,
            attempts_max: 2,
            consumers: 1,
            without: BTreeSet::new(),
            groups: false,
            members: 2,
            max_generation: 1,
        }
    }
}

/// The name of the checked group.
pub const GROUP: &str = "g";

/// What the checker observed of past steps, for `Sometimes` properties no state shows by
/// itself (stateright's history). Only what the configuration's properties ask for is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observed {
    /// A broker restarted after a power loss, with records written before it.
    pub restarted_after_power_loss: bool,
    /// ... and its recovered log was shorter than what it had written.
    pub unflushed_records_lost: bool,
    /// A live replica's log lost records at its end (a follower's truncation).
    pub follower_truncated: bool,
    /// A leader answered an idempotent producer's retry with the offset of the first write.
    pub duplicate_retried: bool,
    /// The network lost a message.
    pub message_lost: bool,
    /// A broker bounced and the controller fenced it on every partition it held, more than one.
    pub bounced_broker_fenced_everywhere: bool,
    /// A follower behind its leader's log start started again from there.
    pub follower_reset_to_log_start: Option<(BrokerId, TopicPartition)>,
    /// A broker restarted and found a HW checkpoint above 0.
    pub restarted_from_checkpoint: bool,
    /// A coordinator wrote a member's commit although the member was not in the group's
    /// current generation (`fenced_commits`).
    pub stale_commit_written: bool,
    /// A coordinator refused a member's commit with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID.
    pub stale_commit_refused: bool,
    /// A member's commit was acknowledged by a coordinator elected after the first.
    pub commit_acked_after_failover: bool,
}

impl CheckConfig {
    fn protocol(&self) -> ProtocolConfig {
        ProtocolConfig {
            variant: self.variant,
            flush: self.flush,
            without: self.without.clone(),
        }
    }

    fn layout(&self) -> Layout {
        Layout {
            brokers: self.brokers,
        }
    }

    /// The producer's records: 1, 2, ... (0 never appears, so it can mean "none").
    pub fn batches(&self) -> Vec<Record> {
        (1..=self.records).map(Record::new).collect()
    }

    /// The defaults of `gregor check --groups`: 2 brokers, `__consumer_offsets` with one
    /// partition on both (min ISR 1, Kafka's default for it), 2 members splitting a topic of 2
    /// partitions, one broker down at a time, the first generation (rebalances are explored
    /// with `--max-generation`: the check files bound the rest to stay exhaustive).
    pub fn groups() -> CheckConfig {
        CheckConfig {
            brokers: 2,
            partitions: 2,
            min_insync_replicas: 1,
            consumers: 0,
            groups: true,
            max_generation: 1,
            ..CheckConfig::default()
        }
    }

    /// The `Always` properties that apply: the replication properties (of
    /// `__consumer_offsets` too), and the group properties with `groups`.
    pub fn always(&self) -> Vec<&'static str> {
        let mut names = properties::ALWAYS.to_vec();
        if !self.groups {
            names.retain(|name| !properties::GROUP_ALWAYS.contains(name));
        }
        names
    }

    /// The `Sometimes` properties that apply: the model is not vacuous, and each flag's
    /// behaviour happened.
    pub fn sometimes(&self) -> Vec<&'static str> {
        if self.groups {
            return self.group_sometimes();
        }
        let mut names = vec!["record_committed"];
        if self.acks != Acks::None {
            names.push("record_acked");
        }
        names.extend(["leader_changed", "isr_shrunk"]);
        if self.consumers > 0 {
            names.push("consumer_read_record");
        }
        if self.variant != Variant::Kip320 {
            names.push("follower_truncated");
        }
        if self.unclean_leader_election {
            names.push("unclean_leader_elected");
        }
        if self.crash == CrashKind::Power {
            names.push("restarted_after_power_loss");
            if self.flush == FlushPolicy::Never {
                names.push("unflushed_records_lost");
            }
        }
        if self.max_registrations > 0 {
            names.push("broker_registered_again");
        }
        if self.zombies {
            names.push("zombie_leader");
        }
        if self.idempotence && self.attempts_max > 1 && self.acks != Acks::None {
            names.push("duplicate_retried");
        }
        if self.lossy {
            names.push("message_lost");
        }
        if self.retention {
            names.push("follower_caught_up_from_log_start");
        }
        if self.partitions > 1 {
            names.push("bounced_broker_fenced_everywhere");
        }
        if self.checkpoints {
            names.push("restarted_from_checkpoint");
        }
        names
    }

    fn group_sometimes(&self) -> Vec<&'static str> {
        let mut names = vec![
            "record_committed",
            "group_stable",
            "commit_acked",
            "isr_shrunk",
        ];
        if self.max_generation > 1 {
            names.extend(["group_rebalanced", "stale_commit_refused"]);
        }
        if self.crashes > 0 {
            names.extend(["leader_changed", "commit_acked_after_failover"]);
        }
        if self.max_registrations > 0 {
            names.push("broker_registered_again");
        }
        names
    }

    /// Builds the model: actors, network, crashes, bounds and properties.
    pub fn into_model(self) -> Model {
        let layout = self.layout();
        let protocol = self.protocol();
        let timeouts = BrokerTimeouts {
            heartbeat_interval: self.heartbeats.then_some(Duration::from_secs(2)),
            // Without --checkpoints a restart finds the oldest checkpoint there can be: none
            // written since the broker first started (HW 0). Retention runs only if asked for.
            high_watermark_checkpoint_interval: self.checkpoints.then_some(Duration::from_secs(5)),
            retention_check_interval: self.retention.then_some(Duration::from_secs(300)),
            ..BrokerTimeouts::default()
        };
        let controller = ControllerConfig {
            protocol: protocol.clone(),
            topic_defaults: TopicConfig {
                min_insync_replicas: self.min_insync_replicas,
                unclean_leader_election: self.unclean_leader_election,
            },
            producer_id_block_size: 1,
            ..ControllerConfig::default()
        };
        let mut actors = vec![GregorActor {
            layout,
            role: Role::Controller(controller),
        }];
        let log_config = MemoryLogConfig {
            crash: self.crash,
            retention: self.retention,
        };
        for id in 1..=self.brokers {
            let config = BrokerConfig {
                protocol: protocol.clone(),
                timeouts: timeouts.clone(),
                offsets_topic: OffsetsTopicConfig {
                    partitions: 1,
                    replication_factor: self.brokers,
                },
                ..BrokerConfig::new(BrokerId(id), ProtocolConfig::default())
            };
            actors.push(GregorActor {
                layout,
                role: Role::Broker { config, log_config },
            });
        }
        let client = ClientConfig {
            topic: TOPIC.to_string(),
            bootstrap: (1..=self.brokers).map(BrokerId).collect(),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
        };
        if self.groups {
            for member in 1..=self.members {
                actors.push(GregorActor {
                    layout,
                    role: Role::Member(MemberConfig {
                        client: client.clone(),
                        group: GROUP.to_string(),
                        client_id: format!("member{member}"),
                        partitions: self.partitions,
                        session_timeout: Duration::from_secs(10),
                        rebalance_timeout: Duration::from_secs(30),
                        heartbeat_interval: Duration::from_secs(3),
                    }),
                });
            }
        } else {
            self.push_producer_and_consumer(layout, client, &mut actors);
        }
        let network = match self.network {
            NetworkKind::Ordered => Network::new_ordered([]),
            NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
        };
        let lossy = match self.lossy {
            true => LossyNetwork::Yes,
            false => LossyNetwork::No,
        };
        let system = ActorModel::new(self.clone(), Observed::default())
            .actors(actors)
            .init_network(network)
            .lossy_network(lossy)
            .max_crashes(self.crashes);
        let sometimes = self.sometimes();
        Model {
            cfg: self,
            system,
            sometimes,
            no_op_steps: false,
        }
    }

    /// The producer (which creates the topic) and, unless left out, the consumer.
    fn push_producer_and_consumer(
        &self,
        layout: Layout,
        client: ClientConfig,
        actors: &mut Vec<ModelActor>,
    ) {
        actors.push(GregorActor {
            layout,
            role: Role::Producer(ProducerConfig {
                client: client.clone(),
                create: Some(NewTopic {
                    name: TOPIC.to_string(),
                    partitions: self.partitions,
                    replication_factor: self.brokers,
                    min_insync_replicas: None,
                    unclean_leader_election: None,
                }),
                batches: self.batches(),
                acks: self.acks,
                attempts_max: self.attempts_max,
                idempotence: self.idempotence,
            }),
        });
        if self.consumers > 0 {
            actors.push(GregorActor {
                layout,
                role: Role::Consumer(ConsumerConfig {
                    client,
                    send_leader_epoch: self.variant.fences_leader_epoch(),
                    fetch_min_bytes: 1,
                    fetch_max_wait_ms: 500,
                    fetch_max_bytes: u64::from(self.records),
                    partition_fetch_max_bytes: u64::from(self.records),
                }),
            });
        }
    }
}

/// The checked system: stateright's actor model of the actors above, started after formation,
/// with the bounds and the properties, and one rule of the network that stateright's lacks: a
/// message to a crashed broker is lost, in flight when it crashed or sent while it is down, as
/// TCP loses what was bound for a host that died (its connections break; a new process gets
/// new connections).
#[derive(Clone)]
pub struct Model {
    pub cfg: CheckConfig,
    system: ActorModel<ModelActor, CheckConfig, Observed>,
    sometimes: Vec<&'static str>,
    /// Whether a step that changes nothing is a step (to the same state) rather than none.
    no_op_steps: bool,
}

impl Model {
    /// Every action a step, a no-op one leaving the state as it was. Stateright 0.31's random
    /// walks need this to replay what they found: on an action with no next state they record
    /// an index into a list they then shrink, which no replay can follow.
    pub fn with_no_op_steps(mut self) -> Self {
        self.no_op_steps = true;
        self
    }

    /// The actors, indexed by actor id: the controller, the brokers, the producer, the consumer.
    pub fn actors(&self) -> &[ModelActor] {
        &self.system.actors
    }

    /// The system as started, before formation.
    pub fn boot_state(&self) -> ModelState {
        stateright::Model::init_states(&self.system).remove(0)
    }

    /// Formation, the fixed prefix every checked run starts after: every message is delivered
    /// in a fixed order (the lowest link first, as `(sender, receiver)` actor ids) — the brokers
    /// register, the producer creates the topic, the controller places and announces it, the
    /// followers' first fetches and the consumer's are held, the producer learns who leads —
    /// until only the producer's first Produce is in flight. A client waiting to retry (the
    /// topic not yet created) is let retry when nothing else can happen.
    pub fn formation(&self) -> (ModelState, usize) {
        let mut state = self.boot_state();
        for steps in 0..10_000 {
            let next = state
                .network
                .iter_deliverable()
                .find(|envelope| !matches!(envelope.msg, Msg::Produce(_)));
            let action = match next {
                Some(envelope) => ModelAction::Deliver {
                    src: envelope.src,
                    dst: envelope.dst,
                    msg: envelope.msg.clone(),
                },
                None => match self.waiting_client(&state) {
                    Some(action) => action,
                    None => return (state, steps),
                },
            };
            state = stateright::Model::next_state(&self.system, &state, action)
                .expect("formation steps are enabled");
        }
        panic!("formation did not settle in 10,000 steps");
    }

    /// A client's retry backoff, if one is armed.
    fn waiting_client(&self, state: &ModelState) -> Option<ModelAction> {
        let clients = self.cfg.brokers as usize + 1..self.actors().len();
        clients.into_iter().find_map(|index| {
            state.timers_set[index]
                .iter()
                .find(|t| **t == Timer::RetryBackoff)
                .map(|t| ModelAction::Timeout(Id::from(index), t.clone()))
        })
    }

    /// A client's request times out only once nothing of it is on the network and the broker
    /// does not hold it for an answer that is sure to come: `request.timeout.ms` is longer than
    /// any round trip, any `max_wait_ms` and (in the checked system) any wait for a live
    /// leader to commit; a client resending what is still on its way would only grow the
    /// network without bound.
    fn may_time_out(&self, state: &ModelState, id: Id, timer: &Timer) -> bool {
        let broker = match timer {
            Timer::RequestTimeout(broker) => *broker,
            Timer::MetadataTimeout => {
                let index = usize::from(id);
                let asking = match &*state.actor_states[index] {
                    ActorState::Producer(p) => p.metadata.asking,
                    ActorState::Consumer(c) => c.metadata.asking,
                    _ => None,
                };
                match asking {
                    Some(broker) => broker,
                    None => return true,
                }
            }
            _ => return true,
        };
        // A held fetch is answered within its max_wait_ms, and an acks=all write held by the
        // partition's current leader once committed or when that leader resigns: both before
        // the request times out. A write held by a deposed leader that does not know it yet (a
        // zombie) waits until the producer gives up on it.
        let client = self.cfg.layout().address(id);
        let index = broker.0 as usize;
        let current_leader = |tp: &TopicPartition| {
            controller(state).partition(*tp).and_then(|p| p.leader) == Some(broker)
        };
        // A group coordinator holds a join until the join completes, a sync until the
        // assignment is stored, a commit until it is committed (or it resigns).
        let holds = !state.crashed[index]
            && state.actor_states[index].broker().is_some_and(|b| {
                b.held_fetches.iter().any(|h| h.requester == client)
                    || b.replicas.iter().any(|(tp, r)| {
                        r.leader().is_some_and(|l| {
                            l.pending_produces.iter().any(|p| p.requester == client)
                        }) && current_leader(tp)
                    })
                    || b.coordinators.iter().any(|(tp, c)| {
                        let waits = c
                            .groups
                            .values()
                            .any(|g| g.waiting().any(|r| r.to == client));
                        let writes = c.writes.iter().any(|w| w.replies_to(client));
                        (waits || writes) && current_leader(tp)
                    })
            });
        let broker = Id::from(index);
        !holds && !on_link(state, id, broker) && !on_link(state, broker, id)
    }

    /// A member's heartbeat is sent only when its answer would be news: an error (a
    /// rebalance, an unknown member or generation, a coordinator gone). One answered OK leads
    /// back to the very state it left (the coordinator's session timer, already armed, is
    /// armed again; so is the member's heartbeat timer): the round trip adds states and no
    /// behaviour — the coordinator's session timer may fire at any moment regardless.
    fn heartbeat_is_news(&self, state: &ModelState, id: Id) -> bool {
        let Some(member) = state.actor_states[usize::from(id)].member() else {
            return true;
        };
        let (Some(broker), Some((generation, _)), Some(member_id)) = (
            member.coordinator,
            member.assignment(),
            member.member_id.as_ref(),
        ) else {
            return true;
        };
        let index = broker.0 as usize;
        let group = properties::group_partition(state).and_then(|tp| {
            state.actor_states[index]
                .broker()?
                .coordinators
                .get(&tp)?
                .groups
                .get(GROUP)
        });
        let answered_ok = !state.crashed[index]
            && group.is_some_and(|g| {
                g.members.contains_key(member_id)
                    && g.generation == generation
                    && matches!(g.phase, Phase::CompletingRebalance | Phase::Stable)
            });
        !answered_ok
    }

    /// A coordinator's timers that stand for waits longer than any round trip fire only once
    /// nothing is on its way between the coordinator and the members they are about: a
    /// member id handed out with MEMBER_ID_REQUIRED expires (after the session timeout) only
    /// if its member's join is not on its way; a generation's members that have not synced
    /// are removed (after the rebalance timeout) only if their syncs are not on their way.
    /// Checked members answer at once, so this only leaves out timers firing before a round
    /// trip could end.
    fn coordinator_timer_may_fire(&self, state: &ModelState, id: Id, timer: &GroupTimer) -> bool {
        if !matches!(timer, GroupTimer::Pending(_) | GroupTimer::Sync(_)) {
            return true;
        }
        let members = self.cfg.brokers as usize + 1..self.actors().len();
        members
            .map(Id::from)
            .all(|member| !on_link(state, id, member) && !on_link(state, member, id))
    }

    /// The registrations after formation: broker epochs saved beyond each broker's first.
    fn registrations(&self, state: &ModelState) -> u32 {
        state
            .actor_storages
            .iter()
            .map(|storage| match storage {
                Some(Storage::Broker(broker)) => broker.broker_epoch.0.saturating_sub(1) as u32,
                _ => 0,
            })
            .sum()
    }
}

impl stateright::Model for Model {
    type State = ModelState;
    type Action = ModelAction;

    fn init_states(&self) -> Vec<ModelState> {
        vec![self.formation().0]
    }

    /// Stateright's actions, but only brokers crash (the controller's own replication is out
    /// of scope; clients that crash forget what they must report), and a crashed broker
    /// restarts only while a registration is left in `max_registrations`.
    fn actions(&self, state: &ModelState, actions: &mut Vec<ModelAction>) {
        self.system.actions(state, actions);
        let brokers = 1..=self.cfg.brokers as usize;
        let restarts_left = self.registrations(state) < self.cfg.max_registrations;
        actions.retain(|action| match action {
            ActorModelAction::Crash(id) => brokers.contains(&usize::from(*id)),
            ActorModelAction::Recover(_) => restarts_left,
            ActorModelAction::Timeout(id, Timer::FetchExpiry(requester)) => {
                expiry_is_news(state, usize::from(*id), *requester)
            }
            // Offsets retention (7 days without members) is out of the group check's scope:
            // its expiry deletes committed offsets by design (`model/tests/timed.rs` covers it).
            ActorModelAction::Timeout(_, Timer::Group(_, _, GroupTimer::Retention)) => false,
            ActorModelAction::Timeout(id, Timer::Group(_, _, timer)) => {
                self.coordinator_timer_may_fire(state, *id, timer)
            }
            ActorModelAction::Timeout(id, Timer::Heartbeat) if self.cfg.groups => {
                usize::from(*id) <= self.cfg.brokers as usize || self.heartbeat_is_news(state, *id)
            }
            ActorModelAction::Timeout(id, timer) => self.may_time_out(state, *id, timer),
            _ => true,
        });
    }

    fn next_state(&self, last_state: &ModelState, action: ModelAction) -> Option<ModelState> {
        let Some(mut next) = self.system.next_state(last_state, action.clone()) else {
            return self.no_op_steps.then(|| last_state.clone());
        };
        lose_messages_to_crashed(&mut next);
        self.observe(last_state, &action, &mut next);
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
        let always = self
            .cfg
            .always()
            .into_iter()
            .map(|name| Property::always(name, properties::always(name)));
        let sometimes = self
            .sometimes
            .iter()
            .map(|name| Property::sometimes(name, properties::sometimes(name)));
        always.chain(sometimes).collect()
    }

    fn within_boundary(&self, state: &ModelState) -> bool {
        let controller = controller(state);
        let zombie_free = self.cfg.zombies || !has_zombie(controller, state);
        let epochs = controller.partitions().all(|p| {
            p.leader_epoch.0 <= self.cfg.max_epoch
                && p.partition_epoch.0 <= self.cfg.max_partition_epoch
        });
        let generations = live_brokers(state).all(|(_, broker)| {
            broker
                .coordinators
                .values()
                .all(|c| c.groups.values().all(|g| self.within_group_bounds(g)))
        });
        zombie_free
            && epochs
            && generations
            && self.registrations(state) <= self.cfg.max_registrations
    }
}

impl Model {
    /// A group's generations up to `max_generation`, and member ids handed out by one
    /// coordinator up to `members + max_generation` (a member forgets its id, on
    /// UNKNOWN_MEMBER_ID, only after a rebalance removed it or its pending id expired).
    fn within_group_bounds(&self, group: &crate::group::Group<crate::message::GroupReply>) -> bool {
        group.generation <= self.cfg.max_generation
            && group.member_ids_handed_out() as i32
                <= i32::from(self.cfg.members) + self.cfg.max_generation
    }

    /// Records what a step did that later states cannot show (only what a property asks for).
    fn observe(&self, last: &ModelState, action: &ModelAction, next: &mut ModelState) {
        let wants = |name: &str| self.sometimes.contains(&name);
        match action {
            ActorModelAction::Drop(_) if wants("message_lost") => {
                next.history.message_lost = true;
            }
            ActorModelAction::Recover(id) => {
                let Some(Storage::Broker(saved)) = &last.actor_storages[usize::from(*id)] else {
                    return;
                };
                if wants("restarted_from_checkpoint") {
                    let found = saved.high_watermarks.iter().any(|(_, hw)| hw.0 > 0);
                    next.history.restarted_from_checkpoint |= found;
                }
                if self.cfg.crash != CrashKind::Power {
                    return;
                }
                let written = saved.logs.values().any(|d| d.written_end_offset.0 > 0);
                let lost = saved.logs.values().any(|d| {
                    d.entries
                        .last()
                        .map_or(d.log_start_offset, |e| e.next_offset())
                        < d.written_end_offset
                });
                next.history.restarted_after_power_loss |=
                    written && wants("restarted_after_power_loss");
                next.history.unflushed_records_lost |= lost && wants("unflushed_records_lost");
            }
            ActorModelAction::Deliver { dst, msg, .. } => {
                let index = usize::from(*dst);
                if let (Some(before), Some(after)) = (
                    last.actor_states[index].broker(),
                    next.actor_states[index].broker(),
                ) {
                    let mut history = next.history.clone();
                    self.observe_broker(BrokerId(index as u32), before, after, msg, &mut history);
                    next.history = history;
                }
                if self.cfg.groups {
                    let mut history = next.history.clone();
                    self.observe_group(last, next, index, msg, &mut history);
                    next.history = history;
                }
                if let Msg::BrokerRegistration { broker, .. } = msg {
                    if wants("bounced_broker_fenced_everywhere") {
                        let fenced = fenced_everywhere(controller(last), controller(next), *broker);
                        next.history.bounced_broker_fenced_everywhere |= fenced;
                    }
                }
            }
            ActorModelAction::Timeout(id, _) => {
                let index = usize::from(*id);
                if let (Some(before), Some(after)) = (
                    last.actor_states[index].broker(),
                    next.actor_states[index].broker(),
                ) {
                    let mut history = next.history.clone();
                    let msg = Msg::Disconnected;
                    self.observe_broker(BrokerId(index as u32), before, after, &msg, &mut history);
                    next.history = history;
                }
            }
            _ => {}
        }
    }

    /// What a delivery shows of the group: a stale commit written or refused, a commit
    /// acknowledged after a failover.
    fn observe_group(
        &self,
        last: &ModelState,
        next: &ModelState,
        dst: usize,
        msg: &Msg<Record>,
        history: &mut Observed,
    ) {
        use crate::log::ReplicaLog;
        match msg {
            Msg::Group(request) => {
                let GroupOp::OffsetCommit(commit) = &request.op else {
                    return;
                };
                let (Some(before), Some(after), Some(tp)) = (
                    last.actor_states[dst].broker(),
                    next.actor_states[dst].broker(),
                    properties::group_partition(last),
                ) else {
                    return;
                };
                let Some(coordinator) = before.coordinators.get(&tp) else {
                    return;
                };
                let written = after.replicas.get(&tp).map(|r| r.log.log_end_offset())
                    > before.replicas.get(&tp).map(|r| r.log.log_end_offset());
                let group = coordinator.groups.get(&request.group);
                let current = commit.member_id.as_ref().is_some_and(|id| {
                    group.is_some_and(|g| {
                        g.members.contains_key(id) && g.generation == commit.generation
                    })
                });
                history.stale_commit_written |= written && !current;
            }
            Msg::GroupResponse(response) => {
                let client = self.cfg.layout().address(Id::from(dst));
                if !matches!(client, Address::Client(_)) {
                    return;
                }
                match response.answer {
                    GroupAnswer::OffsetCommit(Err(
                        ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId,
                    )) => {
                        history.stale_commit_refused = true;
                    }
                    GroupAnswer::OffsetCommit(Ok(())) => {
                        let failed_over = properties::group_partition(last)
                            .and_then(|tp| controller(last).partition(tp))
                            .is_some_and(|p| p.leader_epoch.0 > 0);
                        history.commit_acked_after_failover |= failed_over;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn observe_broker(
        &self,
        id: BrokerId,
        before: &BrokerState<ModelLog>,
        after: &BrokerState<ModelLog>,
        msg: &Msg<Record>,
        history: &mut Observed,
    ) {
        use crate::log::ReplicaLog;
        let wants = |name: &str| self.sometimes.contains(&name);
        for (tp, was) in &before.replicas {
            let Some(now) = after.replicas.get(tp) else {
                continue;
            };
            let (was_end, now_end) = (was.log.log_end_offset(), now.log.log_end_offset());
            if wants("follower_truncated") && now_end < was_end {
                history.follower_truncated = true;
            }
            if wants("follower_caught_up_from_log_start")
                && now.log.log_start_offset() > was_end
                && history.follower_reset_to_log_start.is_none()
            {
                history.follower_reset_to_log_start = Some((id, *tp));
            }
        }
        if let Msg::Produce(request) = msg {
            let replica = before.replicas.get(&request.topic_partition);
            let duplicate = replica.filter(|r| r.leader().is_some()).is_some_and(|r| {
                request.batch.producer().is_some_and(|numbering| {
                    matches!(
                        r.producers.verdict(numbering, request.batch.record_count()),
                        crate::broker::idempotence::Verdict::Duplicate(_)
                    )
                })
            });
            history.duplicate_retried |= duplicate && wants("duplicate_retried");
        }
    }
}

/// Whether handling `broker`'s registration fenced a bounced incarnation on every partition it
/// held, more than one.
fn fenced_everywhere(before: &ControllerState, after: &ControllerState, broker: BrokerId) -> bool {
    let bounced = before.is_alive(broker)
        && after.brokers.get(&broker).map(|r| r.broker_epoch)
            > before.brokers.get(&broker).map(|r| r.broker_epoch);
    if !bounced {
        return false;
    }
    let held: Vec<_> = before
        .partitions()
        .filter(|p| p.replicas.contains(&broker))
        .collect();
    let fenced = held.iter().filter(|p| {
        after.partition(p.topic_partition).is_some_and(|now| {
            now.partition_epoch > p.partition_epoch
                && (now.leader_epoch > p.leader_epoch
                    || !now.isr.contains(&broker)
                    || p.isr.len() == 1)
        })
    });
    held.len() > 1 && fenced.count() == held.len()
}

/// Whether a held fetch's expiry would tell its requester anything: the checker lets a held
/// fetch expire only then. An answer with no records and nothing new (a consumer's fetch is
/// answered as soon as the HW passes its position; a follower learns only a HW or log start it
/// can take) leads, once the requester fetches again, back to the very state it left: the
/// round trip adds states and no behaviour.
fn expiry_is_news(state: &ModelState, leader: usize, requester: Address) -> bool {
    let Address::Broker(follower) = requester else {
        return false;
    };
    let index = follower.0 as usize;
    let (Some(leader), Some(follower)) = (
        state.actor_states[leader].broker(),
        state.actor_states[index].broker(),
    ) else {
        return false;
    };
    if state.crashed[index] {
        return false;
    }
    let Some(held) = leader
        .held_fetches
        .iter()
        .find(|h| h.requester == requester)
    else {
        return false;
    };
    held.request.partitions.iter().any(|p| {
        let tp = p.topic_partition;
        let (Some(at_leader), Some(at_follower)) =
            (leader.replicas.get(&tp), follower.replicas.get(&tp))
        else {
            return true;
        };
        use crate::log::ReplicaLog;
        let learns = at_leader
            .high_watermark
            .min(at_follower.log.log_end_offset());
        learns > at_follower.high_watermark
            || at_leader.log.log_start_offset() > at_follower.log.log_start_offset()
    })
}

/// Whether a message from `src` to `dst` is on its way.
fn on_link(state: &ModelState, src: Id, dst: Id) -> bool {
    match &state.network {
        Network::Ordered(flows) => flows.get(&(src, dst)).is_some_and(|f| !f.is_empty()),
        network => network.iter_all().any(|e| e.src == src && e.dst == dst),
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

/// A broker that is up although the controller expired the session of this very broker epoch.
pub fn has_zombie(controller: &ControllerState, state: &ModelState) -> bool {
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
/// reads it, nor does anything the checker observes. So two states that differ only there have
/// the same futures and the same property values, and the checker explores one of them. The
/// checker goes on from `state` itself, so counterexamples are unchanged.
pub fn representative(state: &ModelState) -> ModelState {
    let mut representative = state.clone();
    for (index, crashed) in state.crashed.iter().enumerate() {
        if *crashed && state.actor_states[index].broker().is_some() {
            representative.actor_states[index] = Arc::new(ActorState::Broker(down()));
        }
    }
    representative
}

/// The one state `representative` puts in place of any crashed broker's.
fn down() -> BrokerState<ModelLog> {
    BrokerState::empty(BrokerEpoch(0))
}

pub fn controller(state: &ModelState) -> &ControllerState {
    state.actor_states[0]
        .controller()
        .expect("actor 0 is the controller")
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
