//! `gregor topics create|describe|delete`, `gregor produce`, `gregor consume`: Kafka's
//! command-line tools over Gregor's small client (`crate::client`). Each runs its own tokio
//! runtime; nothing else in the binary needs one.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataResponse,
    ProduceRequest,
};

use crate::client::murmur2::partition_for_key;
use crate::client::records::{decode_fetched, encode_batch, Outgoing};
use crate::client::requests::{self, CONSUMER_REPLICA_ID, DEBUG_REPLICA_ID, EARLIEST, LATEST};
use crate::client::{
    error_name, kafka_uuid, Client, KafkaError, Retry, SharedFailure, Target, DEFAULT_TIMEOUT,
};

/// How to reach the cluster.
#[derive(Args, Clone, Debug)]
pub struct Connect {
    /// A broker to bootstrap from, HOST:PORT (several: comma-separated)
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// How long any one network wait (connect, send, response) may take, in ms
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_millis() as u64)]
    pub request_timeout_ms: u64,
}

impl Connect {
    pub fn client(&self) -> Client {
        Client::new(
            &self.bootstrap_server,
            Duration::from_millis(self.request_timeout_ms.max(1)),
        )
    }
}

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions [default: the broker's num.partitions]
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas of each partition [default: the broker's default.replication.factor]
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, KEY=VALUE (repeat for several), e.g. min.insync.replicas=2
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Describe one topic or all: leader, leader epoch, replicas, ISR, high watermark and log
    /// end offset of each partition.
    Describe {
        name: Option<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete a topic.
    Delete {
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcksArg {
    /// Every in-sync replica (-1)
    All,
    /// The leader only
    #[value(name = "1")]
    One,
    /// No acknowledgement: the broker sends no response
    #[value(name = "0")]
    Zero,
}

impl AcksArg {
    fn code(self) -> i16 {
        match self {
            AcksArg::All => -1,
            AcksArg::One => 1,
            AcksArg::Zero => 0,
        }
    }
}

/// Produce each line of stdin as a record; prints PARTITION@OFFSET per record.
#[derive(Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    #[arg(long, value_enum, default_value = "all")]
    pub acks: AcksArg,
    /// The key of every record
    #[arg(long, conflicts_with = "key_separator")]
    pub key: Option<String>,
    /// Each line is KEY<SEP>VALUE, split at the first SEP
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Send every record to this partition [default: by key hash, else round-robin]
    #[arg(long)]
    pub partition: Option<i32>,
    #[command(flatten)]
    pub connect: Connect,
}

/// Print a topic's records' values to stdout, one per line.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at each partition's earliest offset [default: the latest]
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset in each consumed partition
    #[arg(long)]
    pub offset: Option<i64>,
    /// Consume only this partition [default: all]
    #[arg(long)]
    pub partition: Option<i32>,
    /// Stop after this many records
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Stop when no new record arrives for this long, in ms (0: never)
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print PARTITION@OFFSET:KEY:VALUE instead of the value alone
    #[arg(long)]
    pub print_offsets: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// `KEY=VALUE` with a non-empty key of config-name characters.
pub fn parse_config(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!("`{key}` is not a config name"));
    }
    Ok((key.to_string(), value.to_string()))
}

pub fn block_on(future: impl std::future::Future<Output = Result<bool>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the tokio runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(future) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

pub fn topics(command: TopicsCommand) -> ExitCode {
    block_on(async move {
        match command {
            TopicsCommand::Create {
                name,
                partitions,
                replication_factor,
                configs,
                connect,
            } => {
                let mut seen = std::collections::BTreeSet::new();
                for (key, _) in &configs {
                    if !seen.insert(key) {
                        bail!("--config {key} is given twice");
                    }
                }
                create_topic(
                    &mut connect.client(),
                    &name,
                    partitions.unwrap_or(-1),
                    replication_factor.unwrap_or(-1),
                    &configs,
                )
                .await
            }
            TopicsCommand::Describe { name, connect } => {
                describe_topics(&mut connect.client(), name.as_deref()).await
            }
            TopicsCommand::Delete { name, connect } => {
                delete_topic(&mut connect.client(), &name).await
            }
        }
    })
}

pub fn produce(args: ProduceArgs) -> ExitCode {
    block_on(produce_stdin(args))
}

pub fn consume(args: ConsumeArgs) -> ExitCode {
    block_on(consume_topic(args))
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// One partition as Metadata describes it.
#[derive(Clone, Debug)]
pub struct PartitionInfo {
    pub error: i16,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One topic as Metadata describes it, partitions sorted.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    pub name: String,
    pub id: [u8; 16],
    pub error: i16,
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

pub fn topics_from(response: &MetadataResponse) -> Vec<TopicInfo> {
    let mut topics: Vec<TopicInfo> = response
        .topics
        .iter()
        .map(|t| TopicInfo {
            name: t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
            id: *t.topic_id.as_bytes(),
            error: t.error_code,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            error: p.error_code,
                            leader: p.leader_id.0,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        },
                    )
                })
                .collect(),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

/// Metadata for one topic, once: an error if the topic is unknown or has no partitions yet.
async fn refresh_topic(client: &mut Client, topic: &str) -> Result<TopicInfo> {
    let response = client.metadata(Some(&[topic.to_string()])).await?;
    let broker = client.last_broker().to_string();
    let info = topics_from(&response)
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| KafkaError::new(3, &broker, format!("Metadata for topic {topic}")))?;
    if info.error != 0 {
        return Err(
            KafkaError::new(info.error, &broker, format!("Metadata for topic {topic}")).into(),
        );
    }
    if info.partitions.is_empty() {
        return Err(KafkaError::new(
            5,
            &broker,
            format!("Metadata for topic {topic}: no partitions yet"),
        )
        .into());
    }
    Ok(info)
}

/// Metadata for one topic, retrying while it is unknown (being created) or unreachable.
pub async fn wait_for_topic(client: &mut Client, topic: &str) -> Result<TopicInfo> {
    let mut retry = Retry::new(client.retry);
    loop {
        match refresh_topic(client, topic).await {
            Ok(info) => return Ok(info),
            Err(error) => retry.wait(error).await?,
        }
    }
}

fn leader_of(topic: &TopicInfo, partition: i32) -> Result<i32> {
    match topic.partitions.get(&partition) {
        None => Err(KafkaError::new(
            3,
            "(metadata)",
            format!("{}-{partition}: no such partition", topic.name),
        )
        .into()),
        Some(p) if p.leader < 0 => Err(KafkaError::new(
            5,
            "(metadata)",
            format!("{}-{partition}: no leader", topic.name),
        )
        .into()),
        Some(p) => Ok(p.leader),
    }
}

// ---------------------------------------------------------------------------------------------
// Topics

/// Where CreateTopics and DeleteTopics go: the controller Metadata names (a ZooKeeper-era
/// broker insists; a KRaft broker forwards and names itself or another broker), else any.
async fn controller_target(client: &mut Client) -> Result<Target> {
    client.metadata(Some(&[])).await?;
    Ok(client
        .controller()
        .filter(|&id| client.broker_address(id).is_some())
        .map_or(Target::Any, Target::Node))
}

pub async fn create_topic(
    client: &mut Client,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Result<bool> {
    let timeout_ms = client.timeout().as_millis() as i32;
    let mut retry = Retry::new(client.retry);
    let (result, broker) = loop {
        let attempt = async {
            let target = controller_target(client).await?;
            let (response, broker) = client
                .request(target, |version| {
                    if version < 4 && (partitions < 0 || replication_factor < 0) {
                        bail!("this broker's CreateTopics v{version} needs --partitions and --replication-factor");
                    }
                    Ok::<CreateTopicsRequest, anyhow::Error>(requests::create_topic(
                        name,
                        partitions,
                        replication_factor,
                        configs,
                        timeout_ms,
                    ))
                })
                .await?;
            let result = response
                .topics
                .into_iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| {
                    anyhow!("broker {broker}: CreateTopics response without topic {name}")
                })?;
            if result.error_code == 41 {
                // NOT_CONTROLLER: ask again where the controller is.
                return Err(KafkaError::new(41, &broker, format!("CreateTopics {name}")).into());
            }
            Ok((result, broker))
        };
        match attempt.await {
            Ok(done) => break done,
            Err(error) => retry.wait(error).await?,
        }
    };
    if result.error_code == 0 {
        println!("Created topic {name}.");
        Ok(true)
    } else {
        let error = KafkaError::new(result.error_code, &broker, format!("Creating topic {name}"))
            .with_message(result.error_message.as_ref());
        eprintln!("Error: {error}");
        Ok(false)
    }
}

pub async fn delete_topic(client: &mut Client, name: &str) -> Result<bool> {
    let timeout_ms = client.timeout().as_millis() as i32;
    let mut retry = Retry::new(client.retry);
    let (result, broker) = loop {
        let attempt = async {
            let target = controller_target(client).await?;
            let (response, broker) = client
                .request(target, |version| {
                    Ok::<DeleteTopicsRequest, anyhow::Error>(requests::delete_topic(
                        name, timeout_ms, version,
                    ))
                })
                .await?;
            let result = response
                .responses
                .into_iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
                .ok_or_else(|| {
                    anyhow!("broker {broker}: DeleteTopics response without topic {name}")
                })?;
            if result.error_code == 41 {
                return Err(KafkaError::new(41, &broker, format!("DeleteTopics {name}")).into());
            }
            Ok((result, broker))
        };
        match attempt.await {
            Ok(done) => break done,
            Err(error) => retry.wait(error).await?,
        }
    };
    if result.error_code == 0 {
        println!("Deleted topic {name}.");
        Ok(true)
    } else {
        let error = KafkaError::new(result.error_code, &broker, format!("Deleting topic {name}"))
            .with_message(result.error_message.as_ref());
        eprintln!("Error: {error}");
        Ok(false)
    }
}

/// ListOffsets once for the given partitions of a topic, one request per leader; each
/// partition's offset or its error.
pub async fn list_offsets_once(
    client: &mut Client,
    topic: &TopicInfo,
    partitions: &[i32],
    timestamp: i64,
    replica_id: i32,
) -> BTreeMap<i32, Result<i64>> {
    let mut results = BTreeMap::new();
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &partition in partitions {
        match leader_of(topic, partition) {
            Ok(leader) => by_leader.entry(leader).or_default().push(partition),
            Err(error) => {
                results.insert(partition, Err(error));
            }
        }
    }
    for (leader, partitions) in by_leader {
        let sent = client
            .request(Target::Node(leader), |_| {
                Ok::<ListOffsetsRequest, anyhow::Error>(requests::list_offsets(
                    &topic.name,
                    &partitions,
                    timestamp,
                    replica_id,
                ))
            })
            .await;
        let (response, broker) = match sent {
            Ok(answer) => answer,
            Err(error) => {
                for &p in &partitions {
                    results.insert(p, Err(SharedFailure::of(&error).into()));
                }
                continue;
            }
        };
        for &p in &partitions {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == topic.name)
                .flat_map(|t| t.partitions.iter())
                .find(|r| r.partition_index == p);
            let result = match answer {
                None => Err(anyhow!(
                    "broker {broker}: ListOffsets response without {}-{p}",
                    topic.name
                )),
                Some(r) if r.error_code != 0 => Err(KafkaError::new(
                    r.error_code,
                    &broker,
                    format!("ListOffsets {}-{p}", topic.name),
                )
                .into()),
                Some(r) => Ok(r.offset),
            };
            results.insert(p, result);
        }
    }
    results
}

/// ListOffsets for every given partition, retrying retriable errors (refreshing metadata).
pub async fn list_offsets(
    client: &mut Client,
    topic: &mut TopicInfo,
    partitions: &[i32],
    timestamp: i64,
    replica_id: i32,
) -> Result<BTreeMap<i32, i64>> {
    let mut retry = Retry::new(client.retry);
    let mut found = BTreeMap::new();
    let mut missing: Vec<i32> = partitions.to_vec();
    loop {
        let results = list_offsets_once(client, topic, &missing, timestamp, replica_id).await;
        let mut failure = None;
        missing.clear();
        for (p, result) in results {
            match result {
                Ok(offset) => {
                    found.insert(p, offset);
                }
                Err(error) => {
                    missing.push(p);
                    if failure.is_none() || prefer_fatal(&failure, &error) {
                        failure = Some(error);
                    }
                }
            }
        }
        let Some(error) = failure else {
            return Ok(found);
        };
        retry.wait(error).await?;
        if let Ok(info) = refresh_topic(client, &topic.name).await {
            *topic = info;
        }
    }
}

/// Prefer reporting a non-retriable error (it ends the command) over a retriable one.
fn prefer_fatal(current: &Option<anyhow::Error>, new: &anyhow::Error) -> bool {
    current
        .as_ref()
        .is_some_and(|c| crate::client::is_retriable(c) && !crate::client::is_retriable(new))
}

pub async fn describe_topics(client: &mut Client, name: Option<&str>) -> Result<bool> {
    let names = name.map(|n| vec![n.to_string()]);
    let mut retry = Retry::new(client.retry);
    let response = loop {
        match client.metadata(names.as_deref()).await {
            Ok(response) => break response,
            Err(error) => retry.wait(error).await?,
        }
    };
    let broker = client.last_broker().to_string();
    let mut ok = true;
    let mut out = String::new();
    for mut topic in topics_from(&response) {
        if topic.error != 0 {
            let error = KafkaError::new(
                topic.error,
                &broker,
                format!("Describing topic {}", topic.name),
            );
            eprintln!("Error: {error}");
            ok = false;
            continue;
        }
        let partitions: Vec<i32> = topic.partitions.keys().copied().collect();
        isr_from_leaders(client, &mut topic).await;
        let hw = list_offsets_once(client, &topic, &partitions, LATEST, CONSUMER_REPLICA_ID).await;
        let leo = list_offsets_once(client, &topic, &partitions, LATEST, DEBUG_REPLICA_ID).await;
        let replication_factor = topic
            .partitions
            .values()
            .map(|p| p.replicas.len())
            .max()
            .unwrap_or(0);
        out.push_str(&format!(
            "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}\n",
            topic.name,
            kafka_uuid(&topic.id),
            topic.partitions.len(),
            replication_factor
        ));
        let show = |r: Option<&Result<i64>>| match r {
            Some(Ok(offset)) => offset.to_string(),
            _ => "-".to_string(),
        };
        for (p, info) in std::mem::take(&mut topic.partitions) {
            let leader = if info.leader < 0 {
                "none".to_string()
            } else {
                info.leader.to_string()
            };
            out.push_str(&format!(
                "Topic: {}  Partition: {p}  Leader: {leader}  LeaderEpoch: {}  Replicas: {}  Isr: {}  HighWatermark: {}  LogEndOffset: {}",
                topic.name,
                info.leader_epoch,
                join_ids(&info.replicas),
                join_ids(&info.isr),
                show(hw.get(&p)),
                show(leo.get(&p)),
            ));
            if info.error != 0 && info.error != 5 && info.error != 9 {
                out.push_str(&format!("  Error: {}", error_name(info.error)));
            }
            out.push('\n');
        }
    }
    write_stdout(&out)?;
    Ok(ok)
}

/// A partition's ISR as its leader knows it: a Gregor broker tells clients the ISR as of the
/// partition's last leader change, and only the leader hears of later ISR changes
/// (specs/protocol.md, "Metadata answers and the ISR"). Keeps what it had where a leader does
/// not answer.
async fn isr_from_leaders(client: &mut Client, topic: &mut TopicInfo) {
    let mut leaders: Vec<i32> = topic
        .partitions
        .values()
        .map(|p| p.leader)
        .filter(|l| *l >= 0)
        .collect();
    leaders.sort_unstable();
    leaders.dedup();
    let names = vec![topic.name.clone()];
    for leader in leaders {
        let answer = client
            .request(crate::client::Target::Node(leader), |version| {
                Ok(crate::client::metadata_request(Some(&names), version))
            })
            .await;
        let Ok((response, _)) = answer else {
            continue;
        };
        for fresh in topics_from(&response) {
            for (index, info) in fresh.partitions {
                match topic.partitions.get_mut(&index) {
                    Some(known) if info.leader == leader && known.leader == leader => {
                        known.isr = info.isr;
                    }
                    _ => {}
                }
            }
        }
    }
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a message.
fn write_stdout(text: &str) -> Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("writing to stdout"),
    }
}

