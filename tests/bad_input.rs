//! End-to-end: a broker fed bad bytes on some connections keeps serving the others.
//!
//! A one-broker cluster (`gregor cluster up`) is started; a healthy connection A is opened and
//! checked with ApiVersions; then, each on a fresh connection, the broker gets random bytes,
//! a truncated frame, an oversized frame, an unknown API key, an API it does not offer, and an
//! ApiVersions request of a version it does not know. For every one of those the broker must
//! answer or close the connection within a deadline (never hang); ApiVersions v99 must get an
//! answer (KIP-511). Afterwards connection A, a brand-new connection and `gregor topics
//! describe` all still work.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any one read from the broker may take.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// How long the cluster may take to print its bootstrap servers.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the cluster may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(40);

const API_VERSIONS: i16 = 18;
const OFFSET_FETCH: i16 = 9;
const UNSUPPORTED_VERSION: i16 = 35;

// ---------------------------------------------------------------------------------------------
// The cluster, as a child process that is always cleaned up.
// ---------------------------------------------------------------------------------------------

/// A unique, empty directory under the system's temp directory (no `tempfile` dependency).
fn unique_temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("gregor-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `gregor cluster up --brokers 1`: stops it (SIGTERM, bounded wait) when asked, and when
/// dropped without a clean stop (a panicking test) kills it and, by the pids it printed, the
/// controller and broker it started; removes its data directory in every case.
struct Cluster {
    child: Child,
    /// The pids of the controller and broker, from the `pid N` of the printed lines.
    pids: Vec<u32>,
    bootstrap: String,
    dir: PathBuf,
    /// Everything the cluster printed (drained by a thread so that it never blocks writing).
    output: Arc<Mutex<String>>,
    stopped: bool,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = unique_temp_dir("bad-input");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
            .args(["cluster", "up", "--brokers", "1", "--base-port", "0"])
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
                cluster.bootstrap = servers.trim().split(',').next().unwrap().to_string();
                break;
            }
        }
        cluster
    }

    fn printed(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM to `cluster up`, which stops the broker and then the controller; waits for it.
    fn stop(&mut self) -> ExitStatus {
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
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
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

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connecting to the broker");
    stream.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(READ_DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A whole request frame: i32 size, then the header (api key, version, correlation id,
/// nullable client id) and `body`.
fn request(
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
fn read_frame(stream: &mut TcpStream, what: &str) -> Vec<u8> {
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

/// An ApiVersions answer: header v0 (just the correlation id), then error code and api_keys
/// (i32 count, then api key, min and max version, each i16). Returns (correlation id, error
/// code, api keys with their ranges).
fn parse_api_versions(frame: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    assert!(frame.len() >= 10, "a short ApiVersions answer: {frame:?}");
    let i16_at = |at: usize| i16::from_be_bytes([frame[at], frame[at + 1]]);
    let correlation_id = i32::from_be_bytes(frame[0..4].try_into().unwrap());
    let error_code = i16_at(4);
    let count = i32::from_be_bytes(frame[6..10].try_into().unwrap());
    assert!(count >= 0, "api_keys count {count}");
    let mut keys = Vec::new();
    for i in 0..count as usize {
        let at = 10 + 6 * i;
        assert!(frame.len() >= at + 6, "api_keys cut short: {frame:?}");
        keys.push((i16_at(at), i16_at(at + 2), i16_at(at + 4)));
    }
    (correlation_id, error_code, keys)
}

/// Sends ApiVersions v0 on `stream` and checks the answer: correlation id echoed, no error,
/// ApiVersions itself among the offered APIs.
fn check_api_versions(stream: &mut TcpStream, correlation_id: i32, what: &str) {
    stream
        .write_all(&request(API_VERSIONS, 0, correlation_id, "t", &[]))
        .unwrap_or_else(|e| panic!("{what}: sending ApiVersions: {e}"));
    let frame = read_frame(stream, what);
    let (echoed, error_code, keys) = parse_api_versions(&frame);
    assert_eq!(echoed, correlation_id, "{what}: correlation id");
    assert_eq!(error_code, 0, "{what}: error code");
    assert!(
        keys.iter().any(|&(key, _, _)| key == API_VERSIONS),
        "{what}: ApiVersions not among {keys:?}"
    );
}

/// What the broker did with a bad request.
#[derive(Debug)]
enum Outcome {
    /// It wrote something back (these bytes, as far as the first read got).
    Answered(Vec<u8>),
    /// It closed the connection: end of stream, or a reset.
    Closed(String),
}

/// Waits (at most `READ_DEADLINE`) for the broker to answer or close; panics if it does
/// neither — the one thing a broker must not do with bad input is hang.
fn outcome(stream: &mut TcpStream, what: &str) -> Outcome {
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    match stream.read(&mut buf) {
        Ok(0) => Outcome::Closed("end of stream".into()),
        Ok(n) => Outcome::Answered(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
            "{what}: the broker neither answered nor closed the connection in {:?}",
            started.elapsed()
        ),
        Err(e) => Outcome::Closed(format!("{e}")),
    }
}

/// A small seeded generator (xorshift64*), so that a failing byte sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `GREGOR_TEST_SEED` if set, else from the clock.
fn seed() -> u64 {
    match std::env::var("GREGOR_TEST_SEED") {
        Ok(text) => text.parse().expect("GREGOR_TEST_SEED is a u64"),
        Err(_) => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos | 1 // xorshift needs a non-zero state
        }
    }
}

/// Runs `gregor ARGS`, at most `limit`; returns its exit status and output.
fn gregor_bounded(args: &[&str], limit: Duration) -> (ExitStatus, String) {
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

// ---------------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_input_on_some_connections_leaves_the_broker_serving_the_others() {
    let seed = seed();
    // Shown with the test's output when it fails; GREGOR_TEST_SEED=<seed> replays it.
    eprintln!("random bytes seed: {seed} (GREGOR_TEST_SEED={seed} replays it)");
    let mut cluster = Cluster::start();
    let address = cluster.bootstrap.clone();
    eprintln!("cluster:\n{}", cluster.printed());

    // 1. A healthy connection A: ApiVersions v0 is answered, correlation id echoed, no error.
    let mut a = connect(&address);
    check_api_versions(&mut a, 1, "connection A, first ApiVersions");

    let mut outcomes: Vec<(String, Outcome)> = Vec::new();

    // 2a. 64 random bytes. Their first four are read as a frame size, which may well ask for
    // more bytes than follow (a broker rightly waits for the rest of a frame), so the write
    // half is shut down after them: whatever the bytes say, the broker must then answer or
    // close — garbage followed by end of stream must not leave a connection hanging.
    {
        let bytes = Rng(seed).bytes(64);
        let what = format!("64 random bytes (seed {seed}: {bytes:02x?})");
        let mut s = connect(&address);
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let o = outcome(&mut s, &what);
        outcomes.push((what, o));
    }

    // 2b. A truncated frame: the size says 100 bytes, 10 come, then end of stream. The broker
    // cannot ever complete the frame and must give up on the connection.
    {
        let what = "truncated frame (size 100, 10 bytes, then EOF)";
        let mut s = connect(&address);
        let mut bytes = 100i32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&request(API_VERSIONS, 0, 3, "t", &[])[4..]);
        bytes.truncate(4 + 10);
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        outcomes.push((what.to_string(), outcome(&mut s, what)));
    }

    // 2c. An oversized frame: size 0x7fffffff, far over socket.request.max.bytes (100 MiB by
    // default), then a few bytes. The write half stays open: the broker must refuse on the
    // size alone, without waiting for (or allocating) 2 GiB.
    {
        let what = "oversized frame (size 0x7fffffff)";
        let mut s = connect(&address);
        let mut bytes = 0x7fff_ffffi32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 18, 0, 0, 0, 0, 0, 4]);
        s.write_all(&bytes).unwrap();
        outcomes.push((what.to_string(), outcome(&mut s, what)));
    }

    // 2d. A well-formed frame with an API key no Kafka has (9999).
    {
        let what = "unknown API key 9999";
        let mut s = connect(&address);
        s.write_all(&request(9999, 0, 4, "t", &[])).unwrap();
        outcomes.push((what.to_string(), outcome(&mut s, what)));
    }

    // 2e. A real Kafka API the broker does not offer: OffsetFetch v1 (group "g", no topics).
    {
        let what = "OffsetFetch v1 (not offered)";
        let mut s = connect(&address);
        let mut body = 1i16.to_be_bytes().to_vec();
        body.push(b'g');
        body.extend_from_slice(&0i32.to_be_bytes());
        s.write_all(&request(OFFSET_FETCH, 1, 5, "t", &body))
            .unwrap();
        outcomes.push((what.to_string(), outcome(&mut s, what)));
    }

    // 2f. ApiVersions v99: a client newer than the broker. KIP-511 says the broker answers
    // (it must, or the client could never learn which versions to use): header v0 with the
    // correlation id, error UNSUPPORTED_VERSION and the offered ranges, so the client can
    // retry with a version both know. The connection stays usable.
    {
        let what = "ApiVersions v99";
        let mut s = connect(&address);
        s.write_all(&request(API_VERSIONS, 99, 6, "t", &[]))
            .unwrap();
        let frame = read_frame(&mut s, what);
        let (echoed, error_code, keys) = parse_api_versions(&frame);
        assert_eq!(echoed, 6, "{what}: correlation id");
        assert_eq!(error_code, UNSUPPORTED_VERSION, "{what}: error code");
        assert!(!keys.is_empty(), "{what}: an empty api_keys array");
        assert!(
            keys.iter().any(|&(key, _, _)| key == API_VERSIONS),
            "{what}: ApiVersions not among {keys:?}"
        );
        outcomes.push((what.to_string(), Outcome::Answered(frame)));
        // The retry the answer invites, on the same connection.
        check_api_versions(&mut s, 7, "ApiVersions v0 after v99, same connection");
    }

    for (what, o) in &outcomes {
        match o {
            Outcome::Answered(bytes) => eprintln!("{what}: answered ({} bytes)", bytes.len()),
            Outcome::Closed(how) => eprintln!("{what}: closed ({how})"),
        }
    }
    // 3. None of that touched connection A, and new connections are served.
    check_api_versions(&mut a, 2, "connection A, after the bad input");
    let mut b = connect(&address);
    check_api_versions(&mut b, 1, "a brand-new connection");

    // And a real client still gets through: `gregor topics describe` exits 0.
    let (status, text) = gregor_bounded(
        &["topics", "describe", "--bootstrap-server", &address],
        Duration::from_secs(30),
    );
    assert!(status.success(), "gregor topics describe: {status}\n{text}");

    drop(a);
    drop(b);
    let status = cluster.stop();
    assert!(
        status.success(),
        "cluster up exited {status}; printed:\n{}",
        cluster.printed()
    );
}
