"""The proxy against a real redis-server, on loopback: byte-for-byte the same
replies as Redis direct, real clients (python3-redis), hostile input, limits,
authentication and a Redis restart."""

import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import redis

import redvip_testlib as lib
from redvip_testlib import encode


def exchange(port, requests):
    """Sends each request on one connection, in order, and returns the raw replies."""
    sock, reader = lib.connect(port)
    with sock:
        out = []
        for request in requests:
            sock.sendall(request)
            out.append(reader.reply())
        return out


# Requests whose replies must be identical through the proxy and direct. Each
# run starts from FLUSHALL, so state-dependent replies match too.
SCRIPT = [
    encode("SET", "s", "v"), encode("GET", "s"), encode("GET", "missing"), encode("APPEND", "s", "w"),
    encode("INCR", "n"), encode("INCRBYFLOAT", "n", "1.5"), encode("MSET", "a", 1, "b", 2), encode("MGET", "a", "b", "c"),
    encode("HSET", "h", "f1", "v1", "f2", "v2"), encode("HGETALL", "h"), encode("HINCRBY", "h", "n", 3),
    encode("LPUSH", "l", 1, 2, 3), encode("LRANGE", "l", 0, -1), encode("LPOP", "l", 2),
    encode("SADD", "set", "x"), encode("SMEMBERS", "set"), encode("SISMEMBER", "set", "y"),
    encode("ZADD", "z", 1, "one", 2.5, "two"), encode("ZRANGE", "z", 0, -1, "WITHSCORES"), encode("ZSCORE", "z", "two"),
    encode("XADD", "x", "1-1", "k", "v"), encode("XADD", "x", "2-1", "k", "w"), encode("XRANGE", "x", "-", "+"),
    encode("XLEN", "x"), encode("XINFO", "STREAM", "x"),
    encode("EVAL", "return {1, 'two', {3}}", 0), encode("EVAL", "return redis.call('GET', KEYS[1])", 1, "s"),
    encode("FUNCTION", "LOAD", "REPLACE", "#!lua name=t\nredis.register_function('f', function() return 7 end)"),
    encode("FCALL", "f", 0),
    encode("MULTI"), encode("INCR", "n2"), encode("GET", "n2"), encode("EXEC"),
    encode("MULTI"), encode("INCR", "n2"), encode("DISCARD"),
    encode("SELECT", 2), encode("SET", "in2", "yes"), encode("GET", "in2"), encode("SELECT", 0), encode("GET", "in2"),
    encode("GET", "h"), encode("NOSUCHCOMMAND"), encode("SET"), encode("OBJECT", "ENCODING", "l"),
    encode("TYPE", "z"), encode("EXISTS", "a", "b", "zz"), encode("TTL", "s"), encode("DBSIZE"),
    b"PING\r\n", b"ECHO hello\r\n", b'SET "quoted key" "a b"\r\n', encode("GET", "quoted key"),
    encode("CLIENT", "SETNAME", "proxied"), encode("CLIENT", "GETNAME"),
    encode("HELLO", 3), encode("HGETALL", "h"), encode("ZSCORE", "z", "two"), encode("SMEMBERS", "set"),
    encode("XINFO", "STREAM", "x"), encode("HELLO", 2),
]


class ProxyTest(unittest.TestCase):
    password = None
    proxy_extra = ""
    multiplex = True  # [proxy] multiplex, the default; a subclass with False runs pinned

    @classmethod
    def proxy_lines(cls):
        return cls.proxy_extra + ("" if cls.multiplex else "\nmultiplex = false")

    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer(password=cls.password)
        cls.port = lib.free_port()
        cls.proxy = lib.Redvip(lib.plain_config(cls.port, cls.redis.port, extra_proxy=cls.proxy_lines()), cls.port)

    @classmethod
    def tearDownClass(cls):
        code = cls.proxy.stop()
        cls.redis.stop()
        assert code == 0, f"redvip exited with {code}: {cls.proxy.read_log()}"

    def direct(self):
        return redis.Redis(port=self.redis.port, password=self.redis.password)

    def via_proxy(self, **kwargs):
        return redis.Redis(port=self.port, **kwargs)

    def setUp(self):
        self.direct().flushall()

    def assertProxyAlive(self):
        self.assertEqual(exchange(self.port, [encode("PING")]), [b"+PONG\r\n"])


