"""redvip-bench against real redis-servers on 127.0.0.1 (and fake servers of our own).

Every run is bounded: short durations, subprocess timeouts, and the fakes
close by themselves.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import xml.etree.ElementTree as ET

import redvip_testlib as lib

BENCH = lib.REDVIP_BENCH_BIN
SVG_NS = "{http://www.w3.org/2000/svg}"


def bench(*args, timeout=30):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def load_json(path):
    with open(path) as f:
        return json.load(f)


class FakeServer:
    """A TCP server on 127.0.0.1 that answers every connection with `reply` (or stays silent)."""

    def __init__(self, reply=None, linger=3.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.linger = linger
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conns = []
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conns.append(conn)
            if self.reply is not None:
                conn.settimeout(self.linger)
                try:
                    conn.recv(4096)
                    conn.sendall(self.reply)
                except OSError:
                    pass
        for conn in conns:
            conn.close()

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()


class LatencyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer()
        cls.dir = lib.temp_dir("redvip-bench-")

    def run_latency(self, *args, compare=None):
        out = os.path.join(self.dir, "latency.json")
        argv = ["latency", "--target", f"127.0.0.1:{self.redis.port}", "--json", out, *args]
        if compare:
            argv += ["--compare", compare]
        result = bench(*argv)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "", "no progress line when stderr is not a terminal")
        return result, load_json(out)

    def check_figures(self, figures, requests):
        self.assertEqual(figures["requests"], requests)
        self.assertEqual(figures["errors"], 0)
        lat = figures["latency_us"]
        self.assertGreater(lat["max"], 0)
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        self.assertGreater(figures["throughput_rps"], 0)

    def test_requests_closed_loop(self):
        self.redis.cli("FLUSHALL")
        result, report = self.run_latency("--requests", 5000, "-c", 4, "-P", 8, "--command", "set",
                                          "--value-size", 32, "--keyspace", 100)
        self.check_figures(report, 5000)
        self.assertNotIn("compare", report)
        self.assertIn(f"127.0.0.1:{self.redis.port}", result.stdout)
        keys = int(self.redis.cli("DBSIZE").strip())
        self.assertGreater(keys, 50)
        self.assertLessEqual(keys, 100)

    def test_duration_open_loop(self):
        _, report = self.run_latency("--duration", 1, "--rate", 2000, "-c", 2, "--command", "mix")
        self.assertEqual(report["errors"], 0)
        # 2000/s for 1 s, open loop: the schedule, not the server, sets the count.
        self.assertGreater(report["requests"], 1800)
        self.assertLessEqual(report["requests"], 2001)
        self.assertEqual(report["settings"]["rate"], 2000)

    def test_compare_alternates_and_gives_ratios(self):
        other = lib.RedisServer()
        try:
            result, report = self.run_latency("--requests", 6000, "-c", 4, "-P", 2, "--command", "get",
                                              compare=f"127.0.0.1:{other.port}")
        finally:
            other.stop()
        self.check_figures(report, 6000)
        self.check_figures(report["compare"], 6000)
        self.assertEqual(report["compare"]["target"], f"127.0.0.1:{other.port}")
        self.assertEqual(report["settings"]["rounds"], 6)
        ratio = report["ratio"]
        self.assertGreater(ratio["throughput_rps"], 0)
        for key in ("p50", "p90", "p99", "p999", "max"):
            self.assertGreater(ratio["latency_us"][key], 0)
        self.assertIn("ratio", result.stdout)


class FailoverTest(unittest.TestCase):
    def setUp(self):
        self.redis = lib.RedisServer()
        self.dir = lib.temp_dir("redvip-bench-")
        self.json = os.path.join(self.dir, "failover.json")
        self.svg = os.path.join(self.dir, "failover.svg")

    def tearDown(self):
        self.redis.stop()

    def argv(self, duration, *extra):
        return [BENCH, "failover", "--target", f"127.0.0.1:{self.redis.port}", "--duration", str(duration),
                "--rate", "1000", "--connections", "4", "--json", self.json, "--svg", self.svg,
                *map(str, extra)]

    def check_svg(self, markers):
        root = ET.parse(self.svg).getroot()
        ids = {el.get("id"): el for el in root.iter() if el.get("id")}
        self.assertEqual(ids["throughput"].tag, SVG_NS + "path")
        self.assertEqual(ids["p99"].tag, SVG_NS + "path")
        self.assertTrue(ids["throughput"].get("d").startswith("M"))
        for marker in markers:
            self.assertEqual(ids[marker].tag, SVG_NS + "line")

    def test_no_fault_every_ack_is_read_back(self):
        result = subprocess.run(self.argv(1.5), capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = load_json(self.json)
        self.assertGreater(report["acked"], 1200)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["unacked_present"], 0)
        self.assertEqual(report["acked"], report["issued"])
        self.assertEqual(int(self.redis.cli("DBSIZE").strip()), report["acked"])
        self.assertEqual(sum(report["errors"].values()), 0)
        self.assertEqual(report["reconnects"], 0)
        self.assertLess(report["window_ms"], 200)
        self.check_svg(["recovery"])

    def test_paused_server_shows_as_a_window_of_that_size(self):
        fault = f"redis-cli -p {self.redis.port} CLIENT PAUSE 1500 WRITE"
        result = subprocess.run(self.argv(3.5, "--fault-at", 1, "--fault", fault),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = load_json(self.json)
        self.assertEqual(report["lost"], 0)
        self.assertTrue(report["recovered"])
        self.assertEqual(report["fault_exit_status"], 0)
        self.assertGreater(report["window_ms"], 1300)
        self.assertLess(report["window_ms"], 2500)
        self.assertGreaterEqual(report["window_start_ms"], report["fault_at_ms"] - 50)
        self.check_svg(["fault", "recovery"])

    def test_killed_and_restarted_empty_loses_acked_writes(self):
        port = self.redis.port
        proc = lib.start_process(self.argv(4, "--fault-at", 1, "--fault", f"kill -9 {self.redis.proc.pid}"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.redis.proc.wait(timeout=10)  # the fault command killed it
        lib.stop_process(self.redis.proc)
        self.redis = lib.RedisServer(port=port)  # back, empty
        stdout, stderr = proc.communicate(timeout=30)
        lib.stop_process(proc)
        self.assertEqual(proc.returncode, 3, stdout + stderr)
        report = load_json(self.json)
        self.assertGreater(report["lost"], 500)
        self.assertTrue(report["recovered"])
        self.assertGreater(report["reconnects"], 0)
        errors = report["errors"]
        self.assertGreater(errors["refused"] + errors["reset"] + errors["closed"], 0)
        self.assertIn("acknowledged but lost", stdout)
        self.check_svg(["fault", "recovery"])


class BadInputTest(unittest.TestCase):
    def assert_one_line_failure(self, result, text, elapsed, limit):
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(text, lines[0])
        self.assertLess(elapsed, limit)

    def timed(self, *args):
        start = time.monotonic()
        result = bench(*args, timeout=20)
        return result, time.monotonic() - start

    def test_unreachable_target(self):
        port = lib.free_port()
        for mode in (["latency", "--requests", 10], ["failover", "--duration", 1]):
            result, elapsed = self.timed(mode[0], "--target", f"127.0.0.1:{port}", *mode[1:])
            self.assert_one_line_failure(result, "refused", elapsed, 2.0)

    def test_not_a_redis_server(self):
        server = FakeServer(reply=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        try:
            for mode in (["latency", "--requests", 10], ["failover", "--duration", 1]):
                result, elapsed = self.timed(mode[0], "--target", f"127.0.0.1:{server.port}", *mode[1:])
                self.assert_one_line_failure(result, "not a Redis server", elapsed, 2.0)
        finally:
            server.close()

    def test_silent_server_times_out(self):
        server = FakeServer(reply=None)
        try:
            result, elapsed = self.timed("latency", "--target", f"127.0.0.1:{server.port}", "--requests", 10)
            self.assert_one_line_failure(result, "timed out", elapsed, 6.0)
        finally:
            server.close()

    def test_wrong_or_missing_password(self):
        redis = lib.RedisServer(password="right-one")
        try:
            target = f"127.0.0.1:{redis.port}"
            result, elapsed = self.timed("latency", "--target", target, "--requests", 10, "--password", "wrong")
            self.assert_one_line_failure(result, "authentication failed", elapsed, 2.0)
            result, elapsed = self.timed("latency", "--target", target, "--requests", 10)
            self.assert_one_line_failure(result, "NOAUTH", elapsed, 2.0)
            result, _ = self.timed("latency", "--target", target, "--requests", 100, "--password", "right-one")
            self.assertEqual(result.returncode, 0, result.stderr)
        finally:
            redis.stop()

    def test_usage_errors_exit_1(self):
        for argv in (["latency", "--target", "127.0.0.1:1"],
                     ["latency", "--target", "127.0.0.1", "--requests", 1],
                     ["latency", "--target", "127.0.0.1:1", "--requests", 1, "--duration", 1],
                     ["latency", "--target", "127.0.0.1:1", "--requests", 1, "--command", "hset"],
                     ["failover", "--target", "127.0.0.1:1", "--duration", 1, "--fault-at", 1],
                     ["nonsense"], []):
            result = bench(*argv)
            self.assertEqual(result.returncode, 1, (argv, result.stdout, result.stderr))


if __name__ == "__main__":
    unittest.main()
