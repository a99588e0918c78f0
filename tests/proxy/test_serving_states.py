"""Serving states end to end in plain proxy mode, through tests/proxy/proxy_driver
("state serving|holding|fenced", "relay HOST:PORT", "drain" on its stdin), with
real redis-servers and raw sockets: HOLDING queues (bounded in time and bytes),
HOLDING -> SERVING releases in order, HOLDING -> FENCED refuses what was held,
FENCED lets nothing reach Redis and refuses new clients, FENCED -> SERVING
serves again; a drain waits for requests in flight; RELAYING sends held and
new commands to another Redis (a switchover's new master), moving clean
sessions and closing or retiring those with state, and CLOSING closes each
session once it is quiet."""

import select
import signal
import socket
import time
import unittest

import redvip_testlib as lib
from redvip_testlib import encode
from test_health_metrics import Driver, parse_metrics

READONLY = b"-READONLY redvip: this node is not the master\r\n"
TRYAGAIN = b"-TRYAGAIN redvip: this node is still changing role, try again\r\n"
# proxy/session.cpp kMaxHeldFrame: what one held client may make the proxy buffer.
MAX_HELD_BYTES = 16 * 16 * 1024
# The hold bound is [proxy] hold_timeout_ms; the sweep runs every 50 ms.
HOLD_MS = 600


def commandstats(redis):
    """{command: calls} from Redis's INFO commandstats."""
    out = {}
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            out[name[len("cmdstat_"):]] = int(fields.split(",")[0].split("=")[1])
    return out


def silent_for(sock, seconds):
    """True when nothing arrives on sock for `seconds` (a bounded wait, not a sleep)."""
    ready, _, _ = select.select([sock], [], [], seconds)
    return not ready


def read_exactly(reader, size):
    while len(reader.buf) < size:
        reader._fill()
    out, reader.buf = reader.buf[:size], reader.buf[size:]
    return out


class DriverCase(unittest.TestCase):
    """A proxy_driver in front of a redis-server of its own."""
    hold_timeout_ms = HOLD_MS
    backend_timeout_ms = 5000  # apart from the hold: a hold is not a Redis that does not answer

    def setUp(self):
        self.redis = lib.RedisServer()
        self.driver = Driver(self.redis.port, interval_ms=1000,
                             extra_proxy=f"hold_timeout_ms = {self.hold_timeout_ms}\n"
                                         f"backend_timeout_ms = {self.backend_timeout_ms}\n")

    def tearDown(self):
        self.assertEqual(self.driver.stop(), 0)
        self.redis.stop()

    def client(self):
        sock, reader = lib.connect(self.driver.port)
        self.addCleanup(sock.close)
        return sock, reader

    def metric(self, name):
        return parse_metrics(self.driver.scrape()[2])[(name, "")]


