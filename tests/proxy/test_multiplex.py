"""Multiplexed mode ([proxy] multiplex, the default) against a real
redis-server: many sessions share one pipelined link per thread and each
gets exactly its own replies, in order; a command that needs a connection of
its own pins its session after its earlier replies; a client that goes away,
a shared link killed by CLIENT KILL, a client that does not read and a large
request all leave the others served; the metrics say which mode each session
is in and why it pinned. (test_proxy.py runs the transparency suite in this
mode too: it is the default.)"""

import socket
import threading
import time
import unittest

import redis

import redvip_testlib as lib
from redvip_testlib import encode


def bulk(value):
    value = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(value), value)


class Multiplexed(unittest.TestCase):
    threads = 2

    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer()
        cls.port, cls.metrics_port = lib.free_port(), lib.free_port()
        cls.proxy = lib.Redvip(lib.plain_config(cls.port, cls.redis.port, extra_proxy=f"threads = {cls.threads}\n",
                                                metrics_port=cls.metrics_port), cls.port)

    @classmethod
    def tearDownClass(cls):
        code = cls.proxy.stop()
        cls.redis.stop()
        assert code == 0, f"redvip exited with {code}: {cls.proxy.read_log()}"

    def setUp(self):
        self.direct = redis.Redis(port=self.redis.port)
        self.direct.flushall()

    def metric(self, name):
        return lib.metrics(self.metrics_port).get(name, 0)

    def pins(self, reason):
        return self.metric(f'redvip_proxy_pins_total{{reason="{reason}"}}')

    def redis_connections(self):
        """Connections Redis has, other than the test's own."""
        return int(self.direct.info("clients")["connected_clients"]) - 1

    def test_many_sessions_get_their_own_replies_on_few_connections(self):
        clients, rounds = 40, 300
        socks = [lib.connect(self.port) for _ in range(clients)]
        errors = []

        def worker(i, sock, reader):
            try:
                for r in range(rounds):
                    # A pipeline of three, so requests of many sessions meet on the link.
                    sock.sendall(encode("SET", f"k{i}", f"{i}-{r}") + encode("GET", f"k{i}") + encode("INCR", f"n{i}"))
                    self.assertEqual(reader.reply(), b"+OK\r\n")
                    self.assertEqual(reader.reply(), bulk(f"{i}-{r}"))
                    self.assertEqual(reader.reply(), b":%d\r\n" % (r + 1))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(f"client {i}: {e!r}")

        before = self.metric("redvip_proxy_shared_link_requests_total")
        workers = [threading.Thread(target=worker, args=(i, s, r)) for i, (s, r) in enumerate(socks)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        self.assertEqual(errors, [])
        # 40 clients, all connected: Redis sees the shared links only.
        self.assertLessEqual(self.redis_connections(), self.threads)
        self.assertEqual(self.metric('redvip_proxy_sessions{mode="shared"}'), clients)
        self.assertEqual(self.metric('redvip_proxy_sessions{mode="pinned"}'), 0)
        sent = self.metric("redvip_proxy_shared_link_requests_total") - before
        self.assertEqual(sent, clients * rounds * 3)
        for sock, _ in socks:
            sock.close()

    def test_state_commands_pin_and_keep_order(self):
        pinned_before = self.pins("connection_state")
        a, ra = lib.connect(self.port)
        b, rb = lib.connect(self.port)
        with a, b:
            # One write: the SELECT waits for the SET and GET before it, then
            # the session moves to a connection of its own, in order.
            a.sendall(encode("SET", "k", "zero") + encode("GET", "k") + encode("SELECT", 1) + encode("GET", "k") +
                      encode("SET", "k", "one") + encode("GET", "k"))
            self.assertEqual([ra.reply() for _ in range(6)],
                             [b"+OK\r\n", bulk("zero"), b"+OK\r\n", b"$-1\r\n", b"+OK\r\n", bulk("one")])
            # A shared session is still on database 0.
            b.sendall(encode("GET", "k"))
            self.assertEqual(rb.reply(), bulk("zero"))
            a.sendall(encode("GET", "k"))
            self.assertEqual(ra.reply(), bulk("one"))
        self.assertEqual(self.pins("connection_state"), pinned_before + 1)

    def test_transactions_pin(self):
        before = self.pins("transaction")
        client = redis.Redis(port=self.port)
        with client.pipeline(transaction=True) as tx:
            tx.incr("t").incr("t").get("t")
            self.assertEqual(tx.execute(), [1, 2, b"2"])
        # WATCH sees another client's write and the transaction is aborted.
        watcher, other = redis.Redis(port=self.port), redis.Redis(port=self.port)
        with watcher.pipeline(transaction=True) as tx:
            tx.watch("t")
            other.set("t", "changed")
            tx.multi()
            tx.set("t", "mine")
            with self.assertRaises(redis.WatchError):
                tx.execute()
        self.assertEqual(self.direct.get("t"), b"changed")
        self.assertGreaterEqual(self.pins("transaction"), before + 2)

    def test_blocking_command_does_not_hold_up_the_shared_link(self):
        before = self.pins("blocking")
        blocked, rb = lib.connect(self.port)
        with blocked:
            blocked.sendall(encode("BLPOP", "queue", 10))
            time.sleep(0.1)
            quick = redis.Redis(port=self.port, socket_timeout=5)
            started = time.monotonic()
            for i in range(20):
                self.assertTrue(quick.set(f"q{i}", i))
            self.assertLess(time.monotonic() - started, 5)  # not behind the BLPOP's 10 s
            quick.rpush("queue", "item")
            self.assertEqual(rb.reply(), b"*2\r\n" + bulk("queue") + bulk("item"))
        self.assertEqual(self.pins("blocking"), before + 1)

    def test_subscribers_pin_and_receive_what_shared_sessions_publish(self):
        before = self.pins("subscribe")
        sub, rs = lib.connect(self.port)
        with sub:
            sub.sendall(encode("SUBSCRIBE", "news"))
            self.assertEqual(rs.reply(), b"*3\r\n" + bulk("subscribe") + bulk("news") + b":1\r\n")
            publisher = redis.Redis(port=self.port)
            self.assertEqual(publisher.publish("news", "hello"), 1)
            self.assertEqual(rs.reply(), b"*3\r\n" + bulk("message") + bulk("news") + bulk("hello"))
        self.assertEqual(self.pins("subscribe"), before + 1)

    def test_client_gone_with_replies_due_leaves_the_link_healthy(self):
        failures = self.metric("redvip_proxy_shared_link_failures_total")
        self.direct.set("v", b"x" * 1000)
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", self.port))
            sock.sendall(encode("GET", "v") * 5000)  # 5 MB of replies due
            sock.close()
        client = redis.Redis(port=self.port)
        for i in range(100):
            self.assertTrue(client.set(f"after{i}", i))
            self.assertEqual(client.get(f"after{i}"), str(i).encode())
        self.assertEqual(self.metric("redvip_proxy_shared_link_failures_total"), failures)

    def test_killed_shared_link_fails_waiting_requests_once_and_is_replaced(self):
        waiting, rw = lib.connect(self.port)
        idle = redis.Redis(port=self.port)
        self.assertTrue(idle.set("before", 1))  # its session shares a link too
        failures = self.metric("redvip_proxy_shared_link_failures_total")
        with waiting:
            waiting.sendall(encode("PING"))
            self.assertEqual(rw.reply(), b"+PONG\r\n")
            links = self.metric("redvip_proxy_shared_links_ready")  # one per thread that served
            self.assertGreaterEqual(links, 1)
            self.direct.execute_command("CLIENT", "PAUSE", 2000, "WRITE")
            try:
                waiting.sendall(encode("SET", "paused", 1))  # held by Redis on the shared link
                time.sleep(0.2)
                killed = self.direct.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                self.assertGreaterEqual(killed, 1)
                # The waiting session's connection closes (a lost connection, as
                # if its own had been killed); it gets no reply.
                self.assertEqual(rw.ending(timeout=5), "eof")
                self.assertEqual(rw.buf, b"")
            finally:
                self.direct.execute_command("CLIENT", "UNPAUSE")
        # The link is replaced at the next request; the idle session goes on.
        self.assertEqual(idle.get("before"), b"1")
        self.assertTrue(idle.set("after", 2))
        self.assertEqual(self.metric("redvip_proxy_shared_link_failures_total"), failures + links)
        self.assertIsNone(self.direct.get("paused"))

    def test_client_that_does_not_read_is_pinned_after(self):
        before = self.pins("slow_reader") + self.pins("large_reply")
        self.direct.set("big", b"b" * (8 << 20))
        slow, rs = lib.connect(self.port, timeout=30)
        other = redis.Redis(port=self.port, socket_timeout=30)
        with slow:
            slow.sendall(encode("GET", "big"))
            time.sleep(0.3)  # its reply fills what the sockets hold, then waits
            reader = threading.Thread(target=lambda: (time.sleep(0.5), rs.reply()))
            reader.start()
            # Another session's request waits behind it at most until it reads.
            self.assertTrue(other.set("o", 1))
            reader.join(timeout=30)
            slow.sendall(encode("GET", "o"))
            self.assertEqual(rs.reply(), bulk("1"))
        self.assertEqual(self.pins("slow_reader") + self.pins("large_reply"), before + 1)

    def test_request_too_large_to_hold_streams_pinned(self):
        before = self.pins("large_request")
        value = b"v" * (2 << 20)
        client = redis.Redis(port=self.port, socket_timeout=30)
        self.assertTrue(client.set("large", value))
        self.assertEqual(client.get("large"), value)
        self.assertEqual(self.pins("large_request"), before + 1)

    def test_hello_3_pins_and_speaks_resp3(self):
        before = self.pins("connection_state")
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("HELLO", 3))
            self.assertTrue(reader.reply().startswith(b"%7\r\n"))
            sock.sendall(encode("HSET", "h", "f", "v") + encode("HGETALL", "h"))
            self.assertEqual(reader.reply(), b":1\r\n")
            self.assertEqual(reader.reply(), b"%1\r\n" + bulk("f") + bulk("v"))
        self.assertEqual(self.pins("connection_state"), before + 1)

    def test_scripts_share(self):
        client = redis.Redis(port=self.port)
        sessions = self.metric('redvip_proxy_pins_total{reason="server_flag"}')
        self.assertEqual(client.eval("return redis.call('INCR', KEYS[1])", 1, "s"), 1)
        self.assertEqual(client.ping(), True)
        self.assertEqual(self.metric('redvip_proxy_pins_total{reason="server_flag"}'), sessions)
        self.assertEqual(self.metric('redvip_proxy_sessions{mode="pinned"}'), 0)


class MultiplexOff(unittest.TestCase):
    def test_every_session_has_its_own_connection(self):
        r = lib.RedisServer()
        port, metrics_port = lib.free_port(), lib.free_port()
        proxy = lib.Redvip(lib.plain_config(port, r.port, extra_proxy="multiplex = false\n",
                                            metrics_port=metrics_port), port)
        try:
            clients = [redis.Redis(port=port) for _ in range(5)]
            for i, c in enumerate(clients):
                self.assertTrue(c.set(f"k{i}", i))
            self.assertEqual(int(r.client().info("clients")["connected_clients"]) - 1, 5)
            m = lib.metrics(metrics_port)
            self.assertEqual(m['redvip_proxy_sessions{mode="pinned"}'], 5)
            self.assertEqual(m["redvip_proxy_shared_link_requests_total"], 0)
        finally:
            self.assertEqual(proxy.stop(), 0)
            r.stop()


if __name__ == "__main__":
    unittest.main()
