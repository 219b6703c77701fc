//! `gregor bench produce|consume`: a load generator with what Kafka's perf tools print
//! (records/s, MB/s, average, maximum and percentile latencies), plus the brokers' CPU seconds
//! per million records — on two cores the load generator saturates first, so CPU per record is
//! the figure that compares brokers — and a raw loopback TCP transfer of the same bytes,
//! measured in the same run, as the physical reference.
//!
//! By default it starts its own cluster (`gregor cluster up` as a child, on free ports, in a
//! temporary folder it deletes afterwards) with as many brokers as the replication factor, so
//! that it knows the brokers' processes; `--bootstrap-server` with `--broker-pid` measures a
//! running cluster instead. `--pin` puts every cluster process on core 0 and the load
//! generator on core 1.
//!
//! The producer keeps up to `--max-in-flight` Produce requests of one `--batch-size` batch each
//! in flight per leader (Kafka's producer defaults: 16 KiB batches, 5 in flight), every batch
//! the same pre-encoded bytes: the tool does next to nothing per record, so what limits it is
//! the broker. Latency is per record, from the moment its request is written to the moment its
//! acknowledgment is read. The consumer fetches as Kafka's consumers do by default (one fetch in
//! flight per broker, `fetch.min.bytes` 1, `fetch.max.wait.ms` 500, 1 MiB per partition, 50 MiB
//! per response) and counts records from the batch headers without decoding them.

use crate::client::requests::{self, DEBUG_REPLICA_ID, LATEST};
use crate::client::{encode_request, Client, Connection, KafkaError, CLIENT_ID};
use crate::tools::{self, parse_config, TopicInfo};
use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use clap::{Args, Subcommand};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce --records records as fast as the cluster takes them.
    Produce(BenchArgs),
    /// Load --records records (not measured), then consume them from the beginning.
    Consume(BenchArgs),
}

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// How many records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes per record value (no key).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// all (-1), 1 or 0.
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    acks: i16,
    /// The topic's partitions.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// The topic's replication factor.
    #[arg(long, default_value_t = 1)]
    replication_factor: i16,
    /// A topic setting, KEY=VALUE (repeatable), e.g. min.insync.replicas=2.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_config)]
    topic_config: Vec<(String, String)>,
    /// The topic's name.
    #[arg(long, default_value = "gregor-bench")]
    topic: String,
    /// Bytes of records per Produce batch (Kafka's batch.size).
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// Produce requests in flight per broker (Kafka's max.in.flight.requests.per.connection).
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// The started cluster's size (default: the replication factor).
    #[arg(long)]
    brokers: Option<u32>,
    /// A broker setting for the started cluster, KEY=VALUE (repeatable).
    #[arg(long = "broker-config", value_name = "KEY=VALUE")]
    broker_config: Vec<String>,
    /// Measure a running cluster instead of starting one.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// With --bootstrap-server: a broker process whose CPU time to count (repeatable).
    #[arg(long = "broker-pid")]
    broker_pids: Vec<u32>,
    /// Pin the cluster's processes to core 0 and this tool to core 1.
    #[arg(long)]
    pin: bool,
    /// Where the started cluster keeps its data (default: a temporary folder, deleted after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("{s:?}: acks is all, -1, 1 or 0")),
    }
}

