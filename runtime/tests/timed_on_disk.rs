//! The timed scenarios (`gregor_model::sim::scenarios`) on the disk log: three brokers, each
//! with its own data folder, two topics of three partitions, timers at their real durations on
//! a virtual clock.

use gregor_model::sim::scenarios::{self, Setup};
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{DataDir, DiskLog, DiskLogConfig, LogConfig, ManualClock};
use std::sync::Arc;

fn setup(root: &std::path::Path) -> Setup<DiskLog> {
    let root = root.to_path_buf();
    Setup {
        log_config: Box::new(move |broker| DiskLogConfig {
            data_dir: DataDir::open(root.join(format!("broker-{broker}"))).expect("a data folder"),
            log: LogConfig::default(),
            clock: Arc::new(ManualClock::new(1_000_000)),
        }),
        batch: Box::new(|value| batch(1, 1_000 + i64::from(value), 16)),
    }
}

#[test]
fn a_crashed_follower_leaves_the_isr_within_the_lag_time_and_acks_all_goes_on() {
    let root = tempfile::tempdir().unwrap();
    scenarios::crashed_follower_leaves_the_isr_within_the_lag_time(&setup(root.path()));
}

#[test]
fn a_heartbeating_brokers_session_lasts_and_a_silent_ones_expires_in_time() {
    let root = tempfile::tempdir().unwrap();
    scenarios::sessions_last_while_brokers_heartbeat(&setup(root.path()));
}

#[test]
fn a_held_consumer_fetch_is_answered_within_max_wait() {
    let root = tempfile::tempdir().unwrap();
    scenarios::held_consumer_fetches_are_answered_within_max_wait(&setup(root.path()));
}

#[test]
fn a_produce_retried_after_a_lost_answer_is_written_once_with_idempotence() {
    let root = tempfile::tempdir().unwrap();
    scenarios::an_idempotent_retry_is_written_once(&setup(root.path()));
}

#[test]
fn a_group_survives_its_coordinators_crash() {
    let root = tempfile::tempdir().unwrap();
    scenarios::a_group_survives_its_coordinators_crash(&setup(root.path()));
}

#[test]
fn a_commit_to_a_group_without_members_is_kept() {
    let root = tempfile::tempdir().unwrap();
    scenarios::a_commit_to_a_group_without_members_is_kept(&setup(root.path()));
}

#[test]
fn an_empty_groups_offsets_expire_after_the_retention() {
    let root = tempfile::tempdir().unwrap();
    scenarios::an_empty_groups_offsets_expire_after_the_retention(&setup(root.path()));
}

#[test]
fn checked_members_share_partitions_and_survive_a_coordinator_crash() {
    let root = tempfile::tempdir().unwrap();
    scenarios::checked_members_share_partitions_and_survive_a_coordinator_crash(&setup(
        root.path(),
    ));
}
