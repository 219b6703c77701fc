//! The model checked end to end on small configurations: every `Sometimes` property is reached
//! (the model is not vacuous), the safe protocol holds, and the state count is pinned so a silent
//! change to the model shows. Also the two rules that shrink the search: messages to a crashed
//! broker are lost, and states that differ only in a crashed broker's memory count as one.

use gregor_model::actor::ActorState;
use gregor_model::message::Timer;
use gregor_model::model::{
    representative, CheckConfig, Model, ModelAction, ModelState, NetworkKind,
};
use gregor_model::types::{BrokerId, Offset, Variant};
use stateright::actor::Id;
use stateright::{Checker, Expectation, HasDiscoveries, Model as _};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Small enough to exhaust in seconds: one record, one leader change, no restarts.
fn small() -> CheckConfig {
    CheckConfig {
        records: 1,
        max_epoch: 2,
        max_partition_epoch: 3,
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
const PINNED_UNIQUE_STATES: usize = 183_214;

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
        messages_to_broker_1_are_lost_once_it_crashes(CheckConfig { network, ..small() });
    }
}

fn messages_to_broker_1_are_lost_once_it_crashes(config: CheckConfig) {
    let model = config.into_model();
    let init = model.init_states().remove(0);
    // At first boot the followers' fetches are on their way to broker 1.
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
    // Its session expires: the controller tells every replica of the new leader, but what it
    // sends broker 1 is lost while brokers 2 and 3 get it.
    let expiry = ModelAction::Timeout(Id::from(0), Timer::SessionExpiry(BrokerId(1)));
    let elected = model.next_state(&crashed, expiry).expect("an election");
    let from_controller: Vec<usize> = links(&elected)
        .into_iter()
        .filter(|&(src, _)| src == 0)
        .map(|(_, dst)| dst)
        .collect();
    assert!(from_controller.contains(&2) && from_controller.contains(&3));
    assert!(!from_controller.contains(&1));
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

/// `state` with broker `index`'s in-memory high watermark set to `offset`.
fn with_high_watermark(state: &ModelState, index: usize, offset: u64) -> ModelState {
    let mut state = state.clone();
    let mut broker = state.actor_states[index]
        .broker()
        .expect("a broker")
        .clone();
    broker.high_watermark = Offset(offset);
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
        max_epoch: 3,
        max_partition_epoch: 4,
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
    assert!(!gregor_model::model::acked_writes_survive(
        model,
        path.last_state()
    ));
}