// ---------------------------------------------------------------------------------------------
// Produce

const BATCH_RECORDS: usize = 1000;
const BATCH_BYTES: usize = 1 << 20;
/// Records gathered from stdin before a flush even if more are ready.
const FLUSH_RECORDS: usize = 10_000;

/// Parse one input line into a record.
pub fn parse_line(line: &str, key: Option<&str>, separator: Option<&str>) -> Result<Outgoing> {
    let (key, value) = match (key, separator) {
        (Some(key), _) => (Some(key), line),
        (None, Some(separator)) => {
            let (k, v) = line
                .split_once(separator)
                .ok_or_else(|| anyhow!("no key separator {separator:?} in the line"))?;
            (Some(k), v)
        }
        (None, None) => (None, line),
    };
    Ok(Outgoing {
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
    })
}

/// Picks each record's partition: explicit, by key hash, or round-robin.
pub struct Partitioner {
    partitions: i32,
    fixed: Option<i32>,
    next: i32,
}

impl Partitioner {
    pub fn new(partitions: i32, fixed: Option<i32>) -> Self {
        Partitioner {
            partitions,
            fixed,
            next: 0,
        }
    }

    pub fn partition(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        if let Some(key) = key {
            return partition_for_key(key, self.partitions);
        }
        let p = self.next;
        self.next = (self.next + 1) % self.partitions;
        p
    }
}

