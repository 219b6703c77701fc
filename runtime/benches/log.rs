//! The partition log's throughput beside plain file I/O on the same disk, for 16 KiB and
//! 1 MiB batches:
//!
//! - `append/<size>`: 256 MiB of batches appended to a fresh log (default flush policy: never;
//!   `segment.bytes` 128 MiB, so one roll per run) against `File::write_all` of the same bytes
//!   in the same sizes to a fresh file. Creating the log or file, and the first batch (whose
//!   new leader epoch writes and fsyncs the epoch checkpoint), are not timed.
//! - `read/<size>`: that log read whole with `read(offset, log end, 1 MiB)` (at most 1 MiB
//!   each, or the one batch when it is larger) against plain sequential 1 MiB `read`s of the
//!   same segment files into one reused buffer. Both touch one byte per 4 KiB of what they get.
//!
//! Files live under `CARGO_TARGET_TMPDIR` (the target folder's disk), nothing is fsynced while
//! timed. After criterion's figures, `ratio` lines compare the medians of a few alternating
//! direct runs, since criterion does not print ratios.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use gregor_model::types::LeaderEpoch;
use gregor_runtime::storage::testing::batch;
use gregor_runtime::storage::{
    Clock, DataDir, KafkaBatch, LogConfig, PartitionLog, SystemClock, TopicPartition,
};
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const TOTAL_BYTES: usize = 256 << 20;
const SEGMENT_BYTES: u64 = 128 << 20;
const READ_CHUNK: usize = 1 << 20;
const RATIO_ROUNDS: usize = 5;

struct Case {
    name: &'static str,
    batch: KafkaBatch,
    count: usize,
}

impl Case {
    /// A batch of `records` records as close to `target` bytes as the encoding allows (not
    /// over), with timestamps of now so that `segment.ms` does not roll.
    fn new(name: &'static str, target: usize, records: u32) -> Case {
        let now = SystemClock.now_ms();
        let guess = batch(records, now, 0).len();
        let mut value_bytes = (target - guess) / records as usize;
        let mut b = batch(records, now, value_bytes);
        while b.len() > target {
            value_bytes -= 1;
            b = batch(records, now, value_bytes);
        }
        Case {
            name,
            count: TOTAL_BYTES / b.len(),
            batch: b,
        }
    }

    fn bytes(&self) -> u64 {
        (self.batch.len() * self.count) as u64
    }

    /// What an append run times: all batches but the first.
    fn timed_bytes(&self) -> u64 {
        (self.batch.len() * (self.count - 1)) as u64
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case::new("16KiB", 16 << 10, 16),
        Case::new("1MiB", 1 << 20, 64),
    ]
}

fn scratch() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a scratch folder")
}

fn tp() -> TopicPartition {
    TopicPartition::new("bench", 0).expect("a legal name")
}

fn open_log(dir: &Path) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    DataDir::open(dir)
        .and_then(|d| d.open_log(tp(), config, Arc::new(SystemClock)))
        .expect("a fresh log")
}

