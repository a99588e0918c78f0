"""Large frames through the proxy, on loopback against a real redis-server:
values stream in both directions through standard-size buffers, so the
proxy's memory does not grow with the values its clients move, slow clients
are held back rather than buffered, and memory goes back after a burst."""

import os
import socket
import threading
import time
import unittest

import redvip_testlib as lib
from redvip_testlib import encode

from test_proxy import ProxyTest, exchange

MIB = 1024 * 1024


def recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_line(sock):
    line = b""
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("closed")
        line += byte
    return line


def set_value(sock, key, value):
    """SET key value, sent in pieces as a client would; returns the reply line."""
    header = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(value))
    sock.sendall(header)
    view = memoryview(value)
    for at in range(0, len(value), 4 * MIB):
        sock.sendall(view[at:at + 4 * MIB])
    sock.sendall(b"\r\n")
    return read_line(sock)


def get_value_matches(sock, key, value, delay=0.0, chunk=1 << 20):
    """GET key; reads the reply in chunks (sleeping `delay` between them) and
    compares it with `value` without holding it whole."""
    sock.sendall(encode("GET", key))
    head = read_line(sock)
    if head != b"$%d\r\n" % len(value):
        return False
    at = 0
    while at < len(value):
        part = recv_exact(sock, min(chunk, len(value) - at))
        if part != value[at:at + len(part)]:
            return False
        at += len(part)
        if delay:
            time.sleep(delay)
    return recv_exact(sock, 2) == b"\r\n"


