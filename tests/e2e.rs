//! End-to-end tests with real Kafka clients against real clusters (`gregor cluster up`): the
//! scenarios are Python scripts in `tests/clients/` (confluent-kafka, kafka-python 3 and
//! Debian's kcat, which `.ci/test` installs), run one at a time since each starts a cluster of
//! its own and kills, stops and restarts brokers on a clock.

use std::process::Command;
use std::sync::Mutex;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scenario(script: &str) {
    run_python(&format!("clients/{script}"));
}

fn run_python(script: &str) {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("python3")
        .arg(&path)
        .arg(env!("CARGO_BIN_EXE_gregor"))
        .status()
        .unwrap_or_else(|e| panic!("running python3 {path}: {e}"));
    assert!(status.success(), "{script} failed ({status})");
}

/// kcat, confluent-kafka and kafka-python produce and consume; kcat from inside a batch.
#[test]
fn real_clients_round_trip() {
    scenario("round_trip.py");
}

/// 10,000 idempotent acks=all records while each partition's leader is killed and restarted:
/// every acknowledged record read back exactly once, in order; the ISRs whole again.
#[test]
fn failover_loses_nothing_acknowledged() {
    scenario("failover.py");
}

/// A follower stopped past replica.lag.time.max.ms leaves the ISR, produce goes on, and it
/// rejoins after SIGCONT.
#[test]
fn a_stopped_follower_leaves_the_isr_and_rejoins() {
    scenario("stopped_follower.py");
}

/// Random bytes after a killed broker's last batch are cut at restart with a warning, and
/// nothing acknowledged is lost.
#[test]
fn a_torn_tail_is_cut_and_nothing_acknowledged_is_lost() {
    scenario("torn_tail.py");
}

/// confluent-kafka's and kafka-python's admin clients describe a topic's and a broker's
/// settings (DescribeConfigs).
#[test]
fn admin_clients_describe_configs() {
    scenario("admin_configs.py");
}

/// Consumer groups with confluent-kafka, kafka-python and kcat: two consumers split the
/// partitions, commit, one leaves and the other takes over; a group rewound with the client's
/// own API re-reads exactly the records from there.
#[test]
fn consumer_groups_with_real_clients() {
    scenario("groups.py");
}

/// The group coordinator's broker killed mid-consumption: the consumer goes on with the new
/// coordinator, nothing skipped, nothing committed lost.
#[test]
fn a_group_survives_its_coordinators_death() {
    scenario("group_failover.py");
}

/// librdkafka's own test suite: the tests of `tests/librdkafka/passing.txt`, one at a time
/// (`test-runner -p1 -Q -E -L`), against a 3-broker cluster in librdkafka's default test
/// scenario; the runner is built from the librdkafka source in the rdkafka-sys crate.
#[test]
fn librdkafka_test_suite_passes_its_list() {
    run_python("librdkafka/run.py");
}