class Transparency(ProxyTest):
    def test_replies_are_byte_identical(self):
        through = exchange(self.port, SCRIPT)
        self.direct().flushall()
        self.direct().function_flush()
        straight = exchange(self.redis.port, SCRIPT)
        for request, a, b in zip(SCRIPT, through, straight):
            if request.startswith(encode("XINFO", "STREAM", "x")[:20]):
                continue  # carries times that differ per run
            if request.startswith(encode("HELLO", 3)[:15]):  # the client id differs: mask it
                a, b = (re.sub(rb"\$2\r\nid\r\n:\d+", b"id", r) for r in (a, b))
            self.assertEqual(a, b, f"request {request!r}")
        self.assertEqual(len(through), len(SCRIPT))

    def test_pipeline_of_100k_commands(self):
        count = 100_000
        batch = b"".join(encode("SET", f"k{i}", i) + encode("GET", f"k{i}") for i in range(count))
        sock, reader = lib.connect(self.port, timeout=60)
        with sock:
            sender = threading.Thread(target=sock.sendall, args=(batch,))
            sender.start()
            for i in range(count):
                self.assertEqual(reader.reply(), b"+OK\r\n")
                value = str(i).encode()
                self.assertEqual(reader.reply(), b"$%d\r\n%s\r\n" % (len(value), value))
            sender.join(timeout=60)
        self.assertEqual(self.direct().dbsize(), count)

    def test_large_value_64_mib(self):
        value = os.urandom(64 * 1024 * 1024)
        client = self.via_proxy(socket_timeout=60)
        self.assertTrue(client.set("big", value))
        self.assertEqual(client.get("big"), value)
        self.assertEqual(client.strlen("big"), len(value))

    def test_the_server_sees_the_clients_it_would_see_directly(self):
        # Redis's own suite does this (unit/introspection, CLIENT KILL SKIPME):
        # through the proxy INFO counts the clients, and a CLIENT KILL of every
        # connection, the proxy's own included, leaves a working proxy.
        # Multiplexed, Redis sees the shared links instead (docs/proxy.md).
        if self.multiplex:
            return self.killing_every_connection_leaves_shared_sessions_working()
        clients = [lib.connect(self.port) for _ in range(3)]
        try:
            for sock, reader in clients:  # (an idle client has no connection to Redis yet)
                sock.sendall(encode("PING"))
                self.assertEqual(reader.reply(), b"+PONG\r\n")
            sock, reader = clients[0]

            def clients_counted():
                sock.sendall(encode("INFO", "clients"))
                return b"connected_clients:3\r\n" in reader.reply()
            # (Other tests' clients may take a moment to be gone.)
            lib.wait_for(clients_counted, "Redis to count exactly the three clients")
            sock.sendall(encode("CLIENT", "KILL", "SKIPME", "no"))
            self.assertEqual(reader.reply(), b":3\r\n")
            for sock, reader in clients:  # each sees its connection closed, as directly
                self.assertTrue(reader.closed(timeout=5))
                self.assertEqual(reader.buf, b"")
        finally:
            for sock, _ in clients:
                sock.close()
        self.assertProxyAlive()

    def killing_every_connection_leaves_shared_sessions_working(self):
        clients = [lib.connect(self.port) for _ in range(3)]
        try:
            for sock, reader in clients:
                sock.sendall(encode("PING"))
                self.assertEqual(reader.reply(), b"+PONG\r\n")
            sock, reader = clients[0]
            sock.sendall(encode("INFO", "clients"))  # shares: Redis counts the links, not the clients
            info = reader.reply()
            self.assertNotIn(b"connected_clients:3\r\n", info)
            sock.sendall(encode("CLIENT", "KILL", "SKIPME", "no"))  # pins, then kills its own too
            self.assertRegex(reader.reply(), rb"^:[1-9]\d*\r\n$")
            self.assertTrue(reader.closed(timeout=5))
            self.assertEqual(reader.buf, b"")
            for sock, reader in clients[1:]:  # nothing was due on their links: they go on
                sock.sendall(encode("PING"))
                self.assertEqual(reader.reply(), b"+PONG\r\n")
        finally:
            for sock, _ in clients:
                sock.close()
        self.assertProxyAlive()

    def test_reset_and_quit_once_replies_stop_pairing(self):
        # After SUBSCRIBE or CLIENT REPLY OFF the proxy cannot count replies:
        # RESET and QUIT, in the same write or later, get Redis's answers in
        # Redis's order (RESET used to get none).
        def conversation(port, writes):
            sock, reader = lib.connect(port)
            with sock:
                for data in writes:
                    sock.sendall(data)
                    time.sleep(0.1)
                reader.ending(timeout=0.5)
                return reader.buf
        cases = [
            [encode("SUBSCRIBE", "ch") + encode("RESET") + encode("PING")],
            [encode("SUBSCRIBE", "ch"), encode("RESET") + encode("PING")],
            [encode("PSUBSCRIBE", "p*") + encode("QUIT")],
            [encode("SUBSCRIBE", "ch"), encode("QUIT")],
            [encode("CLIENT", "REPLY", "OFF") + encode("SET", "k", "v") + encode("RESET") + encode("GET", "k")],
        ]
        for writes in cases:
            through = conversation(self.port, writes)
            self.assertTrue(through, writes)
            self.assertEqual(through, conversation(self.redis.port, writes), writes)

    def test_a_slow_command_is_not_cut_short(self):
        # A direct client waits as long as Redis takes; by default so does a
        # client of the proxy (the issue: 5 s used to fail the session).
        client = self.via_proxy(socket_timeout=30)
        self.direct().client_pause(5500, all=True)
        started = time.monotonic()
        self.assertTrue(client.set("after-pause", "yes"))
        self.assertGreater(time.monotonic() - started, 5.0)  # it did wait for the pause
        self.assertEqual(client.get("after-pause"), b"yes")
        self.assertEqual(client.ping(), True)  # the same connection goes on

    def test_half_closed_client_gets_its_replies(self):
        """A client that shuts down its sending side (nc -N) gets the replies
        to the commands it sent whole, then the close, as from Redis; the
        command cut short is dropped."""
        def half_close(port):
            sock, _ = lib.connect(port)
            with sock:
                sock.sendall(encode("SET", "a", "b") + encode("GET", "a") + b"*2\r\n$3\r\nGET")
                sock.shutdown(socket.SHUT_WR)
                out = b""
                while chunk := sock.recv(65536):
                    out += chunk
                return out
        self.assertEqual(half_close(self.port), b"+OK\r\n$1\r\nb\r\n")
        self.direct().flushall()
        self.assertEqual(half_close(self.redis.port), b"+OK\r\n$1\r\nb\r\n")

    def test_inline_commands(self):
        self.assertEqual(exchange(self.port, [b"SET inline 42\r\n", b"GET inline\r\n", b"\r\n" + b"PING\r\n"]),
                         [b"+OK\r\n", b"$2\r\n42\r\n", b"+PONG\r\n"])


