"""A local Gregor cluster for the end-to-end tests: `gregor cluster up` on free ports in a
temporary folder, with helpers to kill, stop, continue and restart its brokers and to read
`gregor topics describe`. Every wait has a deadline."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time


class Cluster:
    def __init__(self, gregor, brokers=3, broker_config=()):
        self.gregor = gregor
        self.dir = tempfile.mkdtemp(prefix="gregor-e2e-")
        args = [gregor, "cluster", "up", "--brokers", str(brokers), "--data-dir", self.dir,
                "--base-port", "0"]
        for setting in broker_config:
            args += ["--broker-config", setting]
        self.up = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.last_described = None
        self.brokers = {}  # id -> {"address", "pid", "config", "process"}
        self.controller_pid = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.up.stdout.readline()
            if not line:
                raise RuntimeError("gregor cluster up exited before the cluster was up; logs in " + self.dir)
            m = re.match(r"broker (\d+)\s+(\S+)\s+pid (\d+)\s+config (\S+)", line)
            if m:
                self.brokers[int(m.group(1))] = {"address": m.group(2), "pid": int(m.group(3)),
                                                 "config": m.group(4), "process": None}
            m = re.match(r"controller\s+\S+\s+pid (\d+)", line)
            if m:
                self.controller_pid = int(m.group(1))
            if line.startswith("bootstrap servers:"):
                self.bootstrap = line.split(":", 1)[1].strip()
                return
        raise RuntimeError("the cluster did not come up in 60 s")

    def log(self, broker):
        with open(os.path.join(self.dir, f"broker-{broker}.log")) as f:
            return f.read()

    def kill(self, broker, sig=signal.SIGKILL):
        os.kill(self.brokers[broker]["pid"], sig)
        if sig == signal.SIGKILL:
            process = self.brokers[broker]["process"]
            if process is not None:
                process.wait(timeout=30)
            else:
                deadline = time.time() + 30
                while time.time() < deadline and alive(self.brokers[broker]["pid"]):
                    time.sleep(0.05)

    def restart(self, broker):
        """Starts the broker again from its configuration and data (as this test's child)."""
        info = self.brokers[broker]
        log = open(os.path.join(self.dir, f"broker-{broker}.log"), "a")
        process = subprocess.Popen([self.gregor, "broker", "--config", info["config"]],
                                   stdout=subprocess.PIPE, stderr=log, text=True)
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"broker {broker} did not restart; see {self.dir}/broker-{broker}.log")
        # With --base-port 0 the broker binds a new port at each start.
        m = re.search(r"PLAINTEXT://(\S+?)[,\s]", line)
        if m:
            info["address"] = m.group(1)
            self.bootstrap = ",".join(b["address"] for b in self.brokers.values())
        info["pid"] = process.pid
        info["process"] = process

    def describe(self, topic, via=None):
        """{partition: {"leader", "epoch", "isr", "hw", "leo"}} from `gregor topics describe`,
        asking broker `via` (every broker when None: give one when a broker is stopped)."""
        bootstrap = self.brokers[via]["address"] if via else self.bootstrap
        out = subprocess.run([self.gregor, "topics", "describe", topic, "--bootstrap-server",
                              bootstrap], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            print(f"gregor topics describe: {out.stderr.strip()}", flush=True)
            return None
        partitions = {}
        self.last_described = out.stdout
        for line in out.stdout.splitlines():
            m = re.search(r"Partition: (\d+)\s+Leader: (\S+)\s+LeaderEpoch: (\S+)\s+Replicas: (\S+)"
                          r"\s+Isr: (\S*)\s+HighWatermark: (\S+)\s+LogEndOffset: (\S+)", line)
            if m:
                partitions[int(m.group(1))] = {
                    "leader": int(m.group(2)) if m.group(2).isdigit() else None,
                    "epoch": m.group(3),
                    "isr": sorted(int(b) for b in m.group(5).split(",") if b),
                    "hw": m.group(6), "leo": m.group(7), "line": line}
        return partitions

    def isrs(self, topic, via=None):
        """{partition: ISR}; `gregor topics describe` reads each ISR from the partition's
        leader (a non-leader knows it as of the last leader change)."""
        described = self.describe(topic, via)
        return described and {p: info["isr"] for p, info in described.items()}

    def wait_for(self, what, check, seconds=60):
        deadline = time.time() + seconds
        last = None
        while time.time() < deadline:
            try:
                last = check()
            except (TypeError, KeyError):
                last = None  # no answer yet
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out after {seconds} s waiting for {what} (last: {self.last_described})")

    def create_topic(self, name, partitions, replication_factor, *configs):
        args = [self.gregor, "topics", "create", name, "--partitions", str(partitions),
                "--replication-factor", str(replication_factor), "--bootstrap-server", self.bootstrap]
        for config in configs:
            args += ["--config", config]
        subprocess.run(args, check=True, timeout=60)
        self.wait_for(f"topic {name} to have leaders",
                      lambda: (d := self.describe(name)) and len(d) == partitions
                      and all(p["leader"] is not None for p in d.values()))

    def close(self):
        for info in self.brokers.values():
            if info["process"] is not None and info["process"].poll() is None:
                try:
                    os.kill(info["pid"], signal.SIGCONT)
                except OSError:
                    pass
                info["process"].terminate()
                try:
                    info["process"].wait(timeout=20)
                except subprocess.TimeoutExpired:
                    info["process"].kill()
            elif alive(info["pid"]):
                try:
                    os.kill(info["pid"], signal.SIGCONT)
                except OSError:
                    pass
        self.up.terminate()
        try:
            self.up.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.up.kill()
            for info in self.brokers.values():
                if alive(info["pid"]):
                    os.kill(info["pid"], signal.SIGKILL)
            if self.controller_pid and alive(self.controller_pid):
                os.kill(self.controller_pid, signal.SIGKILL)
        if os.environ.get("GREGOR_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(f"test failed; the cluster's folder (logs) was {self.dir}")
            os.environ["GREGOR_KEEP"] = "1"
        self.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie (exited, not yet reaped by cluster up) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
