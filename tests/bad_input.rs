//! End-to-end: a broker fed bad bytes on some connections keeps serving the others.
//!
//! A one-broker cluster (`gregor cluster up`) is started; a healthy connection A is opened and
//! checked with ApiVersions; then, each on a fresh connection, the broker gets random bytes,
//! a truncated frame, an oversized frame, an unknown API key, an API it does not offer, and an
//! ApiVersions request of a version it does not know. For every one of those the broker must
//! answer or close the connection within a deadline (never hang); ApiVersions v99 must get an
//! answer (KIP-511). Afterwards connection A, a brand-new connection and `gregor topics
//! describe` all still work.

mod common;

use common::{connect, gregor_bounded, read_frame, request, Cluster};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const API_VERSIONS: i16 = 18;
const ADD_PARTITIONS_TO_TXN: i16 = 24;
const UNSUPPORTED_VERSION: i16 = 35;

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

// ---------------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_input_on_some_connections_leaves_the_broker_serving_the_others() {
    let seed = seed();
    // Shown with the test's output when it fails; GREGOR_TEST_SEED=<seed> replays it.
    eprintln!("random bytes seed: {seed} (GREGOR_TEST_SEED={seed} replays it)");
    let mut cluster = Cluster::start("bad-input");
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

    // 2e. A real Kafka API the broker does not offer: AddPartitionsToTxn v0 (transactions are
    // out of scope): transactional id "t", producer id 1, epoch 0, no topics.
    {
        let what = "AddPartitionsToTxn v0 (not offered)";
        let mut s = connect(&address);
        let mut body = 1i16.to_be_bytes().to_vec();
        body.push(b't');
        body.extend_from_slice(&1i64.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        s.write_all(&request(ADD_PARTITIONS_TO_TXN, 0, 5, "t", &body))
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
