#!/usr/bin/env python3
"""What clients see when a preferred node takes its role back (preemption),
on one long-lived pair with `preempt = true` (a: priority 110, b: 100).

Each round: kill -9 of a's redis-server (b takes over), then, with
`redvip-bench failover` writing through the VIP (4 connections, 1000
writes/s, no fault of its own), a's Redis is started again, empty; a
follows b, catches up, and preempts it. The run's longest gap is the
preemption's; reported per round with each connection's gap, errors and
writes lost, then the median and worst.

  python3 bench/preempt_windows.py [--rounds 10]

Run as root from the source tree after a release build; traffic stays
inside the namespaces it creates (10.77.0.0/16, no default route); they and
every process it started are removed on exit."""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soak  # noqa: E402  (sets up the paths and binaries)

import redvip_testlib as lib  # noqa: E402
from test_pair import VIP  # noqa: E402


class Pair(soak.Pair):
    preempt = True


def one_round(pair):
    pair.redis["a"].stop(signal.SIGKILL)
    lib.wait_for(lambda: pair.state("b") == "MASTER" and pair.holds_vip("b"), "b to take over", tries=400)
    time.sleep(0.5)
    out = os.path.join(lib.temp_dir("redvip-preempt-"), "report.json")
    bench = lib.start_process([soak.BENCH, "failover", "--target", f"{VIP}:6379", "--connections", "4",
                               "--rate", "1000", "--duration", "6", "--json", out],
                              netns=pair.topo.netns("client"), stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    pair.start_redis("a")  # empty: follows b, catches up, preempts
    code = bench.wait(timeout=60)
    lib.stop_process(bench)
    if code != 0:
        raise AssertionError(f"redvip-bench failover exited with {code}")
    pair.wait_settled("a", "b")
    with open(out) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.rounds} preemptions on one pair",
          flush=True)
    pair = Pair()
    windows, gaps, errors, lost = [], [], 0, 0
    try:
        for i in range(args.rounds):
            r = one_round(pair)
            windows.append(r["window_ms"])
            gaps.append(r["worst_connection_gap_ms"])
            errs = {k: v for k, v in r["errors"].items() if v}
            errors += sum(errs.values())
            lost += r["lost"]
            print(f"round {i + 1}: window {r['window_ms']:6.1f} ms, worst connection "
                  f"{r['worst_connection_gap_ms']:6.1f} ms, acked {r['acked']}, lost {r['lost']}, errors {errs}",
                  flush=True)
    finally:
        pair.stop_pair()
    print("\n| preemptions | median window | worst window | median worst-connection gap | worst of those "
          "| acknowledged writes lost | client errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {len(windows)} | {statistics.median(windows):.0f} ms | {max(windows):.0f} ms "
          f"| {statistics.median(gaps):.0f} ms | {max(gaps):.0f} ms | {lost} | {errors} |")


if __name__ == "__main__":
    main()
