"""Real client libraries against redis-server directly and through redvip's
proxy, with the results compared: node-redis 5, ioredis 5 (node scripts in
this folder, child processes that print JSON) and redis-py (Debian's
python3-redis, in this process).

Each feature runs twice, the same way: once against Redis, once through the
proxy in front of that Redis; both results must be equal (the same values,
the same error classes and messages). Each direct result is also checked
against what it must be, so a scenario that silently does nothing fails.
The crash tests kill redis-server (SIGKILL) while subscribers, blocked and
idle clients are connected, start it again on the same port, and require
every client to recover on its own through the proxy as it does directly.

Needs `npm ci` in this folder (setup.sh runs it) and node >= 18.19.

    cd tests/clients && REDVIP_BIN=.../redvip PYTHONPATH=../support python3 -m unittest -v test_clients.py
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import unittest
import urllib.request

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

import redvip_testlib as lib
from redvip_testlib import encode

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node") or "/usr/bin/node"
NODE_MODULES = os.path.join(HERE, "node_modules")


def node_ready():
    """Why the node scenarios cannot run, or None."""
    if not os.path.exists(NODE):
        return "node is not installed (setup.sh installs Debian's nodejs and npm)"
    for package in ("redis", "ioredis"):
        if not os.path.isdir(os.path.join(NODE_MODULES, package)):
            return f"{NODE_MODULES}/{package} is missing: run `npm ci` in {HERE} (setup.sh does)"
    return None


class NodeScript:
    """A node scenario as a child process: JSON lines on its stdout (events,
    then {"result"} or {"fatal"}), steps written to its stdin. Every wait is
    bounded; the script has its own hard timeout too, and is killed (by pid)
    if it outlives ours."""

    def __init__(self, script, scenario, port, hard_timeout=90.0):
        self.name = f"{script} {scenario} on port {port}"
        self.hard_timeout = hard_timeout
        self.stderr_path = os.path.join(lib.temp_dir("redvip-node-"), "stderr")
        self.stderr = open(self.stderr_path, "w")
        options = {"port": port, "hardTimeoutMs": int(hard_timeout * 1000)}
        self.proc = lib.start_process([NODE, os.path.join(HERE, script), scenario, json.dumps(options)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                      cwd=HERE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        self.deadline = time.monotonic() + hard_timeout + 10

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, what, timeout):
        timeout = min(timeout, max(0.1, self.deadline - time.monotonic()))
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise AssertionError(f"{self.name}: nothing within {timeout:.0f}s while waiting for {what}{self._tail()}")
        if line is None:
            self.close()
            raise AssertionError(f"{self.name}: exited ({self.proc.returncode}) while waiting for {what}{self._tail()}")
        try:
            message = json.loads(line)
        except ValueError:
            self.seen.append(line)
            return self._next(what, timeout)
        self.seen.append(message)
        if "fatal" in message:
            self.close()
            raise AssertionError(f"{self.name}: {message['fatal']}\n{json.dumps(message.get('trace'), indent=1)}"
                                 f"{self._tail()}")
        return message

    def event(self, name, timeout=30.0):
        message = self._next(f'event "{name}"', timeout)
        if message.get("event") != name:
            self.close()
            raise AssertionError(f"{self.name}: expected event {name}, got {message}")

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self, timeout=60.0):
        message = self._next("the result", timeout)
        if "result" not in message:
            self.close()
            raise AssertionError(f"{self.name}: expected the result, got {message}")
        self.trace = message.get("trace", [])
        self.close()
        return message["result"]

    def _tail(self):
        with open(self.stderr_path) as f:
            err = f.read()[-3000:]
        return f"\nstderr: {err}" if err else ""

    def close(self):
        if self.stderr.closed:
            return
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        lib.stop_process(self.proc)
        self.stderr.close()


def differences(direct, proxied, path=""):
    """Where two JSON values differ: ["path: direct=... proxy=..."]."""
    if isinstance(direct, dict) and isinstance(proxied, dict):
        out = []
        for key in list(direct) + [k for k in proxied if k not in direct]:
            out += differences(direct.get(key, "<absent>"), proxied.get(key, "<absent>"), f"{path}.{key}")
        return out
    if isinstance(direct, list) and isinstance(proxied, list) and len(direct) == len(proxied):
        out = []
        for i, (a, b) in enumerate(zip(direct, proxied)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    if direct != proxied:
        return [f"{path or '.'}: direct={json.dumps(direct)[:600]} proxy={json.dumps(proxied)[:600]}"]
    return []


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    if not match:
        raise AssertionError(f"no {name} in /metrics")
    return float(match.group(1))


class ClientTest(unittest.TestCase):
    """A redis-server and a plain redvip proxy (threads = 2) in front of it."""

    @classmethod
    def setUpClass(cls):
        cls.redis = lib.RedisServer()
        cls.redis_port = cls.redis.port
        cls.proxy_port = lib.free_port()
        cls.metrics_port = lib.free_port()
        # hold_timeout_ms: how long a command waits for a Redis the proxy cannot
        # reach; shorter than the scenarios' 5 s bound on a command.
        config = (f'[proxy]\nlisten = "127.0.0.1:{cls.proxy_port}"\nthreads = 2\nhold_timeout_ms = 2000\n'
                  f'[redis]\naddress = "127.0.0.1:{cls.redis_port}"\n'
                  f'[metrics]\nlisten = "127.0.0.1:{cls.metrics_port}"\n'
                  f'[admin]\nsocket = "/tmp/redvip-test-{cls.proxy_port}.sock"\n')
        cls.proxy = lib.Redvip(config, cls.proxy_port)
        # (The metrics endpoint may start listening a moment after the proxy.)
        lib.wait_for(lambda: metric(cls.metrics_port, "redvip_proxy_backend_errors_total") is not None,
                     f"redvip's /metrics on port {cls.metrics_port}")

    @classmethod
    def tearDownClass(cls):
        code = cls.proxy.stop()
        cls.redis.stop()
        assert code == 0, f"redvip exited with {code}: {cls.proxy.read_log()[-3000:]}"

    @classmethod
    def admin(cls):
        return redis.Redis(port=cls.redis_port, socket_timeout=10)

    @classmethod
    def fresh(cls):
        """Every run starts from an empty Redis, with the proxy serving again."""
        def serving():
            with redis.Redis(port=cls.proxy_port, socket_timeout=2) as client:
                return client.ping()
        lib.wait_for(serving, "the proxy to serve", tries=200, delay=0.05)
        with cls.admin() as admin:
            admin.flushall()
            admin.function_flush()

    @classmethod
    def kill_redis(cls):
        cls.redis.stop(signal.SIGKILL)

    @classmethod
    def start_redis(cls):
        cls.redis = lib.RedisServer(port=cls.redis_port)

    def assertSame(self, direct, proxied, what):
        diff = differences(direct, proxied)
        self.assertFalse(diff, f"{what}: through the proxy differs from Redis direct:\n  " + "\n  ".join(diff))

    @staticmethod
    def run_node(script, scenario, port, timeout=90.0):
        node = NodeScript(script, scenario, port, hard_timeout=timeout)
        return node.result(timeout + 5)

    @classmethod
    def run_node_crash(cls, script, port):
        """The crash scenario: the script sets up its clients, then we kill
        Redis, let the clients try to reconnect for a while, start Redis
        again on the same port, and the script checks that each recovered."""
        cls.fresh()
        node = NodeScript(script, "crash", port, hard_timeout=90)
        try:
            node.event("ready", 30)
            cls.kill_redis()
            node.send("killed")
            node.event("down", 30)
            cls.start_redis()
            node.send("restarted")
            return node.result(80), node.trace
        finally:
            node.close()
            if cls.redis.proc.poll() is not None:  # the script failed while Redis was down
                cls.start_redis()

    def proxy_log(self):
        return self.proxy.read_log()


class NodeTest(ClientTest):
    """A node script's scenario, run in setUpClass (`script`: set by the leaf class)."""
    script = None

    @classmethod
    def setUpClass(cls):
        if cls.script is None:
            raise unittest.SkipTest("base class")
        why = node_ready()
        if why:
            raise AssertionError(why)
        super().setUpClass()