class TransparencyPinned(Transparency):
    multiplex = False


class Clients(ProxyTest):
    def test_python_redis_pipeline_and_transaction(self):
        client = self.via_proxy()
        pipe = client.pipeline(transaction=False)
        for i in range(1000):
            pipe.incr("counter")
        self.assertEqual(pipe.execute()[-1], 1000)
        with client.pipeline() as tx:  # WATCH/MULTI/EXEC
            tx.watch("counter")
            value = int(tx.get("counter"))
            tx.multi()
            tx.set("counter", value + 1)
            self.assertEqual(tx.execute(), [True])
        self.assertEqual(client.get("counter"), b"1001")

    def test_watch_aborts_when_another_client_writes(self):
        a, b = self.via_proxy(), self.via_proxy()
        with a.pipeline() as tx:
            tx.watch("w")
            b.set("w", "changed")
            tx.multi()
            tx.set("w", "mine")
            with self.assertRaises(redis.WatchError):
                tx.execute()
        self.assertEqual(a.get("w"), b"changed")

    def test_pubsub(self):
        sub = self.via_proxy().pubsub()
        sub.subscribe("news")
        self.assertEqual(sub.get_message(timeout=5)["type"], "subscribe")
        self.assertEqual(self.via_proxy().publish("news", "hello"), 1)
        message = sub.get_message(timeout=5)
        self.assertEqual((message["type"], message["data"]), ("message", b"hello"))
        sub.psubscribe("n*")
        self.assertEqual(sub.get_message(timeout=5)["type"], "psubscribe")
        self.via_proxy().publish("news", "again")
        kinds = {sub.get_message(timeout=5)["type"] for _ in range(2)}
        self.assertEqual(kinds, {"message", "pmessage"})
        sub.close()

    def test_resp3_client(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("HELLO", 3))
            hello = reader.reply()
            self.assertTrue(hello.startswith(b"%"), hello)
            self.assertIn(b"proto\r\n:3", hello)
            sock.sendall(encode("HSET", "h3", "a", "1") + encode("HGETALL", "h3") + encode("GET", "nothing"))
            self.assertEqual(reader.reply(), b":1\r\n")
            self.assertEqual(reader.reply(), b"%1\r\n$1\r\na\r\n$1\r\n1\r\n")
            self.assertEqual(reader.reply(), b"_\r\n")
            # A RESP3 push (client-side caching) answers no request: the
            # replies that follow it must still pair with their requests.
            sock.sendall(encode("CLIENT", "TRACKING", "ON") + encode("GET", "tracked"))
            self.assertEqual([reader.reply(), reader.reply()], [b"+OK\r\n", b"_\r\n"])
            self.via_proxy().set("tracked", "x")
            self.assertEqual(reader.reply(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n")
            sock.sendall(encode("GET", "tracked") + encode("PING"))
            self.assertEqual([reader.reply(), reader.reply()], [b"$1\r\nx\r\n", b"+PONG\r\n"])

    def test_blocking_commands(self):
        blocked = self.via_proxy(socket_timeout=10)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("v", blocked.blpop(["queue"], timeout=5)))
        t.start()
        lib.wait_for(lambda: self.direct().info("clients")["blocked_clients"] == 1, "the client to block")
        self.via_proxy().rpush("queue", "job")
        t.join(timeout=10)
        self.assertEqual(result["v"], (b"queue", b"job"))
        # XREAD BLOCK waits too.
        t = threading.Thread(target=lambda: result.setdefault("x", blocked.xread({"stream": "$"}, block=5000)))
        t.start()
        lib.wait_for(lambda: self.direct().info("clients")["blocked_clients"] == 1, "XREAD to block")
        self.via_proxy().xadd("stream", {"k": "v"})
        t.join(timeout=10)
        self.assertEqual(result["x"][0][0], b"stream")

    def test_client_reply_off_and_monitor(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("CLIENT", "REPLY", "OFF") + encode("SET", "quiet", 1) + encode("CLIENT", "REPLY", "ON"))
            self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual(self.direct().get("quiet"), b"1")
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("MONITOR"))
            self.assertEqual(reader.reply(), b"+OK\r\n")
            self.via_proxy().set("watched", 1)
            self.assertIn(b'"watched"', reader.reply())

    def test_select_does_not_leak_to_the_next_client(self):
        for _ in range(20):  # enough clients to reuse pooled connections
            sock, reader = lib.connect(self.port)
            with sock:
                sock.sendall(encode("SET", "where", "db0"))
                self.assertEqual(reader.reply(), b"+OK\r\n")
            sock, reader = lib.connect(self.port)
            with sock:
                sock.sendall(encode("SELECT", 5) + encode("SET", "where", "db5"))
                self.assertEqual([reader.reply(), reader.reply()], [b"+OK\r\n", b"+OK\r\n"])
        for _ in range(20):
            self.assertEqual(exchange(self.port, [encode("GET", "where")]), [b"$3\r\ndb0\r\n"])

    def test_quit(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("SET", "q", 1) + encode("QUIT") + encode("SET", "q", 2))
            self.assertEqual([reader.reply(), reader.reply()], [b"+OK\r\n", b"+OK\r\n"])
            self.assertTrue(reader.closed())
        self.assertEqual(self.direct().get("q"), b"1")

    def test_quit_reaches_a_client_that_goes_on_writing(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("QUIT") + encode("SET", "q2", "x" * 200000))  # unread when the proxy hangs up
            self.assertEqual(reader.reply(), b"+OK\r\n")
            self.assertEqual(reader.ending(), "eof")
        self.assertIsNone(self.direct().get("q2"))


