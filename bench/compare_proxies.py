#!/usr/bin/env python3
"""Compares redvip's proxy with HAProxy 2.6 (TCP mode) and twemproxy, and with
Redis direct, on loopback.

Starts one redis-server and, each on its own port, redvip (plain proxy mode,
multiplexed as by default, and again with multiplex = false: redvip-pinned),
haproxy and nutcracker, every one with its own config, pid and log files in a
temporary directory; runs redis-benchmark against each target in interleaved
rounds and prints the median of each figure, with ratios to Redis direct; then
shows the load generators are not the bottleneck (redvip-bench latency and
redis-benchmark against the same redis-server, same connections, pipeline,
keyspace and value size, alternating); then measures the RSS each proxy adds
per idle client (clients that sent one PING), and its RSS around a burst of 50
clients each moving a 4 MiB value in and out.
Every process it starts is ended by its pid, on success, failure or Ctrl-C.

    bench/compare_proxies.py [--redvip PATH] [--redvip-bench PATH] [--rounds 3]
                             [--requests 200000] [--idle-clients 5000] [--redvip-threads 1]
                             [--pin REDIS_CPUS:PROXY_CPUS:BENCH_CPUS] [--quick]
                             [--skip-bench] [--skip-loadgen] [--skip-idle] [--profile]
                             [--redvip-b PATH] [--targets LIST] [--workloads LIST]

--profile adds, for each proxy and GET at -c 50 -P 1, -c 50 -P 16 and -c 1 -P 1,
its user and system CPU per request and, where perf (Debian: linux-perf) can
count system calls, its reads, writes, epoll calls and context switches per
request, Redis's own CPU and context switches behind each proxy, the load
generator's CPU per request and the share of the machine's CPU time left idle
(/proc/stat), measured on the same interleaved runs.
Besides the medians, each proxy is set against HAProxy round by round: the two
ran next to each other, so the ratio of the pair leaves out the drift of a
shared machine over the run; its median, range, a 95% confidence interval of
the median and the rounds won are printed.
Every server runs in a session of its own (see start()), and the log says which
scheduling group (autogroup) each process is in.
--redvip-b runs a second redvip build beside the first (an A/B of a change, in
the same run); --targets and --workloads run a subset (Redis direct always).
--pin runs each side under taskset (e.g. 0:1:1, or 0:0-1:1); the same for
every target. --quick: one round, 20000 requests, 500 idle clients.
Reports figures; asserts nothing.
"""

import argparse
import csv
import io
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

import redvip_testlib as lib  # noqa: E402  (encode, rss_kib)

# The servers, and ending them by pid (bench/proxy_targets.py).
sys.path.insert(0, HERE)
from proxy_targets import (STARTED, Targets, autogroup, log, pid_of, pinned,  # noqa: E402
                           start, stop_all)

# (label, redis-benchmark arguments, small requests: the full -n), by the key --workloads takes
ALL_WORKLOADS = {
    "c50": ("set,get -c 50 -P 1", ["-t", "set,get", "-d", "32", "-c", "50", "-P", "1"], True),
    "p16": ("set,get -c 50 -P 16", ["-t", "set,get", "-d", "32", "-c", "50", "-P", "16"], True),
    "c1": ("set,get -c 1 -P 1", ["-t", "set,get", "-d", "32", "-c", "1", "-P", "1"], True),
    "c500": ("set,get -c 500 -P 1", ["-t", "set,get", "-d", "32", "-c", "500", "-P", "1"], True),
    "lrange": ("lrange_600 -c 50", ["-t", "lrange_600", "-c", "50"], False),
}
WORKLOADS = list(ALL_WORKLOADS.values())
# Redis direct first (every ratio's base); --targets and --redvip-b change the rest.
TARGETS = ["redis", "redvip", "redvip-pinned", "haproxy", "twemproxy"]


def bench(targets, port, extra, requests):
    argv = pinned(targets.bench_cpus, ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(requests),
                                       "--csv"] + extra)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    rows = {}
    for row in csv.DictReader(io.StringIO(out)):
        name = row["test"].split(" ")[0]
        if name == "LPUSH":
            continue  # the list's filling, not the workload
        rows[name] = (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]))
    if not rows:
        raise SystemExit(f"redis-benchmark gave no figures: {' '.join(argv)}\n{out}")
    return rows


