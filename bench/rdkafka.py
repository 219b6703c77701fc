#!/usr/bin/env python3
"""Benchmark a local Gregor cluster with librdkafka's rdkafka_performance.

Scenarios (all with 100-byte records, one partition):

  loopback     raw TCP over 127.0.0.1 of the same payload bytes as a produce run
               (sender on the client core, receiver on the broker core): the reference
  produce-rf1  1 broker, topic RF 1, rdkafka_performance -P -a 1
  consume      the same cluster and topic, rdkafka_performance -C -o beginning
  produce-rf3  3 brokers, topic RF 3 with min.insync.replicas=2, rdkafka_performance -P -a -1

`gregor cluster up` (its controller and brokers, every thread) runs on the broker cores
(default: core 0) and rdkafka_performance on the client cores (default: core 1). The brokers'
CPU time is read from /proc/PID/stat before and after each run. MB/s are rdkafka_performance's
own figures (payload bytes per microsecond, i.e. 10^6 bytes/s); the loopback figure uses the
same unit. Clusters and their data live under a temporary folder removed at exit
(--keep-data keeps it).

  bench/rdkafka-build.sh                     # builds rdkafka_performance once
  cargo build --release                      # builds target/release/gregor
  python3 bench/rdkafka.py --records 2000000
  python3 bench/rdkafka.py --only loopback,produce-rf1

Python 3.11, standard library only; Linux only (/proc, sched_setaffinity, taskset).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ["loopback", "produce-rf1", "consume", "produce-rf3"]
RECORD_SIZE = 100
TICKS = os.sysconf("SC_CLK_TCK")


def say(text: str = "") -> None:
    print(text, flush=True)


def fmt_cmd(cmd: list[str]) -> str:
    return " ".join(shlex.quote(str(c)) for c in cmd)


def cpus_arg(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    if not cpus:
        raise argparse.ArgumentTypeError("empty CPU list")
    return cpus


def cpu_list(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


# ---------------------------------------------------------------- /proc helpers


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a whole process (all its threads), in seconds; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    # After the command's ')': state is field 0, utime field 11, stime field 12.
    if fields[0] in ("Z", "X"):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def core_times() -> dict[int, tuple[int, int]]:
    """Per-core (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        m = re.match(r"cpu(\d+)\s+(.*)", line)
        if not m:
            continue
        v = [int(x) for x in m.group(2).split()]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        total = sum(v[:8])  # user nice system idle iowait irq softirq steal
        out[int(m.group(1))] = (total - idle, total)
    return out


def core_busy(before, after) -> dict[int, float]:
    busy = {}
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (b1, t1))
        busy[cpu] = 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    return busy


