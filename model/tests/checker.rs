//! The model checked end to end on small configurations: every `Sometimes` property is reached
//! (the model is not vacuous), the safe protocol holds, and the state count is pinned so a silent
//! change to the model shows.

use gregor_model::model::{CheckConfig, Model};
use gregor_model::types::Variant;
use stateright::{Checker, Expectation, HasDiscoveries, Model as _};
use std::collections::BTreeSet;

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
    let checker = small().into_model().checker().threads(2).spawn_dfs().join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), PINNED_UNIQUE_STATES);
}

/// Changes only when the model changes: update it deliberately, with the reason in the commit.
const PINNED_UNIQUE_STATES: usize = 986_888;

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