class NodeFeatures(NodeTest):
    """Runs a node script's features once per side (in setUpClass); each test
    compares one feature."""
    results = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.results = {}
        for side, port in (("direct", cls.redis_port), ("proxy", cls.proxy_port)):
            cls.fresh()
            cls.results[side] = cls.run_node(cls.script, "features", port)

    def feature(self, name):
        direct, proxied = self.results["direct"][name], self.results["proxy"][name]
        self.assertNotIn("failed", direct, f"{name} failed against Redis directly: {direct}")
        self.assertSame(direct, proxied, f"{self.script} {name}")
        return direct


class NodeRedisFeatures(NodeFeatures):
    script = "node_redis.js"

    def test_basic_resp3(self):
        r = self.feature("basic3")
        self.assertEqual(r["hello"]["ok"]["proto"], 3)
        self.assertEqual(r["hGetAll"], {"ok": {"f1": "v1", "f2": "v2"}})
        self.assertEqual(r["zScore"], {"ok": 2.5})  # a RESP3 double
        self.assertEqual(r["evalDouble"], {"ok": 3.5})
        self.assertEqual(r["wrongType"]["error"], "SimpleError")
        self.assertEqual(r["bigGet"], {"ok": {"length": (1 << 20) + 3, "same": True}})
        self.assertEqual(r["getInZero"], {"ok": None})

    def test_basic_resp2(self):
        r = self.feature("basic2")
        self.assertEqual(r["hello"]["ok"][:6], ["server", "redis", "version", r["hello"]["ok"][3], "proto", 2])
        self.assertEqual(r["evalDouble"], {"ok": "3.5"})  # a bulk string in RESP2
        self.assertEqual(r["binaryGet"], {"ok": {"hex": bytes(range(256)).hex()}})

    def test_pipelines_and_transactions(self):
        r = self.feature("pipelines")
        self.assertEqual(r["autoPipelined"], {"count": 500, "last": 500, "ordered": True})
        self.assertEqual(r["multi"], {"ok": ["OK", 2, "2", {}]})
        self.assertEqual(r["multiRuntimeError"]["error"], "MultiErrorReply")
        self.assertEqual(r["watchedExec"]["error"], "WatchError")
        self.assertEqual(r["unwatchedExec"], {"ok": ["OK", "mine"]})

    def _pubsub(self, name):
        r = self.feature(name)
        self.assertEqual(r["messages"], [["message", "c1", "one"], ["message", "c2", "two"],
                                         ["pmessage", "px", "three"], ["smessage", "shard", "five"],
                                         ["message", "c2", "seven"]])
        self.assertEqual(r["published"], [{"ok": 1}, {"ok": 1}, {"ok": 1}, {"ok": 0}, {"ok": 1}])

    def test_pubsub_resp3(self):
        self._pubsub("pubsub3")

    def test_pubsub_resp2(self):
        self._pubsub("pubsub2")

    def test_client_side_caching(self):
        r = self.feature("clientSideCache")
        self.assertEqual(r["afterReads"], {"hits": 1, "misses": 2, "size": 2})
        self.assertTrue(r["invalidatedByOther"])
        self.assertEqual(r["third"], {"ok": "v2"})
        self.assertTrue(r["invalidatedByOwnWrite"])
        self.assertTrue(r["invalidatedByFlush"])

    def test_blocking_commands(self):
        r = self.feature("blocking")
        self.assertEqual(r["blPop"], {"ok": {"key": "bq", "element": "x"}})
        self.assertEqual(r["timesOut"], {"ok": None})
        self.assertEqual(r["bzPopMin"], {"ok": {"key": "zq", "value": "m", "score": 3}})