def pin_process_tree(pid: int, cpus: set[int]) -> int:
    """Like `taskset -apc CPUS PID`: pins every thread of pid. Returns the thread count."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
            n += 1
        except (ProcessLookupError, FileNotFoundError):
            pass
    return n


def threads_off(pid: int, cpus: set[int]) -> list[int]:
    """Threads of pid whose affinity is not exactly cpus."""
    off = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                if os.sched_getaffinity(int(task.name)) != cpus:
                    off.append(int(task.name))
            except ProcessLookupError:
                pass
    except FileNotFoundError:
        pass
    return off


def is_gregor(pid: int) -> bool:
    try:
        return b"gregor" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


# ---------------------------------------------------------------- the cluster


class ClusterError(RuntimeError):
    pass


class Cluster:
    """`gregor cluster up` as a child, pinned to the broker cores."""

    def __init__(self, gregor: str, brokers: int, data_dir: Path, cpus: set[int], use_taskset: bool,
                 broker_config: list[str] = ()):
        self.gregor = gregor
        self.data_dir = data_dir
        self.cpus = cpus
        self.broker_pids: dict[int, int] = {}  # broker id -> pid
        self.controller_pid: int | None = None
        self.bootstrap = ""
        self.lines: list[str] = []
        self.cmd = [gregor, "cluster", "up", "--brokers", str(brokers),
                    "--data-dir", str(data_dir), "--base-port", "0"]
        for setting in broker_config:
            self.cmd += ["--broker-config", setting]
        if use_taskset:
            self.cmd = ["taskset", "-c", cpu_list(cpus)] + self.cmd
        say(f"$ {fmt_cmd(self.cmd)}")
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # a terminal Ctrl-C reaches only us; we stop it cleanly
            preexec_fn=None if use_taskset else (lambda: os.sched_setaffinity(0, cpus)))
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 90
        while not self.bootstrap:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise ClusterError("gregor cluster up printed no bootstrap servers within 90 s")
            if line is None:
                raise ClusterError(f"gregor cluster up exited early: {self.lines[-5:]}")
            say(f"  {line}")
            words = line.split()
            pid = None
            if "pid" in words and words.index("pid") + 1 < len(words):
                try:
                    pid = int(words[words.index("pid") + 1])
                except ValueError:
                    pid = None
            if words and words[0] == "controller" and pid:
                self.controller_pid = pid
            elif words and words[0] == "broker" and pid and len(words) > 1:
                self.broker_pids[int(words[1])] = pid
            elif line.startswith("bootstrap servers:"):
                self.bootstrap = line.split(":", 1)[1].strip()
        if len(self.broker_pids) != brokers:
            raise ClusterError(f"expected {brokers} brokers, saw {self.broker_pids}")

    def _drain(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def all_pids(self) -> list[int]:
        pids = [self.proc.pid] + ([self.controller_pid] if self.controller_pid else [])
        return pids + list(self.broker_pids.values())

    def pin(self) -> None:
        """taskset -apc for every process (the launcher, the controller, the brokers)."""
        for pid in self.all_pids():
            if threads_off(pid, self.cpus):
                pin_process_tree(pid, self.cpus)
        for pid in self.all_pids():
            off = threads_off(pid, self.cpus)
            if off:
                raise ClusterError(f"could not pin threads {off} of pid {pid} to {self.cpus}")

    def broker_cpu(self) -> dict[int, float]:
        out = {}
        for broker, pid in self.broker_pids.items():
            cpu = proc_cpu_seconds(pid)
            if cpu is None:
                raise ClusterError(f"broker {broker} (pid {pid}) is gone")
            out[broker] = cpu
        return out

    def controller_cpu(self) -> float:
        return (proc_cpu_seconds(self.controller_pid) or 0.0) if self.controller_pid else 0.0

    def check_alive(self) -> None:
        dead = [f"broker {b} (pid {p})" for b, p in self.broker_pids.items() if proc_cpu_seconds(p) is None]
        if self.proc.poll() is not None:
            dead.append(f"gregor cluster up (exit {self.proc.returncode})")
        exits = [line for line in self.lines if " exited (" in line]
        if dead or exits:
            raise ClusterError(f"cluster processes stopped: {dead} {exits}")

    def logs(self) -> list[Path]:
        return sorted(self.data_dir.glob("*.log"))

    def print_log_tails(self, lines: int = 40) -> None:
        for log in self.logs():
            text = log.read_text(errors="replace").splitlines()
            say(f"---- {log} ({len(text)} lines), last {min(lines, len(text))}:")
            for line in text[-lines:]:
                say(f"    {line}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                say("  gregor cluster up did not stop in 45 s; killing it")
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        # Leftovers: only the pids this cluster printed, and only while they still are gregor.
        for pid in self.all_pids()[1:]:
            if is_gregor(pid):
                say(f"  killing leftover pid {pid}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        tail = [line for line in self.lines if "stopp" in line or "exited" in line or "kill" in line]
        if tail:
            say("  " + "; ".join(tail))


def gregor_tool(gregor: str, args: list[str], timeout: float = 60) -> str:
    cmd = [gregor] + args
    say(f"$ {fmt_cmd(cmd)}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = (p.stdout + p.stderr).strip()
    if out:
        for line in out.splitlines():
            say(f"  {line}")
    if p.returncode != 0:
        raise ClusterError(f"{fmt_cmd(cmd)} exited {p.returncode}")
    return p.stdout


def describe(gregor: str, topic: str, bootstrap: str, quiet: bool = False) -> list[dict]:
    cmd = [gregor, "topics", "describe", topic, "--bootstrap-server", bootstrap]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if not quiet:
        say(f"$ {fmt_cmd(cmd)}")
        for line in (p.stdout + p.stderr).strip().splitlines():
            say(f"  {line}")
    parts = []
    for line in p.stdout.splitlines():
        if "Partition:" not in line:
            continue
        row = dict(re.findall(r"(\w+): (\S+)", line))
        parts.append(row)
    return parts


def create_topic(gregor: str, topic: str, bootstrap: str, rf: int, configs: list[str]) -> None:
    args = ["topics", "create", topic, "--partitions", "1", "--replication-factor", str(rf)]
    for c in configs:
        args += ["--config", c]
    gregor_tool(gregor, args + ["--bootstrap-server", bootstrap])
    # Ready once the partition has a leader and a full ISR.
    deadline = time.monotonic() + 60
    while True:
        parts = describe(gregor, topic, bootstrap, quiet=True)
        if parts and all(p.get("Leader", "none") != "none" and len(p.get("Isr", "").split(",")) >= rf
                         for p in parts):
            break
        if time.monotonic() > deadline:
            describe(gregor, topic, bootstrap)
            raise ClusterError(f"topic {topic} has no leader / full ISR after 60 s")
        time.sleep(0.2)
    describe(gregor, topic, bootstrap)


# ---------------------------------------------------------------- rdkafka_performance


@dataclass
class ToolRun:
    cmd: list[str]
    rc: int
    wall: float
    output: list[str]
    timed_out: bool
    client_cpu: float
    final: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    errors: list[str] = field(default_factory=list)


def parse_table(lines: list[str]) -> dict[str, float]:
    """The last row of rdkafka_performance's -u table, as {column: value}."""
    header: list[str] = []
    final: dict[str, float] = {}
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            header = cells
            continue
        if header and len(values) == len(header):
            final = dict(zip(header, values))
    return final