/// A batch on its way to one partition.
struct PendingBatch {
    partition: i32,
    count: usize,
    bytes: Bytes,
}

/// Split records (in input order) into per-partition batches, order kept within a partition.
fn make_batches(records: Vec<(i32, Outgoing)>, timestamp_ms: i64) -> Result<Vec<PendingBatch>> {
    let mut per_partition: BTreeMap<i32, Vec<Vec<Outgoing>>> = BTreeMap::new();
    for (partition, record) in records {
        let batches = per_partition.entry(partition).or_default();
        let size = record.approximate_size();
        let start_new = match batches.last() {
            None => true,
            Some(last) => {
                last.len() >= BATCH_RECORDS
                    || last.iter().map(Outgoing::approximate_size).sum::<usize>() + size
                        > BATCH_BYTES
            }
        };
        if start_new {
            batches.push(Vec::new());
        }
        batches.last_mut().expect("pushed above").push(record);
    }
    let mut out = Vec::new();
    for (partition, batches) in per_partition {
        for records in batches {
            out.push(PendingBatch {
                partition,
                count: records.len(),
                bytes: encode_batch(&records, timestamp_ms)?,
            });
        }
    }
    Ok(out)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Send batches (at most one per partition per request, one request per leader), retrying
/// retriable errors; calls `done(partition, base_offset, count)` as each batch is acknowledged
/// (base offset -1 with acks=0).
pub async fn send_batches(
    client: &mut Client,
    topic: &mut TopicInfo,
    batches: Vec<(i32, usize, Bytes)>,
    acks: i16,
    mut done: impl FnMut(i32, i64, usize) -> Result<()>,
) -> Result<()> {
    let timeout_ms = client.timeout().as_millis() as i32;
    let mut remaining: Vec<Option<(i32, usize, Bytes)>> = batches.into_iter().map(Some).collect();
    let mut retry = Retry::new(client.retry);
    while remaining.iter().any(Option::is_some) {
        // The first remaining batch of each partition, grouped by leader.
        let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        let mut taken = std::collections::BTreeSet::new();
        let mut failure: Option<anyhow::Error> = None;
        for (i, batch) in remaining.iter().enumerate() {
            let Some((partition, _, _)) = batch else {
                continue;
            };
            if !taken.insert(*partition) {
                continue;
            }
            match leader_of(topic, *partition) {
                Ok(leader) => by_leader.entry(leader).or_default().push(i),
                Err(error) => failure = Some(error),
            }
        }
        for (leader, indices) in by_leader {
            let data: Vec<(i32, Bytes)> = indices
                .iter()
                .map(|&i| {
                    let (p, _, bytes) = remaining[i].as_ref().expect("picked above");
                    (*p, bytes.clone())
                })
                .collect();
            let build = |_version: i16| {
                Ok::<ProduceRequest, anyhow::Error>(requests::produce(
                    &topic.name,
                    &data,
                    acks,
                    timeout_ms,
                ))
            };
            if acks == 0 {
                match client
                    .request_without_response(Target::Node(leader), build)
                    .await
                {
                    Ok(_) => {
                        for &i in &indices {
                            let (p, count, _) = remaining[i].take().expect("picked above");
                            done(p, -1, count)?;
                        }
                    }
                    Err(error) => failure = Some(error),
                }
                continue;
            }
            let (response, broker) = match client.request(Target::Node(leader), build).await {
                Ok(answer) => answer,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            };
            for &i in &indices {
                let (p, count, _) = remaining[i].as_ref().expect("picked above");
                let (p, count) = (*p, *count);
                let answer = response
                    .responses
                    .iter()
                    .filter(|t| t.name.0.as_str() == topic.name)
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|r| r.index == p);
                match answer {
                    None => {
                        failure = Some(anyhow!(
                            "broker {broker}: Produce response without {}-{p}",
                            topic.name
                        ));
                    }
                    Some(r) if r.error_code != 0 => {
                        let error = KafkaError::new(
                            r.error_code,
                            &broker,
                            format!("Produce to {}-{p}", topic.name),
                        )
                        .with_message(r.error_message.as_ref());
                        if !crate::client::retriable_code(r.error_code) {
                            return Err(error.into());
                        }
                        failure = Some(error.into());
                    }
                    Some(r) => {
                        remaining[i] = None;
                        done(p, r.base_offset, count)?;
                    }
                }
            }
        }
        if let Some(error) = failure {
            retry.wait(error).await?;
            if let Ok(info) = refresh_topic(client, &topic.name).await {
                *topic = info;
            }
        }
    }
    Ok(())
}