class IoredisFeatures(NodeFeatures):
    script = "ioredis.js"

    def test_basic(self):
        r = self.feature("basic")
        self.assertEqual(r["hgetall"], {"ok": {"f1": "v1", "f2": "v2"}})
        self.assertEqual(r["evalError"], {"error": "ReplyError", "message": "MYERR custom"})
        self.assertEqual(r["bigGet"], {"ok": {"length": (1 << 20) + 3, "same": True}})

    def test_auto_pipelining(self):
        r = self.feature("autoPipelining")
        self.assertTrue(r["sets"] and r["gets"])
        self.assertEqual(r["tail"], {"ok": [1, None]})
        self.assertEqual(r["errorInBatch"]["ok"][1]["error"], "ReplyError")

    def test_transactions(self):
        r = self.feature("transactions")
        self.assertEqual(r["multi"], {"ok": [[None, "OK"], [None, 2], [None, "2"]]})
        self.assertEqual(r["watchedExec"], {"ok": None})
        self.assertTrue(r["multiQueueError"]["message"].startswith("EXECABORT"))

    def test_pubsub_and_quit(self):
        r = self.feature("pubsub")
        self.assertEqual(r["messages"], [["message", "c1", "one"], ["message", "c2", "two"],
                                         ["pmessage", "p*", "px", "three"], ["smessage", "shard", "five"],
                                         ["message", "c2", "seven"]])
        self.assertEqual(r["quit"], {"ok": "OK"})
        self.assertTrue(r["closed"])

    def test_blocking_commands(self):
        r = self.feature("blocking")
        self.assertEqual(r["blpop"], {"ok": ["bq", "x"]})
        self.assertEqual(r["bzpopmin"], {"ok": ["zq", "m", "3"]})


