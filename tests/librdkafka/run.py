#!/usr/bin/env python3
"""librdkafka's own test suite against a Gregor cluster.

Builds librdkafka's test-runner from the source in the rdkafka-sys crate
(`bench/rdkafka-build.sh tests`), starts `gregor cluster up` with librdkafka's default test
scenario (3 brokers, topics auto-created with 4 partitions and replication factor 3), and runs
each test of a list one at a time (`test-runner -p1 -Q -E -L NNNN`: quick mode, no sockem
tests, and no local tests — those run against librdkafka's mock cluster, not a broker — with a
timeout each). Prints each outcome and `passed N / run M`; exits 1 if any test of the list did
not pass. A test that fails is run once more at the end (these tests time real clusters on a
shared machine): one that then passes counts as passed and is named in a `flaky:` line, so a
flake shows in the log without failing CI; one that fails twice fails the run, and the last line
names it.

  python3 tests/librdkafka/run.py GREGOR [--tests passing.txt | --all] [--only 0001,0012] [--timeout 180]

A list file holds one test per line (`NNNN name`); `#` starts a comment. `passing.txt` is the
list CI runs; `left-out.txt` says why each other test is not in it. The runner always gets
`CI=1`, as in the project's CI (longer timeouts; 0055's latency test skips itself).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# librdkafka's "default" scenario (tests/scenarios/default.json).
SCENARIO = ["num.partitions=4", "default.replication.factor=3", "auto.create.topics.enable=true"]


def say(text=""):
    print(text, flush=True)


def read_list(path):
    tests = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            number, _, name = line.partition(" ")
            tests.append((number, name.strip()))
    return tests


def build():
    out = subprocess.run([str(REPO / "bench" / "rdkafka-build.sh"), "tests"], stdout=subprocess.PIPE,
                         text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


class Cluster:
    def __init__(self, gregor, folder):
        args = [gregor, "cluster", "up", "--brokers", "3", "--base-port", "0", "--data-dir", folder]
        for setting in SCENARIO:
            args += ["--broker-config", setting]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.bootstrap = None
        deadline = time.time() + 90
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"gregor cluster up exited; logs in {folder}")
            if line.startswith("bootstrap servers:"):
                self.bootstrap = line.split(":", 1)[1].strip()
                return
        raise RuntimeError("the cluster did not come up in 90 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def outcome(log):
    """From the summary table the runner prints (a row per test of that number; local ones are
    SKIPPED under -L): FAILED if one failed, PASSED if one passed and none failed, else SKIPPED;
    None without a table."""
    rows = re.findall(r"\|\S*\s*\d{4}_\S+\s*\|\s*(PASSED|FAILED|SKIPPED)", log)
    if not rows:
        return None
    if "FAILED" in rows:
        return "FAILED"
    return "PASSED" if "PASSED" in rows else "SKIPPED"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gregor")
    ap.add_argument("--tests", default=str(HERE / "passing.txt"))
    ap.add_argument("--only", help="comma-separated test numbers (default: every test of the list)")
    ap.add_argument("--all", action="store_true",
                    help="every test of librdkafka's source instead of a list (to see which pass)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per test (default 180)")
    args = ap.parse_args()

    runner = build()
    if args.all:
        found = {}
        for source in sorted(runner.parent.glob("0[0-9][0-9][0-9]-*.c*")):
            number, _, name = source.stem.partition("-")
            found.setdefault(number, f"{number}_{name.replace('-', '_')}")
        tests = sorted(found.items())
    else:
        tests = read_list(args.tests)
    if args.only:
        wanted = set(args.only.split(","))
        tests = [t for t in tests if t[0] in wanted]
    folder = tempfile.mkdtemp(prefix="gregor-librdkafka-")
    cluster = Cluster(args.gregor, folder)
    conf = Path(folder) / "test.conf"
    conf.write_text(f"bootstrap.servers={cluster.bootstrap}\n")
    # CI=1 as the project's CI sets it: the runner then lengthens its timeouts and skips the
    # latency test (0055), so a run here is the run CI makes.
    env = dict(os.environ, CI="1", RDKAFKA_TEST_CONF=str(conf),
               LD_LIBRARY_PATH=f"{runner.parent.parent / 'src'}:{runner.parent.parent / 'src-cpp'}")
    say(f"librdkafka's tests against {cluster.bootstrap} (data and logs in {folder})")
    results = []

    def run_one(number, name):
        start = time.time()
        try:
            run = subprocess.run([str(runner), "-p1", "-Q", "-E", "-L", number], cwd=runner.parent, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 errors="replace", timeout=args.timeout)
            log, code = run.stdout, run.returncode
            result = outcome(log) if code == 0 else "FAILED"
        except subprocess.TimeoutExpired as e:
            log = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
            result = f"TIMED OUT ({args.timeout:.0f} s)"
        seconds = time.time() - start
        say(f"{number} {name:<32} {result or 'no outcome'} in {seconds:.1f} s")
        if result not in ("PASSED",) and not args.all:
            say("  " + "\n  ".join(log.splitlines()[-25:]))
        return result

    flaky = []
    try:
        for number, name in tests:
            results.append((number, name, run_one(number, name)))
        if not args.all:
            for i, (number, name, result) in enumerate(results):
                if result != "PASSED":
                    say(f"{number} failed ({result}); running it once more")
                    if run_one(number, name) == "PASSED":
                        flaky.append(f"{number} (first {result})")
                        results[i] = (number, name, "PASSED")
    finally:
        cluster.stop()
    if flaky:
        say(f"flaky: {', '.join(flaky)} passed only on a second run")
    failed = [f"{number} {result}" for number, _, result in results if result != "PASSED"]
    if failed and not args.all:
        say(f"failed twice: {', '.join(failed)}")
    passed = sum(1 for *_, r in results if r == "PASSED")
    say(f"passed {passed} / run {len(results)}")
    ok = args.all or passed == len(results)
    if ok:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        say(f"the cluster's data and logs are in {folder}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