def run_benchmarks(targets, args):
    # results[(workload, test, target)] = [(rps, p50, p99) per round]
    results = {}
    for round_ in range(args.rounds):
        for label, extra, small in WORKLOADS:
            requests = args.requests if small else max(1, args.requests // 10)
            order = TARGETS if round_ % 2 == 0 else list(reversed(TARGETS))  # interleaved, ABBA
            for target in order:
                log(f"round {round_ + 1}/{args.rounds}: {label} -n {requests} -> {target}")
                for test, figures in bench(targets, targets.ports[target], extra, requests).items():
                    results.setdefault((label, test, target), []).append(figures)
    return results


def result_rows(results):
    """(workload, test) pairs in the order of WORKLOADS, then by test name."""
    order = [label for label, _, _ in WORKLOADS]
    return sorted({(w, t) for w, t, _ in results}, key=lambda k: (order.index(k[0]), k[1]))


def print_table(results, args):
    print(f"\nredis-benchmark medians of {args.rounds} interleaved round(s); ratio = target / Redis direct "
          f"(throughput: higher is better; p99: lower is better)\n")
    print(f"| workload | test | target | rps | ratio | p50 ms | p99 ms | p99 ratio |")
    print(f"| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for workload, test in result_rows(results):
        base = None
        for target in TARGETS:
            runs = results.get((workload, test, target))
            if not runs:
                continue
            rps, p50, p99 = (statistics.median(r[i] for r in runs) for i in range(3))
            if target == "redis":
                base = (rps, p99)
            print(f"| {workload} | {test} | {target} | {rps:,.0f} | {rps / base[0]:.2f} | {p50:.3f} | {p99:.3f} "
                  f"| {p99 / base[1] if base[1] else float('nan'):.2f} |")


def print_paired(results, args, base="haproxy"):
    """Each target against `base` round by round: the two ran next to each other
    (ABBA), so the machine's drift over the run cancels out of each ratio."""
    others = [t for t in TARGETS if t not in ("redis", base)]
    if base not in TARGETS or not others or args.rounds < 2:
        return
    print(f"\nAgainst {base}, round by round (each round's ratio of two neighbouring runs): "
          f"median, the lowest and highest of {args.rounds}, a 95% confidence interval of the median "
          f"(order statistics; from 6 rounds) and the rounds the target won; throughput above 1 and "
          f"p99 below 1 favour the target\n")
    print("| workload | test | target | throughput ratio | range | 95% CI | won | p99 ratio | range | 95% CI | won |")
    print("| --- | --- | --- | ---: | --- | --- | ---: | ---: | --- | --- | ---: |")
    for workload, test in result_rows(results):
        theirs = results.get((workload, test, base))
        for target in others:
            ours = results.get((workload, test, target))
            if not ours or not theirs:
                continue
            rps = [a[0] / b[0] for a, b in zip(ours, theirs)]
            p99 = [a[2] / b[2] for a, b in zip(ours, theirs) if b[2] > 0]
            won_rps = f"{sum(r > 1 for r in rps)}/{len(rps)}"
            won_p99 = f"{sum(r < 1 for r in p99)}/{len(p99)}"
            print(f"| {workload} | {test} | {target} | {statistics.median(rps):.3f} | {min(rps):.2f}-{max(rps):.2f} "
                  f"| {median_ci_text(rps)} | {won_rps} | {statistics.median(p99):.3f} | {min(p99):.2f}-{max(p99):.2f} "
                  f"| {median_ci_text(p99)} | {won_p99} |")


def median_ci(values, level=0.95):
    """A distribution-free confidence interval of the median: the k-th lowest
    and k-th highest values, for the largest k with P(Binomial(n, 1/2) < k) at
    most (1 - level) / 2. None when n is too small for that level (under 6 at 95%)."""
    n, ordered = len(values), sorted(values)
    tail, k = 0.0, 0
    while True:
        tail += math.comb(n, k) / 2 ** n  # P(Binomial(n, 1/2) <= k)
        if tail > (1 - level) / 2:
            break
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k >= 1 else None


def median_ci_text(values):
    ci = median_ci(values)
    return f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-"


LOADGEN_WORKLOADS = [("-c 50 -P 1", 50, 1), ("-c 50 -P 16", 50, 16), ("-c 1 -P 1", 1, 1)]
LOADGEN_KEYSPACE = 100000


def loadgen_redis_benchmark(targets, command, connections, pipeline, requests):
    extra = ["-t", command, "-d", "32", "-r", str(LOADGEN_KEYSPACE), "-c", str(connections), "-P", str(pipeline)]
    return bench(targets, targets.redis_port, extra, requests)[command.upper()][0]


def loadgen_redvip_bench(targets, args, command, connections, pipeline, requests):
    out = os.path.join(targets.tmp, "loadgen.json")
    argv = pinned(targets.bench_cpus, [args.redvip_bench, "latency", "--target", f"127.0.0.1:{targets.redis_port}",
                                       "--command", command, "--value-size", "32", "--keyspace",
                                       str(LOADGEN_KEYSPACE), "--connections", str(connections), "--pipeline",
                                       str(pipeline), "--requests", str(requests), "--json", out])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"redvip-bench failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    with open(out) as f:
        return json.load(f)["throughput_rps"]


def run_loadgen(targets, args):
    """Both load generators against Redis direct, alternating (ABBA), the same load for each."""
    results = {}  # (workload, command, tool) -> [rps per round]
    for round_ in range(args.rounds):
        for label, connections, pipeline in LOADGEN_WORKLOADS:
            for command in ("set", "get"):
                tools = ["redis-benchmark", "redvip-bench"]
                for tool in (tools if round_ % 2 == 0 else reversed(tools)):
                    log(f"round {round_ + 1}/{args.rounds}: load generator {tool} {command} {label} "
                        f"-n {args.requests} -> redis")
                    if tool == "redis-benchmark":
                        rps = loadgen_redis_benchmark(targets, command, connections, pipeline, args.requests)
                    else:
                        rps = loadgen_redvip_bench(targets, args, command, connections, pipeline, args.requests)
                    results.setdefault((label, command, tool), []).append(rps)
    print(f"\nLoad generators against Redis direct: medians of {args.rounds} alternating round(s), "
          f"{args.requests} requests, 32-byte values, {LOADGEN_KEYSPACE} keys; ratio = redvip-bench / "
          f"redis-benchmark (at least 1: redvip-bench is not the bottleneck)\n")
    print("| workload | test | redis-benchmark rps | redvip-bench rps | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, _, _ in LOADGEN_WORKLOADS:
        for command in ("set", "get"):
            theirs = statistics.median(results[(label, command, "redis-benchmark")])
            ours = statistics.median(results[(label, command, "redvip-bench")])
            print(f"| {label} | {command.upper()} | {theirs:,.0f} | {ours:,.0f} | {ours / theirs:.2f} |")


PROFILE_WORKLOADS = [("GET -c 50 -P 1", ["-t", "get", "-d", "32", "-c", "50", "-P", "1"]),
                     ("GET -c 50 -P 16", ["-t", "get", "-d", "32", "-c", "50", "-P", "16"]),
                     ("GET -c 1 -P 1", ["-t", "get", "-d", "32", "-c", "1", "-P", "1"])]
PROFILE_PROXIES = ["redvip", "redvip-pinned", "haproxy", "twemproxy"]
# Each proxy's own calls, grouped: redvip and HAProxy recv and send,
# twemproxy reads and writevs.
SYSCALL_GROUPS = {
    "reads": ["read", "readv", "recvfrom", "recvmsg"],
    "writes": ["write", "writev", "sendto", "sendmsg"],
    "epoll_wait": ["epoll_wait", "epoll_pwait"],
    "epoll_ctl": ["epoll_ctl"],
}
PERF_EVENTS = [f"syscalls:sys_enter_{call}" for calls in SYSCALL_GROUPS.values() for call in calls] + [
    "context-switches"]


def cpu_seconds(pid):
    """User and system CPU seconds of every thread of `pid` so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def machine_idle():
    """(all, idle) jiffies of every CPU so far (/proc/stat; idle counts iowait too)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def children_cpu():
    """CPU seconds of the children waited for so far (the load generator's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def perf_counts(path):
    """event -> count from `perf stat -x,` output; None when perf could not count."""
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or line.startswith("#"):
                continue
            if parts[0] == "<not counted>":  # the event never ran: no such call
                counts[parts[2]] = 0
                continue
            try:
                counts[parts[2]] = int(parts[0])
            except ValueError:
                return None  # "<not supported>"
    return counts if counts else None


def start_perf(pid, out):
    perf = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", ",".join(PERF_EVENTS), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(perf)
    return perf


def stop_perf(perf, out):
    """The counts of a perf stat started by start_perf, or None."""
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(timeout=30)
    except subprocess.TimeoutExpired:
        perf.kill()
        perf.wait()
    STARTED.remove(perf)
    # perf stat prints its counts on SIGINT, then ends by it.
    ended = perf.returncode in (0, -signal.SIGINT)
    return perf_counts(out) if ended and os.path.exists(out) else None


def profile_once(targets, name, extra, requests, use_perf):
    """Per request: the proxy's CPU, calls and context switches, and Redis's
    CPU and context switches behind it (a proxy that makes Redis sleep and
    wake more often costs Redis, the bottleneck, its cycles)."""
    pids = {"": targets.pids[name], "redis ": targets.pids["redis"]}
    outs = {who: os.path.join(targets.tmp, f"perf-{name}-{who.strip() or 'proxy'}.csv") for who in pids}
    perfs = {who: start_perf(pid, outs[who]) for who, pid in pids.items()} if use_perf else {}
    if perfs:
        time.sleep(0.5)  # attached to every thread
    before = {who: cpu_seconds(pid) for who, pid in pids.items()}
    ticks_before, loadgen_before = machine_idle(), children_cpu()
    bench(targets, targets.ports[name], extra, requests)
    ticks_after, loadgen_after = machine_idle(), children_cpu()
    after = {who: cpu_seconds(pid) for who, pid in pids.items()}
    counts = {who: stop_perf(perf, outs[who]) for who, perf in perfs.items()}
    figures = {"idle %": 100 * (ticks_after[1] - ticks_before[1]) / max(1, ticks_after[0] - ticks_before[0]),
               "bench us": (loadgen_after - loadgen_before) * 1e6 / requests}
    for who in pids:
        figures[f"{who}user us"] = (after[who][0] - before[who][0]) * 1e6 / requests
        figures[f"{who}sys us"] = (after[who][1] - before[who][1]) * 1e6 / requests
    if counts.get("") and counts.get("redis "):
        for group, calls in SYSCALL_GROUPS.items():
            figures[group] = sum(counts[""].get(f"syscalls:sys_enter_{c}", 0) for c in calls) / requests
        for who in pids:
            figures[f"{who}context switches"] = counts[who].get("context-switches", 0) / requests
    return figures


def run_profile(targets, args):
    """Each proxy's CPU and system calls per request, from the same runs, interleaved."""
    use_perf = shutil.which("perf") is not None
    results = {}  # (workload, proxy) -> [figures per round]
    for round_ in range(args.rounds):
        for label, extra in PROFILE_WORKLOADS:
            order = PROFILE_PROXIES if round_ % 2 == 0 else list(reversed(PROFILE_PROXIES))
            for name in order:
                log(f"round {round_ + 1}/{args.rounds}: profile {label} -n {args.requests} -> {name}")
                results.setdefault((label, name), []).append(
                    profile_once(targets, name, extra, args.requests, use_perf))
    columns = ["user us", "sys us"]
    counted = all("context switches" in r for runs in results.values() for r in runs)
    if counted:
        columns += list(SYSCALL_GROUPS) + ["context switches"]
    columns += ["redis user us", "redis sys us"] + (["redis context switches"] if counted else [])
    columns += ["bench us", "idle %"]
    if not use_perf:
        log("perf not found (Debian: linux-perf): CPU figures only")
    elif not counted:
        log("perf stat counted nothing (no tracefs, or not allowed): CPU figures only")
    print(f"\nWhere each proxy's time goes: per request, medians of {args.rounds} interleaved round(s) of "
          f"{args.requests} requests; CPU from /proc/PID/stat (every thread), calls and context switches "
          f"from perf stat -p PID\n")
    print("| workload | proxy | " + " | ".join(columns) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in columns) + " |")
    for label, _ in PROFILE_WORKLOADS:
        for name in PROFILE_PROXIES:
            runs = results[(label, name)]
            cells = [statistics.median(r[c] for r in runs) for c in columns]
            print(f"| {label} | {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")


def idle_clients(targets, name, count):
    """KiB of RSS the proxy adds per client that connected and sent one PING."""
    pid, port = targets.pids[name], targets.ports[name]
    time.sleep(0.5)
    before = lib.rss_kib(pid)
    socks = []
    try:
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            socks.append(s)
        for s in socks:
            if not s.recv(16).startswith(b"+PONG"):
                raise SystemExit(f"{name}: no PONG")
        time.sleep(1.0)
        after = lib.rss_kib(pid)
    finally:
        for s in socks:
            s.close()
    return (after - before) * 1024 / count, before, after


BURST_CLIENTS = 50
BURST_VALUE = 4 << 20


def burst(targets, name):
    """RSS (KiB) before, at its peak during, and 0.5 s after 50 clients each SET
    and GET a 4 MiB value at once; each reply is checked byte for byte."""
    pid, port = targets.pids[name], targets.ports[name]
    value = os.urandom(BURST_VALUE)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(lib.encode("PING"))
        s.recv(16)
    time.sleep(0.5)
    before = lib.rss_kib(pid)
    peak, done, errors = [before], threading.Event(), []

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], lib.rss_kib(pid))
            time.sleep(0.01)

    def client(i):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
                key = f"burst:{name}:{i}"
                c.sendall(lib.encode("SET", key, value))
                if c.recv(5) != b"+OK\r\n":
                    raise RuntimeError("SET not answered +OK")
                c.sendall(lib.encode("GET", key))
                expected = b"$%d\r\n" % len(value) + value + b"\r\n"
                got = bytearray()
                while len(got) < len(expected):
                    chunk = c.recv(1 << 20)
                    if not chunk:
                        raise RuntimeError("closed mid-reply")
                    got += chunk
                if bytes(got) != expected:
                    raise RuntimeError("GET returned other bytes")
        except (OSError, RuntimeError) as e:
            errors.append(f"client {i}: {e}")

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(BURST_CLIENTS)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=120)
    done.set()
    sampler.join()
    time.sleep(0.5)
    after = lib.rss_kib(pid)
    with socket.create_connection(("127.0.0.1", targets.redis_port), timeout=30) as r:
        r.sendall(lib.encode("FLUSHALL"))  # 200 MiB of values go from Redis
        r.recv(16)
    return before, peak[0], after, (errors[0] if errors else "")