class HostileInput(ProxyTest):
    CASES = [
        b"*1\r\n$x\r\n",                 # invalid bulk length
        b"*abc\r\n",                      # invalid multibulk length
        b"*2\r\n$3\r\nGET\r\n+x\r\n",      # expected '$', got '+'
        b"*3000000000\r\n",               # too big multibulk count
        b"*1\r\n$600000000\r\n",          # bulk over 512 MiB
        b'SET "unbalanced\r\n',           # unbalanced quotes
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$x\r\n",  # after a head the proxy streamed to Redis
    ]

    def test_protocol_errors_match_redis_and_close(self):
        for case in self.CASES:
            with self.subTest(case=case):
                replies = []
                for port in (self.port, self.redis.port):
                    sock, reader = lib.connect(port)
                    with sock:
                        sock.sendall(encode("PING") + case)
                        self.assertEqual(reader.reply(), b"+PONG\r\n")
                        replies.append(reader.reply())
                        self.assertTrue(reader.closed(), f"port {port} kept the connection open")
                self.assertEqual(replies[0], replies[1])
                self.assertTrue(replies[0].startswith(b"-ERR Protocol error"))
        # A pooled connection left holding part of a request would take the
        # next client's command as the rest of it.
        for i in range(20):
            self.assertEqual(exchange(self.port, [encode("SET", "after", i), encode("GET", "after")]),
                             [b"+OK\r\n", b"$%d\r\n%d\r\n" % (len(str(i)), i)])
        self.assertProxyAlive()

    def test_a_protocol_error_reaches_a_client_that_goes_on_writing(self):
        # Redis direct may reset such a client before it reads the error (it
        # closes with the rest unread); the proxy sends FIN after the error and
        # drops what follows until the client closes.
        for _ in range(10):
            sock, reader = lib.connect(self.port)
            with sock:
                sock.sendall(encode("PING") + b"*abc\r\n" + b"x" * 200000)
                self.assertEqual(reader.reply(), b"+PONG\r\n")
                self.assertEqual(reader.reply(), b"-ERR Protocol error: invalid multibulk length\r\n")
                self.assertEqual(reader.ending(), "eof")
        self.assertProxyAlive()

    def test_huge_declared_sizes_cost_nothing(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(b"*2000000000\r\n$4\r\n")  # 20 bytes declaring 2e9 arguments
            time.sleep(0.2)
            self.assertLess(lib.rss_kib(self.proxy.proc.pid), 200 * 1024)
        self.assertProxyAlive()

    def test_random_bytes_never_crash_the_proxy(self):
        import random
        rng = random.Random(5798)
        for _ in range(200):
            sock, _ = lib.connect(self.port)
            with sock:
                try:
                    sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
                except OSError:
                    pass
        self.assertProxyAlive()
        self.assertIsNone(self.proxy.proc.poll())

    def test_client_gone_mid_pipeline_and_mid_reply(self):
        self.direct().set("big", b"x" * (8 << 20))
        for _ in range(20):
            sock, _ = lib.connect(self.port)
            sock.sendall(encode("GET", "big") * 10 + b"*3\r\n$3\r\nSET\r\n$1\r\nk")
            sock.close()  # mid-request and before the replies are read
        self.assertProxyAlive()

    def test_a_client_that_never_reads_stays_bounded(self):
        self.direct().set("big", b"x" * (1 << 20))
        before = lib.rss_kib(self.proxy.proc.pid)
        sock, _ = lib.connect(self.port)
        sock.setblocking(False)
        sent = 0
        stream = memoryview(encode("GET", "big") * 64 * 2000)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sent < len(stream):
            try:
                sent += sock.send(stream[sent:sent + 65536])  # resumes where a short send stopped
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.5)
        growth = lib.rss_kib(self.proxy.proc.pid) - before
        sock.close()
        # The replies asked for are ~2 GiB; the proxy may hold a few buffers.
        self.assertLess(growth, 64 * 1024, f"RSS grew {growth} KiB")
        # Redis itself may be busy for seconds: it made up to 4096 replies of
        # 1 MiB for a connection nobody read (normal clients have no output
        # limit), and frees them now. A command sent meanwhile waits (there is
        # no backend timeout by default); Redis is waited for first so the
        # check below is about the proxy.
        busy = redis.Redis(port=self.redis.port, password=self.redis.password, socket_timeout=60)
        self.assertTrue(busy.ping())
        self.assertProxyAlive()


