//! `gregor cluster up`: a controller and N brokers as child processes on 127.0.0.1, each with
//! a properties file and a data folder under `--data-dir` (so that starting again with the same
//! folder brings the cluster back with its data), their logs in `<data-dir>/<name>.log`.
//! Broker i's Kafka port is `base-port + i - 1` (any free port with `--base-port 0`); the
//! controller's and the brokers' replication ports are chosen by the system. Once a process
//! has bound its ports, they are written back into its properties file, so that a process
//! restarted from that file (after a crash or a `kill -9`) listens where its clients and peers
//! know it. Ctrl-C (or SIGTERM) stops the brokers, then the controller, cleanly.

use anyhow::{anyhow, bail, Context, Result};
use gregor_runtime::config::parse_override;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The settings `--broker-config` may give that the controller reads too (its topic
/// defaults and the brokers' session timeout).
const CONTROLLER_KEYS: [&str; 5] = [
    "broker.session.timeout.ms",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "default.replication.factor",
    "num.partitions",
];

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// How many brokers.
    #[arg(long, default_value_t = 3)]
    brokers: u32,
    /// Where the properties files, data and logs go.
    #[arg(long, default_value = "/tmp/gregor-cluster")]
    data_dir: PathBuf,
    /// Broker i's Kafka port is base-port + i - 1; 0 lets the system choose.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// A broker setting for every broker, KEY=VALUE (repeatable).
    #[arg(long = "broker-config", value_name = "KEY=VALUE")]
    broker_config: Vec<String>,
}

struct Process {
    name: String,
    child: Child,
    exited: bool,
}

/// Starts a child and waits for its "listening on" line; returns it and that line's address
/// list.
fn start(exe: &Path, role: &str, config: &Path, log: &Path, name: &str) -> Result<(Child, String)> {
    let log_file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("{}", log.display()))?;
    let mut child = Command::new(exe)
        .arg(role)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .with_context(|| format!("reading what {name} printed"))?;
    let Some((_, rest)) = line.split_once("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{name} did not start; its log, {}, says why", log.display());
    };
    let addresses = rest.split_whitespace().next().unwrap_or("").to_string();
    Ok((child, addresses))
}

/// The `host:port` of the listener named `name` in a `NAME://host:port,...` list.
fn address_of(addresses: &str, name: &str) -> Result<String> {
    addresses
        .split(',')
        .find_map(|a| a.strip_prefix(&format!("{name}://")))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {name} listener in {addresses:?}"))
}