class NodeCrash(NodeTest):
    """SIGKILL of redis-server and a restart on the same port, with node
    clients of every kind connected; each must recover on its own. The
    scenario runs once per side in setUpClass; each test compares a part."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.runs = {}
        for side, port in (("direct", cls.redis_port), ("proxy", cls.proxy_port)):
            try:
                cls.runs[side] = cls.run_node_crash(cls.script, port)
            except AssertionError as exc:  # each test reports it
                cls.runs[side] = exc

    def part(self, *path):
        """The direct and the proxied result at path (a failed run fails the test)."""
        out = []
        for side in ("direct", "proxy"):
            run = self.runs[side]
            if isinstance(run, AssertionError):
                self.fail(f"the crash scenario failed {side}: {run}")
            value = run[0]
            for key in path:
                value = value[key]
            out.append(value)
        return out

    def assertSamePart(self, *path):
        direct, proxied = self.part(*path)
        diff = differences(direct, proxied, ".".join(path))
        if diff:
            trace = "\n    ".join(self.runs["proxy"][1])
            self.fail(f"{self.script} {'.'.join(path)} across a Redis crash: through the proxy differs from Redis "
                      f"direct:\n  " + "\n  ".join(diff) + f"\n  the proxied run's client trace:\n    {trace}")
        return direct


class NodeRedisCrash(NodeCrash):
    script = "node_redis.js"

    def test_before_the_crash(self):
        r = self.assertSamePart("before")
        self.assertTrue(r["received"] and r["blocked"], r)

    def test_every_client_recovers(self):
        """Normal (RESP2 and RESP3), subscribed (RESP2 and RESP3, resubscribed
        by node-redis), blocked (BLPOP again) and client-side caching clients."""
        for key in ("ready", "notReady", "set", "getN2", "subscribersBack", "subscribersMissing",
                    "blockedAgain", "poppedAgain", "cacheFirst", "cacheSecond", "cacheSize",
                    "cacheInvalidated", "cacheThird"):
            with self.subTest(key):
                self.assertSamePart("after", key)
        direct = self.part("after")[0]
        self.assertTrue(direct["ready"] and direct["subscribersBack"] and direct["cacheInvalidated"], direct)
        self.assertEqual(direct["poppedAgain"], ["x", "y"])

    def test_blocked_command_sees_the_connection_close(self):
        """The BLPOP in flight at the crash fails as a closed connection."""
        self.assertSamePart("down", "noticed")
        r = self.assertSamePart("down", "blockedOutcome")
        self.assertEqual(r["b3"]["error"], "SocketClosedUnexpectedlyError")

    def test_commands_issued_while_down_wait(self):
        """node-redis keeps a command issued while it is disconnected in its
        offline queue and sends it once reconnected: against Redis it waits
        out the outage and succeeds."""
        r = self.assertSamePart("down", "queuedSettledWhileDown")
        self.assertEqual(r, {"n3": "waiting", "n2": "waiting", "c3": "waiting"})
        r = self.assertSamePart("after", "queued")
        self.assertEqual(r, {"n3": {"ok": None}, "n2": {"ok": None}, "c3": {"ok": None}})


class IoredisCrash(NodeCrash):
    script = "ioredis.js"

    def test_before_the_crash(self):
        r = self.assertSamePart("before")
        self.assertTrue(r["received"] and r["blocked"], r)

    def test_every_client_recovers(self):
        """Normal, auto-pipelining and subscribed (resubscribed by ioredis) clients."""
        for key in ("ready", "notReady", "set", "get", "subscriberBack"):
            with self.subTest(key):
                self.assertSamePart("after", key)
        direct = self.part("after")[0]
        self.assertTrue(direct["ready"] and direct["subscriberBack"], direct)

    def test_blocked_command_is_resent(self):
        """ioredis re-sends the BLPOP left unanswered by the crash
        (autoResendUnfulfilledCommands): it gets the element pushed after."""
        self.assertSamePart("down", "blockedSettledWhileDown")
        self.assertSamePart("after", "blockedAgain")
        r = self.assertSamePart("after", "blockedOutcome")
        self.assertEqual(r, {"ok": ["bq", "x"]})

    def test_commands_issued_while_down_wait(self):
        """ioredis holds commands in its offline queue until it is ready."""
        r = self.assertSamePart("down", "queuedSettledWhileDown")
        self.assertEqual(r, {"n": "waiting", "ap": "waiting"})
        r = self.assertSamePart("after", "queued")
        self.assertEqual(r, {"n": {"ok": None}, "ap": {"ok": None}})


# --- redis-py (Debian's python3-redis 4.3), in this process ---

def py_outcome(call, port=None):
    """{"ok": value} or {"error": class, "message": text} of call()."""
    try:
        return {"ok": plain(call())}
    except Exception as exc:  # the class is what is compared
        message = str(exc)
        if port is not None:
            message = message.replace(str(port), "PORT")
        return {"error": type(exc).__name__, "message": message}


def plain(value):
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"hex": value.hex()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, set):
        return sorted(plain(v) for v in value)
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, Exception):
        return {"error": type(value).__name__, "message": str(value)}
    return value


class Background:
    """call() in a thread, with its outcome collected later (bounded)."""

    def __init__(self, call):
        self.outcome = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call):
        self.outcome = py_outcome(call)

    def result(self, timeout):
        self.thread.join(timeout)
        return self.outcome if not self.thread.is_alive() else {"pending": f"still running after {timeout}s"}


def eventually(predicate, timeout, delay=0.05):
    """predicate()'s first true value within timeout seconds, else its last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(delay)