class Limits(ProxyTest):
    proxy_extra = "max_clients = 5\nidle_timeout_ms = 300"

    def hold_every_slot(self):
        """Five clients served (a client of an earlier check may not have been
        let go yet: its slot frees within a turn)."""
        held = []
        for _ in range(5):
            def served():
                sock, reader = lib.connect(self.port)
                sock.sendall(encode("PING"))
                if reader.reply() == b"+PONG\r\n":
                    return sock, reader
                sock.close()
            held.append(lib.wait_for(served, "a client slot"))
        return held

    def test_max_clients(self):
        held = self.hold_every_slot()
        sock, reader = lib.connect(self.port)
        with sock:
            self.assertEqual(reader.reply(), b"-ERR max number of clients reached\r\n")
        for sock, _ in held:
            sock.close()
        lib.wait_for(lambda: exchange(self.port, [encode("PING")]) == [b"+PONG\r\n"], "a slot to free up")

    def test_a_refused_client_that_wrote_first_still_reads_the_error(self):
        # redis-py and redis-cli send their first command before reading: the
        # refusal must not be lost to a reset for bytes the proxy never read.
        held = self.hold_every_slot()
        try:
            for _ in range(20):
                sock, reader = lib.connect(self.port)
                with sock:
                    sock.sendall(encode("SET", "refused", "x" * 100000))
                    self.assertEqual(reader.reply(), b"-ERR max number of clients reached\r\n")
                    self.assertEqual(reader.ending(), "eof")
            # A client that keeps its end open, writing now and then, is
            # closed all the same once the lingering bound (2 s) is over:
            # its writes then meet a reset.
            sock, reader = lib.connect(self.port)
            with sock:
                self.assertEqual(reader.reply(), b"-ERR max number of clients reached\r\n")
                self.assertEqual(reader.ending(), "eof")
                started = time.monotonic()
                with self.assertRaises(OSError):
                    for _ in range(100):  # 5 s at most
                        sock.sendall(b"x")
                        time.sleep(0.05)
                self.assertGreater(time.monotonic() - started, 1.5)
        finally:
            for sock, _ in held:
                sock.close()
        self.assertIsNone(self.direct().get("refused"))
        lib.wait_for(lambda: exchange(self.port, [encode("PING")]) == [b"+PONG\r\n"], "a slot to free up")

    def test_idle_timeout_closes_idle_clients_but_not_blocked_ones(self):
        sock, reader = lib.connect(self.port)
        with sock:
            self.assertTrue(reader.closed(timeout=3))
        blocked = self.via_proxy(socket_timeout=5)
        self.assertIsNone(blocked.blpop(["nothing"], timeout=1))  # longer than the idle timeout


