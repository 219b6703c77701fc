//! End-to-end, over the Kafka port: OffsetForLeaderEpoch as a consumer sends it (KIP-320) —
//! where the epoch of its last record ends, fenced by its current leader epoch — in the plain
//! (v2) and the flexible (v4) encoding; and an acks=all produce that its followers cannot
//! acknowledge in time, answered REQUEST_TIMED_OUT at its `timeout_ms`; a fetch answered with
//! errors; and a broker's `--trace` file.

mod common;

use bytes::{Bytes, BytesMut};
use common::{connect, gregor_bounded, read_frame, Cluster};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// Sends `body` as API `R` at `version` and decodes the answer.
fn call<R: Request + Encodable>(
    stream: &mut TcpStream,
    body: &R,
    version: i16,
    correlation_id: i32,
) -> R::Response {
    let api = ApiKey::try_from(R::KEY).unwrap();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut message = BytesMut::new();
    header
        .encode(&mut message, api.request_header_version(version))
        .unwrap();
    body.encode(&mut message, version).unwrap();
    let mut frame = (message.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&message);
    stream.write_all(&frame).unwrap();
    let mut answer = Bytes::from(read_frame(stream, &format!("{api:?} v{version}")));
    let header = ResponseHeader::decode(&mut answer, api.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    R::Response::decode(&mut answer, version).unwrap()
}

fn ask(topic: &str, current: i32, epoch: i32) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])])
}

/// (error code, leader epoch, end offset) of the one partition answered.
fn answer(response: &OffsetForLeaderEpochResponse) -> (i16, i32, i64) {
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// Creates a topic with `gregor topics create`.
fn create_topic(bootstrap: &str, name: &str, replication_factor: u32) {
    let rf = replication_factor.to_string();
    let (status, text) = gregor_bounded(
        &[
            "topics",
            "create",
            name,
            "--partitions",
            "1",
            "--replication-factor",
            &rf,
            "--bootstrap-server",
            bootstrap,
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "topics create: {text}");
}

/// The topic's partition 0: its leader's node id and leader epoch.
fn leader(stream: &mut TcpStream, topic: &str) -> (i32, i32) {
    let topics = vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_string())))),
    ];
    let metadata: MetadataResponse = call(
        stream,
        &MetadataRequest::default().with_topics(Some(topics)),
        12,
        1,
    );
    let partition = &metadata.topics[0].partitions[0];
    (partition.leader_id.0, partition.leader_epoch)
}

/// An acks=all Produce of one record to partition 0.
fn produce_one(topic: &str, timeout_ms: i32) -> ProduceRequest {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &[record], &options).unwrap();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))])])
}

fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn an_acks_all_produce_its_followers_cannot_acknowledge_times_out_at_its_timeout() {
    // Followers leave the ISR only after a minute: a stopped follower holds the HW back.
    let mut cluster = Cluster::start_with("produce-timeout", 2, &["replica.lag.time.max.ms=60000"]);
    let bootstrap = cluster.bootstrap.clone();
    create_topic(&bootstrap, "slow", 2);
    let mut stream = connect(&bootstrap);
    let (leader_id, _) = leader(&mut stream, "slow");
    assert!(leader_id == 1 || leader_id == 2, "leader {leader_id}");
    let mut stream = connect(&cluster.brokers[leader_id as usize - 1]);
    // Both replicas in sync: an acks=all record is acknowledged.
    let response: ProduceResponse = call(&mut stream, &produce_one("slow", 30_000), 9, 2);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    // pids: the controller, broker 1, broker 2.
    let follower = cluster.pids[if leader_id == 1 { 2 } else { 1 }];
    signal("-STOP", follower);
    let started = Instant::now();
    let response: ProduceResponse = call(&mut stream, &produce_one("slow", 500), 9, 3);
    let waited = started.elapsed();
    signal("-CONT", follower);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 7,
        "REQUEST_TIMED_OUT"
    );
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}"
    );
    // The follower back, the next one is acknowledged, after the timed-out one (which the
    // leader kept: its outcome was unknown to the client, not refused).
    let response: ProduceResponse = call(&mut stream, &produce_one("slow", 30_000), 9, 4);
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!((answer.error_code, answer.base_offset), (0, 2));
    assert!(cluster.stop().success());
}