class RssSampler:
    """Samples a process's RSS every 20 ms in a thread; .peak in KiB."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, lib.rss_kib(self.pid))
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def run_clients(count, work):
    """Runs work(i) in `count` threads at once; returns the exceptions raised."""
    errors = []

    def body(i):
        try:
            work(i)
        except Exception as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


class Streaming(ProxyTest):

    def test_twenty_clients_with_64_mib_values_keep_memory_bounded(self):
        value = os.urandom(64 * MIB)
        baseline = lib.rss_kib(self.proxy.proc.pid)
        sampler = RssSampler(self.proxy.proc.pid)

        def client(i):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
            with sock:
                key = b"big%d" % i
                self.assertEqual(set_value(sock, key, value), b"+OK\r\n")
                self.assertTrue(get_value_matches(sock, key, value), f"client {i}")

        errors = run_clients(20, client)
        growth = sampler.stop() - baseline
        self.direct().flushall()
        self.assertEqual(errors, [])
        # Held whole, that is 20 x 2 x 64 MiB; streamed, a few buffers each.
        self.assertLess(growth, 64 * 1024, f"RSS grew {growth} KiB")
        self.assertProxyAlive()

    def test_memory_returns_after_a_burst(self):
        value = os.urandom(4 * MIB)
        exchange(self.port, [encode("PING")])
        time.sleep(0.2)
        idle = lib.rss_kib(self.proxy.proc.pid)

        def client(i):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            with sock:
                key = b"burst%d" % i
                self.assertEqual(set_value(sock, key, value), b"+OK\r\n")
                self.assertTrue(get_value_matches(sock, key, value), f"client {i}")

        self.assertEqual(run_clients(50, client), [])
        self.direct().flushall()
        lib.wait_for(lambda: lib.rss_kib(self.proxy.proc.pid) - idle < 32 * 1024,
                     "RSS to come back within 32 MiB of idle", tries=50, delay=0.1)



class SlowPeers(ProxyTest):
    # Each test below lasts 4x this: the backend timeout is Redis's, not a slow client's.
    proxy_extra = "backend_timeout_ms = 500"

    def test_a_slow_reader_of_a_large_reply_is_not_a_backend_timeout(self):
        # The reply takes ~2 s to drain, 4x the backend timeout: Redis is not slow.
        value = os.urandom(16 * MIB)
        self.direct().set("slow", value)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            self.assertTrue(get_value_matches(sock, b"slow", value, delay=0.12))
            sock.sendall(encode("PING"))
            self.assertEqual(read_line(sock), b"+PONG\r\n")

    def test_a_slow_writer_of_a_large_request_is_not_a_backend_timeout(self):
        value = os.urandom(8 * MIB)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        with sock:
            sock.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$%d\r\n" % len(value))
            for at in range(0, len(value), MIB):
                sock.sendall(value[at:at + MIB])
                time.sleep(0.25)  # 2 s in all
            sock.sendall(b"\r\n")
            self.assertEqual(read_line(sock), b"+OK\r\n")
        self.assertEqual(self.direct().strlen("slow"), len(value))

    def test_redis_that_does_not_answer_in_time_gets_each_command_an_error(self):
        # A script keeps Redis busy 2.5 s (5x the backend timeout; bounded by
        # the clock, and under Redis's 5 s busy-script limit).
        busy = ("local t = redis.call('TIME') local t0 = t[1] * 1000000 + t[2] "
                "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - t0 > 2500000 return 1")
        script = threading.Thread(target=lambda: self.direct().eval(busy, 0))
        script.start()
        try:
            time.sleep(0.1)  # (it has begun: Redis reads nothing else meanwhile)
            sock, reader = lib.connect(self.port)
            with sock:
                sock.sendall(encode("SET", "late", 1) + encode("GET", "late"))
                expected = b"-ERR redvip: connection to Redis lost: Redis did not answer within 500 ms\r\n"
                self.assertEqual([reader.reply(), reader.reply()], [expected, expected])
                self.assertEqual(reader.ending(), "eof")
                self.assertTrue(script.is_alive())  # at the timeout, while Redis is still busy
        finally:
            script.join(timeout=10)
        # Redis ran what it had read (the SET): the error says the outcome is unknown.
        lib.wait_for(lambda: self.direct().get("late") == b"1", "the late SET to run")
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(encode("PING"))
            self.assertEqual(reader.reply(), b"+PONG\r\n")

    def test_a_client_that_sends_without_reading_is_held_back(self):
        # 64 MiB of SETs, never reading a reply: the proxy stops reading the
        # client once Redis's replies back up, instead of buffering them.
        self.direct().set("k", "v")
        before = lib.rss_kib(self.proxy.proc.pid)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setblocking(False)
        stream = memoryview(encode("GET", "k") * (64 * MIB // 20))
        sent, deadline = 0, time.monotonic() + 3
        while time.monotonic() < deadline and sent < len(stream):
            try:
                sent += sock.send(stream[sent:sent + MIB])
            except BlockingIOError:
                time.sleep(0.01)
        self.assertLess(sent, len(stream), "the proxy never stopped reading")
        growth = lib.rss_kib(self.proxy.proc.pid) - before
        sock.close()
        self.assertLess(growth, 32 * 1024, f"RSS grew {growth} KiB")
        self.assertProxyAlive()


class StreamingWithPassword(ProxyTest):
    password = None
    proxy_extra = 'password = "proxy-secret"'

    def assertProxyAlive(self):
        self.assertEqual(exchange(self.port, [encode("AUTH", "proxy-secret"), encode("PING")]),
                         [b"+OK\r\n", b"+PONG\r\n"])

    def test_an_oversized_auth_is_refused_without_being_held(self):
        sock, reader = lib.connect(self.port, timeout=30)
        with sock:
            sock.sendall(encode("AUTH", "proxy-secret"))
            self.assertEqual(reader.reply(), b"+OK\r\n")
            sock.sendall(encode("AUTH", b"p" * (8 * MIB)) + encode("PING"))
            self.assertEqual(reader.reply(), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
            self.assertEqual(reader.reply(), b"+PONG\r\n")
        self.assertProxyAlive()

    def test_a_large_value_after_auth(self):
        value = os.urandom(32 * MIB)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        with sock:
            sock.sendall(encode("AUTH", "proxy-secret"))
            self.assertEqual(read_line(sock), b"+OK\r\n")
            self.assertEqual(set_value(sock, b"v", value), b"+OK\r\n")
            self.assertTrue(get_value_matches(sock, b"v", value))


if __name__ == "__main__":
    unittest.main()
