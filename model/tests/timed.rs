//! The timed scenarios (`gregor_model::sim::scenarios`) on the in-memory log: timers at their
//! real durations, on a virtual clock.

use gregor_model::check::ModelLog;
use gregor_model::log::{MemoryLogConfig, Record};
use gregor_model::sim::scenarios::{self, Setup};
use gregor_model::types::CrashKind;

fn setup() -> Setup<ModelLog> {
    Setup {
        log_config: Box::new(|_| MemoryLogConfig {
            crash: CrashKind::Process,
            retention: false,
        }),
        batch: Box::new(Record::new),
    }
}

#[test]
fn a_crashed_follower_leaves_the_isr_within_the_lag_time_and_acks_all_goes_on() {
    scenarios::crashed_follower_leaves_the_isr_within_the_lag_time(&setup());
}

#[test]
fn a_heartbeating_brokers_session_lasts_and_a_silent_ones_expires_in_time() {
    scenarios::sessions_last_while_brokers_heartbeat(&setup());
}

#[test]
fn a_held_consumer_fetch_is_answered_within_max_wait() {
    scenarios::held_consumer_fetches_are_answered_within_max_wait(&setup());
}

#[test]
fn a_produce_retried_after_a_lost_answer_is_written_once_with_idempotence() {
    scenarios::an_idempotent_retry_is_written_once(&setup());
}

#[test]
fn a_group_survives_its_coordinators_crash() {
    scenarios::a_group_survives_its_coordinators_crash(&setup());
}

#[test]
fn a_commit_to_a_group_without_members_is_kept() {
    scenarios::a_commit_to_a_group_without_members_is_kept(&setup());
}

#[test]
fn an_empty_groups_offsets_expire_after_the_retention() {
    scenarios::an_empty_groups_offsets_expire_after_the_retention(&setup());
}

#[test]
fn checked_members_share_partitions_and_survive_a_coordinator_crash() {
    scenarios::checked_members_share_partitions_and_survive_a_coordinator_crash(&setup());
}
