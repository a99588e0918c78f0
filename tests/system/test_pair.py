"""A two-node pair, each node a network namespace running redis-server and the
redvip daemon, and a client namespace that only knows VIP:6379. The daemon's
election, controller, VIP and proxy together: exactly one master whose Redis
is master while the other's replicates from it, and the takeovers the VRRP
timers promise."""

import json
import os
import signal
import socket
import time
import unittest

import redvip_testlib as lib
from redvip_testlib import encode

VIP = "10.77.0.100"
ADVERT_MS = 100
# RFC 5798 6.1: Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256.
SKEW_B_MS = (256 - 100) * ADVERT_MS / 256
MASTER_DOWN_B_MS = 3 * ADVERT_MS + SKEW_B_MS


def node_config(name, me, peer_name, peer, priority, workdir):
    return f"""
[node]
name = "{name}"
state_dir = "{workdir}/state"
[proxy]
listen = "{VIP}:6379"
[redis]
address = "{me}:6379"
[vrrp]
version = 3
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_interval_ms = {ADVERT_MS}
[[peer]]
name = "{peer_name}"
vrrp_address = "{peer}"
redis = "{peer}:6379"
[vip]
addresses = ["{VIP}/24"]
[health]
interval_ms = 100
timeout_ms = 300
fall = 2
rise = 2
[metrics]
listen = "127.0.0.1:9121"
[admin]
socket = "{workdir}/admin.sock"
"""


