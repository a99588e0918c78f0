#!/usr/bin/env python3
"""Unavailability windows of the three ways mastership moves, each measured
RUNS times by `redvip-bench failover` from a client namespace, on a fresh pair
per run (nodes a and b in network namespaces, redis-server and redvip on
each, 100 ms v3 adverts, the test suite's pair config):

  redis       kill -9 of the master's redis-server
  redvip      kill -9 of the master's redvip (its Redis lives on)
  switchover  `redvip switchover` run on the master

Prints each run and the median and worst window, the worst gap any one
connection saw (median and worst over the runs), errors and writes lost.
Run as root from the source tree after a release build:

  python3 bench/failover_windows.py [--runs 5] [--scenarios redis,redvip,switchover]

Traffic stays inside the namespaces it creates (10.77.0.0/16, no default
route); they and every process it started are removed on exit."""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import soak  # noqa: E402  (the pair, the fault commands, the binaries' paths)

import redvip_testlib as lib  # noqa: E402
from test_pair import VIP  # noqa: E402


def one_run(scenario):
    pair = soak.Pair()
    try:
        out = os.path.join(lib.temp_dir("redvip-windows-"), "report.json")
        lib.run([soak.BENCH, "failover", "--target", f"{VIP}:6379", "--connections", "4", "--rate", "1000",
                 "--duration", "4", "--fault-at", "1.5", "--fault", soak.fault_command(pair, scenario, "a"), "--json", out],
                netns=pair.topo.netns("client"), timeout=60, check=False)
        with open(out) as f:
            return json.load(f)
    finally:
        pair.stop_pair()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenarios", default="redis,redvip,switchover")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.runs} runs each")
    summary = []
    for scenario in args.scenarios.split(","):
        windows, gaps, lost, errors = [], [], 0, 0
        for i in range(args.runs):
            r = one_run(scenario)
            windows.append(r["window_ms"])
            gaps.append(r["worst_connection_gap_ms"])
            lost += r["lost"]
            errors += sum(r["errors"].values())
            print(f"{scenario:10} run {i + 1}: window {r['window_ms']:7.1f} ms, worst connection "
                  f"{r['worst_connection_gap_ms']:7.1f} ms, acked {r['acked']}, lost {r['lost']}, "
                  f"errors {r['errors']}", flush=True)
        summary.append((scenario, statistics.median(windows), max(windows), statistics.median(gaps), max(gaps),
                        lost, errors))
    print("\n| fault | median window | worst window | median worst-connection gap | worst of those "
          "| acknowledged writes lost | client errors (all runs) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scenario, median, worst, gap_median, gap_worst, lost, errors in summary:
        print(f"| {scenario} | {median:.0f} ms | {worst:.0f} ms | {gap_median:.0f} ms | {gap_worst:.0f} ms "
              f"| {lost} | {errors} |")


if __name__ == "__main__":
    main()
