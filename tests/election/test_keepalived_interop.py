"""redvip's election against Debian's keepalived 2.2: one of each in two
namespaces (a = redvip 10.77.0.1, b = keepalived 10.77.0.2), v3 (IPv4,
IPv6, unicast) and v2 with PASS authentication, redvip at the higher and at
the lower priority, either side killed (SIGKILL: no priority 0) and brought
back. At every settled
point exactly one of them believes it is master; redvip counts no discard
for keepalived's adverts and keepalived logs no invalid packet from redvip.

keepalived runs with --vrrp --dont-fork --log-console and its own config,
pid files and log in a temp dir; it adds the VIP itself, inside b only.
"""

import signal
import sys
import time
import unittest

import redvip_testlib as tl
from vrrp_testlib import Keepalived, Node, block_multicast, node_config

HIGH, LOW = 150, 100


class KeepalivedInterop(unittest.TestCase):

    def setUp(self):
        self.topo = tl.Topology(["a", "b"])
        self.addCleanup(self.topo.close)
        self.redvip_log = []
        self.keepalived_invalid = []

    # --- the two sides ----------------------------------------------------------------

    def start_redvip(self):
        self.node = Node(self.topo, "a", node_config(self.topo, "a", ["b"], self.prio_redvip,
                                                     **self.kw))
        return self.node

    def start_keepalived(self):
        self.ka = Keepalived(self.topo, "b", self.prio_keepalived, version=self.kw["version"],
                             interval_ms=self.kw["interval_ms"], auth=self.kw.get("auth", ""),
                             ipv6=self.kw.get("ipv6", False),
                             unicast_peers=["a"] if self.kw.get("unicast") else ())
        return self.ka

    def stop_redvip(self):
        self.redvip_log.append(self.node.log())
        self.node.stop()

    def note_keepalived(self):
        if self.ka.invalid_lines():
            self.keepalived_invalid.append(self.ka.log())

    def stop_keepalived(self):
        self.note_keepalived()
        self.ka.stop()

    # --- settled points -----------------------------------------------------------------

    def expect(self, redvip, keepalived, what):
        """Waits for redvip's and keepalived's states, then checks that they
        hold for a few more adverts: one master, never two."""
        tries = int(self.settle / 0.05)

        def both():
            r = self.node.state() if redvip else None
            k = self.ka.state() if keepalived else None
            return (r, k) == (redvip, keepalived)
        try:
            tl.wait_for(both, what, tries=tries, delay=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nredvip: {self.node.describe()}\nkeepalived:\n{self.ka.log()}") from None
        hold = self.interval * 3
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:  # polled: fails at the first change
            self.assertTrue(both(), f"{what}: did not hold for {hold} s")
            time.sleep(0.05)
        if redvip:
            self.assertEqual(self.node.status()["state"], redvip.capitalize())
        print(f"\n  settled: {what}: redvip {redvip}, keepalived {keepalived}", file=sys.stderr)

    def check_clean(self):
        status = self.node.status()
        self.assertEqual(status["discards_total"], 0, status["discards"])
        self.assertGreater(status["counters"]["adverts_accepted"], 0)
        self.stop_redvip()
        self.stop_keepalived()
        self.assertEqual(len(self.keepalived_invalid), 0,
                         "keepalived complained:\n" + "\n".join(self.keepalived_invalid))
        for log in self.redvip_log:
            self.assertNotIn("discarded", log)

    # --- the scenario -------------------------------------------------------------------

    def scenario(self, redvip_higher, **kw):
        self.kw = kw
        self.prio_redvip, self.prio_keepalived = (HIGH, LOW) if redvip_higher else (LOW, HIGH)
        # v2: 1 s adverts, Master_Down_Interval 3.4-3.6 s; v3: 100 ms adverts.
        self.settle = 12.0 if kw["version"] == 2 else 4.0
        self.interval = kw["interval_ms"] / 1000
        r_master = ("MASTER", "BACKUP") if redvip_higher else ("BACKUP", "MASTER")
        start_high, start_low, kill_high, kill_low = (
            (self.start_redvip, self.start_keepalived, self.kill_redvip, self.kill_keepalived)
            if redvip_higher else
            (self.start_keepalived, self.start_redvip, self.kill_keepalived, self.kill_redvip))

        start_high()
        start_low()
        self.expect(*r_master, "both started")
        kill_high()
        survivor = ("MASTER", None) if not redvip_higher else (None, "MASTER")
        self.expect(*survivor, "higher killed: the lower takes over")
        start_high()
        self.expect(*r_master, "higher back: it preempts")
        kill_low()
        gone = ("MASTER", None) if redvip_higher else (None, "MASTER")
        self.expect(*gone, "lower killed: the higher stays master")
        start_low()
        self.expect(*r_master, "lower back: it stays backup")
        self.check_clean()

    def kill_redvip(self):
        self.node.send(signal.SIGKILL)
        self.redvip_log.append(self.node.log())
        self.node.stop()

    def kill_keepalived(self):
        self.note_keepalived()
        self.ka.kill_vrrp_child()

    # --- the matrix ---------------------------------------------------------------------

    def test_v3_redvip_higher(self):
        self.scenario(True, version=3, interval_ms=100)

    def test_v3_redvip_lower(self):
        self.scenario(False, version=3, interval_ms=100)

    def test_v3_ipv6_redvip_higher(self):
        # keepalived sets IPV6_CHECKSUM: the kernel drops a bad one silently,
        # so a wrong checksum of ours would show as two masters here.
        self.scenario(True, version=3, interval_ms=100, ipv6=True)

    def test_v3_ipv6_redvip_lower(self):
        self.scenario(False, version=3, interval_ms=100, ipv6=True)

    def test_v3_unicast_redvip_lower_multicast_blocked(self):
        # keepalived's unicast_peer / unicast_src_ip against ours; the v3
        # checksum then covers the peer's address, not 224.0.0.18.
        block_multicast(self.topo)
        self.scenario(False, version=3, interval_ms=100, unicast=True)

    def test_v2_pass_redvip_higher(self):
        self.scenario(True, version=2, interval_ms=1000, auth="s3cret")

    def test_v2_pass_redvip_lower(self):
        self.scenario(False, version=2, interval_ms=1000, auth="s3cret")


if __name__ == "__main__":
    unittest.main()