fn write_properties(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = String::from("# Written by `gregor cluster up`; rewritten at every start.\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("{}", path.display()))
}

/// Rewrites a started process's properties file with the addresses it bound (`listeners`
/// with port 0 become the ports the system chose), so a restart from that file binds them
/// again.
fn pin_listeners(path: &Path, lines: &[String], bound: &str) -> Result<()> {
    let lines: Vec<String> = lines
        .iter()
        .map(|line| match line.starts_with("listeners=") {
            true => format!("listeners={bound}"),
            false => line.clone(),
        })
        .collect();
    write_properties(path, &lines)
}

fn stop(process: &mut Process, grace: Duration) {
    if process.exited {
        return;
    }
    let pid = rustix::process::Pid::from_raw(process.child.id() as i32);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        match process.child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if Instant::now() >= deadline => {
                eprintln!("{} did not stop in {grace:?}; killing it", process.name);
                let _ = process.child.kill();
                let _ = process.child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    process.exited = true;
}

pub fn up(args: UpArgs) -> Result<bool> {
    if args.brokers == 0 {
        bail!("--brokers must be at least 1");
    }
    let mut overrides = Vec::new();
    for text in &args.broker_config {
        let (key, value) = parse_override(text).map_err(|e| anyhow!("--broker-config: {e}"))?;
        overrides.push((key, value));
    }
    let dir = &args.data_dir;
    fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}", dir.display()))?;
    let exe = std::env::current_exe().context("finding the gregor executable")?;
    let stop_requested = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop_requested.clone())
            .context("installing a signal handler")?;
    }

    let mut processes: Vec<Process> = Vec::new();
    let controller_config = dir.join("controller.properties");
    let mut lines = vec![
        "node.id=0".to_string(),
        "listeners=CONTROLLER://127.0.0.1:0".to_string(),
        format!("log.dirs={}", dir.join("controller").display()),
    ];
    for (key, value) in &overrides {
        if CONTROLLER_KEYS.contains(&key.as_str()) {
            lines.push(format!("{key}={value}"));
        }
    }
    write_properties(&controller_config, &lines)?;
    let (child, addresses) = start(
        &exe,
        "controller",
        &controller_config,
        &dir.join("controller.log"),
        "the controller",
    )?;
    pin_listeners(&controller_config, &lines, &addresses)?;
    let controller = address_of(&addresses, "CONTROLLER")?;
    println!("controller  {controller}  pid {}", child.id());
    processes.push(Process {
        name: "the controller".to_string(),
        child,
        exited: false,
    });

    let mut bootstrap = Vec::new();
    for i in 1..=args.brokers {
        let port = match args.base_port {
            0 => 0,
            base => u32::from(base) + i - 1,
        };
        if port > u32::from(u16::MAX) {
            bail!(
                "--base-port {} leaves no port for broker {i}",
                args.base_port
            );
        }
        let config = dir.join(format!("broker-{i}.properties"));
        let mut lines = vec![
            format!("node.id={i}"),
            format!("listeners=PLAINTEXT://127.0.0.1:{port},REPLICATION://127.0.0.1:0"),
            "inter.broker.listener.name=REPLICATION".to_string(),
            format!("controller.quorum.bootstrap.servers={controller}"),
            format!("log.dirs={}", dir.join(format!("broker-{i}")).display()),
        ];
        // Kafka's default RF of 3 for __consumer_offsets would leave a smaller cluster without
        // a group coordinator; a one- or two-broker cluster gets RF = its size unless set.
        if !overrides
            .iter()
            .any(|(k, _)| k == "offsets.topic.replication.factor")
        {
            lines.push(format!(
                "offsets.topic.replication.factor={}",
                args.brokers.min(3)
            ));
        }
        lines.extend(overrides.iter().map(|(k, v)| format!("{k}={v}")));
        write_properties(&config, &lines)?;
        let name = format!("broker {i}");
        let started = start(
            &exe,
            "broker",
            &config,
            &dir.join(format!("broker-{i}.log")),
            &name,
        );
        let (child, addresses) = match started {
            Ok(started) => started,
            Err(e) => {
                for process in processes.iter_mut().rev() {
                    stop(process, Duration::from_secs(10));
                }
                return Err(e);
            }
        };
        pin_listeners(&config, &lines, &addresses)?;
        let kafka = address_of(&addresses, "PLAINTEXT")?;
        println!(
            "broker {i}    {kafka}  pid {}  config {}",
            child.id(),
            config.display()
        );
        bootstrap.push(kafka);
        processes.push(Process {
            name,
            child,
            exited: false,
        });
    }
    // Ready when every broker has registered: each broker's Metadata names them all.
    if let Err(e) = wait_registered(&bootstrap, args.brokers as usize) {
        for process in processes.iter_mut().rev() {
            stop(process, Duration::from_secs(10));
        }
        return Err(e);
    }
    println!("bootstrap servers: {}", bootstrap.join(","));
    println!(
        "data and logs in {}; Ctrl-C stops the cluster",
        dir.display()
    );
    let _ = std::io::stdout().flush();

    while !stop_requested.load(Ordering::SeqCst) {
        for process in &mut processes {
            if process.exited {
                continue;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                println!("{} exited ({status})", process.name);
                let _ = std::io::stdout().flush();
                process.exited = true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("stopping the cluster");
    for process in processes.iter_mut().skip(1).rev() {
        stop(process, Duration::from_secs(15));
    }
    stop(&mut processes[0], Duration::from_secs(15));
    println!("stopped");
    Ok(true)
}

/// Waits (at most a minute) until every broker answers Metadata naming `brokers` brokers.
fn wait_registered(bootstrap: &[String], brokers: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for address in bootstrap {
        loop {
            let seen = runtime.block_on(async {
                let mut client = crate::client::Client::new(address, Duration::from_secs(5));
                client.metadata(None).await.map(|m| m.brokers.len())
            });
            match seen {
                Ok(seen) if seen >= brokers => break,
                _ if Instant::now() >= deadline => {
                    bail!("broker at {address} does not see all {brokers} brokers after 60 s")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Ok(())
}