#[test]
fn offset_for_leader_epoch_answers_a_consumer_and_fences_its_epoch() {
    let mut cluster = Cluster::start("kafka-api");
    let bootstrap = cluster.bootstrap.clone();
    create_topic(&bootstrap, "epochs", 1);
    let mut produce = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["produce", "epochs", "--bootstrap-server", &bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    produce
        .stdin
        .take()
        .unwrap()
        .write_all(b"a\nb\nc\n")
        .unwrap();
    let output = produce.wait_with_output().unwrap();
    assert!(output.status.success(), "produce: {output:?}");

    let mut stream = connect(&bootstrap);
    let (_, epoch) = leader(&mut stream, "epochs");
    assert!(epoch >= 0, "leader epoch {epoch}");

    // The current epoch ends at the HW: the three records acknowledged.
    for (version, id) in [(2, 2), (4, 3)] {
        let response = call(&mut stream, &ask("epochs", epoch, epoch), version, id);
        assert_eq!(answer(&response), (0, epoch, 3), "v{version}");
    }
    // A consumer that claims a newer leader epoch than the broker knows is told so.
    let response = call(&mut stream, &ask("epochs", epoch + 1, epoch), 4, 4);
    assert_eq!(answer(&response).0, UNKNOWN_LEADER_EPOCH);
    // An unknown topic.
    let response = call(&mut stream, &ask("no-such-topic", -1, 0), 4, 5);
    assert_eq!(answer(&response), (UNKNOWN_TOPIC_OR_PARTITION, -1, -1));
    assert!(cluster.stop().success());
}

/// Kills a child process when dropped (a test that fails part-way leaves no broker behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gregor broker --trace FILE` writes one JSON line per step of its actor: the actor, the
/// event in (its start, a message and whom from, a timer), the commands out. Broker 1 of a
/// cluster is restarted from its properties file under `--trace`; a topic created through it
/// shows in the trace as the controller's messages.
#[test]
fn a_broker_traces_every_step_as_json_lines() {
    let mut cluster = Cluster::start("trace");
    let broker_pid = cluster.pids[1].to_string();
    let status = Command::new("kill").args(["-KILL", &broker_pid]).status();
    assert!(status.is_ok_and(|s| s.success()));
    let trace = cluster.dir().join("broker-1.trace");
    let config = cluster.dir().join("broker-1.properties");
    let log = std::fs::File::create(cluster.dir().join("broker-1-traced.log")).unwrap();
    let broker = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("broker")
        .arg("--config")
        .arg(&config)
        .arg("--trace")
        .arg(&trace)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the broker restarts");
    let mut broker = KillOnDrop(broker);
    // The broker listens where it did (its file has the ports it bound); it may take a moment
    // to register again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, printed) = gregor_bounded(
            &[
                "topics",
                "create",
                "traced",
                "--partitions",
                "2",
                "--bootstrap-server",
                &cluster.bootstrap,
            ],
            Duration::from_secs(30),
        );
        if status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "topics create through the traced broker: {printed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stop = Command::new("kill").arg(broker.0.id().to_string()).status();
    assert!(stop.is_ok_and(|s| s.success()));
    let stopped = common::wait_bounded(&mut broker.0, Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");

    let text = std::fs::read_to_string(&trace).expect("the trace file");
    let steps: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(steps.len() > 2, "{text}");
    for step in &steps {
        for key in ["actor", "event", "commands"] {
            assert!(step.get(key).is_some(), "no {key} in {step}");
        }
    }
    assert_eq!(steps[0]["event"], "Start", "{}", steps[0]);
    let from_controller = steps
        .iter()
        .filter(|step| step["event"]["Message"]["from"] == "Controller")
        .count();
    assert!(
        from_controller > 0,
        "no message from the controller in:\n{text}"
    );
    cluster.stop();
}

/// Fetch v12 of an offset past the log end and of a partition the topic does not have: each
/// answered with its error and an empty (not null) records field, as Kafka answers — librdkafka
/// refuses a null one ("invalid MessageSetSize -1") and never sees the error.
#[test]
fn a_fetch_answered_with_errors_carries_empty_records() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::FetchRequest;
    let cluster = Cluster::start("fetch-errors");
    create_topic(&cluster.bootstrap, "fe", 1);
    let mut stream = connect(&cluster.bootstrap);
    let partition = |index: i32| {
        FetchPartition::default()
            .with_partition(index)
            .with_fetch_offset(100)
            .with_partition_max_bytes(1 << 20)
    };
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("fe")))
            .with_partitions(vec![partition(0), partition(7)])]);
    let response = call(&mut stream, &request, 12, 9);
    let answered: Vec<(i32, i16, Option<usize>)> = response.responses[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.error_code,
                p.records.as_ref().map(Bytes::len),
            )
        })
        .collect();
    assert_eq!(
        answered,
        vec![(0, 1, Some(0)), (7, UNKNOWN_TOPIC_OR_PARTITION, Some(0))],
        "OFFSET_OUT_OF_RANGE and UNKNOWN_TOPIC_OR_PARTITION, records empty"
    );
}

