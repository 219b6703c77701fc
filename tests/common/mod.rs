//! What the end-to-end tests in Rust share: a one-broker cluster (`gregor cluster up`) that is
//! always cleaned up, Kafka frames by hand, and running `gregor` with a deadline.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one read from the broker may take.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);
/// How long the cluster may take to print its bootstrap servers.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the cluster may take to stop after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// The cluster, as a child process that is always cleaned up.
// ---------------------------------------------------------------------------------------------

/// A unique, empty directory under the system's temp directory (no `tempfile` dependency).
pub fn unique_temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("gregor-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `gregor cluster up` (one broker, or as many as asked): stops it (SIGTERM, bounded wait) when asked, and when
/// dropped without a clean stop (a panicking test) kills it and, by the pids it printed, the
/// controller and broker it started; removes its data directory in every case.
pub struct Cluster {
    child: Child,
    /// The pids of the controller and brokers in the order printed (controller first), from
    /// the `pid N` of the printed lines.
    pub pids: Vec<u32>,
    /// The first broker's address.
    pub bootstrap: String,
    /// Every broker's address, broker 1 first.
    pub brokers: Vec<String>,
    dir: PathBuf,
    /// Everything the cluster printed (drained by a thread so that it never blocks writing).
    output: Arc<Mutex<String>>,
    stopped: bool,
}

impl Cluster {
    pub fn start(name: &str) -> Cluster {
        Cluster::start_with(name, 1, &[])
    }

    /// `brokers` brokers, each with the `KEY=VALUE` settings given.
    pub fn start_with(name: &str, brokers: u32, settings: &[&str]) -> Cluster {
        let dir = unique_temp_dir(name);
        let mut command = Command::new(env!("CARGO_BIN_EXE_gregor"));
        command
            .args(["cluster", "up", "--base-port", "0", "--brokers"])
            .arg(brokers.to_string());
        for setting in settings {
            command.args(["--broker-config", setting]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gregor cluster up starts");
        let stdout = child.stdout.take().expect("piped");
        let output = Arc::new(Mutex::new(String::new()));
        // The reader thread keeps draining stdout until the process exits: `cluster up`
        // prints "stopping the cluster" on SIGTERM, and a closed pipe would make that fail.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let sink = output.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = lines_tx.send(line);
            }
        });
        let mut cluster = Cluster {
            child,
            pids: Vec::new(),
            bootstrap: String::new(),
            brokers: Vec::new(),
            dir,
            output,
            stopped: false,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "no `bootstrap servers:` line in {START_DEADLINE:?} ({e}); printed:\n{}",
                    cluster.printed()
                ),
            };
            // "controller  127.0.0.1:36123  pid 22623", "broker 1    ...  pid 22626  config ..."
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                if word == "pid" {
                    if let Some(pid) = words.next().and_then(|p| p.parse().ok()) {
                        cluster.pids.push(pid);
                    }
                }
            }
            if let Some(servers) = line.strip_prefix("bootstrap servers: ") {
                cluster.brokers = servers.trim().split(',').map(str::to_string).collect();
                cluster.bootstrap = cluster.brokers[0].clone();
                break;
            }
        }
        cluster
    }

    /// The cluster's data folder (its properties files, data and logs).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn printed(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM to `cluster up`, which stops the broker and then the controller; waits for it.
    pub fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let status = wait_bounded(&mut self.child, STOP_DEADLINE)
            .unwrap_or_else(|| panic!("cluster up did not stop in {STOP_DEADLINE:?}"));
        self.stopped = true;
        status
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            // The test failed part-way: kill everything, the children first (killing
            // `cluster up` itself does not stop them).
            for pid in &self.pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = self.child.kill();
            let _ = wait_bounded(&mut self.child, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits at most `limit` for `child` to exit.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The wire protocol, by hand.
// ---------------------------------------------------------------------------------------------

pub fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connecting to the broker");
    stream.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(READ_DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A whole request frame: i32 size, then the header (api key, version, correlation id,
/// nullable client id) and `body`.
pub fn request(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(&api_key.to_be_bytes());
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(&correlation_id.to_be_bytes());
    message.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    message.extend_from_slice(client_id.as_bytes());
    message.extend_from_slice(body);
    let mut frame = (message.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&message);
    frame
}

/// Reads one answer frame (without its size); panics if it does not come in time.
pub fn read_frame(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .unwrap_or_else(|e| panic!("{what}: reading the answer's size: {e}"));
    let size = i32::from_be_bytes(size);
    assert!(
        (4..=16 << 20).contains(&size),
        "{what}: an answer of {size} bytes"
    );
    let mut frame = vec![0u8; size as usize];
    stream
        .read_exact(&mut frame)
        .unwrap_or_else(|e| panic!("{what}: reading the answer: {e}"));
    frame
}

/// Runs `gregor ARGS`, at most `limit`; returns its exit status and output.
pub fn gregor_bounded(args: &[&str], limit: Duration) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gregor runs");
    // Drain both pipes on threads so that a chatty child cannot block.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_bounded(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("gregor {args:?} did not finish in {limit:?}");
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    (status, text)
}
