"""Deployment: the systemd contract of the real daemon (READY=1, WATCHDOG=1
from the event loop, STOPPING=1), the Debian package cpack builds, the unit
file, and the example pair configs for two real hosts.

The daemon runs as a plain proxy on loopback with NOTIFY_SOCKET pointing at a
unix datagram socket this test binds: it plays systemd's part. The package is
built into a temp dir and only inspected (dpkg-deb), never installed.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import unittest

import redvip_testlib as lib

BUILD_DIR = os.environ.get("REDVIP_BUILD_DIR", "")
CONF = os.path.join(lib.SOURCE_DIR, "conf")
EXAMPLES = os.path.join(CONF, "examples")
UNIT = os.path.join(CONF, "redvip@.service")

WATCHDOG_USEC = 400_000            # systemd's WatchdogSec, in the test: 0.4 s
PING_S = WATCHDOG_USEC / 2 / 1e6   # redvip pings at half of it


class Notifications:
    """The receiving end of sd_notify: a unix datagram socket in a temp dir."""

    def __init__(self):
        self.path = os.path.join(lib.temp_dir("redvip-notify-"), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def close(self):
        self.sock.close()

    def receive(self, seconds):
        """Every assignment (READY=1, WATCHDOG=1, ...) received within `seconds`,
        as (monotonic time, text)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            now = time.monotonic()
            got += [(now, line) for line in data.decode().split("\n") if line]
        return got

    def wait_for(self, text, seconds):
        """Receives until `text` arrives (bounded); returns everything received."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            got += self.receive(min(left, 0.1))
            if any(line == text for _, line in got):
                return got
        raise AssertionError(f"no {text} within {seconds} s (got {[line for _, line in got]})")

    def drain(self):
        return self.receive(0.01)


def watchdogs(got):
    return [t for t, line in got if line == "WATCHDOG=1"]


def process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class Watchdog(unittest.TestCase):

    def setUp(self):
        self.redis = lib.RedisServer()
        self.addCleanup(self.redis.stop)
        self.notify = Notifications()
        self.addCleanup(self.notify.close)

    def start(self, env_extra):
        port = lib.free_port()
        workdir = lib.temp_dir("redvip-deploy-")
        config = os.path.join(workdir, "redvip.toml")
        with open(config, "w") as f:
            f.write(lib.plain_config(port, self.redis.port))
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "WATCHDOG_USEC")}
        env.update(NOTIFY_SOCKET=self.notify.path, **env_extra)
        self.log_path = os.path.join(workdir, "redvip.log")
        log = open(self.log_path, "w")
        self.addCleanup(log.close)
        proc = lib.start_process([lib.REDVIP_BIN, "--config", config], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        self.addCleanup(lib.stop_process, proc)
        self.port = port
        return proc

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def test_pings_from_the_event_loop(self):
        proc = self.start({"WATCHDOG_USEC": str(WATCHDOG_USEC)})
        self.notify.wait_for("READY=1", 10)

        # Running: a ping every 0.2 s. At least 3 in 1.6 s (8 expected) and
        # never faster than the half interval (plus slack for batching).
        window = 1.6
        got = watchdogs(self.notify.receive(window))
        self.assertGreaterEqual(len(got), 3, f"pings in {window} s: {len(got)}\n{self.log()}")
        self.assertLessEqual(len(got), window / PING_S + 2, f"too many pings: {len(got)}")

        # Stopped (SIGSTOP): the loop cannot run, so no ping for 3 watchdog
        # intervals, long enough for systemd to have killed it.
        os.kill(proc.pid, signal.SIGSTOP)
        lib.wait_for(lambda: process_state(proc.pid) == "T", "redvip stopped (state T)")
        self.notify.drain()  # sent before the stop took effect
        silent = 3 * WATCHDOG_USEC / 1e6
        self.assertEqual(watchdogs(self.notify.receive(silent)), [],
                         f"WATCHDOG=1 from a stopped process within {silent} s")

        # Continued: the pings resume, and the proxy still serves.
        os.kill(proc.pid, signal.SIGCONT)
        resumed = watchdogs(self.notify.receive(1.2))
        self.assertGreaterEqual(len(resumed), 2, f"pings after SIGCONT: {len(resumed)}\n{self.log()}")
        sock, reader = lib.connect(self.port)
        with sock:
            sock.sendall(lib.encode("PING"))
            self.assertEqual(reader.reply(), b"+PONG\r\n")

        # SIGTERM: STOPPING=1, then a clean exit.
        proc.send_signal(signal.SIGTERM)
        self.notify.wait_for("STOPPING=1", 10)
        self.assertEqual(proc.wait(timeout=10), 0, self.log())

    def test_no_pings_for_another_pid(self):
        # WATCHDOG_PID names another process (systemd's rule for a watchdog
        # meant for a parent): redvip must not ping.
        self.start({"WATCHDOG_USEC": str(WATCHDOG_USEC), "WATCHDOG_PID": str(os.getpid())})
        self.notify.wait_for("READY=1", 10)
        self.assertEqual(watchdogs(self.notify.receive(1.0)), [])

    def test_no_pings_without_a_watchdog(self):
        self.start({})
        self.notify.wait_for("READY=1", 10)
        self.assertEqual(watchdogs(self.notify.receive(1.0)), [])


def unit_settings(text):
    """key -> [values] of a unit file (enough for ours: no continuation lines)."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