class ServingStates(DriverCase):

    def test_holding_queues_then_serving_releases_in_order_byte_exact(self):
        sock, reader = self.client()
        sock.sendall(encode("PING"))  # bound to its Redis connection before the hold
        self.assertEqual(reader.reply(), b"+PONG\r\n")
        before = commandstats(self.redis)
        self.driver.command("state holding")
        n = 300
        pipeline, expected = [], []
        for i in range(n):
            pipeline += [encode("SET", f"k{i}", f"v{i}"), encode("INCR", "counter"), encode("GET", f"k{i}")]
            expected += [b"+OK\r\n", b":%d\r\n" % (i + 1), b"$%d\r\n%s\r\n" % (len(f"v{i}"), f"v{i}".encode())]
        sock.sendall(b"".join(pipeline))
        # Latency, not errors: nothing comes back, and nothing ran.
        self.assertTrue(silent_for(sock, 0.3))
        after = commandstats(self.redis)
        for cmd in ("set", "incr", "get"):
            self.assertEqual(after.get(cmd, 0), before.get(cmd, 0), cmd)
        self.driver.command("state serving")
        raw = read_exactly(reader, len(b"".join(expected)))
        self.assertEqual(raw, b"".join(expected))  # every reply, in order, byte for byte
        self.assertTrue(silent_for(sock, 0.1))  # and no more
        self.assertEqual(commandstats(self.redis)["incr"] - before.get("incr", 0), n)

    def test_a_hold_longer_than_hold_timeout_refuses_held_and_new_commands(self):
        sock, reader = self.client()
        self.driver.command("state holding")
        held_at = time.monotonic()
        sock.sendall(encode("SET", "a", 1) + encode("INCR", "a") + encode("GET", "a"))
        for _ in range(3):
            self.assertEqual(reader.reply(), TRYAGAIN)
        waited = time.monotonic() - held_at
        self.assertGreaterEqual(waited, HOLD_MS / 1000 - 0.05)
        self.assertLess(waited, HOLD_MS / 1000 + 1.0)
        self.assertIsNone(self.redis.client().get("a"))  # none of them ran
        # Still HOLDING, past the bound: refused at once, the session stays.
        sock.sendall(encode("GET", "a"))
        self.assertEqual(reader.reply(), TRYAGAIN)
        self.assertEqual(self.metric("redvip_proxy_hold_expired_replies_total"), 4)
        # The election moves on: served again; a new HOLDING gets a new bound.
        self.driver.command("state serving")
        sock.sendall(encode("SET", "a", 1))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.driver.command("state holding")
        sock.sendall(encode("INCR", "a"))
        self.assertTrue(silent_for(sock, 0.2))
        self.driver.command("state serving")
        self.assertEqual(reader.reply(), b":2\r\n")

    def test_a_hold_buffers_at_most_its_bound_then_stops_reading(self):
        sock, reader = self.client()
        self.driver.command("state holding")
        received_before = self.metric("redvip_proxy_client_bytes_received_total")
        value = "x" * 1000
        request = encode("SET", "big", value)
        total = 32 * 1024 * 1024 // len(request)  # more than both kernels' socket buffers
        data = request * total
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        while sent < len(data) and time.monotonic() < deadline:
            _, writable, _ = select.select([], [sock], [], 0.2)
            if not writable:
                break  # the client is held back: the proxy reads no more
            try:
                sent += sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                pass
        self.assertLess(sent, len(data), "the proxy kept reading a held client")
        held = self.metric("redvip_proxy_client_bytes_received_total") - received_before
        self.assertLessEqual(held, MAX_HELD_BYTES)
        self.assertTrue(silent_for(sock, 0.05))
        # Serving: every command goes, in order, and the rest of the pipeline follows.
        self.driver.command("state serving")
        sock.setblocking(True)
        sock.settimeout(10)
        replies = b""
        want = b"+OK\r\n" * total
        while sent < len(data) or len(replies) < len(want):
            readable, writable, _ = select.select([sock], [sock] if sent < len(data) else [], [], 5)
            self.assertTrue(readable or writable, "stalled")
            if writable:
                sent += sock.send(data[sent:sent + 65536])
            if readable:
                chunk = sock.recv(1 << 20)
                self.assertTrue(chunk)
                replies += chunk
        self.assertEqual(replies, want)
        self.assertEqual(self.redis.client().get("big"), value.encode())

    def test_holding_then_fenced_answers_every_held_command_readonly(self):
        sock, reader = self.client()
        before = commandstats(self.redis)
        self.driver.command("state holding")
        sock.sendall(b"".join(encode("SET", f"f{i}", i) for i in range(5)) + b"PING\r\n")
        self.assertTrue(silent_for(sock, 0.2))
        self.driver.command("state fenced")
        for _ in range(6):
            self.assertEqual(reader.reply(), READONLY)
        self.assertTrue(silent_for(sock, 0.1))
        self.assertEqual(commandstats(self.redis).get("set", 0), before.get("set", 0))
        self.assertEqual(self.redis.client().keys("f*"), [])

    def test_a_command_waiting_for_a_dead_redis_is_closed_at_once_when_fenced(self):
        # Its Redis killed, the node is fenced a moment later (a peer takes
        # over): a client that connected in between must not wait out the
        # hold for a Redis that will not come back here.
        sock, reader = self.client()
        sock.sendall(encode("SET", "x", 1))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        port = self.redis.port
        self.redis.stop(signal.SIGKILL)
        late, late_reader = self.client()
        late.sendall(encode("SET", "x", 2))
        self.assertTrue(silent_for(late, 0.1))  # waiting: Redis may be restarting
        started = time.monotonic()
        self.driver.command("state fenced")
        self.assertTrue(late_reader.closed(timeout=2))
        self.assertLess(time.monotonic() - started, HOLD_MS / 2000)  # not after the hold
        self.redis = lib.RedisServer(port=port)

    def test_fenced_refuses_new_clients_and_nothing_reaches_redis_then_serving_serves(self):
        sock, reader = self.client()
        sock.sendall(encode("SET", "x", 1))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.driver.command("state fenced")
        # New connections: the error, then closed.
        new, new_reader = lib.connect(self.driver.port)
        with new:
            self.assertTrue(new_reader.closed())
            self.assertEqual(new_reader.buf, READONLY)
        # A client already connected: every command refused, none reaches Redis.
        monitor = socket.create_connection(("127.0.0.1", self.redis.port), timeout=5)
        self.addCleanup(monitor.close)
        monitor.sendall(encode("MONITOR"))
        mreader = lib.RespReader(monitor)
        self.assertEqual(mreader.reply(), b"+OK\r\n")
        before = commandstats(self.redis)
        commands = [encode("SET", "x", 2), encode("INCR", "x"), encode("DEL", "x"), encode("GET", "x"),
                    encode("MULTI"), b"FLUSHALL\r\n"]
        sock.sendall(b"".join(commands))
        for _ in commands:
            self.assertEqual(reader.reply(), READONLY)
        after = commandstats(self.redis)
        for cmd in ("set", "incr", "del", "get", "multi", "flushall"):
            self.assertEqual(after.get(cmd, 0), before.get(cmd, 0), cmd)
        # MONITOR saw none of them (only the health check's PING/INFO, if any).
        silent_for(monitor, 0.1)
        monitor.setblocking(False)
        seen = b""
        try:
            while True:
                chunk = monitor.recv(1 << 16)
                if not chunk:
                    break
                seen += chunk
        except BlockingIOError:
            pass
        for word in (b'"SET"', b'"INCR"', b'"DEL"', b'"GET"', b'"MULTI"', b'"FLUSHALL"'):
            self.assertNotIn(word, seen.upper())
        self.assertEqual(self.redis.client().get("x"), b"1")
        # FENCED -> SERVING: the old session and new ones are served.
        self.driver.command("state serving")
        sock.sendall(encode("INCR", "x"))
        self.assertEqual(reader.reply(), b":2\r\n")
        again, again_reader = self.client()
        again.sendall(encode("GET", "x"))
        self.assertEqual(again_reader.reply(), b"$1\r\n2\r\n")


