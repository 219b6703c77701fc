//! The model checked end to end on small configurations: every `Sometimes` property is reached
//! (the model is not vacuous), the safe protocol holds, and the state count is pinned so a silent
//! change to the model shows. Also the two rules that shrink the search: messages to a crashed
//! broker are lost, and states that differ only in a crashed broker's memory count as one.

use gregor_model::actor::ActorState;
use gregor_model::check::{
    properties, representative, CheckConfig, Model, ModelAction, ModelState, NetworkKind,
};
use gregor_model::client::producer::Pending;
use gregor_model::message::Timer;
use gregor_model::types::{BrokerId, Offset, TopicPartition, Variant};
use stateright::actor::Id;
use stateright::{Checker, Expectation, HasDiscoveries, Model as _};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Small enough to exhaust in seconds: one record, one leader change, no restarts.
fn small() -> CheckConfig {
    CheckConfig {
        records: 1,
        max_epoch: 1,
        max_partition_epoch: 2,
        max_registrations: 0,
        attempts_max: 1,
        ..CheckConfig::default()
    }
}

#[test]
fn every_sometimes_property_is_reached_on_a_path_that_ends_where_it_holds() {
    let config = small();
    let sometimes: BTreeSet<&'static str> = config.sometimes().into_iter().collect();
    let model: Model = config.into_model();
    let checker = model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AllOf(sometimes.clone()))
        .spawn_bfs()
        .join();
    let model = checker.model();
    for property in model.properties() {
        if property.expectation != Expectation::Sometimes {
            continue;
        }
        let path = checker
            .discovery(property.name)
            .unwrap_or_else(|| panic!("{} not reached", property.name));
        assert!(
            (property.condition)(model, path.last_state()),
            "{}: the path's last state must satisfy it",
            property.name
        );
    }
}

#[test]
fn the_safe_protocol_holds_exhaustively_and_its_state_count_is_pinned() {
    // As `gregor check` searches depth-first: with crashed brokers' memory ignored.
    let checker = depth_first(small(), true);
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), PINNED_UNIQUE_STATES);
}

/// Changes only when the model changes: update it deliberately, with the reason in the commit.
const PINNED_UNIQUE_STATES: usize = 92_169;

/// An exhaustive depth-first search, remembering `representative` states or the states as they are.
fn depth_first(config: CheckConfig, representatives: bool) -> impl Checker<Model> {
    let builder = config.into_model().checker().threads(2);
    let builder = match representatives {
        true => builder.symmetry_fn(representative),
        false => builder,
    };
    builder.spawn_dfs().join()
}

/// Every envelope on the network, as (source, destination) actor indexes.
fn links(state: &ModelState) -> Vec<(usize, usize)> {
    match &state.network {
        stateright::actor::Network::Ordered(flows) => flows
            .iter()
            .flat_map(|((src, dst), messages)| {
                messages
                    .iter()
                    .map(|_| (usize::from(*src), usize::from(*dst)))
            })
            .collect(),
        // (Not `iter_all` for ordered flows: stateright 0.31's iterator over them never ends.)
        network => network
            .iter_all()
            .map(|envelope| (usize::from(envelope.src), usize::from(envelope.dst)))
            .collect(),
    }
}

#[test]
fn messages_to_a_crashed_broker_are_lost_in_flight_and_when_sent_later() {
    for network in [NetworkKind::Ordered, NetworkKind::Unordered] {
        let config = CheckConfig {
            network,
            attempts_max: 2,
            ..small()
        };
        messages_to_broker_1_are_lost_once_it_crashes(config);
    }
}

