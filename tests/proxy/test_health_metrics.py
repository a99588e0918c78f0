"""Health checks and the /metrics endpoint, through tests/proxy/proxy_driver
(a Proxy with on_health printing JSON lines, and a MetricsServer), against real
redis-servers on loopback."""

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import redvip_testlib as lib
from redvip_testlib import encode

DRIVER_BIN = os.environ.get("PROXY_DRIVER_BIN", "proxy_driver")


class Driver:
    """proxy_driver on loopback: its health reports collected as they come."""

    def __init__(self, redis_port, interval_ms=100, timeout_ms=500, extra_proxy="", extra_redis=""):
        self.port, self.metrics_port = lib.free_port(), lib.free_port()
        d = lib.temp_dir("redvip-driver-")
        self.config = os.path.join(d, "redvip.toml")
        with open(self.config, "w") as f:
            f.write(f'[proxy]\nlisten = "127.0.0.1:{self.port}"\n{extra_proxy}'
                    f'[redis]\naddress = "127.0.0.1:{redis_port}"\n{extra_redis}'
                    f'[health]\ninterval_ms = {interval_ms}\ntimeout_ms = {timeout_ms}\n'
                    f'[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
                    f'[admin]\nsocket = "{d}/admin.sock"\n')
        self.proc = lib.start_process([DRIVER_BIN, self.config], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.backlog = []  # events read past while waiting for an ack
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.next(lambda e: e["event"] == "ready", timeout=10)
        assert ready["metrics_port"] == self.metrics_port, ready

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, predicate, timeout=5.0, skipped=None):
        """The next event matching predicate within timeout s; the others are
        dropped, or appended to skipped when given."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout}s")
            try:
                event = self.backlog.pop(0) if self.backlog else self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(event):
                return event
            if skipped is not None:
                skipped.append(event)

    def drain(self):
        self.backlog.clear()
        while not self.lines.empty():
            self.lines.get_nowait()

    def command(self, text):
        """Sends a command, once acknowledged. What the driver printed before its
        ack (a drain answered at once prints "drained" first) is kept for next()."""
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        skipped = []
        self.next(lambda e: e["event"] == "ack" and e["command"] == text, skipped=skipped)
        self.backlog[:0] = skipped

    def scrape(self, path="/metrics"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        return lib.stop_process(self.proc)


def health(ok=None, source=None):
    return lambda e: (e["event"] == "health" and (ok is None or e["ok"] == ok)
                      and (source is None or e["source"] == source))


def parse_metrics(text):
    """{(name, labels-text): value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        name, _, labels = key.partition("{")
        out[(name, labels.rstrip("}"))] = float(value)
    return out


class HealthChecks(unittest.TestCase):
    def setUp(self):
        self.redis = lib.RedisServer()
        self.driver = Driver(self.redis.port)

    def tearDown(self):
        self.assertEqual(self.driver.stop(), 0)
        self.redis.stop()

    def test_a_master_reports_its_facts_every_interval(self):
        first = self.driver.next(health(ok=True, source="check"))
        self.assertEqual(first["role"], "master")
        self.assertRegex(first["master_replid"], "^[0-9a-f]{40}$")
        self.assertEqual(first["second_repl_offset"], -1)
        self.assertEqual(first["connected_slaves"], 0)
        self.assertGreater(first["latency_us"], 0)
        self.assertNotIn("master_link_status", first)
        start = time.monotonic()
        checks = [self.driver.next(health(source="check")) for _ in range(10)]
        elapsed = time.monotonic() - start
        self.assertTrue(all(c["ok"] for c in checks), checks)
        self.assertGreater(elapsed, 0.7)  # 10 checks at 100 ms
        self.assertLess(elapsed, 2.0)

    def test_a_replica_reports_its_link_and_offsets(self):
        replica = lib.RedisServer()
        try:
            replica.cli("REPLICAOF", "127.0.0.1", str(self.redis.port))
            lib.wait_for(lambda: "master_link_status:up" in replica.cli("INFO", "replication"), "the link",
                         tries=100, delay=0.1)
            self.redis.cli("SET", "k", "v")
            driver = Driver(replica.port)
            try:
                # (The SET reaches the replica a moment after the link is up.)
                r = driver.next(lambda e: health(ok=True)(e) and e.get("master_link_status") == "up" and
                                e.get("slave_repl_offset", 0) >= 1)
                self.assertEqual(r["role"], "replica")
                self.assertEqual((r["master_host"], r["master_port"]), ("127.0.0.1", self.redis.port))
                self.assertGreaterEqual(r["slave_repl_offset"], 1)
                self.assertGreaterEqual(r["master_last_io_seconds_ago"], 0)
                # The master goes: the replica's link is reported down.
                self.redis.stop(signal.SIGKILL)
                r = driver.next(lambda e: health(ok=True)(e) and e.get("master_link_status") == "down",
                                timeout=10)
                self.assertNotIn("master_last_io_seconds_ago", r)
            finally:
                self.assertEqual(driver.stop(), 0)
        finally:
            replica.stop()
            self.redis = lib.RedisServer()  # for tearDown

    def test_checks_authenticate_when_clients_bring_their_own_password(self):
        # No [proxy] password: sessions' connections carry no credentials, the
        # checks send AUTH with [redis] password on each connection they take.
        secured = lib.RedisServer(password="s3cret")
        try:
            for extra_redis, ok in (('password = "s3cret"\n', True), ("", False), ('password = "nope"\n', False)):
                driver = Driver(secured.port, extra_redis=extra_redis)
                try:
                    report = driver.next(health(source="check"))
                    self.assertEqual(report["ok"], ok, report)
                    if ok:  # and again on the same connection, without AUTH
                        self.assertTrue(all(driver.next(health(source="check"))["ok"] for _ in range(3)))
                    else:
                        self.assertRegex(report["error"], "NOAUTH|WRONGPASS")
                finally:
                    self.assertEqual(driver.stop(), 0)
        finally:
            secured.stop()

    def test_a_redis_that_refuses_and_closes_is_reported_with_its_own_words(self):
        # What Redis does in protected mode (or at maxclients): one error
        # line, then the close, before reading a byte of ours.
        denied = b"-DENIED Redis is running in protected mode because protected mode is enabled\r\n"
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        stop = threading.Event()

        def serve():
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                time.sleep(0.01)  # our check arrives first: the close is a reset
                conn.sendall(denied)
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            driver = Driver(server.getsockname()[1])
            try:
                report = driver.next(health(ok=False, source="check"))
                self.assertIn("-DENIED Redis is running in protected mode", report["error"], report)
            finally:
                driver.stop()
        finally:
            stop.set()
            thread.join()
            server.close()

    def test_a_killed_redis_is_reported_within_milliseconds(self):
        # A long interval: what reports the death is the watch on the checks'
        # idle connection, then a check run at once, not an interval later.
        self.driver.stop()
        self.driver = Driver(self.redis.port, interval_ms=5000)
        self.driver.next(health(ok=True))
        time.sleep(0.3)  # the check's connection idle
        self.driver.drain()
        port = self.redis.port
        killed = time.monotonic_ns()
        self.redis.stop(signal.SIGKILL)
        failure = self.driver.next(health(ok=False), timeout=3)
        delay_ms = (failure["mono_ns"] - killed) / 1e6
        self.assertLess(delay_ms, 200, failure)
        # The refused connection that follows, also within milliseconds,
        # flagged as such (the election acts on the flag, not on the text)...
        refused = self.driver.next(lambda e: health(ok=False)(e) and e["refused"], timeout=3)
        self.assertIn("refused", refused["error"], refused)
        self.assertLess((refused["mono_ns"] - killed) / 1e6, 200, refused)
        # ...and checks pass again once it is back.
        self.redis = lib.RedisServer(port=port)
        self.driver.next(health(ok=True), timeout=10)

    def test_a_stopped_redis_fails_its_check_at_the_timeout(self):
        self.driver.next(health(ok=True))
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            failure = self.driver.next(health(ok=False, source="check"), timeout=5)
            self.assertIn("no answer within 500 ms", failure["error"])
            self.assertGreaterEqual(failure["latency_us"], 500_000)
            self.assertLess(failure["latency_us"], 700_000)
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.driver.next(health(ok=True), timeout=5)


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer()
        cls.driver = Driver(cls.redis.port, interval_ms=1000)

    @classmethod
    def tearDownClass(cls):
        code = cls.driver.stop()
        cls.redis.stop()
        assert code == 0, code

    def metrics(self):
        status, content_type, text = self.driver.scrape()
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        return text, parse_metrics(text)

    def test_counters_and_histograms_move_with_commands(self):
        _, before = self.metrics()
        sock, reader = lib.connect(self.driver.port)
        with sock:
            for i in range(50):
                sock.sendall(encode("SET", f"k{i}", i) + encode("GET", f"k{i}") + encode("PING"))
                for _ in range(3):
                    reader.reply()
            text, after = self.metrics()
        commands = after[("redvip_proxy_commands_total", "")] - before[("redvip_proxy_commands_total", "")]
        self.assertEqual(commands, 150)
        for cls in ("read", "write", "other"):
            count = (after[("redvip_proxy_request_duration_seconds_count", f'class="{cls}"')]
                     - before[("redvip_proxy_request_duration_seconds_count", f'class="{cls}"')])
            self.assertEqual(count, 50, cls)
        self.assertGreater(after[("redvip_proxy_client_bytes_received_total", "")],
                           before[("redvip_proxy_client_bytes_received_total", "")])
        self.assertEqual(after[("redvip_proxy_connections_active", "")], 1)
        self.check_histograms(text)

    def check_histograms(self, text):
        """Per class: buckets in ascending le, cumulative (never decreasing), +Inf == _count, sum >= 0."""
        values = parse_metrics(text)
        for cls in ("read", "write", "blocking", "other"):
            buckets = []
            for line in text.splitlines():
                prefix = f'redvip_proxy_request_duration_seconds_bucket{{class="{cls}",le="'
                if line.startswith(prefix):
                    le, count = line[len(prefix):].split('"} ')
                    buckets.append((float("inf") if le == "+Inf" else float(le), float(count)))
            self.assertEqual(len(buckets), 17, cls)
            self.assertEqual([b[0] for b in buckets], sorted(b[0] for b in buckets))
            counts = [b[1] for b in buckets]
            self.assertEqual(counts, sorted(counts), f"{cls} buckets not cumulative")
            self.assertEqual(counts[-1], values[("redvip_proxy_request_duration_seconds_count", f'class="{cls}"')])
            self.assertGreaterEqual(values[("redvip_proxy_request_duration_seconds_sum", f'class="{cls}"')], 0)

    def test_blocking_commands_have_their_own_class(self):
        _, before = self.metrics()
        client = lib.connect(self.driver.port)
        sock, reader = client
        with sock:
            sock.sendall(encode("BLPOP", "nothing", "0.2"))
            self.assertEqual(reader.reply(), b"*-1\r\n")
        _, after = self.metrics()
        key = ("redvip_proxy_request_duration_seconds_count", 'class="blocking"')
        self.assertEqual(after[key] - before[key], 1)
        # It waited at least 200 ms: not in the 100 ms bucket. Redis checks
        # blocked clients' timeouts on its own timer (hz 10), so the upper
        # side gets slack: within 1 s even on a loaded machine under ASan.
        le_100ms = ("redvip_proxy_request_duration_seconds_bucket", 'class="blocking",le="0.1"')
        le_1s = ("redvip_proxy_request_duration_seconds_bucket", 'class="blocking",le="1"')
        self.assertEqual(after[le_100ms] - before[le_100ms], 0)
        self.assertEqual(after[le_1s] - before[le_1s], 1)

    def test_state_changes_are_exported(self):
        _, before = self.metrics()
        self.driver.command("state fenced")
        _, fenced = self.metrics()
        self.assertEqual(fenced[("redvip_proxy_serving_state", 'state="FENCED"')], 1)
        self.assertEqual(fenced[("redvip_proxy_serving_state", 'state="SERVING"')], 0)
        self.driver.command("state serving")
        _, after = self.metrics()
        self.assertEqual(after[("redvip_proxy_state_changes_total", "")]
                         - before[("redvip_proxy_state_changes_total", "")], 2)

    def test_other_paths_get_404(self):
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.driver.scrape("/")
        self.assertEqual(caught.exception.code, 404)

    def raw(self, request, timeout=5):
        with socket.create_connection(("127.0.0.1", self.driver.metrics_port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk

    def test_malformed_requests_get_400_and_the_server_survives(self):
        for request in (b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n",
                        b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 16384 + b"\r\n\r\n",
                        b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"):
            with self.subTest(request=request[:30]):
                self.assertTrue(self.raw(request).startswith(b"HTTP/1.1 400 "), request[:30])
        self.metrics()

    def test_a_silent_client_blocks_no_scrape(self):
        with socket.create_connection(("127.0.0.1", self.driver.metrics_port)) as silent:
            silent.sendall(b"GET /met")  # and nothing more
            start = time.monotonic()
            self.metrics()
            self.assertLess(time.monotonic() - start, 1)


if __name__ == "__main__":
    unittest.main()