/// Appends the case's batches to a fresh log; the time of all but the first.
fn append_gregor(case: &Case) -> Duration {
    let dir = scratch();
    let mut log = open_log(dir.path());
    log.append(LeaderEpoch(1), &case.batch).unwrap();
    let start = Instant::now();
    for _ in 1..case.count {
        log.append(LeaderEpoch(1), &case.batch).unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(log.size(), case.bytes());
    elapsed
}

/// Writes the case's batch bytes to a fresh file; the time of all but the first.
fn append_raw(case: &Case) -> Duration {
    let dir = scratch();
    let mut file = File::create(dir.path().join("raw.log")).unwrap();
    let bytes = case.batch.bytes();
    file.write_all(bytes).unwrap();
    let start = Instant::now();
    for _ in 1..case.count {
        file.write_all(bytes).unwrap();
    }
    start.elapsed()
}

/// A byte per 4 KiB, so that what was read is used.
fn touch(bytes: &[u8]) -> u64 {
    bytes.iter().step_by(4096).map(|&b| u64::from(b)).sum()
}

/// A flushed log of the case's batches, to read, and its segment files in order.
struct Written {
    _dir: TempDir,
    log: PartitionLog,
    segments: Vec<PathBuf>,
}

impl Written {
    fn new(case: &Case) -> Written {
        let dir = scratch();
        let mut log = open_log(dir.path());
        for _ in 0..case.count {
            log.append(LeaderEpoch(1), &case.batch).unwrap();
        }
        log.flush().unwrap();
        let mut segments: Vec<PathBuf> = std::fs::read_dir(log.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        segments.sort();
        Written {
            _dir: dir,
            log,
            segments,
        }
    }

    fn read_gregor(&self) -> u64 {
        let end = self.log.log_end_offset();
        let (mut from, mut sum, mut bytes) = (0, 0, 0);
        while from < end {
            let entries = self.log.read(from, end, READ_CHUNK as u64).unwrap();
            let last = entries.last().expect("a batch below the log end");
            from = last.base_offset.0 + last.batch.header().record_count();
            for entry in &entries {
                sum += touch(entry.batch.bytes());
                bytes += entry.batch.len() as u64;
            }
        }
        assert_eq!(bytes, self.log.size());
        black_box(sum)
    }

    fn read_raw(&self, buf: &mut [u8]) -> u64 {
        let (mut sum, mut bytes) = (0, 0);
        for path in &self.segments {
            let mut file = File::open(path).unwrap();
            loop {
                let n = file.read(buf).unwrap();
                if n == 0 {
                    break;
                }
                sum += touch(&buf[..n]);
                bytes += n as u64;
            }
        }
        assert_eq!(bytes, self.log.size());
        black_box(sum)
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let cases = cases();
    for case in &cases {
        let mut group = c.benchmark_group(format!("append/{}", case.name));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .throughput(Throughput::Bytes(case.timed_bytes()));
        group.bench_function("raw", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| append_raw(case)).sum())
        });
        group.bench_function("gregor", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| append_gregor(case)).sum())
        });
        group.finish();
    }
    for case in &cases {
        let written = Written::new(case);
        let mut group = c.benchmark_group(format!("read/{}", case.name));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(written.log.size()));
        let mut buf = vec![0u8; READ_CHUNK];
        group.bench_function("raw", |b| b.iter(|| written.read_raw(&mut buf)));
        group.bench_function("gregor", |b| b.iter(|| written.read_gregor()));
        group.finish();
    }
}

/// Median MiB/s of `RATIO_ROUNDS` runs each of raw and gregor, alternating.
fn compare(
    what: &str,
    case: &Case,
    bytes: u64,
    mut raw: impl FnMut() -> Duration,
    mut gregor: impl FnMut() -> Duration,
) {
    let mib_s = |d: Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
    let (mut raws, mut gregors) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_ROUNDS {
        raws.push(mib_s(raw()));
        gregors.push(mib_s(gregor()));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw, gregor) = (median(&mut raws), median(&mut gregors));
    println!(
        "ratio {what} {}: gregor {gregor:.0} MiB/s / raw {raw:.0} MiB/s = {:.2}",
        case.name,
        gregor / raw
    );
}

fn ratios(_: &mut Criterion) {
    // Only when benchmarking: not in `cargo test --benches` (each benchmark once, as a smoke
    // test) nor under `--profile-time`.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--profile-time") {
        return;
    }
    let cases = cases();
    for case in &cases {
        compare(
            "append",
            case,
            case.timed_bytes(),
            || append_raw(case),
            || append_gregor(case),
        );
    }
    for case in &cases {
        let written = Written::new(case);
        let mut buf = vec![0u8; READ_CHUNK];
        compare(
            "read",
            case,
            written.log.size(),
            || {
                timed(|| {
                    black_box(written.read_raw(&mut buf));
                })
            },
            || {
                timed(|| {
                    black_box(written.read_gregor());
                })
            },
        );
    }
}

criterion_group!(log, benches, ratios);
criterion_main!(log);