def select_targets(args):
    """--targets, --redvip-b and --workloads into TARGETS, PROFILE_PROXIES and WORKLOADS."""
    global WORKLOADS
    proxies = ["redvip", "redvip-pinned"] + (["redvip-b"] if args.redvip_b else []) + ["haproxy", "twemproxy"]
    if args.targets:
        wanted = args.targets.split(",")
        unknown = [t for t in wanted if t not in proxies]
        if unknown:
            raise SystemExit(f"--targets: unknown {','.join(unknown)} (from {','.join(proxies)})")
        proxies = [p for p in proxies if p in wanted]
    TARGETS[:] = ["redis"] + proxies
    PROFILE_PROXIES[:] = proxies
    if args.workloads:
        unknown = [w for w in args.workloads.split(",") if w not in ALL_WORKLOADS]
        if unknown:
            raise SystemExit(f"--workloads: unknown {','.join(unknown)} (from {','.join(ALL_WORKLOADS)})")
        WORKLOADS = [ALL_WORKLOADS[w] for w in args.workloads.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_redvip = next((p for p in (os.path.join(SOURCE, d, "redvip") for d in
                                       ("build/release", "build-px", "build")) if os.path.exists(p)), "redvip")
    parser.add_argument("--redvip", default=os.environ.get("REDVIP_BIN", default_redvip))
    default_bench = next((p for p in (os.path.join(SOURCE, d, "bench", "redvip-bench") for d in
                                      ("build/release", "build")) if os.path.exists(p)), "redvip-bench")
    parser.add_argument("--redvip-bench", default=os.environ.get("REDVIP_BENCH_BIN", default_bench))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--idle-clients", type=int, default=5000)
    parser.add_argument("--redvip-threads", type=int, default=1)
    parser.add_argument("--haproxy-threads", type=int, default=1)
    parser.add_argument("--pin", default="", help="REDIS_CPUS:PROXY_CPUS:BENCH_CPUS for taskset -c")
    parser.add_argument("--redvip-b", default="",
                        help="a second redvip build, run as target redvip-b beside the first (an A/B of a change)")
    parser.add_argument("--targets", default="",
                        help="comma-separated subset of redvip,redvip-pinned,redvip-b,haproxy,twemproxy "
                             "(Redis direct always runs)")
    parser.add_argument("--workloads", default="",
                        help=f"comma-separated subset of {','.join(ALL_WORKLOADS)} (default: all)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-bench", action="store_true", help="no proxy comparison")
    parser.add_argument("--skip-loadgen", action="store_true", help="no load generator comparison")
    parser.add_argument("--skip-idle", action="store_true", help="no idle-client RSS")
    parser.add_argument("--profile", action="store_true",
                        help="also each proxy's CPU, system calls and context switches per request")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests, args.idle_clients = 1, 20000, 500
    select_targets(args)
    # haproxy sizes its descriptors from maxconn (2 per connection): 8000 fits a 20000 limit.
    for tool in ("redis-server", "redis-benchmark", "haproxy", "nutcracker") + (
            () if args.skip_loadgen else (args.redvip_bench,)):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found")
    # Idle clients: ours plus the proxies' and Redis's descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    tmp = tempfile.mkdtemp(prefix="redvip-compare-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        targets = Targets(args, tmp)
        log(f"redis {targets.ports['redis']}, redvip {targets.ports['redvip']} ({args.redvip}, "
            f"redvip-pinned {targets.ports['redvip-pinned']}, "
            f"{args.redvip_threads} thread(s)), haproxy {targets.ports['haproxy']} ({args.haproxy_threads} thread(s)), "
            f"twemproxy {targets.ports['twemproxy']}; pin '{args.pin or 'none'}'")
        log(f"run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {os.cpu_count()} CPU(s)")
        log("scheduling groups (/proc/PID/autogroup): " + ", ".join(
            f"{name} {autogroup(pid)}" for name, pid in targets.pids.items()) + f", this script {autogroup(os.getpid())}")
        if not args.skip_bench:
            results = run_benchmarks(targets, args)
            print_table(results, args)
            print_paired(results, args)
            print_paired(results, args, base="redis")
        if not args.skip_loadgen:
            run_loadgen(targets, args)
        if args.profile:
            run_profile(targets, args)
        if args.skip_idle:
            return 0
        print(f"\nRSS per idle client ({args.idle_clients} clients, each after one PING; /proc/PID/status VmRSS)\n")
        print("| proxy | RSS before KiB | RSS after KiB | bytes per client |")
        print("| --- | ---: | ---: | ---: |")
        for name in ("redvip", "haproxy"):
            per_client, before, after = idle_clients(targets, name, args.idle_clients)
            print(f"| {name} | {before:,} | {after:,} | {per_client:,.0f} |")
        print(f"\nRSS around a burst ({BURST_CLIENTS} clients at once, each SET and GET of a "
              f"{BURST_VALUE >> 20} MiB value; VmRSS)\n")
        print("| proxy | before KiB | peak KiB | 0.5 s after KiB | after - before KiB |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in ("redvip", "haproxy", "twemproxy"):
            before, peak, after, error = burst(targets, name)
            print(f"| {name} | {before:,} | {peak:,} | {after:,} | {after - before:,} |" +
                  (f" failed: {error}" if error else ""))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
