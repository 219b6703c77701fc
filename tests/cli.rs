//! End-to-end tests of the `gregor` binary: exit codes, output, check files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .output()
        .expect("gregor runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small configuration that exhausts in seconds.
const SMALL: [&str; 10] = [
    "--records",
    "1",
    "--max-epoch",
    "1",
    "--max-partition-epoch",
    "2",
    "--max-registrations",
    "0",
    "--retries",
    "0",
];

/// `SMALL` as check-file lines.
const SMALL_TOML: &str =
    "records = 1\nmax-epoch = 1\nmax-partition-epoch = 2\nmax-registrations = 0\nretries = 0\n";

/// Writes `dir/name` as a check file of the small configuration with `lines` before it.
fn write_small_check(dir: &Path, name: &str, lines: &str) {
    std::fs::write(dir.join(name), format!("{lines}{SMALL_TOML}")).unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gregor-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_of_the_safe_protocol_exits_0_and_reports_every_property() {
    let output = gregor(&[&["check"], &SMALL[..]].concat());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    for line in [
        "leader_in_isr: holds",
        "acked_writes_survive: holds",
        "hw_never_decreases: holds",
        "record_committed: reached",
        "consumer_read_record: reached",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("unique="), "totals line in\n{text}");
}

#[test]
fn acks_1_violation_prints_a_numbered_counterexample_and_exits_1() {
    let output = gregor(&[&["check", "--acks", "1", "--bfs"], &SMALL[..]].concat());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("acked_writes_survive: VIOLATED"), "{text}");
    assert!(text.contains("  1. "), "numbered steps in\n{text}");
    assert!(
        text.contains("elects broker"),
        "plain-words election in\n{text}"
    );
}

#[test]
fn json_output_is_one_object_with_the_totals() {
    let output = gregor(&[&["check", "--json"], &SMALL[..]].concat());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(value["exhaustive"], true);
    assert!(value["unique_states"].as_u64().unwrap() > 0);
    let properties = value["properties"].as_array().unwrap();
    assert!(properties
        .iter()
        .any(|p| p["name"] == "strong_isr" && p["outcome"] == "holds"));
}

#[test]
fn bad_usage_exits_2_naming_the_flag() {
    let output = gregor(&["check", "--acks", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--acks"), "{}", stderr(&output));

    let output = gregor(&["check", "--min-isr", "4"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--min-isr"), "{}", stderr(&output));

    let output = gregor(&["check", "--max-generation", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--groups"), "{}", stderr(&output));
}

#[test]
fn the_group_check_reports_the_group_properties() {
    let output = gregor(&[
        "check",
        "--groups",
        "--members",
        "1",
        "--max-generation",
        "2",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    for property in [
        "one_owner_per_partition: holds",
        "committed_offsets_survive: holds",
        "fenced_commits: holds",
        "commit_acked_after_failover: reached",
    ] {
        assert!(text.contains(property), "{property}: {text}");
    }
}

#[test]
fn groups_reset_offsets_needs_one_target_and_valid_times() {
    let reset = ["groups", "reset-offsets", "g", "--topic", "t"];
    let output = gregor(&reset);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--to-offset"),
        "{}",
        stderr(&output)
    );

    let output = gregor(&[&reset[..], &["--to-earliest", "--to-latest"]].concat());
    assert_eq!(output.status.code(), Some(2), "only one target");

    let output = gregor(&[&reset[..], &["--to-datetime", "yesterday"]].concat());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));

    let output = gregor(&[&reset[..], &["--by-duration", "two days"]].concat());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("ISO 8601"), "{}", stderr(&output));

    let output = gregor(&[&reset[..], &["--to-latest", "--dry-run", "--execute"]].concat());
    assert_eq!(
        output.status.code(),
        Some(2),
        "--dry-run and --execute conflict"
    );
}

#[test]
fn check_files_are_compared_with_their_expectation() {
    let dir = temp_dir("specs");
    write_small_check(
        &dir,
        "a-safe.toml",
        "description = \"safe\"\nexpect = \"holds\"\n",
    );
    write_small_check(
        &dir,
        "b-acks-1.toml",
        "description = \"acks 1\"\nexpect = \"acked_writes_survive\"\nacks = \"1\"\n",
    );
    let output = gregor(&["check", dir.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("a-safe"), "{text}");
    assert!(text.contains("violates acked_writes_survive"), "{text}");

    // The same violation, expected not to happen, fails the run.
    write_small_check(
        &dir,
        "b-acks-1.toml",
        "description = \"acks 1\"\nexpect = \"holds\"\nacks = \"1\"\n",
    );
    let output = gregor(&["check", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("NO"), "{}", stdout(&output));
}

#[test]
fn a_check_file_with_an_unknown_key_is_refused() {
    let dir = temp_dir("bad-key");
    std::fs::write(
        dir.join("bad.toml"),
        "description = \"x\"\nexpect = \"holds\"\nbrokerz = 3\n",
    )
    .unwrap();
    let output = gregor(&["check", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("brokerz"), "{}", stderr(&output));
}

#[test]
fn random_walks_find_a_violation_and_never_claim_a_property_holds() {
    let output = gregor(
        &[
            &["check", "--acks", "1", "--simulate", "7", "--timeout", "60"],
            &SMALL[..],
        ]
        .concat(),
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("acked_writes_survive: VIOLATED"), "{text}");
    assert!(text.contains("  1. "), "numbered steps in\n{text}");
    assert!(!text.contains(": holds"), "{text}");
    assert!(text.contains("(search incomplete)"), "{text}");
}

#[test]
fn a_check_file_may_ask_for_random_walks_only_to_find_a_violation() {
    let dir = temp_dir("simulate");
    write_small_check(
        &dir,
        "acks-1.toml",
        "description = \"acks 1\"\nexpect = \"acked_writes_survive\"\nacks = \"1\"\n\
             simulate = 3\ntimeout = 60\n",
    );
    let output = gregor(&["check", dir.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("violates acked_writes_survive"), "{text}");
    assert!(text.contains("found, as expected"), "{text}");

    write_small_check(
        &dir,
        "acks-1.toml",
        "description = \"safe\"\nexpect = \"holds\"\nsimulate = 3\n",
    );
    let output = gregor(&["check", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("simulate"), "{}", stderr(&output));
}

/// `gregor bench` on a cluster of its own: every record produced is acknowledged (a shorter
/// last batch included) and every one consumed; the report has the rates, the latencies, the
/// brokers' CPU and both references. (No figure is asserted: it is a benchmark.)
#[test]
fn bench_produces_and_consumes_every_record_and_reports_the_brokers_cpu() {
    let produce = gregor(&[
        "bench",
        "produce",
        "--records",
        "20001",
        "--partitions",
        "2",
        "--replication-factor",
        "2",
        "--acks",
        "all",
    ]);
    let text = stdout(&produce);
    assert!(produce.status.success(), "{text}{}", stderr(&produce));
    for expected in [
        "20001 records sent",
        "ms 99.9th",
        "(user + system, 2 broker processes)",
        "loopback reference:",
        "disk reference:",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let consume = gregor(&[
        "bench",
        "consume",
        "--records",
        "30000",
        "--partitions",
        "3",
    ]);
    let text = stdout(&consume);
    assert!(consume.status.success(), "{text}{}", stderr(&consume));
    assert!(text.contains("30000 records consumed"), "{text}");
    assert!(text.contains("1 broker process)"), "{text}");
}