async fn produce_stdin(args: ProduceArgs) -> Result<bool> {
    let mut client = args.connect.client();
    let acks = args.acks.code();
    let mut topic = wait_for_topic(&mut client, &args.topic).await?;
    let partitions = topic.partitions.len() as i32;
    if let Some(p) = args.partition {
        if !topic.partitions.contains_key(&p) {
            bail!(
                "topic {} has no partition {p} (it has {partitions})",
                args.topic
            );
        }
    }
    if acks == 0 {
        eprintln!("acks=0: the broker sends no response, so no offsets will be printed");
    }
    // A thread reads stdin; the channel tells "more lines ready" from "stdin would block".
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<std::io::Result<String>>(FLUSH_RECORDS);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let stop = line.is_err();
            if sender.blocking_send(line).is_err() || stop {
                break;
            }
        }
    });
    let mut partitioner = Partitioner::new(partitions, args.partition);
    let mut line_number = 0u64;
    let mut stdout_open = true;
    while let Some(first) = receiver.recv().await {
        let mut lines = vec![first];
        while lines.len() < FLUSH_RECORDS {
            match receiver.try_recv() {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(lines.len());
        for line in lines {
            line_number += 1;
            let line = line.context("reading stdin")?;
            let record = parse_line(&line, args.key.as_deref(), args.key_separator.as_deref())
                .with_context(|| format!("stdin line {line_number}"))?;
            let partition = partitioner.partition(record.key.as_deref());
            records.push((partition, record));
        }
        let batches = make_batches(records, now_ms())?
            .into_iter()
            .map(|b| (b.partition, b.count, b.bytes))
            .collect();
        send_batches(
            &mut client,
            &mut topic,
            batches,
            acks,
            |partition, base, count| {
                if acks != 0 && stdout_open {
                    let mut text = String::new();
                    for i in 0..count as i64 {
                        text.push_str(&format!("{partition}@{}\n", base + i));
                    }
                    stdout_open = write_stdout(&text)?;
                }
                Ok(())
            },
        )
        .await?;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Consume

fn show_bytes(bytes: Option<&Bytes>) -> std::borrow::Cow<'_, str> {
    match bytes {
        Some(b) => String::from_utf8_lossy(b),
        None => "null".into(),
    }
}

async fn consume_topic(args: ConsumeArgs) -> Result<bool> {
    let mut client = args.connect.client();
    let mut topic = wait_for_topic(&mut client, &args.topic).await?;
    let selected: Vec<i32> = match args.partition {
        Some(p) if !topic.partitions.contains_key(&p) => {
            bail!(
                "topic {} has no partition {p} (it has {})",
                args.topic,
                topic.partitions.len()
            )
        }
        Some(p) => vec![p],
        None => topic.partitions.keys().copied().collect(),
    };
    let mut positions: BTreeMap<i32, i64> = match (args.offset, args.from_beginning) {
        (Some(offset), _) => selected.iter().map(|&p| (p, offset)).collect(),
        (None, true) => {
            list_offsets(
                &mut client,
                &mut topic,
                &selected,
                EARLIEST,
                CONSUMER_REPLICA_ID,
            )
            .await?
        }
        (None, false) => {
            list_offsets(
                &mut client,
                &mut topic,
                &selected,
                LATEST,
                CONSUMER_REPLICA_ID,
            )
            .await?
        }
    };
    let idle_limit = (args.timeout_ms > 0).then(|| Duration::from_millis(args.timeout_ms));
    let mut last_progress = Instant::now();
    let mut consumed = 0u64;
    let mut retry = Retry::new(client.retry);
    'fetching: loop {
        if args.max_messages.is_some_and(|max| consumed >= max) {
            break;
        }
        if idle_limit.is_some_and(|limit| last_progress.elapsed() >= limit) {
            break;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        let mut failure: Option<anyhow::Error> = None;
        for (&p, &offset) in &positions {
            match leader_of(&topic, p) {
                Ok(leader) => by_leader.entry(leader).or_default().push((p, offset)),
                Err(error) => failure = Some(error),
            }
        }
        for (leader, wanted) in by_leader {
            let sent = client
                .request(Target::Node(leader), |version| {
                    Ok::<FetchRequest, anyhow::Error>(requests::fetch(
                        &topic.name,
                        &wanted,
                        version,
                    ))
                })
                .await;
            let (response, broker) = match sent {
                Ok(answer) => answer,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            };
            if response.error_code != 0 {
                failure = Some(
                    KafkaError::new(
                        response.error_code,
                        &broker,
                        format!("Fetch from {}", topic.name),
                    )
                    .into(),
                );
                continue;
            }
            let mut out = String::new();
            for (p, offset) in wanted {
                let answer = response
                    .responses
                    .iter()
                    .filter(|t| t.topic.0.as_str() == topic.name)
                    .flat_map(|t| t.partitions.iter())
                    .find(|r| r.partition_index == p);
                let Some(answer) = answer else { continue };
                match answer.error_code {
                    0 => {}
                    1 => {
                        write_stdout(&out)?;
                        eprintln!(
                            "Error: offset {offset} is out of range for {}-{p} (OFFSET_OUT_OF_RANGE from broker {broker}; log start offset {}, high watermark {})",
                            topic.name, answer.log_start_offset, answer.high_watermark
                        );
                        return Ok(false);
                    }
                    code => {
                        failure = Some(
                            KafkaError::new(
                                code,
                                &broker,
                                format!("Fetch {}-{p} at {offset}", topic.name),
                            )
                            .into(),
                        );
                        continue;
                    }
                }
                let Some(records) = answer.records.clone() else {
                    continue;
                };
                let batches = decode_fetched(records).with_context(|| {
                    format!(
                        "broker {broker}: records of {}-{p} at offset {offset}",
                        topic.name
                    )
                })?;
                for batch in batches {
                    if !batch.control {
                        for record in batch.records.iter().filter(|r| r.offset >= offset) {
                            if args.print_offsets {
                                out.push_str(&format!(
                                    "{p}@{}:{}:{}\n",
                                    record.offset,
                                    show_bytes(record.key.as_ref()),
                                    show_bytes(record.value.as_ref())
                                ));
                            } else {
                                out.push_str(&show_bytes(record.value.as_ref()));
                                out.push('\n');
                            }
                            consumed += 1;
                            last_progress = Instant::now();
                            if args.max_messages.is_some_and(|max| consumed >= max) {
                                write_stdout(&out)?;
                                break 'fetching;
                            }
                        }
                    }
                    let position = positions
                        .get_mut(&p)
                        .expect("fetched partitions are tracked");
                    *position = (*position).max(batch.last_offset + 1);
                }
            }
            if !write_stdout(&out)? {
                return Ok(true);
            }
        }
        match failure {
            None => retry = Retry::new(client.retry),
            Some(error) => {
                retry.wait(error).await?;
                if let Ok(info) = refresh_topic(&mut client, &topic.name).await {
                    topic = info;
                }
            }
        }
    }
    eprintln!("Processed a total of {consumed} messages");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Subcommand, Debug)]
    enum TestCommand {
        Topics {
            #[command(subcommand)]
            command: TopicsCommand,
        },
        Produce(ProduceArgs),
        Consume(ConsumeArgs),
    }

    fn parse(args: &[&str]) -> Result<TestCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("gregor").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn topics_create_arguments() {
        let TestCommand::Topics {
            command:
                TopicsCommand::Create {
                    name,
                    partitions,
                    replication_factor,
                    configs,
                    connect,
                },
        } = parse(&[
            "topics",
            "create",
            "orders",
            "--partitions",
            "6",
            "--replication-factor",
            "3",
            "--config",
            "min.insync.replicas=2",
            "--config",
            "retention.ms=1000",
        ])
        .unwrap()
        else {
            panic!("not topics create");
        };
        assert_eq!(name, "orders");
        assert_eq!(partitions, Some(6));
        assert_eq!(replication_factor, Some(3));
        assert_eq!(
            configs,
            vec![
                ("min.insync.replicas".to_string(), "2".to_string()),
                ("retention.ms".to_string(), "1000".to_string())
            ]
        );
        assert_eq!(connect.bootstrap_server, "127.0.0.1:9092");
        assert!(parse(&["topics", "create", "t", "--config", "novalue"]).is_err());
        assert!(parse(&["topics", "create", "t", "--config", "=1"]).is_err());
        assert!(parse(&["topics", "create", "t", "--config", "a b=1"]).is_err());
        assert_eq!(
            parse_config("cleanup.policy=").unwrap(),
            ("cleanup.policy".into(), "".into())
        );
    }

    #[test]
    fn topics_describe_and_delete_arguments() {
        let TestCommand::Topics {
            command: TopicsCommand::Describe { name, connect },
        } = parse(&["topics", "describe", "--bootstrap-server", "h:1"]).unwrap()
        else {
            panic!("not describe");
        };
        assert_eq!(name, None);
        assert_eq!(connect.bootstrap_server, "h:1");
        assert!(matches!(
            parse(&["topics", "delete", "t"]).unwrap(),
            TestCommand::Topics {
                command: TopicsCommand::Delete { .. }
            }
        ));
        assert!(parse(&["topics", "delete"]).is_err());
    }

    #[test]
    fn produce_arguments() {
        let TestCommand::Produce(args) = parse(&["produce", "t"]).unwrap() else {
            panic!("not produce");
        };
        assert_eq!(args.acks, AcksArg::All);
        assert_eq!(args.acks.code(), -1);
        for (flag, code) in [("all", -1), ("1", 1), ("0", 0)] {
            let TestCommand::Produce(args) = parse(&["produce", "t", "--acks", flag]).unwrap()
            else {
                panic!("not produce");
            };
            assert_eq!(args.acks.code(), code);
        }
        assert!(parse(&["produce", "t", "--acks", "2"]).is_err());
        assert!(parse(&["produce", "t", "--key", "k", "--key-separator", ":"]).is_err());
        let TestCommand::Produce(args) =
            parse(&["produce", "t", "--partition", "2", "--key", "k"]).unwrap()
        else {
            panic!("not produce");
        };
        assert_eq!(args.partition, Some(2));
        assert_eq!(args.key.as_deref(), Some("k"));
    }

    #[test]
    fn consume_arguments() {
        let TestCommand::Consume(args) = parse(&["consume", "t"]).unwrap() else {
            panic!("not consume");
        };
        assert!(!args.from_beginning);
        assert_eq!(args.offset, None);
        assert_eq!(args.timeout_ms, 10_000);
        assert_eq!(args.max_messages, None);
        let TestCommand::Consume(args) = parse(&[
            "consume",
            "t",
            "--offset",
            "5",
            "--partition",
            "1",
            "--max-messages",
            "3",
            "--timeout-ms",
            "0",
            "--print-offsets",
        ])
        .unwrap() else {
            panic!("not consume");
        };
        assert_eq!(
            (args.offset, args.partition, args.max_messages),
            (Some(5), Some(1), Some(3))
        );
        assert_eq!(args.timeout_ms, 0);
        assert!(args.print_offsets);
        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "1"]).is_err());
    }

    #[test]
    fn lines_and_partitions() {
        let r = parse_line("v", None, None).unwrap();
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"v"[..])));
        let r = parse_line("v", Some("k"), None).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        let r = parse_line("k\tv\tw", None, Some("\t")).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v\tw"[..]));
        assert!(parse_line("no separator", None, Some("\t")).is_err());

        let mut fixed = Partitioner::new(6, Some(4));
        assert_eq!(fixed.partition(Some(b"abc")), 4);
        let mut keyed = Partitioner::new(6, None);
        assert_eq!(keyed.partition(Some(b"abc")), (479470107 & 0x7fff_ffff) % 6);
        let mut round_robin = Partitioner::new(3, None);
        let picks: Vec<i32> = (0..5).map(|_| round_robin.partition(None)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1]);
    }

    #[test]
    fn batches_split_by_partition_and_size() {
        let record = |v: &str| Outgoing {
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        };
        let mut input = Vec::new();
        for i in 0..2500 {
            input.push((i % 2, record("x")));
        }
        let batches = make_batches(input, 1).unwrap();
        let shape: Vec<(i32, usize)> = batches.iter().map(|b| (b.partition, b.count)).collect();
        assert_eq!(shape, vec![(0, 1000), (0, 250), (1, 1000), (1, 250)]);
        let big = "y".repeat(600 << 10);
        let batches = make_batches(vec![(0, record(&big)), (0, record(&big))], 1).unwrap();
        assert_eq!(
            batches.len(),
            2,
            "two 600 KiB records exceed 1 MiB together"
        );
    }
}