def status(socket_path, timeout=1.0):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(b'{"cmd":"status"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data)


class PairFixture:
    """Nodes a (priority 110) and b (100), each a namespace running redis-server
    and redvip, and a client namespace: for test cases (test_failover.py too)
    and bench/failover_windows.py. `preempt` and `extra` (TOML appended to
    both configs, "{workdir}" replaced by the node's own dir) vary it."""

    preempt = False
    extra = ""
    log_level = "debug"
    sync_delay = 0  # repl-diskless-sync-delay: Redis 7's default is 5 s

    def start_pair(self):
        self.topo = lib.Topology(["a", "b", "client"])
        self.redis, self.daemons, self.sockets, self.configs = {}, {}, {}, {}
        for name in ("a", "b"):
            self.start_redis(name)
        for name, peer, prio in (("a", "b", 110), ("b", "a", 100)):
            self.start_daemon(name, peer, prio)

    def stop_pair(self):
        for d in self.daemons.values():
            d.stop(signal.SIGKILL)
        # (a script running many pairs would otherwise keep every Redis until it exits)
        for r in self.redis.values():
            r.stop(signal.SIGKILL)
        self.topo.close()

    def start_redis(self, name, dir=None):
        # One replica: no reason to wait 5 s for others before a full sync.
        self.redis[name] = lib.RedisServer(host=self.topo.address(name), port=6379, netns=self.topo.netns(name),
                                           extra=["--repl-diskless-sync-delay", str(self.sync_delay)], dir=dir)

    def start_daemon(self, name, peer, prio):
        workdir = lib.temp_dir(f"redvip-{name}-")
        config = node_config(f"redis-{name}", self.topo.address(name), f"redis-{peer}", self.topo.address(peer),
                             prio, workdir)
        if self.preempt:
            config = config.replace("advert_interval_ms", "preempt = true\nadvert_interval_ms")
        config += self.extra.replace("{workdir}", workdir)
        self.sockets[name] = f"{workdir}/admin.sock"
        self.configs[name] = config
        self.daemons[name] = lib.Redvip(config, 6379, netns=self.topo.netns(name), log_level=self.log_level)

    def restart_daemon(self, name):
        """Starts a node's redvip again after it ended: same config, same state_dir."""
        self.daemons[name].stop(signal.SIGKILL)
        self.daemons[name] = lib.Redvip(self.configs[name], 6379, netns=self.topo.netns(name),
                                        log_level=self.log_level)

    def state(self, name):
        try:
            return status(self.sockets[name])["vrrp_state"]
        except (OSError, ValueError, KeyError):
            return None

    def role(self, name):
        """ROLE's first four words: ["master", ...] or ["slave", host, port, state]."""
        return self.redis[name].cli("ROLE", check=False).split()[:4]

    def is_master(self, name):
        return self.role(name)[:1] == ["master"]

    def metrics(self, name):
        """/metrics of a node, scraped on its own loopback."""
        scrape = ["/usr/bin/python3", "-c",
                  "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9121/metrics').read().decode())"]
        return self.topo.run(name, scrape).stdout

    def metric(self, name, metric):
        for line in self.metrics(name).splitlines():
            if line.startswith(metric + " "):
                return float(line.split()[1])
        raise AssertionError(f"{metric} not in {name}'s /metrics")

    def holds_vip(self, name):
        return f"inet {VIP}/" in self.topo.run(name, ["ip", "-4", "addr", "show", "dev", "eth0"]).stdout

    def client(self, *args):
        return self.topo.run("client", ["redis-cli", "-h", VIP, "-p", "6379", *args], check=False, timeout=5).stdout

    def wait_settled(self, master, backup, tries=300):
        lib.wait_for(lambda: self.state(master) == "MASTER" and self.state(backup) == "BACKUP",
                     f"{master} MASTER and {backup} BACKUP", tries=tries)
        lib.wait_for(lambda: self.is_master(master) and self.holds_vip(master) and not self.holds_vip(backup),
                     f"{master}'s Redis master and holding the VIP", tries=tries)
        master_addr = self.topo.address(master)
        lib.wait_for(lambda: self.role(backup) == ["slave", master_addr, "6379", "connected"],
                     f"{backup}'s Redis replicating from {master}", tries=tries)


class Pair(PairFixture, unittest.TestCase):
    def setUp(self):
        self.start_pair()

    def tearDown(self):
        self.stop_pair()

    def test_exactly_one_master_and_its_replica(self):
        self.wait_settled("a", "b")
        lib.wait_for(lambda: self.client("SET", "k", "v").strip() == "OK", "a write through the VIP", tries=100)
        self.assertEqual(self.client("GET", "k").strip(), "v")
        lib.wait_for(lambda: self.redis["b"].cli("GET", "k").strip() == "v", "the write on b's replica")
        s = status(self.sockets["b"])
        self.assertEqual(s["master"]["address"], self.topo.address("a"))
        self.assertEqual(s["priority"], 100)
        a = status(self.sockets["a"])
        self.assertEqual((a["vrrp_state"], a["proxy_serving_state"]), ("MASTER", "SERVING"))
        self.assertEqual(status(self.sockets["b"])["proxy_serving_state"], "FENCED")
        # `redvip status` reads the same socket.
        r = lib.run([lib.REDVIP_BIN, "status", "--config", self.daemons["a"].config, "--json"])
        self.assertEqual(json.loads(r.stdout)["vrrp_state"], "MASTER")
        table = lib.run([lib.REDVIP_BIN, "status", "--config", self.daemons["b"].config]).stdout
        self.assertIn("BACKUP", table)
        metrics = self.metrics("a")
        self.assertIn('redvip_vrrp_state{state="MASTER"} 1', metrics)
        self.assertIn('redvip_vip_held 1', metrics)
        self.assertIn('redvip_vrrp_state{state="BACKUP"} 1', self.metrics("b"))

    def test_kill_9_of_the_master_redvip(self):
        self.wait_settled("a", "b")
        start = time.monotonic()
        self.daemons["a"].stop(signal.SIGKILL)
        lib.wait_for(lambda: self.state("b") == "MASTER", "b to take over", tries=400, delay=0.005)
        took_ms = (time.monotonic() - start) * 1000
        print(f"\ntakeover after kill -9 of the master's redvip: {took_ms:.0f} ms "
              f"(Master_Down_Interval {MASTER_DOWN_B_MS:.0f} ms)")
        self.assertLess(took_ms, MASTER_DOWN_B_MS + 100 + 50)  # + the status poll's own cost
        lib.wait_for(lambda: self.is_master("b") and self.holds_vip("b"), "b's Redis promoted, VIP on b")
        lib.wait_for(lambda: self.client("SET", "after", "b").strip() == "OK", "writes through the VIP reach b")
        self.assertEqual(self.redis["b"].cli("GET", "after").strip(), "b")

    def test_graceful_stop_hands_over_after_skew_time(self):
        self.wait_settled("a", "b")
        start = time.monotonic()
        self.daemons["a"].proc.send_signal(signal.SIGTERM)
        lib.wait_for(lambda: self.state("b") == "MASTER", "b to take over", tries=400, delay=0.005)
        took_ms = (time.monotonic() - start) * 1000
        print(f"\ntakeover after a graceful stop: {took_ms:.0f} ms (Skew_Time {SKEW_B_MS:.0f} ms)")
        self.assertLess(took_ms, SKEW_B_MS + 100 + 50)
        self.assertEqual(self.daemons["a"].proc.wait(timeout=10), 0)
        self.assertFalse(self.holds_vip("a"))
        lib.wait_for(lambda: self.is_master("b") and self.holds_vip("b"), "b's Redis promoted, VIP on b")

    def test_kill_9_of_the_master_redis_hands_over_fast(self):
        self.wait_settled("a", "b")
        start = time.monotonic()
        self.redis["a"].stop(signal.SIGKILL)
        lib.wait_for(lambda: self.state("b") == "MASTER", "b to take over", tries=400, delay=0.005)
        took_ms = (time.monotonic() - start) * 1000
        print(f"\ntakeover after kill -9 of the master's redis-server: {took_ms:.0f} ms")
        self.assertLess(took_ms, SKEW_B_MS + 150 + 50)
        self.assertEqual(self.state("a"), "FAULT")
        lib.wait_for(lambda: self.is_master("b") and self.holds_vip("b"), "b's Redis promoted, VIP on b")
        lib.wait_for(lambda: self.client("SET", "after", "b").strip() == "OK", "writes through the VIP reach b")

    def test_a_link_that_comes_back_leaves_a_dead_redis_in_fault(self):
        # The link is one input of the node's health: coming back clears only
        # the link's part, not a Redis that still fails its checks.
        self.wait_settled("a", "b")
        self.topo.set_link("a", False)
        lib.wait_for(lambda: self.state("a") == "FAULT", "a in Fault with its link down")
        self.redis["a"].stop(signal.SIGKILL)
        lib.wait_for(lambda: self.state("b") == "MASTER", "b to take over", tries=200)
        self.topo.set_link("a", True)
        lib.wait_for(lambda: status(self.sockets["a"])["health"]["link_down"] is False, "a to see its link up")
        for _ in range(10):  # a second, at 100 ms adverts and checks
            self.assertEqual(self.state("a"), "FAULT")
            time.sleep(0.1)
        self.start_redis("a")  # back (empty): a leaves Fault as b's backup
        lib.wait_for(lambda: self.state("a") == "BACKUP", "a to leave Fault once its Redis is back", tries=200)
        self.assertEqual(self.state("b"), "MASTER")


if __name__ == "__main__":
    unittest.main()