fn messages_to_broker_1_are_lost_once_it_crashes(config: CheckConfig) {
    let model = config.into_model();
    let init = model.init_states().remove(0);
    // After formation the producer's first record is on its way to broker 1, the leader.
    assert!(links(&init).iter().any(|&(_, dst)| dst == 1));
    let crashed = model
        .next_state(&init, ModelAction::Crash(Id::from(1)))
        .expect("broker 1 may crash");
    assert!(links(&crashed).iter().all(|&(_, dst)| dst != 1));
    assert_eq!(
        links(&crashed).len(),
        links(&init).iter().filter(|&&(_, dst)| dst != 1).count(),
        "only the messages to broker 1 are lost"
    );
    // Its session expires: the controller tells every live broker of the new leader (nothing
    // goes to broker 1, which it considers dead).
    let expiry = ModelAction::Timeout(Id::from(0), Timer::SessionExpiry(BrokerId(1)));
    let elected = model.next_state(&crashed, expiry).expect("an election");
    let from_controller: Vec<usize> = links(&elected)
        .into_iter()
        .filter(|&(src, _)| src == 0)
        .map(|(_, dst)| dst)
        .collect();
    assert!(from_controller.contains(&2) && from_controller.contains(&3));
    assert!(!from_controller.contains(&1));
    // A message sent to broker 1 while it is down is lost. Before its session expires, the
    // producer's request times out; it backs off and asks broker 2 (never the broker that
    // just timed out), which still names broker 1 as leader; the retry to broker 1 is lost.
    let timed_out = ModelAction::Timeout(Id::from(4), Timer::RequestTimeout(BrokerId(1)));
    let backing_off = model.next_state(&crashed, timed_out).expect("a timeout");
    let retry = ModelAction::Timeout(Id::from(4), Timer::RetryBackoff);
    let asked = model.next_state(&backing_off, retry).expect("a retry");
    let producer = asked.actor_states[4].producer().expect("the producer");
    assert_eq!(producer.metadata.asking, Some(BrokerId(2)));
    let answered = deliver(&model, &deliver(&model, &asked, 4, 2), 2, 4);
    let producer = answered.actor_states[4].producer().expect("the producer");
    assert!(matches!(
        producer.pending,
        Some(Pending::Produce {
            broker: BrokerId(1),
            ..
        })
    ));
    assert!(links(&answered).iter().all(|&(_, dst)| dst != 1));
}

/// `state` after the first message in flight from actor `src` to actor `dst` is delivered.
fn deliver(model: &Model, state: &ModelState, src: usize, dst: usize) -> ModelState {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    let action = actions
        .into_iter()
        .find(|action| {
            matches!(action, ModelAction::Deliver { src: s, dst: d, .. }
                if usize::from(*s) == src && usize::from(*d) == dst)
        })
        .unwrap_or_else(|| panic!("a message from {src} to {dst}"));
    model.next_state(state, action).expect("delivered")
}

#[test]
fn states_that_differ_only_in_a_crashed_brokers_memory_share_a_representative() {
    let model = small().into_model();
    let init = model.init_states().remove(0);
    let crashed = model
        .next_state(&init, ModelAction::Crash(Id::from(2)))
        .unwrap();
    let other = with_high_watermark(&crashed, 2, 5);
    assert_ne!(crashed, other);
    assert_eq!(representative(&crashed), representative(&other));
    // A live broker's memory always counts.
    let other = with_high_watermark(&crashed, 3, 5);
    assert_ne!(representative(&crashed), representative(&other));
}

/// `state` with broker `index`'s in-memory high watermark of its one partition set to
/// `offset`.
fn with_high_watermark(state: &ModelState, index: usize, offset: u64) -> ModelState {
    let mut state = state.clone();
    let mut broker = state.actor_states[index]
        .broker()
        .expect("a broker")
        .clone();
    let replica = broker
        .replicas
        .iter_mut()
        .next()
        .map(|(_, replica)| replica)
        .expect("a replica");
    replica.high_watermark = Offset(offset);
    state.actor_states[index] = Arc::new(ActorState::Broker(broker));
    state
}