class Package(unittest.TestCase):
    """cpack -G DEB in the build directory, inspected with dpkg-deb."""

    @classmethod
    def setUpClass(cls):
        if not BUILD_DIR:
            raise AssertionError("REDVIP_BUILD_DIR is not set (run through ctest)")
        cls.out = lib.temp_dir("redvip-cpack-")
        result = subprocess.run(["cpack", "-G", "DEB", "-B", cls.out], cwd=BUILD_DIR, capture_output=True,
                                text=True, timeout=240)
        if result.returncode != 0:
            raise AssertionError(f"cpack failed:\n{result.stdout}\n{result.stderr}")
        debs = [f for f in os.listdir(cls.out) if f.endswith(".deb")]
        if len(debs) != 1:
            raise AssertionError(f"expected one .deb in {cls.out}, got {debs}")
        cls.deb = os.path.join(cls.out, debs[0])

    def field(self, name):
        return lib.run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_contents(self):
        listing = lib.run(["dpkg-deb", "-c", self.deb]).stdout
        paths = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
        for path in ["/usr/bin/redvip", "/usr/bin/redvip-bench", "/lib/systemd/system/redvip@.service",
                     "/etc/redvip/redvip.example.toml", "/usr/share/doc/redvip/examples/host-a.toml",
                     "/usr/share/doc/redvip/examples/host-b.toml",
                     "/usr/share/doc/redvip/examples/redis-pair.conf"]:
            self.assertIn(path, paths, listing)
        self.assertFalse([p for p in paths if p.startswith("/usr/local")], listing)

    def test_control(self):
        self.assertEqual(self.field("Package"), "redvip")
        depends = self.field("Depends")
        self.assertTrue(depends, "empty Depends")
        # Computed by dpkg-shlibdeps: the C library and libsystemd (sd_notify).
        self.assertIn("libc6", depends)
        self.assertIn("libsystemd0", depends)
        self.assertIn("redis-server", self.field("Recommends"))
        conffiles = lib.run(["dpkg-deb", "-I", self.deb, "conffiles"]).stdout.split()
        self.assertIn("/etc/redvip/redvip.example.toml", conffiles)
        # The unit runs as this user: the package must create it.
        postinst = lib.run(["dpkg-deb", "-I", self.deb, "postinst"]).stdout
        self.assertIn("adduser --system", postinst)

    def test_payload_runs(self):
        root = lib.temp_dir("redvip-deb-x-")
        lib.run(["dpkg-deb", "-x", self.deb, root])
        version = lib.run([os.path.join(root, "usr/bin/redvip"), "--version"]).stdout
        self.assertTrue(version.startswith("redvip "), version)
        with open(os.path.join(root, "lib/systemd/system/redvip@.service")) as a, open(UNIT) as b:
            self.assertEqual(a.read(), b.read())
        for name in ["redvip.example.toml"]:
            lib.run([lib.REDVIP_BIN, "--check-config", os.path.join(root, "etc/redvip", name)])