def keepalive_left(proxy_port, client_port):
    """Seconds until the proxy's end of that connection sends a keepalive
    probe, as `ss -o` shows it; None when it has no keepalive timer."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{proxy_port} and dport = :{client_port} )"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip(), f"no established connection from :{proxy_port} to :{client_port}"
    m = re.search(r"timer:\(keepalive,(?:(\d+)min)?(?:(\d+)(?:\.\d+)?sec)?", out)
    if not m:
        return None
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


class Keepalive(ProxyTest):
    proxy_extra = "tcp_keepalive_s = 60"
    probe_within = 60  # seconds; None: no keepalive timer

    def test_a_clients_connection_has_the_keepalive_configured(self):
        # A client whose host died or whose cable was cut never sends its
        # FIN: without keepalive its session would hold a descriptor for good.
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("PING"))
            self.assertEqual(reader.reply(), b"+PONG\r\n")
            left = keepalive_left(self.port, sock.getsockname()[1])
        if self.probe_within is None:
            self.assertIsNone(left)
        else:
            self.assertIsNotNone(left)
            self.assertLessEqual(left, self.probe_within)


class KeepaliveOff(Keepalive):
    proxy_extra = "tcp_keepalive_s = 0"  # leaves it off
    probe_within = None


class Authentication(ProxyTest):
    password = "backend-secret"
    proxy_extra = 'password = "proxy-secret"'

    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer(password=cls.password)
        cls.port = lib.free_port()
        config = lib.plain_config(cls.port, cls.redis.port, extra_proxy=cls.proxy_lines())
        config = config.replace("[redis]\n", f'[redis]\npassword = "{cls.password}"\n')
        cls.proxy = lib.Redvip(config, cls.port)

    def assertProxyAlive(self):
        self.assertEqual(exchange(self.port, [encode("AUTH", "proxy-secret"), encode("PING")]),
                         [b"+OK\r\n", b"+PONG\r\n"])

    def test_noauth_wrongpass_then_ok(self):
        self.assertEqual(exchange(self.port, [encode("GET", "x"), encode("AUTH", "nope"),
                                              encode("AUTH", "backend-secret"), encode("AUTH", "proxy-secret"),
                                              encode("SET", "x", 1), encode("GET", "x")]),
                         [b"-NOAUTH Authentication required.\r\n",
                          b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                          b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                          b"+OK\r\n", b"+OK\r\n", b"$1\r\n1\r\n"])

    def test_python_client_with_password(self):
        client = self.via_proxy(password="proxy-secret")
        self.assertTrue(client.set("p", "v"))
        self.assertEqual(client.get("p"), b"v")
        with self.assertRaises((redis.AuthenticationError, redis.ResponseError)):
            self.via_proxy(password="wrong").ping()

    def test_hello_with_auth(self):
        replies = exchange(self.port, [encode("HELLO", 3), encode("HELLO", 3, "AUTH", "default", "proxy-secret"),
                                       encode("HSET", "h", "a", 1), encode("HGETALL", "h")])
        self.assertTrue(replies[0].startswith(b"-NOAUTH HELLO must be called"))
        self.assertTrue(replies[1].startswith(b"%"))
        self.assertEqual(replies[3], b"%1\r\n$1\r\na\r\n$1\r\n1\r\n")

    def test_unauthenticated_limits(self):
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(b"*20\r\n")
            self.assertEqual(reader.reply(), b"-ERR Protocol error: unauthenticated multibulk length\r\n")
            self.assertTrue(reader.closed())

    def test_quit_before_auth(self):
        self.assertEqual(exchange(self.port, [encode("QUIT")]), [b"+OK\r\n"])


class RedisAuthentication(ProxyTest):
    """Redis with requirepass and ACL users, redvip with [redis] password and
    no [proxy] password: what a user moving from direct connections sets up.
    Clients authenticate to Redis itself, through the proxy, exactly as
    they would directly."""
    password = "123456"

    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer(password=cls.password)
        cls.redis.cli("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "+@all")
        cls.redis.cli("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+auth", "+hello")
        cls.port = lib.free_port()
        config = lib.plain_config(cls.port, cls.redis.port, extra_proxy=cls.proxy_lines())
        config = config.replace("[redis]\n", f'[redis]\npassword = "{cls.password}"\n')
        cls.proxy = lib.Redvip(config, cls.port)

    def assertProxyAlive(self):
        self.assertEqual(exchange(self.port, [encode("AUTH", self.password), encode("PING")]),
                         [b"+OK\r\n", b"+PONG\r\n"])

    SESSION = [
        encode("GET", "x"), encode("HELLO", 3), encode("AUTH", "nobody", "wrong"), encode("SET", "x", 1),
        encode("AUTH", "wrong"), encode("GET", "x"), encode("AUTH", "123456"), encode("SET", "x", 1),
        encode("GET", "x"), encode("AUTH", "reader", "reader-pw"), encode("SET", "x", 2), encode("GET", "x"),
        encode("ACL", "WHOAMI"), encode("AUTH", "alice", "alice-pw"), encode("ACL", "WHOAMI"),
        encode("AUTH", "alice", "bad"), encode("ACL", "WHOAMI"), encode("HELLO", 2, "AUTH", "default", "123456"),
        encode("ACL", "WHOAMI"),
    ]

    def test_replies_are_those_of_redis(self):
        # NOAUTH, WRONGPASS (and no command run after it), NOPERM, users: Redis's own.
        through = exchange(self.port, self.SESSION)
        self.direct().flushall()
        straight = exchange(self.redis.port, self.SESSION)
        mask = lambda r: re.sub(rb"\$2\r\nid\r\n:\d+", b"id", r)  # HELLO's client id differs
        self.assertEqual([mask(r) for r in through], [mask(r) for r in straight])
        self.assertEqual(through[0], b"-NOAUTH Authentication required.\r\n")
        self.assertTrue(through[3].startswith(b"-NOAUTH"))  # the SET after a failed AUTH did not run
        self.assertEqual(through[8], b"$1\r\n1\r\n")

    def test_a_client_without_auth_is_refused(self):
        with self.assertRaises(redis.AuthenticationError):
            self.via_proxy().set("k", "v")
        self.assertIsNone(self.direct().get("k"))

    def test_clients_authenticate_as_they_do_directly(self):
        client = self.via_proxy(password=self.password)
        self.assertTrue(client.set("k", "v"))
        self.assertEqual(self.via_proxy(username="alice", password="alice-pw").get("k"), b"v")
        def failure(port):
            try:
                redis.Redis(port=port, password="wrong").ping()
            except redis.RedisError as e:
                return type(e), str(e)
        self.assertIsNotNone(failure(self.redis.port))
        self.assertEqual(failure(self.port), failure(self.redis.port))  # redis-py's own class and text

    def test_an_authenticated_connection_serves_no_other_client(self):
        # The connection a client authenticated is never handed to the next one.
        for i in range(20):
            self.assertEqual(exchange(self.port, [encode("AUTH", "alice", "alice-pw"), encode("SET", f"k{i}", i)]),
                             [b"+OK\r\n", b"+OK\r\n"])
            self.assertEqual(exchange(self.port, [encode("GET", f"k{i}"), encode("ACL", "WHOAMI")]),
                             [b"-NOAUTH Authentication required.\r\n"] * 2)

    def test_the_pool_and_a_restart_keep_working(self):
        # The proxy's own connections (pool, health) use [redis] password; the
        # sessions' carry none until their client authenticates.
        for _ in range(3):
            client = self.via_proxy(password=self.password)
            self.assertEqual(client.incr("n"), int(self.direct().get("n")))


class RedisRestart(ProxyTest):
    # How long a command waits for a Redis that cannot be reached.
    proxy_extra = "hold_timeout_ms = 1500"

    def restart_redis(self, port, password):
        type(self).redis = lib.RedisServer(port=port, password=password)

    def test_clients_see_what_a_restart_of_redis_shows_them(self):
        client = self.via_proxy(socket_timeout=5)
        self.assertTrue(client.set("before", 1))
        sock, reader = lib.connect(self.port)
        sock.sendall(encode("PING"))
        self.assertEqual(reader.reply(), b"+PONG\r\n")
        subscriber = self.via_proxy(socket_timeout=5).pubsub()
        subscriber.subscribe("news")
        self.assertEqual(subscriber.get_message(timeout=5)["type"], "subscribe")
        port, password = self.redis.port, self.redis.password
        self.redis.stop(signal.SIGKILL)
        if self.multiplex:
            # A session that shares a link, with nothing due, keeps its client:
            # it has no state to lose, and its next command waits for Redis.
            self.assertFalse(reader.closed(timeout=0.3))
        else:
            # A bound session loses its connection: closed, as Redis's own would be.
            self.assertTrue(reader.closed(timeout=5))
            self.assertEqual(reader.buf, b"")
        sock.close()
        # While Redis stays down, a command, or a SUBSCRIBE, waits for it
        # (hold_timeout_ms), then gets what a client of a dead Redis gets: a
        # connection error (redis-py's ConnectionError, which its retry logic
        # acts on), never an error reply, and never silence.
        with self.assertRaises(redis.ConnectionError):
            self.via_proxy(socket_timeout=5).get("x")
        for command in (encode("GET", "x"), encode("SUBSCRIBE", "x"), encode("HELLO", 3) + encode("SUBSCRIBE", "x")):
            sock, reader = lib.connect(self.port)
            with sock:
                sock.sendall(command)
                started = time.monotonic()
                self.assertTrue(reader.closed(timeout=5), command)
                self.assertEqual(reader.buf, b"", command)
                self.assertGreater(time.monotonic() - started, 1.0)  # it waited
        # A command sent while Redis is down, which comes back within the
        # wait, is answered: latency, not an error (node-redis writes its
        # whole offline queue on a new connection at once).
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("HELLO", 3) + encode("SET", "during", "outage") + encode("GET", "during"))
            time.sleep(0.2)
            self.restart_redis(port, password)
            self.assertTrue(reader.reply().startswith(b"%"))
            self.assertEqual(reader.reply(), b"+OK\r\n")
            self.assertEqual(reader.reply(), b"$6\r\noutage\r\n")
        # The old clients recover on their own, as from a restart of Redis.
        self.assertEqual(client.get("before"), None)  # (Redis restarted empty) on a new connection

        # A subscriber's loop, as applications write it: redis-py raises the
        # broken connection's error once, then reconnects and subscribes again.
        def message():
            try:
                self.direct().publish("news", "hi")
                got = subscriber.get_message(timeout=0.1)
            except redis.ConnectionError:
                return None
            return got if got and got["type"] == "message" else None
        self.assertEqual(lib.wait_for(message, "a message after the restart")["data"], b"hi")
        self.assertProxyAlive()


class RedisRestartPinned(RedisRestart):
    multiplex = False


# Authentication, limits and timeouts work the same with a connection per session.
class AuthenticationPinned(Authentication):
    multiplex = False


class RedisAuthenticationPinned(RedisAuthentication):
    multiplex = False


class LimitsPinned(Limits):
    multiplex = False


if __name__ == "__main__":
    unittest.main()