pub fn run(command: BenchCommand) -> ExitCode {
    let (consume, args) = match command {
        BenchCommand::Produce(args) => (false, args),
        BenchCommand::Consume(args) => (true, args),
    };
    match bench(consume, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(consume: bool, args: &BenchArgs) -> Result<()> {
    if args.records == 0 || args.record_size == 0 || args.partitions < 1 {
        bail!("--records, --record-size and --partitions must be at least 1");
    }
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    let mut cluster = match &args.bootstrap_server {
        Some(bootstrap) => Cluster::external(bootstrap, &args.broker_pids),
        None => Cluster::start(args)?,
    };
    let result = run_bench(consume, args, &cluster);
    cluster.stop();
    result
}

fn run_bench(consume: bool, args: &BenchArgs, cluster: &Cluster) -> Result<()> {
    if args.pin {
        pin(cluster)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let plan = runtime.block_on(prepare(args, cluster))?;
    let wire_bytes = plan.wire_bytes(args.records);
    let disk = disk_reference(&cluster.scratch_dir(), wire_bytes)?;
    let reference = loopback_reference(wire_bytes)?;
    if consume {
        let loaded = runtime.block_on(produce(args, &plan))?;
        println!(
            "loaded {} records in {:.3} s",
            loaded.records,
            loaded.elapsed.as_secs_f64()
        );
        let before = cluster.cpu()?;
        let consumed = runtime.block_on(consume_all(args, &plan))?;
        let cpu = cluster.cpu()? - before;
        consumed.print(args.record_size);
        print_cpu(cpu, consumed.records, cluster.pids.len());
        print_reference(&reference, consumed.wire_bytes, consumed.elapsed);
        disk.print(consumed.records);
    } else {
        let before = cluster.cpu()?;
        let produced = runtime.block_on(produce(args, &plan))?;
        let cpu = cluster.cpu()? - before;
        produced.print(args.record_size, args.acks);
        print_cpu(cpu, produced.records, cluster.pids.len());
        print_reference(&reference, produced.wire_bytes, produced.elapsed);
        disk.print(produced.records);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The cluster

struct Cluster {
    bootstrap: String,
    /// The processes whose CPU time counts: the brokers.
    pids: Vec<u32>,
    /// Every process of the cluster, for pinning.
    all_pids: Vec<u32>,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    temporary: Option<PathBuf>,
}

impl Cluster {
    fn external(bootstrap: &str, pids: &[u32]) -> Cluster {
        Cluster {
            bootstrap: bootstrap.to_string(),
            pids: pids.to_vec(),
            all_pids: pids.to_vec(),
            child: None,
            data_dir: None,
            temporary: None,
        }
    }

    /// `gregor cluster up` on free ports; returns once it printed its bootstrap servers.
    fn start(args: &BenchArgs) -> Result<Cluster> {
        let brokers = args
            .brokers
            .unwrap_or(args.replication_factor.max(1) as u32);
        let (dir, temporary) = match &args.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!("gregor-bench-{}", std::process::id()));
                (dir.clone(), Some(dir))
            }
        };
        let exe = std::env::current_exe().context("finding the gregor executable")?;
        let mut command = Command::new(exe);
        command
            .args(["cluster", "up", "--base-port", "0", "--brokers"])
            .arg(brokers.to_string())
            .arg("--data-dir")
            .arg(&dir);
        for setting in &args.broker_config {
            command.arg("--broker-config").arg(setting);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting gregor cluster up")?;
        let mut cluster = Cluster {
            bootstrap: String::new(),
            pids: Vec::new(),
            all_pids: Vec::new(),
            child: None,
            data_dir: Some(dir.clone()),
            temporary,
        };
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        cluster.child = Some(child);
        let mut line = String::new();
        loop {
            line.clear();
            if lines
                .read_line(&mut line)
                .context("reading gregor cluster up")?
                == 0
            {
                cluster.stop();
                bail!("gregor cluster up stopped before it was ready (its messages are above)");
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let pid = words
                .iter()
                .position(|w| *w == "pid")
                .and_then(|i| words.get(i + 1))
                .and_then(|p| p.parse::<u32>().ok());
            match (words.first(), pid) {
                (Some(&"broker"), Some(pid)) => {
                    cluster.pids.push(pid);
                    cluster.all_pids.push(pid);
                }
                (Some(&"controller"), Some(pid)) => cluster.all_pids.push(pid),
                _ => {}
            }
            if let Some(servers) = line.strip_prefix("bootstrap servers: ") {
                cluster.bootstrap = servers.trim().to_string();
                break;
            }
        }
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Ok(cluster)
    }

    /// Where the disk reference writes: the started cluster's folder (the brokers' file
    /// system), else the temporary folder.
    fn scratch_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The CPU seconds (user + system) the counted processes have used so far.
    fn cpu(&self) -> Result<f64> {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let mut total = 0.0;
        for pid in &self.pids {
            let path = format!("/proc/{pid}/stat");
            let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
            // Fields after the command's closing parenthesis: state is the 3rd field, utime
            // the 14th and stime the 15th.
            let rest = text
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .ok_or_else(|| anyhow!("{path}: unexpected format"))?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| -> Result<f64> {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .map(|t| t as f64)
                    .ok_or_else(|| anyhow!("{path}: unexpected format"))
            };
            total += (field(11)? + field(12)?) / ticks;
        }
        Ok(total)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            }
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        if let Some(dir) = self.temporary.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every cluster process (all threads) on core 0, this process on core 1.
fn pin(cluster: &Cluster) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("warning: --pin needs 2 cores; this machine has {cores}: not pinning");
        return Ok(());
    }
    let mut targets: Vec<(u32, &str)> = cluster.all_pids.iter().map(|p| (*p, "0")).collect();
    targets.push((std::process::id(), "1"));
    for (pid, core) in targets {
        let status = Command::new("taskset")
            .args(["-apc", core, &pid.to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset (util-linux)")?;
        if !status.success() {
            bail!("taskset -apc {core} {pid} failed ({status})");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The topic

/// The topic as created, and the Produce request frame each partition's batches go in.
struct Plan {
    /// Leader address → its partitions.
    leaders: BTreeMap<String, Vec<i32>>,
    /// Per partition, a Produce request frame of one batch (correlation id to be set).
    frames: BTreeMap<i32, (BytesMut, u64)>,
    produce_version: i16,
    fetch_version: i16,
    topic: TopicInfo,
    bootstrap: String,
}

impl Plan {
    /// The bytes a produce run puts on the wire, for the loopback reference.
    fn wire_bytes(&self, records: u64) -> u64 {
        let (frame, per_batch) = self.frames.values().next().expect("a partition");
        records.div_ceil(*per_batch) * frame.len() as u64
    }
}

async fn prepare(args: &BenchArgs, cluster: &Cluster) -> Result<Plan> {
    let mut client = Client::new(&cluster.bootstrap, Duration::from_secs(30));
    let configs: Vec<(String, String)> = args.topic_config.clone();
    let exists = client
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await
        .map(|m| m.topics.iter().any(|t| t.error_code == 0))
        .unwrap_or(false);
    if exists {
        bail!(
            "topic {} exists already: the benchmark needs a new topic (--topic)",
            args.topic
        );
    }
    if !tools::create_topic(
        &mut client,
        &args.topic,
        args.partitions,
        args.replication_factor,
        &configs,
    )
    .await?
    {
        bail!("could not create topic {}", args.topic);
    }
    let topic = wait_until_whole(&mut client, &args.topic).await?;
    let mut leaders: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (partition, info) in &topic.partitions {
        let address = client
            .broker_address(info.leader)
            .ok_or_else(|| anyhow!("no address for broker {}", info.leader))?
            .to_string();
        leaders.entry(address).or_default().push(*partition);
    }
    // Every leader must know itself as one before the first record goes to it.
    for (address, partitions) in &leaders {
        let mut own = Client::new(address, Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = tools::wait_for_topic(&mut own, &args.topic).await?;
            let leads = partitions.iter().all(|p| {
                seen.partitions.get(p).map(|i| i.leader)
                    == topic.partitions.get(p).map(|i| i.leader)
            });
            if leads {
                break;
            }
            if Instant::now() >= deadline {
                bail!("{address} does not know it leads {partitions:?} after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let first = leaders.keys().next().expect("a partition").clone();
    let connection = Connection::connect(&first, Duration::from_secs(10)).await?;
    let produce_version = connection.version(ApiKey::Produce)?;
    let fetch_version = connection.version(ApiKey::Fetch)?;
    let per_batch = (args.batch_size / (args.record_size + 8)).max(1);
    let value = Bytes::from(
        (0..args.record_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let records: Vec<_> = (0..per_batch)
        .map(|_| crate::client::records::Outgoing {
            key: None,
            value: Some(value.clone()),
        })
        .collect();
    let batch = crate::client::records::encode_batch(&records, now_ms())?;
    let mut frames = BTreeMap::new();
    for partition in topic.partitions.keys() {
        let request = requests::produce(
            &args.topic,
            &[(*partition, batch.clone())],
            args.acks,
            30_000,
        );
        let frame = encode_request(&request, produce_version, 0, CLIENT_ID)?;
        frames.insert(*partition, (frame, per_batch as u64));
    }
    Ok(Plan {
        leaders,
        frames,
        produce_version,
        fetch_version,
        topic,
        bootstrap: cluster.bootstrap.clone(),
    })
}

/// Metadata until every partition has a leader and its whole replica set in sync.
async fn wait_until_whole(client: &mut Client, topic: &str) -> Result<TopicInfo> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = tools::wait_for_topic(client, topic).await?;
        let whole = info
            .partitions
            .values()
            .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len());
        if whole {
            return Ok(info);
        }
        if Instant::now() >= deadline {
            bail!("topic {topic}: partitions without a leader or a full ISR after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------------
// Produce

struct Produced {
    records: u64,
    wire_bytes: u64,
    elapsed: Duration,
    /// (latency, records) per request.
    latencies: Vec<(Duration, u64)>,
}

impl Produced {
    fn print(&self, record_size: usize, acks: i16) {
        let seconds = self.elapsed.as_secs_f64();
        let rate = self.records as f64 / seconds;
        let mb = rate * record_size as f64 / (1024.0 * 1024.0);
        if acks == 0 {
            println!(
                "{} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), until the leaders' \
                 log ends had them all (acks=0: no latencies)",
                self.records
            );
            return;
        }
        let stats = Percentiles::of(&self.latencies);
        println!(
            "{} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            self.records,
            stats.average,
            stats.max,
            stats.at(0.50),
            stats.at(0.95),
            stats.at(0.99),
            stats.at(0.999),
        );
    }
}

/// Latencies weighted by their records, in milliseconds.
struct Percentiles {
    sorted: Vec<(f64, u64)>,
    total: u64,
    average: f64,
    max: f64,
}

impl Percentiles {
    fn of(latencies: &[(Duration, u64)]) -> Percentiles {
        let mut sorted: Vec<(f64, u64)> = latencies
            .iter()
            .map(|(d, n)| (d.as_secs_f64() * 1000.0, *n))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = sorted.iter().map(|(_, n)| n).sum();
        let weighted: f64 = sorted.iter().map(|(ms, n)| ms * *n as f64).sum();
        Percentiles {
            average: weighted / total.max(1) as f64,
            max: sorted.last().map_or(0.0, |(ms, _)| *ms),
            sorted,
            total,
        }
    }

    /// The latency that `fraction` of the records had at most.
    fn at(&self, fraction: f64) -> f64 {
        let rank = (fraction * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, n) in &self.sorted {
            seen += n;
            if seen >= rank {
                return *ms;
            }
        }
        self.max
    }
}

async fn produce(args: &BenchArgs, plan: &Plan) -> Result<Produced> {
    // Records per partition: as even as the batch size allows.
    let partitions = plan.frames.len() as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (address, owned) in &plan.leaders {
        let mut work = Vec::new();
        for partition in owned {
            let share = args.records / partitions
                + u64::from((*partition as u64) < args.records % partitions);
            let (frame, per_batch) = &plan.frames[partition];
            work.push((*partition, frame.clone(), *per_batch, share));
        }
        let address = address.clone();
        let (acks, in_flight, version) = (args.acks, args.max_in_flight, plan.produce_version);
        tasks.push(tokio::spawn(async move {
            produce_to(&address, work, acks, in_flight, version).await
        }));
    }
    let mut produced = Produced {
        records: 0,
        wire_bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (records, bytes, latencies) = task.await.context("a producer task")??;
        produced.records += records;
        produced.wire_bytes += bytes;
        produced.latencies.extend(latencies);
    }
    if args.acks == 0 {
        wait_for_log_ends(args, plan).await?;
    }
    produced.elapsed = start.elapsed();
    Ok(produced)
}

type PartitionWork = (i32, BytesMut, u64, u64);

/// One leader's partitions, round robin, with up to `in_flight` requests outstanding.
async fn produce_to(
    address: &str,
    mut work: Vec<PartitionWork>,
    acks: i16,
    in_flight: usize,
    version: i16,
) -> Result<(u64, u64, Vec<(Duration, u64)>)> {
    let stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = AsyncBufReader::with_capacity(64 * 1024, read);
    let mut outstanding: VecDeque<(i32, Instant, u64)> = VecDeque::new();
    let mut latencies = Vec::new();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut correlation_id = 0i32;
    let mut next = 0usize;
    let mut body = Vec::new();
    loop {
        let remaining = work.iter().any(|w| w.3 > 0);
        while remaining && (acks == 0 || outstanding.len() < in_flight) {
            // The next partition with records left, round robin.
            let Some(index) = (0..work.len())
                .map(|i| (next + i) % work.len())
                .find(|i| work[*i].3 > 0)
            else {
                break;
            };
            next = index + 1;
            let (_, frame, per_batch, left) = &mut work[index];
            if *left < *per_batch {
                // The last, shorter batch: re-encode it with what is left.
                *frame = shorter_frame(frame, *left, version)?;
                *per_batch = *left;
            }
            correlation_id = correlation_id.wrapping_add(1);
            frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());
            write
                .write_all(frame)
                .await
                .with_context(|| format!("writing to {address}"))?;
            *left -= *per_batch;
            records += *per_batch;
            bytes += frame.len() as u64;
            if acks != 0 {
                outstanding.push_back((correlation_id, Instant::now(), *per_batch));
            }
        }
        let Some((expected, sent, count)) = outstanding.pop_front() else {
            break;
        };
        let size = read
            .read_i32()
            .await
            .with_context(|| format!("reading from {address}"))?;
        body.resize(usize::try_from(size).context("a negative frame size")?, 0);
        read.read_exact(&mut body)
            .await
            .with_context(|| format!("reading from {address}"))?;
        latencies.push((sent.elapsed(), count));
        let mut frame = Bytes::copy_from_slice(&body);
        let header =
            ResponseHeader::decode(&mut frame, ApiKey::Produce.response_header_version(version))?;
        if header.correlation_id != expected {
            bail!(
                "{address}: answer {} to request {expected}",
                header.correlation_id
            );
        }
        let response = ProduceResponse::decode(&mut frame, version)?;
        for topic in &response.responses {
            for partition in &topic.partition_responses {
                if partition.error_code != 0 {
                    let error = KafkaError::new(
                        partition.error_code,
                        address,
                        format!("producing to partition {}", partition.index),
                    )
                    .with_message(partition.error_message.as_ref());
                    return Err(error.into());
                }
            }
        }
    }
    write.flush().await?;
    Ok((records, bytes, latencies))
}

/// A Produce frame like `frame` with only `records` records in its batch.
fn shorter_frame(frame: &BytesMut, records: u64, version: i16) -> Result<BytesMut> {
    let mut body = Bytes::copy_from_slice(&frame[4..]);
    let header = kafka_protocol::messages::RequestHeader::decode(
        &mut body,
        ApiKey::Produce.request_header_version(version),
    )?;
    let request = kafka_protocol::messages::ProduceRequest::decode(&mut body, version)?;
    let topic = &request.topic_data[0];
    let partition = &topic.partition_data[0];
    let mut batch = partition.records.clone().context("a batch")?;
    let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch)?;
    let outgoing: Vec<_> = decoded
        .records
        .into_iter()
        .take(records as usize)
        .map(|r| crate::client::records::Outgoing {
            key: r.key,
            value: r.value,
        })
        .collect();
    let batch = crate::client::records::encode_batch(&outgoing, now_ms())?;
    let shorter = requests::produce(
        topic.name.0.as_str(),
        &[(partition.index, batch)],
        request.acks,
        request.timeout_ms,
    );
    encode_request(&shorter, version, header.correlation_id, CLIENT_ID)
}

/// acks=0: the run ends when every partition's log end has all its records.
async fn wait_for_log_ends(args: &BenchArgs, plan: &Plan) -> Result<()> {
    let mut client = Client::new(&plan.bootstrap, Duration::from_secs(30));
    let mut topic = plan.topic.clone();
    let partitions: Vec<i32> = plan.frames.keys().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ends = tools::list_offsets(
            &mut client,
            &mut topic,
            &partitions,
            LATEST,
            DEBUG_REPLICA_ID,
        )
        .await?;
        let total: i64 = ends.values().map(|o| (*o).max(0)).sum();
        if total as u64 >= args.records {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "acks=0: the log ends hold {total} of {} records after 120 s (some were lost)",
                args.records
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Consume

struct Consumed {
    records: u64,
    wire_bytes: u64,
    fetches: u64,
    elapsed: Duration,
}

impl Consumed {
    fn print(&self, record_size: usize) {
        let seconds = self.elapsed.as_secs_f64();
        let rate = self.records as f64 / seconds;
        let mb = rate * record_size as f64 / (1024.0 * 1024.0);
        println!(
            "{} records consumed in {seconds:.3} s, {rate:.1} records/sec ({mb:.2} MB/sec), \
             {} fetches, {:.1} records per fetch",
            self.records,
            self.fetches,
            self.records as f64 / self.fetches.max(1) as f64
        );
    }
}

async fn consume_all(args: &BenchArgs, plan: &Plan) -> Result<Consumed> {
    let partitions = plan.frames.len() as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (address, owned) in &plan.leaders {
        let wanted: Vec<(i32, u64)> = owned
            .iter()
            .map(|p| {
                let share =
                    args.records / partitions + u64::from((*p as u64) < args.records % partitions);
                (*p, share)
            })
            .collect();
        let (address, topic, version) = (address.clone(), args.topic.clone(), plan.fetch_version);
        tasks.push(tokio::spawn(async move {
            consume_from(&address, &topic, wanted, version).await
        }));
    }
    let mut consumed = Consumed {
        records: 0,
        wire_bytes: 0,
        fetches: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (records, bytes, fetches) = task.await.context("a consumer task")??;
        consumed.records += records;
        consumed.wire_bytes += bytes;
        consumed.fetches += fetches;
    }
    consumed.elapsed = start.elapsed();
    Ok(consumed)
}

/// Fetches one leader's partitions from offset 0 until each has given `wanted` records.
async fn consume_from(
    address: &str,
    topic: &str,
    wanted: Vec<(i32, u64)>,
    version: i16,
) -> Result<(u64, u64, u64)> {
    let mut connection = Connection::connect(address, Duration::from_secs(30)).await?;
    let mut positions: BTreeMap<i32, (i64, u64)> =
        wanted.iter().map(|(p, n)| (*p, (0i64, *n))).collect();
    let (mut records, mut bytes, mut fetches) = (0u64, 0u64, 0u64);
    while positions.values().any(|(_, left)| *left > 0) {
        let asked: Vec<(i32, i64)> = positions
            .iter()
            .filter(|(_, (_, left))| *left > 0)
            .map(|(p, (offset, _))| (*p, *offset))
            .collect();
        let request = requests::fetch(topic, &asked, version);
        let response: FetchResponse = connection.send(&request, version).await?;
        fetches += 1;
        for answer in response.responses.iter().flat_map(|t| &t.partitions) {
            if answer.error_code != 0 {
                return Err(KafkaError::new(
                    answer.error_code,
                    address,
                    format!("fetching partition {}", answer.partition_index),
                )
                .into());
            }
            let Some(position) = positions.get_mut(&answer.partition_index) else {
                continue;
            };
            let Some(mut data) = answer.records.clone() else {
                continue;
            };
            bytes += data.len() as u64;
            // Whole batches: base offset (8), length (4), ..., last offset delta at 23,
            // record count at 57.
            while data.len() >= 61 {
                let length = i32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
                let size = 12 + usize::try_from(length).context("a negative batch length")?;
                if data.len() < size {
                    break;
                }
                let base = i64::from_be_bytes(data[0..8].try_into().expect("8 bytes"));
                let last_delta = i32::from_be_bytes(data[23..27].try_into().expect("4 bytes"));
                let count = i32::from_be_bytes(data[57..61].try_into().expect("4 bytes"));
                let next = base + i64::from(last_delta) + 1;
                if next > position.0 {
                    // Records before the position (a batch begun earlier) are not counted.
                    let counted = (next - position.0.max(base)).min(i64::from(count)).max(0);
                    records += counted as u64;
                    position.1 = position.1.saturating_sub(counted as u64);
                    position.0 = next;
                }
                data.advance(size);
            }
        }
    }
    Ok((records, bytes, fetches))
}

// ---------------------------------------------------------------------------------------------
// Reports

fn print_cpu(cpu: f64, records: u64, processes: usize) {
    if processes == 0 {
        println!("brokers' CPU: not measured (no --broker-pid)");
        return;
    }
    println!(
        "brokers' CPU: {cpu:.3} s (user + system, {processes} broker process{}) = {:.3} s per \
         million records",
        if processes == 1 { "" } else { "es" },
        cpu / (records as f64 / 1e6)
    );
}

struct Reference {
    bytes: u64,
    elapsed: Duration,
}

impl Reference {
    fn rate(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

fn print_reference(reference: &Reference, bytes: u64, elapsed: Duration) {
    let rate = bytes as f64 / elapsed.as_secs_f64();
    println!(
        "loopback reference: {:.1} MB/s (the same {} bytes over raw TCP on 127.0.0.1, this \
         run); the broker moved {:.1} MB/s of Kafka frames = {:.3} of it",
        reference.rate() / (1024.0 * 1024.0),
        reference.bytes,
        rate / (1024.0 * 1024.0),
        rate / reference.rate()
    );
}

/// The same bytes written raw (1 MiB writes, no fsync, as the log writes them to the page
/// cache) to a file that is deleted after: the floor for any broker that stores what it
/// receives, and, as the first write to fresh memory on a virtual machine costs several times
/// a later one, it also leaves the page cache in the state the brokers write into.
struct DiskReference {
    bytes: u64,
    elapsed: Duration,
    cpu: f64,
}

impl DiskReference {
    fn print(&self, records: u64) {
        println!(
            "disk reference: the same {} bytes written raw to a file: {:.1} MB/s, {:.3} s CPU \
             = {:.3} s per million records",
            self.bytes,
            self.bytes as f64 / self.elapsed.as_secs_f64() / (1024.0 * 1024.0),
            self.cpu,
            self.cpu / (records as f64 / 1e6)
        );
    }
}

/// This thread's CPU seconds so far (user + system).
fn thread_cpu() -> Result<f64> {
    let text =
        std::fs::read_to_string("/proc/thread-self/stat").context("/proc/thread-self/stat")?;
    let rest = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() != 2 {
        bail!("/proc/thread-self/stat: unexpected format");
    }
    Ok((fields[0] + fields[1]) as f64 / rustix::param::clock_ticks_per_second() as f64)
}

fn disk_reference(dir: &std::path::Path, bytes: u64) -> Result<DiskReference> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let path = dir.join(format!(
        "gregor-bench-disk-reference-{}",
        std::process::id()
    ));
    let result = (|| -> Result<DiskReference> {
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0x5a_u8; 1 << 20];
        let (start, cpu) = (Instant::now(), thread_cpu()?);
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(DiskReference {
            bytes,
            elapsed: start.elapsed(),
            cpu: thread_cpu()? - cpu,
        })
    })()
    .with_context(|| format!("writing {}", path.display()));
    let _ = std::fs::remove_file(&path);
    result
}

/// `bytes` over a raw loopback TCP connection, from a thread to this one, 64 KiB at a time.
fn loopback_reference(bytes: u64) -> Result<Reference> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut stream = std::net::TcpStream::connect(address)?;
        let chunk = vec![0x5a_u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            stream.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let (mut stream, _) = listener
        .accept()
        .context("accepting the loopback connection")?;
    let start = Instant::now();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    while received < bytes {
        let n = stream
            .read(&mut buffer)
            .context("reading the loopback connection")?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let elapsed = start.elapsed();
    sender
        .join()
        .map_err(|_| anyhow!("the loopback sender panicked"))?
        .context("the loopback sender")?;
    if received < bytes {
        bail!("the loopback reference moved {received} of {bytes} bytes");
    }
    Ok(Reference { bytes, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_weighted_by_records() {
        let ms = Duration::from_millis;
        let stats = Percentiles::of(&[(ms(1), 98), (ms(10), 1), (ms(100), 1)]);
        assert_eq!(stats.at(0.5), 1.0);
        assert_eq!(stats.at(0.98), 1.0);
        assert_eq!(stats.at(0.99), 10.0);
        assert_eq!(stats.at(0.999), 100.0);
        assert_eq!(stats.max, 100.0);
        assert!((stats.average - (98.0 + 10.0 + 100.0) / 100.0).abs() < 1e-9);
    }

    #[test]
    fn acks_are_named_as_kafka_names_them() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert!(parse_acks("2").is_err());
    }
}