def run_tool(cmd: list[str], timeout: float, cpus: set[int], use_taskset: bool) -> ToolRun:
    if use_taskset:
        cmd = ["taskset", "-c", cpu_list(cpus)] + cmd
    say(f"$ {fmt_cmd(cmd)}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=None if use_taskset else (lambda: os.sched_setaffinity(0, cpus)))
    output: list[str] = []

    def read() -> None:
        assert proc.stdout
        for line in proc.stdout:
            line = line.rstrip("\n")
            output.append(line)
            say(f"  {line}")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        say(f"  !! rdkafka_performance still running after {timeout:.0f} s: SIGINT (it prints its stats)")
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = ToolRun(cmd=cmd, rc=proc.returncode, wall=wall, output=output, timed_out=timed_out,
                  client_cpu=client_cpu)
    run.final = parse_table(output)
    run.summary = next((l for l in reversed(output) if l.startswith("% ") and "messages" in l), "")
    run.errors = [l for l in output if re.search(r"ERROR|error|failed|FAIL", l)
                  and not l.startswith("|")]
    return run


# ---------------------------------------------------------------- loopback reference

_RECEIVER = r"""
import os, socket, sys, time
port_fd, nbytes, chunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
os.write(port_fd, b"%d\n" % srv.getsockname()[1]); os.close(port_fd)
buf = bytearray(chunk); view = memoryview(buf); got = 0
conn, _ = srv.accept()
t0 = time.perf_counter()
while got < nbytes:
    n = conn.recv_into(view)
    if n == 0: break
    got += n
t1 = time.perf_counter()
conn.sendall(b"k")
print(got, t1 - t0)
"""

_SENDER = r"""
import socket, sys
port, nbytes, chunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
view = memoryview(bytes(b"x" * chunk)); left = nbytes
while left > 0:
    n = min(chunk, left); s.sendall(view[:n]); left -= n
s.recv(1)
"""


def loopback_once(nbytes: int, chunk: int, send_cpus: set[int], recv_cpus: set[int]) -> tuple[float, str, str]:
    r, w = os.pipe()
    recv_cmd = ["taskset", "-c", cpu_list(recv_cpus), sys.executable, "-c", _RECEIVER,
                str(w), str(nbytes), str(chunk)]
    receiver = subprocess.Popen(recv_cmd, pass_fds=(w,), stdout=subprocess.PIPE, text=True)
    os.close(w)
    with os.fdopen(r) as f:
        port = int(f.readline())
    send_cmd = ["taskset", "-c", cpu_list(send_cpus), sys.executable, "-c", _SENDER,
                str(port), str(nbytes), str(chunk)]
    subprocess.run(send_cmd, check=True, timeout=300)
    out, _ = receiver.communicate(timeout=300)
    got, secs = out.split()
    if int(got) != nbytes:
        raise RuntimeError(f"loopback receiver got {got} of {nbytes} bytes")
    return nbytes / float(secs) / 1e6, fmt_cmd(recv_cmd[:5] + ["<receiver>"]), fmt_cmd(send_cmd[:5] + ["<sender>"])


# ---------------------------------------------------------------- scenarios


@dataclass
class Result:
    name: str
    records: int = 0
    rate: float | None = None  # records/s
    mbps: float | None = None  # 10^6 bytes/s
    broker_cpu: float | None = None  # seconds, all brokers
    controller_cpu: float | None = None
    client_cpu: float | None = None
    latency: str = ""
    note: str = ""
    ok: bool = True
    commands: list[str] = field(default_factory=list)


def measured_run(name: str, cluster: Cluster, tool_cmd: list[str], records: int, args, producer: bool) -> Result:
    res = Result(name=name, records=records)
    cluster.pin()
    cluster.check_alive()
    b0, c0, t0 = cluster.broker_cpu(), cluster.controller_cpu(), core_times()
    run = run_tool(tool_cmd, args.timeout, args.client_cpus, args.taskset)
    t1 = core_times()
    try:
        b1 = cluster.broker_cpu()
        res.broker_cpu = sum(b1[b] - b0[b] for b in b0)
        per = ", ".join(f"broker {b}: {b1[b] - b0[b]:.2f} s" for b in sorted(b0))
    except ClusterError as e:
        per = str(e)
        res.ok = False
        res.note += f"{e}; "
    res.controller_cpu = cluster.controller_cpu() - c0
    res.client_cpu = run.client_cpu
    res.commands = [fmt_cmd(run.cmd)]
    busy = core_busy(t0, t1)
    say(f"  broker CPU {per}; controller {res.controller_cpu:.2f} s; "
        f"rdkafka_performance CPU {run.client_cpu:.2f} s; wall {run.wall:.2f} s")
    say("  core busy during the run: " + ", ".join(f"cpu{c} {b:.0f}%" for c, b in sorted(busy.items())))
    f = run.final
    if producer:
        delivered = int(f.get("dr", 0))
        res.rate, res.mbps = f.get("dr_m/s"), f.get("dr_MB/s")
        if "lat_avg" in f:
            res.latency = f"{f['lat_avg']:.1f} ({f['lat_lo']:.1f}-{f['lat_hi']:.0f})"
        if delivered != records or f.get("dr_err", 0):
            res.ok = False
            res.note += f"delivered {delivered}/{records}, dr_err {int(f.get('dr_err', 0))}; "
        if f.get("tx_err"):
            res.note += f"{int(f['tx_err'])} local queue-full backpressures (normal); "
    else:
        got = int(f.get("msgs", 0))
        res.rate, res.mbps = f.get("m/s"), f.get("MB/s")
        if got < records or f.get("rx_err", 0):
            res.ok = False
            res.note += f"consumed {got}/{records}, rx_err {int(f.get('rx_err', 0))}; "
    if run.timed_out:
        res.ok = False
        res.note += f"STALLED (timeout {args.timeout:.0f} s); "
    if run.rc not in (0, None):
        res.ok = False
        res.note += f"rdkafka_performance exit {run.rc}; "
    if not f:
        res.ok = False
        res.note += "no stats table parsed; "
    for line in run.errors[:20]:
        say(f"  !! {line}")
    if run.errors:
        res.note += f"{len(run.errors)} error lines from rdkafka_performance; "
    try:
        cluster.check_alive()
    except ClusterError as e:
        res.ok = False
        res.note += f"{e}; "
    if res.broker_cpu is not None:
        say(f"  => {res.rate or 0:,.0f} records/s, {res.mbps or 0:.2f} MB/s, "
            f"broker CPU {res.broker_cpu / (records / 1e6):.2f} s per million records")
    return res


def produce_cmd(args, topic: str, bootstrap: str, acks: str, records: int) -> list[str]:
    cmd = [args.rdkafka, "-P", "-t", topic, "-p", "0", "-b", bootstrap,
           "-s", str(RECORD_SIZE), "-c", str(records), "-a", acks, "-u", "-l"]
    for x in args.X:
        cmd += ["-X", x]
    return cmd


def consume_cmd(args, topic: str, bootstrap: str, records: int) -> list[str]:
    cmd = [args.rdkafka, "-C", "-t", topic, "-p", "0", "-b", bootstrap, "-o", "beginning",
           "-c", str(records), "-u"]
    for x in args.X:
        cmd += ["-X", x]
    return cmd


def verify_offsets(gregor: str, topic: str, bootstrap: str, records: int, res: Result) -> None:
    parts = describe(gregor, topic, bootstrap)
    hw = parts[0].get("HighWatermark") if parts else None
    if hw != str(records):
        res.ok = False
        res.note += f"high watermark {hw} != {records}; "


def scenario_rf1(args, work: Path, want: set[str], results: list[Result]) -> None:
    n = args.records
    cluster = Cluster(args.gregor, 1, work / "rf1", args.broker_cpus, args.taskset, args.broker_config)
    try:
        topic = "bench-rf1"
        create_topic(args.gregor, topic, cluster.bootstrap, 1, [])
        say("\n## produce-rf1: 1 broker, RF 1, acks=1" if "produce-rf1" in want
            else "\n## (setup) produce for the consume run, not measured")
        res = measured_run("produce-rf1", cluster, produce_cmd(args, topic, cluster.bootstrap, "1", n),
                           n, args, producer=True)
        verify_offsets(args.gregor, topic, cluster.bootstrap, n, res)
        if "produce-rf1" in want:
            results.append(res)
        if "consume" in want:
            say("\n## consume: 1 broker, the RF 1 topic from the beginning")
            res = measured_run("consume", cluster, consume_cmd(args, topic, cluster.bootstrap, n),
                               n, args, producer=False)
            results.append(res)
        if any(not r.ok for r in results):
            cluster.print_log_tails()
    except BaseException:
        cluster.print_log_tails()
        raise
    finally:
        say("stopping the RF 1 cluster")
        cluster.stop()


def scenario_rf3(args, work: Path, results: list[Result]) -> None:
    n = args.records
    cluster = Cluster(args.gregor, 3, work / "rf3", args.broker_cpus, args.taskset, args.broker_config)
    try:
        topic = "bench-rf3"
        create_topic(args.gregor, topic, cluster.bootstrap, 3, ["min.insync.replicas=2"])
        say("\n## produce-rf3: 3 brokers, RF 3, min.insync.replicas=2, acks=all")
        res = measured_run("produce-rf3", cluster, produce_cmd(args, topic, cluster.bootstrap, "-1", n),
                           n, args, producer=True)
        results.append(res)
        # Give followers a moment, then show the ISR and offsets.
        time.sleep(1)
        verify_offsets(args.gregor, topic, cluster.bootstrap, n, res)
        if not res.ok:
            cluster.print_log_tails()
    except BaseException:
        cluster.print_log_tails()
        raise
    finally:
        say("stopping the RF 3 cluster")
        cluster.stop()


def scenario_loopback(args) -> Result:
    nbytes = args.records * RECORD_SIZE
    say(f"\n## loopback: {nbytes:,} bytes over 127.0.0.1, sender cpus {cpu_list(args.client_cpus)}, "
        f"receiver cpus {cpu_list(args.broker_cpus)}, {args.loopback_chunk:,}-byte writes, "
        f"best and median of {args.loopback_reps}")
    rates = []
    cmds: list[str] = []
    for _ in range(args.loopback_reps):
        rate, rcmd, scmd = loopback_once(nbytes, args.loopback_chunk, args.client_cpus, args.broker_cpus)
        rates.append(rate)
        cmds = [rcmd, scmd]
    say("  runs (MB/s): " + ", ".join(f"{r:,.0f}" for r in rates))
    med = statistics.median(rates)
    say(f"  => median {med:,.0f} MB/s, best {max(rates):,.0f} MB/s")
    return Result(name="loopback", records=args.records, rate=med * 1e6 / RECORD_SIZE, mbps=med,
                  commands=cmds, note=f"median of {len(rates)}; best {max(rates):,.0f} MB/s")


# ---------------------------------------------------------------- main


def find_gregor() -> str:
    return str(REPO / "target" / "release" / "gregor")


def find_rdkafka() -> str:
    return str(REPO / "target" / "librdkafka-src" / "examples" / "rdkafka_performance")


def git_describe() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


def print_table(results: list[Result], loop: float | None) -> None:
    headers = ["scenario", "records", "records/s", "MB/s", "x loopback", "broker CPU s",
               "CPU s/M rec", "client CPU s", "lat avg (lo-hi) ms", "ok"]
    rows = []
    for r in results:
        per_m = (r.broker_cpu / (r.records / 1e6)) if r.broker_cpu is not None else None
        ratio = (r.mbps / loop) if (loop and r.mbps is not None and r.name != "loopback") else None
        rows.append([
            r.name, f"{r.records:,}",
            f"{r.rate:,.0f}" if r.rate is not None else "-",
            f"{r.mbps:,.2f}" if r.mbps is not None else "-",
            f"{ratio:.4f}" if ratio is not None else ("1" if r.name == "loopback" else "-"),
            f"{r.broker_cpu:.2f}" if r.broker_cpu is not None else "-",
            f"{per_m:.2f}" if per_m is not None else "-",
            f"{r.client_cpu:.2f}" if r.client_cpu is not None else "-",
            r.latency or "-",
            "yes" if r.ok else "NO",
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers))
    say(line)
    say("-" * len(line))
    for row in rows:
        say("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    for r in results:
        if r.note:
            say(f"  {r.name}: {r.note.rstrip('; ')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000, help="records per run (default 2,000,000)")
    ap.add_argument("--gregor", default=find_gregor(), help="gregor binary (default target/release/gregor)")
    ap.add_argument("--rdkafka", default=find_rdkafka(),
                    help="rdkafka_performance (default target/librdkafka-src/examples/rdkafka_performance)")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios to run, of {','.join(SCENARIOS)} (default all)")
    ap.add_argument("--broker-cpus", type=cpus_arg, default={0}, help="cores for the cluster (default 0)")
    ap.add_argument("--client-cpus", type=cpus_arg, default={1},
                    help="cores for rdkafka_performance and the loopback sender (default 1)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds one rdkafka_performance run may take before it counts as stalled")
    ap.add_argument("-X", action="append", default=[], metavar="PROP=VALUE",
                    help="extra librdkafka property for rdkafka_performance (repeatable; default none)")
    ap.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                    help="a broker setting for every broker (gregor cluster up --broker-config; repeatable)")
    ap.add_argument("--loopback-chunk", type=int, default=1 << 20, help="loopback write size (default 1 MiB)")
    ap.add_argument("--loopback-reps", type=int, default=5, help="loopback repetitions (default 5)")
    ap.add_argument("--work-dir", type=Path, help="parent of the temporary data folder (default $TMPDIR)")
    ap.add_argument("--keep-data", action="store_true", help="keep the clusters' data and logs")
    args = ap.parse_args()

    want = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = want - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    if want - {"loopback"} and not os.access(args.gregor, os.X_OK):
        ap.error(f"{args.gregor} is not an executable (cargo build --release, or --gregor)")
    if want - {"loopback"} and not os.access(args.rdkafka, os.X_OK):
        ap.error(f"{args.rdkafka} is not an executable (bench/rdkafka-build.sh, or --rdkafka)")
    if args.records <= 0:
        ap.error("--records must be positive")
    online = os.sched_getaffinity(0)
    if not (args.broker_cpus | args.client_cpus) <= online:
        ap.error(f"cores {sorted(args.broker_cpus | args.client_cpus)} not all available (have {sorted(online)})")
    args.taskset = shutil.which("taskset") is not None
    if "loopback" in want and not args.taskset:
        ap.error("taskset (util-linux) is needed")

    # SIGTERM unwinds like Ctrl-C, so the clusters are stopped and the data removed.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    cpu_model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("model name")), "?")
    say(f"# Gregor rdkafka_performance benchmark")
    say(f"commit {git_describe()}; gregor {args.gregor}; rdkafka_performance {args.rdkafka}")
    say(f"{os.cpu_count()} cores ({cpu_model}); load average {Path('/proc/loadavg').read_text().strip()}")
    say(f"records {args.records:,} x {RECORD_SIZE} bytes; broker cores {cpu_list(args.broker_cpus)}, "
        f"client cores {cpu_list(args.client_cpus)}; scenarios {','.join(s for s in SCENARIOS if s in want)}")
    if args.broker_config:
        say(f"broker settings: {' '.join(args.broker_config)}")
    if args.X:
        say(f"extra librdkafka properties: {' '.join(args.X)}")

    work = Path(tempfile.mkdtemp(prefix="gregor-rdkafka-", dir=args.work_dir))
    say(f"data under {work}")
    results: list[Result] = []
    loop = None
    status = 0
    try:
        if "loopback" in want:
            r = scenario_loopback(args)
            loop = r.mbps
            results.append(r)
        if want & {"produce-rf1", "consume"}:
            scenario_rf1(args, work, want, results)
        if "produce-rf3" in want:
            say("")
            scenario_rf3(args, work, results)
    except KeyboardInterrupt:
        say("\ninterrupted")
        status = 130
    except (ClusterError, RuntimeError, subprocess.SubprocessError, OSError) as e:
        say(f"\n!! {type(e).__name__}: {e}")
        status = 1
    finally:
        if args.keep_data:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if results:
        say("\n# Commands")
        for r in results:
            for c in r.commands:
                say(f"{r.name}: {c}")
        say(f"\n# Results ({args.records:,} records of {RECORD_SIZE} bytes; MB/s = 10^6 bytes/s of payload; "
            "CPU s/M rec = broker CPU seconds per million records, all brokers; "
            "latency = rdkafka_performance -l, produce call to delivery report)")
        print_table(results, loop)
    if any(not r.ok for r in results) and status == 0:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