#[test]
fn ignoring_crashed_brokers_memory_shrinks_the_search_and_changes_no_verdict() {
    let plain = depth_first(small(), false);
    let reduced = depth_first(small(), true);
    plain.assert_properties();
    reduced.assert_properties();
    assert!(reduced.unique_state_count() < plain.unique_state_count());
}

#[test]
fn hw_truncation_loses_an_acknowledged_record() {
    // Two leader changes with two brokers down: the classic loss (specs/checks/hw-truncation).
    let config = CheckConfig {
        variant: Variant::HwTruncation,
        crashes: 2,
        max_epoch: 2,
        max_partition_epoch: 3,
        consumers: 0,
        ..small()
    };
    let checker = config
        .into_model()
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([
            "acked_writes_survive",
        ])))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("acked_writes_survive")
        .expect("HW truncation must lose an acknowledged record");
    let model = checker.model();
    assert!(!properties::acked_writes_survive(model, path.last_state()));
}

#[test]
fn formation_registers_every_broker_and_creates_the_topic_before_the_first_record() {
    let model = small().into_model();
    let (state, steps) = model.formation();
    assert!(steps > 10, "formation takes {steps} steps");
    let controller = gregor_model::check::controller(&state);
    assert_eq!(controller.brokers.len(), 3);
    assert!(controller.brokers.values().all(|r| r.alive));
    let partition = controller
        .partitions()
        .next()
        .expect("the topic has a partition");
    assert_eq!(partition.leader, Some(BrokerId(1)));
    assert_eq!(partition.isr.len(), 3);
    let tp: TopicPartition = partition.topic_partition;
    for index in 1..=3 {
        let broker = state.actor_states[index].broker().expect("a broker");
        let replica = &broker.replicas[&tp];
        assert_eq!(replica.leader().is_some(), index == 1, "broker {index}");
    }
    // Nothing but the first record is in flight: every fetch is held at the leader.
    assert_eq!(links(&state), vec![(4, 1)]);
    let leader = state.actor_states[1].broker().expect("a broker");
    assert_eq!(
        leader.held_fetches.len(),
        3,
        "two followers and the consumer"
    );
}

/// `gregor check --groups` with one member (small enough for a test): the group's properties
/// hold exhaustively, every `Sometimes` property is reached, and the state count is pinned.
#[test]
fn the_group_check_holds_and_reaches_every_sometimes_property() {
    let config = CheckConfig {
        members: 1,
        max_generation: 3,
        ..CheckConfig::groups()
    };
    let sometimes = config.sometimes();
    assert!(sometimes.contains(&"commit_acked_after_failover"));
    let checker = config
        .into_model()
        .checker()
        .threads(2)
        .symmetry_fn(representative)
        .spawn_dfs()
        .join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), PINNED_GROUP_UNIQUE_STATES);
}

const PINNED_GROUP_UNIQUE_STATES: usize = 43_864;

/// Each coordinator rule switched off lets the property it exists for fail.
#[test]
fn the_group_checks_find_the_coordinator_bugs_they_exist_for() {
    use gregor_model::config::Rule;
    let cases = [
        (
            Rule::CommitAcksAll,
            "committed_offsets_survive",
            CheckConfig {
                members: 1,
                max_generation: 3,
                ..CheckConfig::groups()
            },
        ),
        (
            Rule::CommitGenerationFence,
            "fenced_commits",
            CheckConfig {
                crashes: 0,
                max_generation: 2,
                ..CheckConfig::groups()
            },
        ),
        (
            Rule::GroupRecordAcksAll,
            "one_owner_per_partition",
            CheckConfig::groups(),
        ),
    ];
    for (rule, property, mut config) in cases {
        config.without.insert(rule);
        let checker = config
            .into_model()
            .checker()
            .threads(2)
            .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
            .spawn_bfs()
            .join();
        assert!(
            checker.discovery(property).is_some(),
            "without {rule}: {property} holds"
        );
    }
}