class Unit(unittest.TestCase):

    def setUp(self):
        with open(UNIT) as f:
            self.text = f.read()
        self.settings = unit_settings(self.text)

    def test_contract(self):
        """What the daemon and the README rely on."""
        s = self.settings
        self.assertEqual(s["Type"], ["notify"])
        self.assertTrue(s.get("WatchdogSec"))
        self.assertEqual(s["Restart"], ["on-failure"])
        self.assertEqual(s["ExecStart"], ["/usr/bin/redvip --config /etc/redvip/%i.toml"])
        caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
        self.assertEqual(set(s["AmbientCapabilities"][0].split()), caps)
        self.assertEqual(set(s["CapabilityBoundingSet"][0].split()), caps)
        self.assertEqual(s["User"], ["redvip"])
        self.assertEqual(s["RuntimeDirectory"], ["redvip"])
        self.assertIn("redvip", s["StateDirectory"][0].split())
        self.assertIn("redis-server.service", s["After"][0].split())
        self.assertIn("network-online.target", s["After"][0].split())

    def test_systemd_analyze_verify(self):
        # setup.sh installs systemd (not started: only its tools are used here).
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze not found: is the systemd package installed?")
        # A copy whose ExecStart is the built binary: verify checks it exists.
        d = lib.temp_dir("redvip-unit-")
        with open(os.path.join(d, "redvip@.service"), "w") as f:
            f.write(self.text.replace("/usr/bin/redvip", lib.REDVIP_BIN))
        result = subprocess.run([analyze, "verify", os.path.join(d, "redvip@deploy-test.service")],
                                capture_output=True, text=True, timeout=60, cwd=d)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        # Unknown keys and bad values are only warnings: none may name our unit.
        complaints = [line for line in output.splitlines() if "redvip@" in line]
        self.assertEqual(complaints, [], output)


class ExamplePair(unittest.TestCase):

    def load(self, name):
        with open(os.path.join(EXAMPLES, name), "rb") as f:
            return tomllib.load(f)

    def test_check_config(self):
        for name in ["host-a.toml", "host-b.toml"]:
            with self.subTest(name):
                result = lib.run([lib.REDVIP_BIN, "--check-config", os.path.join(EXAMPLES, name)], check=False)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("valid", result.stdout)

    def test_mirror_each_other(self):
        a, b = self.load("host-a.toml"), self.load("host-b.toml")
        for x, y in [(a, b), (b, a)]:
            peer = x["peer"][0]
            self.assertEqual(peer["name"], y["node"]["name"])
            self.assertEqual(peer["redis"], y["redis"]["address"])
            self.assertEqual(peer["vrrp_address"], y["redis"]["address"].rsplit(":", 1)[0])
        for key in ["version", "virtual_router_id", "advert_interval_ms", "preempt"]:
            self.assertEqual(a["vrrp"][key], b["vrrp"][key], key)
        self.assertNotEqual(a["vrrp"]["priority"], b["vrrp"]["priority"])
        for section, key in [("vip", "addresses"), ("proxy", "listen"), ("redis", "password"),
                             ("admin", "socket"), ("node", "state_dir")]:
            self.assertEqual(a[section][key], b[section][key], f"{section}.{key}")
        # One instance name, as redvip@.service's directories expect.
        self.assertTrue(a["admin"]["socket"].startswith("/run/redvip/"))
        self.assertTrue(a["node"]["state_dir"].startswith("/var/lib/redvip/"))

    def test_redis_pair_conf(self):
        """Every directive is valid for Debian's redis-server, replicaof is not
        set, and the password is the one the example configs use."""
        path = os.path.join(EXAMPLES, "redis-pair.conf")
        directives = {}
        with open(path) as f:
            for line in f:
                words = line.split()
                if words and not words[0].startswith("#"):
                    directives[words[0].lower()] = words[1:]
        self.assertNotIn("replicaof", directives)
        self.assertNotIn("slaveof", directives)
        self.assertEqual(directives["requirepass"], directives["masterauth"])
        self.assertEqual(directives["replica-read-only"], ["yes"])
        self.assertEqual(directives["repl-diskless-sync"], ["yes"])
        password = directives["requirepass"][0]
        self.assertEqual(self.load("host-a.toml")["redis"]["password"], password)

        d = lib.temp_dir("redvip-redis-pair-")
        port = lib.free_port()
        proc = lib.start_process(["redis-server", path, "--bind", "127.0.0.1", "--port", str(port),
                                  "--dir", d, "--daemonize", "no", "--logfile", "redis.log"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lib.stop_process, proc)
        cli = ["redis-cli", "-p", str(port), "--no-auth-warning", "-a", password]

        def ping():
            if proc.poll() is not None:
                with open(os.path.join(d, "redis.log")) as f:
                    raise AssertionError(f"redis-server rejected {path}:\n{f.read()}")
            return lib.run(cli + ["PING"], check=False).stdout.strip() == "PONG"
        lib.wait_for(ping, "redis-server with redis-pair.conf")
        self.assertIn("role:master", lib.run(cli + ["INFO", "replication"]).stdout)
        self.assertEqual(lib.run(cli + ["CONFIG", "GET", "replica-read-only"]).stdout.split(),
                         ["replica-read-only", "yes"])


if __name__ == "__main__":
    unittest.main()