/// The group APIs on the wire, against one broker: a transaction coordinator is refused; the
/// first FindCoordinator creates `__consumer_offsets` and its broker becomes the coordinator;
/// OffsetCommit refuses, per partition, unknown partitions and oversized metadata and commits
/// the rest, which OffsetFetch v8 returns with their metadata; a JoinGroup v5 without a member
/// id gets MEMBER_ID_REQUIRED and an id; a client's produce to `__consumer_offsets` is refused;
/// DeleteGroups deletes the group and says GROUP_ID_NOT_FOUND for an unknown one.
#[test]
fn group_apis_answer_as_kafka_does() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use kafka_protocol::messages::{
        DeleteGroupsRequest, FindCoordinatorRequest, GroupId, JoinGroupRequest,
        OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    };
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    let text = |s: &str| StrBytes::from_string(s.to_string());
    let mut cluster = Cluster::start("group-apis");
    create_topic(&cluster.bootstrap, "gt", 1);
    let mut stream = connect(&cluster.bootstrap);

    let transactional = FindCoordinatorRequest::default()
        .with_key(text("tx"))
        .with_key_type(1);
    let answer = call(&mut stream, &transactional, 3, 1);
    assert_eq!(answer.error_code, 42, "INVALID_REQUEST: {answer:?}");

    let find = FindCoordinatorRequest::default().with_coordinator_keys(vec![text("wg")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let answer = call(&mut stream, &find, 4, 2);
        let found = answer.coordinators[0].clone();
        if found.error_code == 0 {
            break found;
        }
        assert_eq!(found.error_code, COORDINATOR_NOT_AVAILABLE, "{found:?}");
        assert!(Instant::now() < deadline, "no coordinator within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found.node_id.0, 1, "{found:?}");

    let partition = |index: i32, offset: i64, metadata: &str| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
            .with_committed_metadata(Some(text(metadata)))
    };
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("wg")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("gt")))
                .with_partitions(vec![
                    partition(0, 5, "five"),
                    partition(9, 1, ""),
                    partition(0, 6, &"x".repeat(5000)),
                ]),
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("nosuch")))
                .with_partitions(vec![partition(0, 1, "")]),
        ]);
    let answer = call(&mut stream, &commit, 8, 3);
    let codes: Vec<Vec<i16>> = answer
        .topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| p.error_code).collect())
        .collect();
    assert_eq!(
        codes,
        vec![
            vec![0, UNKNOWN_TOPIC_OR_PARTITION, 12],
            vec![UNKNOWN_TOPIC_OR_PARTITION]
        ],
        "committed, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE"
    );

    let fetch = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(text("wg")))
        .with_topics(None)]);
    let answer = call(&mut stream, &fetch, 8, 4);
    let group = &answer.groups[0];
    assert_eq!(group.error_code, 0, "{answer:?}");
    let committed: Vec<(String, i32, i64, Option<String>)> = group
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.metadata.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect();
    assert_eq!(
        committed,
        vec![("gt".into(), 0, 5, Some("five".into()))],
        "{answer:?}"
    );

    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(text("wg2")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(text("range")),
        ]);
    let answer = call(&mut stream, &join, 5, 5);
    assert_eq!(answer.error_code, 79, "MEMBER_ID_REQUIRED: {answer:?}");
    assert!(answer.member_id.starts_with("test-"), "{answer:?}");

    let answer = call(&mut stream, &produce_one("__consumer_offsets", 5000), 9, 6);
    let code = answer.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 17, "INVALID_TOPIC_EXCEPTION");

    // OffsetDelete: an empty group's offset deleted; an unknown topic refused here; an unknown
    // group refused as a whole.
    let offset_delete = |group: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(text("gt")))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(text("nosuch")))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
            ])
    };
    let commit_wg3 = commit.clone().with_group_id(GroupId(text("wg3")));
    call(&mut stream, &commit_wg3, 8, 20);
    let answer = call(&mut stream, &offset_delete("wg3"), 0, 21);
    let codes: Vec<(i16, Vec<i16>)> = answer
        .topics
        .iter()
        .map(|t| {
            (
                answer.error_code,
                t.partitions.iter().map(|p| p.error_code).collect(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![(0, vec![0]), (0, vec![UNKNOWN_TOPIC_OR_PARTITION])]
    );
    let fetch_wg3 =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text("wg3")))
            .with_topics(None)]);
    let answer = call(&mut stream, &fetch_wg3, 8, 22);
    assert!(answer.groups[0].topics.is_empty(), "deleted: {answer:?}");
    let answer = call(&mut stream, &offset_delete("nothere"), 0, 23);
    assert_eq!(answer.error_code, 69, "GROUP_ID_NOT_FOUND: {answer:?}");

    let delete = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(text("wg")), GroupId(text("nothere"))]);
    let answer = call(&mut stream, &delete, 2, 7);
    let codes: Vec<i16> = answer.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 69], "deleted, GROUP_ID_NOT_FOUND");
    let answer = call(&mut stream, &fetch, 8, 8);
    assert!(answer.groups[0].topics.is_empty(), "{answer:?}");
    cluster.stop();
}