def calls(outcome):
    """The outcomes a Background of several py_outcome()s collected."""
    return outcome["ok"] if "ok" in outcome else [outcome]


def blocked_clients(admin):
    return admin.info("clients")["blocked_clients"]


class RedisPy(ClientTest):
    def both(self, scenario):
        self.fresh()
        direct = scenario(self.redis_port)
        self.fresh()
        proxied = scenario(self.proxy_port)
        self.assertSame(direct, proxied, scenario.__name__)
        return direct

    def test_pipelines(self):
        def pipelines(port):
            c = redis.Redis(port=port, socket_timeout=10)
            r = {}
            pipe = c.pipeline(transaction=False)
            for i in range(1000):
                pipe.incr("counter")
            values = pipe.execute()
            r["counter"] = [values[0], values[-1], len(values)]
            pipe = c.pipeline(transaction=False)
            pipe.set("s", "x").incr("s").get("s").hgetall("none")
            r["withErrors"] = py_outcome(lambda: pipe.execute(raise_on_error=False))
            pipe = c.pipeline(transaction=False)
            pipe.set("s", "x").incr("s").get("s")
            r["raising"] = py_outcome(pipe.execute)
            r["afterwards"] = py_outcome(lambda: c.get("s"))
            c.close()
            return r
        r = self.both(pipelines)
        self.assertEqual(r["counter"], [1, 1000, 1000])
        self.assertEqual(r["raising"]["error"], "ResponseError")
        self.assertEqual(r["withErrors"]["ok"][1]["error"], "ResponseError")

    def test_transactions_and_watch(self):
        def transactions(port):
            c, other = redis.Redis(port=port, socket_timeout=10), redis.Redis(port=port, socket_timeout=10)
            r = {}
            tx = c.pipeline()
            tx.set("m", 1).incr("m").get("m")
            r["multi"] = py_outcome(tx.execute)
            tx = c.pipeline()
            tx.set("s", "x").incr("s").get("s")
            r["runtimeError"] = py_outcome(lambda: tx.execute(raise_on_error=False))
            tx = c.pipeline()
            tx.set("q", 1).execute_command("SET")
            r["queueError"] = py_outcome(tx.execute)
            r["afterQueueError"] = py_outcome(lambda: c.get("q"))
            with c.pipeline() as tx:
                tx.watch("w")
                r["watchedRead"] = py_outcome(lambda: tx.get("w"))
                other.set("w", "changed")
                tx.multi()
                tx.set("w", "mine")
                r["watchAborted"] = py_outcome(tx.execute)
            r["watched"] = py_outcome(lambda: c.get("w"))

            def increment(pipe):
                value = int(pipe.get("t") or 0)
                pipe.multi()
                pipe.set("t", value + 1)
            r["transaction"] = py_outcome(lambda: [c.transaction(increment, "t") for _ in range(5)])
            r["t"] = py_outcome(lambda: c.get("t"))
            c.close()
            other.close()
            return r
        r = self.both(transactions)
        self.assertEqual(r["multi"], {"ok": [True, 2, "2"]})
        self.assertEqual(r["watchAborted"]["error"], "WatchError")
        self.assertEqual(r["watched"], {"ok": "changed"})
        self.assertEqual(r["t"], {"ok": "5"})
        self.assertIn("error", r["queueError"])

    def test_pubsub_get_message(self):
        def pubsub(port):
            c = redis.Redis(port=port, socket_timeout=10)
            p = c.pubsub()
            r = {"messages": []}

            def drain(count):
                deadline = time.monotonic() + 5
                while len(r["messages"]) < count and time.monotonic() < deadline:
                    message = p.get_message(timeout=0.2)
                    if message:
                        r["messages"].append(plain(message))
            p.subscribe("c1", "c2")
            p.psubscribe("p*")
            drain(3)
            r["published"] = [c.publish("c1", "one"), c.publish("px", "two"), c.publish("none", "three")]
            drain(5)
            r["ping"] = py_outcome(lambda: p.ping("hi"))
            drain(6)
            p.unsubscribe("c1")
            drain(7)
            r["afterUnsubscribe"] = c.publish("c1", "four")
            r["numsub"] = py_outcome(lambda: c.pubsub_numsub("c1", "c2"))
            p.punsubscribe()
            p.unsubscribe()
            drain(9)
            r["extra"] = py_outcome(lambda: p.get_message(timeout=0.2))
            p.close()
            c.close()
            return r
        r = self.both(pubsub)
        kinds = [(m["type"], m["channel"], m["data"]) for m in r["messages"]]
        self.assertEqual(kinds[:5], [("subscribe", "c1", 1), ("subscribe", "c2", 2), ("psubscribe", "p*", 3),
                                     ("message", "c1", "one"), ("pmessage", "px", "two")])
        self.assertEqual(len(kinds), 9, kinds)
        self.assertEqual(r["extra"], {"ok": None})

    def test_blocking_commands(self):
        def blocking(port):
            c, b = redis.Redis(port=port, socket_timeout=10), redis.Redis(port=port, socket_timeout=30)
            admin = self.admin()
            r = {"timesOut": py_outcome(lambda: b.blpop("empty", timeout=0.2))}
            for name, call, push in (
                    ("blpop", lambda: b.blpop("bq", 0), lambda: c.rpush("bq", "x")),
                    ("brpoplpush", lambda: b.brpoplpush("src", "dst", 0), lambda: c.rpush("src", "y")),
                    ("bzpopmin", lambda: b.bzpopmin("zq", 0), lambda: c.zadd("zq", {"m": 3})),
                    ("xread", lambda: b.xread({"xs": "$"}, block=0), lambda: c.xadd("xs", {"f": "v"}, id="5-1"))):
                job = Background(call)
                r[name + "Blocked"] = lib.wait_for(lambda: blocked_clients(admin) >= 1, "a blocked client")
                push()
                r[name] = job.result(10)
            admin.close()
            return r
        r = self.both(blocking)
        self.assertEqual(r["blpop"], {"ok": ["bq", "x"]})
        self.assertEqual(r["timesOut"], {"ok": None})
        self.assertEqual(r["xread"], {"ok": [["xs", [["5-1", {"f": "v"}]]]]})

    def test_connection_pools(self):
        def pools(port):
            r = {}
            pool = redis.ConnectionPool(port=port, max_connections=4, socket_timeout=10)
            c = redis.Redis(connection_pool=pool)
            errors = []

            def work():
                try:
                    for _ in range(200):
                        c.incr("shared")
                except Exception as exc:  # reported below
                    errors.append(repr(exc))
            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            r["shared"] = py_outcome(lambda: c.get("shared"))
            r["errors"] = errors
            # Too many threads for the pool: ConnectionError, as direct.
            r["exhausted"] = py_outcome(lambda: [pool.get_connection("GET") for _ in range(5)])
            pool.disconnect()
            blocking_pool = redis.BlockingConnectionPool(port=port, max_connections=2, timeout=0.3, socket_timeout=10)
            b = redis.Redis(connection_pool=blocking_pool)
            b.set("k", "v")
            held = [blocking_pool.get_connection("GET") for _ in range(2)]
            r["blockingTimeout"] = py_outcome(lambda: blocking_pool.get_connection("GET"))
            for conn in held:
                blocking_pool.release(conn)
            r["blockingAfter"] = py_outcome(lambda: b.get("k"))
            blocking_pool.disconnect()
            # A pool with a database and a name: each new connection sets them up.
            named = redis.Redis(port=port, db=5, client_name="pooled", socket_timeout=10)
            named.set("in5", "yes")
            r["named"] = [py_outcome(lambda: named.client_getname()), py_outcome(lambda: named.get("in5")),
                          py_outcome(lambda: redis.Redis(port=port, socket_timeout=10).get("in5"))]
            named.connection_pool.disconnect()
            r["namedAgain"] = py_outcome(lambda: [named.client_getname(), named.get("in5")])
            # Health checks: an idle connection is PINGed before its next command.
            checked = redis.Redis(port=port, health_check_interval=0.1, socket_timeout=10)
            checked.set("h", "1")
            time.sleep(0.3)
            r["healthChecked"] = py_outcome(lambda: checked.get("h"))
            for client in (c, b, named, checked):
                client.close()
            return r
        r = self.both(pools)
        self.assertEqual(r["shared"], {"ok": "800"})
        self.assertEqual(r["errors"], [])
        self.assertEqual(r["exhausted"]["error"], "ConnectionError")
        self.assertEqual(r["blockingTimeout"]["error"], "ConnectionError")
        self.assertEqual(r["named"], [{"ok": "pooled"}, {"ok": "yes"}, {"ok": None}])

    def py_crash(self, port, retrying):
        """redis-py clients across a SIGKILL of Redis and a restart on the
        same port: an idle client, a writer thread, a subscriber and a client
        blocked in BLPOP.

        retrying: the clients have a Retry, set as redis-py 4.3 documents it
        (retry= and retry_on_error=[ConnectionError, TimeoutError]). Without
        it, the ConnectionError reaches the application, whose own loop (the
        writer, the subscriber's get_message loop) carries on."""
        self.fresh()
        options = {"socket_timeout": 20}
        if retrying:
            options.update(retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), 60),
                           retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        c = redis.Redis(port=port, **options)
        blocked = redis.Redis(port=port, **options)
        sub = redis.Redis(port=port, **options).pubsub()
        r = {"before": {}, "down": {}, "after": {}}
        sub.subscribe("ch")
        r["before"]["subscribed"] = plain(sub.get_message(timeout=5))
        c.set("k", "old")
        c.get("k")  # the idle client's connection is bound through the proxy
        job = Background(lambda: blocked.blpop("bq", 0))
        with self.admin() as admin:
            r["before"]["blocked"] = eventually(lambda: blocked_clients(admin) >= 1, 5)

        errors, stop = [], threading.Event()

        def writer():  # as an application would: write, note errors, go on
            while not stop.is_set():
                try:
                    c.incr("writes")
                except redis.RedisError as exc:
                    errors.append(type(exc).__name__)
                time.sleep(0.05)
        worker = threading.Thread(target=writer, daemon=True)
        worker.start()

        self.kill_redis()
        # While Redis is down. (In a thread: with a Retry, a call may go on
        # retrying until Redis is back.)
        down = Background(lambda: [py_outcome(lambda: c.get("k"), port), py_outcome(lambda: c.get("k"), port)])
        seen = set()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            seen.add(py_outcome(lambda: sub.get_message(timeout=0.1), port).get("error", "no error"))
            time.sleep(0.05)
        # (a get_message that timed out before the proxy closed is no error)
        r["down"]["subscriberSaw"] = sorted(seen - {"no error"})
        if not retrying:
            r["down"]["blocked"] = job.result(5)
            r["down"]["commands"] = calls(down.result(5))

        self.start_redis()
        if retrying:
            r["down"]["commands"] = calls(down.result(25))
        # Each client works again on its own: a command...
        r["after"]["command"] = eventually(lambda: py_outcome(lambda: c.get("k")) == {"ok": None}, 10)
        # ... the subscriber (the application keeps calling get_message) ...
        received, i = [], 0
        deadline = time.monotonic() + 10
        publisher = redis.Redis(port=port, socket_timeout=5)
        while not received and time.monotonic() < deadline:
            py_outcome(lambda: publisher.publish("ch", f"after-{i}"))
            i += 1
            message = py_outcome(lambda: sub.get_message(timeout=0.2)).get("ok")
            if isinstance(message, dict) and message.get("type") == "message":
                received.append(message["data"])
        r["after"]["subscriberBack"] = bool(received)
        # ... and the blocked client: with a Retry its BLPOP is sent again and
        # gets the element pushed after the restart.
        if retrying:
            with self.admin() as admin:
                r["after"]["blockedAgain"] = eventually(lambda: blocked_clients(admin) >= 1 or job.outcome, 10) is True
            publisher.rpush("bq", "x")
            r["after"]["blocked"] = job.result(10)
        stop.set()
        worker.join(25)
        r["after"]["writesWork"] = py_outcome(lambda: c.incr("writes") > 0)
        r["writerErrors"] = sorted(set(errors))
        for client in (c, blocked, publisher):
            client.close()
        sub.close()
        return r

    def test_crash_without_retry(self):
        direct = self.py_crash(self.redis_port, retrying=False)
        proxied = self.py_crash(self.proxy_port, retrying=False)
        # What redis-py does against Redis itself.
        self.assertEqual([o.get("error") for o in direct["down"]["commands"]], ["ConnectionError"] * 2)
        self.assertEqual(direct["down"]["blocked"]["error"], "ConnectionError")
        self.assertEqual(direct["down"]["subscriberSaw"], ["ConnectionError"])
        self.assertTrue(direct["after"]["subscriberBack"])
        self.assertEqual(direct["writerErrors"], ["ConnectionError"])
        # One difference, by design: against Redis a command while it is down
        # is refused at once; the proxy makes it wait for Redis (at most
        # hold_timeout_ms), then closes, so it either succeeds once Redis is
        # back or fails with the same ConnectionError, later.
        for o in proxied["down"]["commands"]:
            self.assertIn(o.get("error", "ok"), ("ConnectionError", "ok"), proxied["down"])
        for result in (direct, proxied):
            del result["down"]["commands"]
        self.assertSame(strip_messages(direct), strip_messages(proxied), "redis-py across a Redis crash, no Retry")

    def test_crash_with_retry(self):
        direct = self.py_crash(self.redis_port, retrying=True)
        proxied = self.py_crash(self.proxy_port, retrying=True)
        self.assertEqual(direct["after"]["blocked"], {"ok": ["bq", "x"]})  # the Retry re-sent it
        self.assertTrue(direct["after"]["subscriberBack"])
        self.assertEqual([o.get("error") for o in direct["down"]["commands"]], ["ConnectionError"] * 2)
        # One difference is allowed. Against Redis, a refused connect happens
        # in ConnectionPool.get_connection(), outside the Retry (redis-py
        # 4.3), so a command while Redis is down fails at once; the proxy
        # accepts the connection and makes the command wait for Redis, then
        # closes (which the Retry retries), so such a command may instead
        # wait and succeed once Redis is back.
        # What must never reach the application is anything but a
        # ConnectionError (a ResponseError is not retried).
        for o in proxied["down"]["commands"]:
            self.assertIn(o.get("error", "ok"), ("ConnectionError", "ok"), proxied["down"])
        self.assertLessEqual(set(proxied["writerErrors"]), {"ConnectionError"}, proxied)
        for result in (direct, proxied):
            del result["down"]["commands"], result["writerErrors"]
        self.assertSame(strip_messages(direct), strip_messages(proxied), "redis-py across a Redis crash, with Retry")