def drained(e):
    return e["event"] == "drained"


class Relaying(DriverCase):
    hold_timeout_ms = 5000  # the drain test holds while its script runs 1 s

    def setUp(self):
        super().setUp()  # self.redis: the local Redis
        self.peer = lib.RedisServer()  # the new master's
        self.addCleanup(self.peer.stop)

    def relay(self):
        self.driver.command(f"relay 127.0.0.1:{self.peer.port}")

    def test_relaying_sends_held_and_new_commands_to_the_peer_and_serving_brings_sessions_home(self):
        sock, reader = self.client()
        sock.sendall(encode("SET", "before", 1))  # bound to the local Redis
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.driver.command("state holding")
        sock.sendall(encode("SET", "k", "v") + encode("INCR", "c"))
        self.assertTrue(silent_for(sock, 0.2))
        self.driver.command("drain")
        self.assertEqual(self.driver.next(drained)["busy"], 0)
        self.relay()
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual(reader.reply(), b":1\r\n")
        peer, local = self.peer.client(), self.redis.client()
        self.assertEqual((peer.get("k"), peer.get("c")), (b"v", b"1"))
        self.assertEqual((local.get("k"), local.get("c")), (None, None))
        # A client that connects while relaying is served there too.
        new, new_reader = self.client()
        new.sendall(encode("SET", "new", 1))
        self.assertEqual(new_reader.reply(), b"+OK\r\n")
        self.assertEqual(peer.get("new"), b"1")
        self.assertEqual(self.metric("redvip_proxy_relayed_sessions_total"), 2)
        self.assertEqual(self.metric("redvip_proxy_fenced_replies_total"), 0)
        # SERVING: a clean session moves back to the local Redis at its next command.
        self.driver.command("state serving")
        sock.sendall(encode("SET", "home", 1))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual((local.get("home"), peer.get("home")), (b"1", None))

    def test_relaying_closes_a_quiet_session_whose_connection_holds_state(self):
        sock, reader = self.client()
        sock.sendall(encode("SELECT", 1))  # state on the local Redis's connection
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.relay()
        # Quiet: closed at once, without an error, so its pool reconnects.
        self.assertTrue(reader.closed())
        self.assertEqual(reader.buf, b"")
        self.assertEqual(self.metric("redvip_proxy_retired_sessions_total"), 0)

    def test_relaying_retires_a_busy_session_whose_connection_holds_state(self):
        sock, reader = self.client()
        sock.sendall(encode("SELECT", 1))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        # Busy when relaying starts (a BLPOP waiting), and a SET sent after.
        sock.sendall(encode("BLPOP", "nothing", "0.3"))
        lib.wait_for(lambda: int(self.redis.cli("INFO", "clients").split("blocked_clients:")[1].split()[0]) == 1,
                     "BLPOP blocked on the local Redis")
        self.relay()
        sock.sendall(encode("SET", "x", 1))
        # The BLPOP's answer (from the Redis it waited on), then the SET refused
        # (its SELECT cannot move), then closed.
        self.assertTrue(reader.closed())
        self.assertEqual(reader.buf, b"*-1\r\n" + READONLY)
        self.assertEqual(self.metric("redvip_proxy_retired_sessions_total"), 1)
        for r in (self.redis, self.peer):
            for db in (0, 1):
                self.assertIsNone(r.client(db=db).get("x"))

    def test_closing_closes_each_session_once_quiet_and_relays_until_then(self):
        idle, idle_reader = self.client()
        idle.sendall(encode("PING"))
        self.assertEqual(idle_reader.reply(), b"+PONG\r\n")
        busy, busy_reader = self.client()
        self.relay()
        # A reply Redis takes a while to give: BLPOP with a timeout (blocking,
        # so no backend timeout), pushed by nobody.
        busy.sendall(encode("BLPOP", "nothing", "0.5"))
        lib.wait_for(lambda: int(self.peer.cli("INFO", "clients").split("blocked_clients:")[1].split()[0]) == 1,
                     "BLPOP blocked on the peer's Redis")
        self.driver.command("state closing")
        self.assertTrue(idle_reader.closed(timeout=2))  # quiet: closed at once
        self.assertEqual(idle_reader.buf, b"")
        self.assertTrue(busy_reader.closed(timeout=3))  # its reply first, then closed
        self.assertEqual(busy_reader.buf, b"*-1\r\n")
        # A new client is still served there: its handshake, its command, then closed.
        new, new_reader = self.client()
        new.sendall(encode("CLIENT", "SETNAME", "late") + encode("SET", "late", 1))
        self.assertTrue(new_reader.closed(timeout=2))
        self.assertEqual(new_reader.buf, b"+OK\r\n+OK\r\n")
        self.assertEqual(self.peer.client().get("late"), b"1")
        # FENCED ends the relay: new clients are refused.
        self.driver.command("state fenced")
        refused, refused_reader = self.client()
        self.assertTrue(refused_reader.closed())
        self.assertEqual(refused_reader.buf, READONLY)

    def test_closing_answers_a_request_sent_as_it_starts_then_closes_after_the_reply(self):
        # A client whose request is on its way as CLOSING starts: closed at
        # once, that request would meet a reset and the client could not tell
        # whether it ran. The proxy waits for the next reply (up to 50 ms,
        # proxy/session.hpp kClosingPatience) and closes right after it.
        self.relay()
        for attempt in range(5):
            sock, reader = self.client()
            sock.sendall(encode("PING"))
            self.assertEqual(reader.reply(), b"+PONG\r\n")
            self.driver.command("state closing")
            acked = time.monotonic()
            sock.sendall(encode("SET", "crossing", attempt))
            if time.monotonic() - acked > 0.03:
                self.relay()
                continue  # this machine stalled past the patience: not a fair sample
            self.assertEqual(reader.ending(timeout=2), "eof")  # a FIN after the reply, no reset
            self.assertEqual(reader.buf, b"+OK\r\n")
            self.assertEqual(self.peer.client().get("crossing"), str(attempt).encode())
            return
        self.fail("5 attempts stalled past 30 ms between the state change and the request")

    def test_a_drain_waits_for_requests_in_flight_but_not_for_blocked_ones(self):
        blocked, _ = self.client()
        blocked.sendall(encode("BLPOP", "nothing", "0"))
        lib.wait_for(lambda: int(self.redis.cli("INFO", "clients").split("blocked_clients:")[1].split()[0]) == 1,
                     "BLPOP blocked on the local Redis")
        slow, slow_reader = self.client()
        # A request Redis takes a second to answer, not a blocking command:
        # a script that spins for 1 s.
        spin = ("local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
                "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 1000000 return 1")
        slow.sendall(encode("EVAL", spin, 0))
        # Forwarded once counted (the proxy sends it in the same turn).
        lib.wait_for(lambda: self.metric("redvip_proxy_commands_total") == 2, "the script forwarded")
        self.driver.command("state holding")
        self.driver.command("drain")
        with self.assertRaises(AssertionError):
            self.driver.next(drained, timeout=0.5)  # the script is still running
        self.assertEqual(self.driver.next(drained, timeout=5)["busy"], 0)
        self.assertEqual(slow_reader.reply(), b":1\r\n")
        # The BLPOP is still waiting: a drain does not wait for it.
        self.driver.command("drain")
        self.assertEqual(self.driver.next(drained, timeout=2)["busy"], 0)


if __name__ == "__main__":
    unittest.main()