def strip_messages(result):
    """Error classes only: a refused connection (direct) and one the proxy
    closes say different things, and both are a ConnectionError."""
    if isinstance(result, dict):
        if "error" in result and "message" in result:
            return {"error": result["error"]}
        return {k: strip_messages(v) for k, v in result.items()}
    if isinstance(result, list):
        return [strip_messages(v) for v in result]
    return result


class QuitWhileSubscribed(ClientTest):
    """QUIT from subscribed mode: +OK and the close, as from Redis, and the
    proxy does not count it as a lost Redis connection."""

    def exchange(self, port):
        sock, reader = lib.connect(port)
        with sock:
            sock.sendall(encode("SUBSCRIBE", "ch") + encode("PSUBSCRIBE", "p*"))
            replies = [reader.reply(), reader.reply()]
            sock.sendall(encode("QUIT"))
            replies.append(reader.reply())
            replies.append(reader.ending(timeout=5))
            return replies

    def test_quit_after_subscribe(self):
        self.fresh()
        before = metric(self.metrics_port, "redvip_proxy_backend_errors_total")
        proxied = self.exchange(self.proxy_port)
        direct = self.exchange(self.redis_port)
        self.assertEqual(direct[2:], [b"+OK\r\n", "eof"])
        self.assertEqual(proxied, direct)
        # The proxy's pool gets the connection back or closes it, quietly.
        time.sleep(0.3)
        log = self.proxy_log()
        self.assertEqual(metric(self.metrics_port, "redvip_proxy_backend_errors_total"), before,
                         f"QUIT after SUBSCRIBE counted as a lost Redis connection; the proxy's log:\n{log[-2000:]}")
        self.assertNotIn("session lost its Redis connection", log)


if __name__ == "__main__":
    unittest.main()
