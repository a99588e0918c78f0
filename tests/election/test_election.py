"""election/ on a real network: vrrp_node (one Election on a raw socket)
inside namespaces built by redvip_testlib, addresses 10.77.0.0/16 only.

Run by ctest (label `election`), which sets REDVIP_VRRP_NODE. Every wait is
bounded; takeover times are printed to stderr and asserted against the RFC's
bounds plus a small scheduling margin.
"""

import signal
import sys
import unittest

import redvip_testlib as tl
from vrrp_testlib import (Node, assert_steady, block_multicast, node_config, send_raw, vrrp_packet,
                          wait_roles)


def report(what, seconds, bound):
    print(f"\n  {what}: {seconds * 1000:.1f} ms (bound {bound * 1000:.1f} ms)", file=sys.stderr)


class TwoNodes(unittest.TestCase):
    """a = 10.77.0.1, b = 10.77.0.2 (c = 10.77.0.3 only sends packets)."""

    def setUp(self):
        self.topo = tl.Topology(["a", "b", "c"])
        self.addCleanup(self.topo.close)

    def start(self, host, peer, priority, **kw):
        return Node(self.topo, host, node_config(self.topo, host, [peer], priority, **kw))

    def pair(self, prio_a, prio_b, **kw):
        return self.start("a", "b", prio_a, **kw), self.start("b", "a", prio_b, **kw)

    # --- Election ---------------------------------------------------------------------

    def check_election(self, prio_a, prio_b, winner, both_master_first=False, **kw):
        if both_master_first:
            block_multicast(self.topo)
        a, b = self.pair(prio_a, prio_b, **kw)
        if both_master_first:
            # RFC 5798 §6.4.2: a Backup follows any master of its own priority;
            # the address breaks the tie only between two Masters (§6.4.3).
            for n in (a, b):
                n.wait_event("MASTER", tries=200, delay=0.05)
            block_multicast(self.topo, blocked=False)
        master, backup = (a, b) if winner == "a" else (b, a)
        tries = 300 if kw.get("version") == 2 else 100  # v2: 3 s adverts + skew
        wait_roles(master, [backup], tries=tries, delay=0.05)
        seen = backup.status()["master"]
        self.b_seen = seen["address"]
        if not kw.get("ipv6"):
            self.assertEqual(seen["address"], self.topo.address(winner))
        self.assertEqual(seen["priority"], prio_a if winner == "a" else prio_b)
        # Settled means it stays so: no transition over a few more adverts.
        assert_steady([a, b], 3.5 if kw.get("version") == 2 else 0.5)
        for n in (a, b):
            self.assertEqual(n.status()["discards_total"], 0, n.describe())

    def test_v3_higher_priority_wins(self):
        self.check_election(110, 100, "a")

    def test_v3_equal_priority_higher_address_wins(self):
        self.check_election(100, 100, "b", both_master_first=True)

    def test_v3_ipv6_higher_priority_wins(self):
        # Adverts from the link-local address to ff02::12, hop limit 255, the
        # checksum over RFC 2460's pseudo-header computed by us both ways.
        self.check_election(110, 100, "a", ipv6=True)
        self.assertTrue(self.b_seen.startswith("fe80:"), self.b_seen)

    def test_v2_higher_priority_wins(self):
        self.check_election(100, 120, "b", version=2, interval_ms=1000, auth="s3cret")

    def test_v2_equal_priority_higher_address_wins(self):
        self.check_election(100, 100, "b", both_master_first=True, version=2, interval_ms=1000)

    # --- Failover -----------------------------------------------------------------------

    def takeover(self, trigger, bound_of, what, **kw):
        """a (110) master, b (100) backup; `trigger(a)` returns the time it
        acted; b must say MASTER within bound_of(b's status) seconds."""
        a, b = self.pair(110, 100, **kw)
        wait_roles(a, [b], tries=300, delay=0.05)
        status = b.status()
        bound = bound_of(status)
        since = len(b.events())
        t0 = trigger(a)
        elapsed = b.wait_event("MASTER", since=since, tries=300, delay=0.02).t - t0
        report(what, elapsed, bound)
        self.assertLessEqual(elapsed, bound, b.describe())
        return a, b, elapsed

    def assert_resigned(self, b):
        """b heard a's priority 0 advert (RFC 5798 §6.4.3 "Send an
        ADVERTISEMENT with Priority = 0"): it took over after Skew_Time, for
        that reason (once master it forgets whom it followed)."""
        self.assertEqual(b.status()["transitions"][-1]["reason"], "master resigned")

    @staticmethod
    def mdi(status):
        return status["master_down_interval_us"] / 1e6

    @staticmethod
    def skew(status):
        return status["skew_time_us"] / 1e6

    def test_v3_kill_9_takeover_within_master_down_interval(self):
        _, b, elapsed = self.takeover(lambda a: a.send(signal.SIGKILL),
                                      lambda s: self.mdi(s) + 0.1, "v3 kill -9 takeover")
        self.assertEqual(b.status()["transitions"][-1]["reason"], "master down")  # no goodbye from a crash
        self.assertLess(elapsed, 0.5)  # 100 ms adverts: 3 x 100 + skew 60 ms, well under 500

    def test_v2_kill_9_takeover_within_master_down_interval(self):
        self.takeover(lambda a: a.send(signal.SIGKILL), lambda s: self.mdi(s) + 0.1,
                      "v2 kill -9 takeover", version=2, interval_ms=1000)

    def test_v3_sigterm_takeover_within_skew_time(self):
        a, b, _ = self.takeover(lambda a: a.send(signal.SIGTERM), lambda s: self.skew(s) + 0.1,
                                "v3 SIGTERM takeover")
        self.assert_resigned(b)
        a.wait_event("EXIT")
        self.assertEqual(a.proc.wait(timeout=5), 0)

    def test_v3_fault_takeover_within_skew_time_and_recovery(self):
        a, b, _ = self.takeover(lambda a: a.send(signal.SIGUSR1), lambda s: self.skew(s) + 0.15,
                                "v3 fault (SIGUSR1) takeover")
        self.assert_resigned(b)
        a.wait_event("FAULT")
        self.assertEqual(a.status()["state"], "Fault")
        # Healthy again: a rejoins as backup, then preempts (higher priority).
        since = len(a.events())
        a.send(signal.SIGUSR2)
        a.wait_event("BACKUP", since=since)
        wait_roles(a, [b], tries=100, delay=0.05)

    # --- Unicast ------------------------------------------------------------------------

    def test_multicast_blocked_control_both_become_master(self):
        block_multicast(self.topo)
        a, b = self.pair(110, 100)
        for n in (a, b):
            n.wait_event("MASTER", tries=100, delay=0.05)
        for n in (a, b):
            self.assertEqual(n.status()["counters"]["adverts_accepted"], 0, n.describe())

    def test_unicast_works_with_multicast_blocked(self):
        block_multicast(self.topo)
        a, b = self.pair(110, 100, unicast=True)
        wait_roles(a, [b], tries=100, delay=0.05)
        self.assertTrue(b.status()["unicast"])
        self.assertGreater(b.status()["counters"]["adverts_accepted"], 0)
        # A stranger's valid, higher-priority advert is refused: not a peer.
        good = vrrp_packet(self.topo.address("c"), dst=self.topo.address("b"), priority=255)
        send_raw(self.topo, "c", [(good, 255, self.topo.address("b"))] * 3)
        tl.wait_for(lambda: b.status()["counters"]["unknown_peer"] == 3, "unknown_peer == 3")
        self.assertEqual(b.state(), "BACKUP")
        # And failover works over unicast too.
        since = len(b.events())
        t0 = a.send(signal.SIGKILL)
        elapsed = b.wait_event("MASTER", since=since).t - t0
        report("v3 unicast kill -9 takeover", elapsed, 0.46)
        self.assertLessEqual(elapsed, 0.46)

    # --- Hostile input ------------------------------------------------------------------

    def hostile(self, cases, **kw):
        """cases: [(packet, ttl, counter name)], sent from c to the group: each
        must bump that counter by one on both nodes and change nothing else."""
        a, b = self.pair(110, 100, **kw)
        wait_roles(a, [b], tries=300, delay=0.05)
        before = {n.host: n.status() for n in (a, b)}
        send_raw(self.topo, "c", [(p, ttl, "224.0.0.18") for p, ttl, _ in cases])
        expected = {}
        for _, _, name in cases:
            expected[name] = expected.get(name, 0) + 1
        for n in (a, b):
            def counted(n=n):
                got = n.status()["discards"]
                return all(got[k] - before[n.host]["discards"][k] == v for k, v in expected.items())
            tl.wait_for(counted, f"{n.host} discards {expected}", tries=100, delay=0.05)
            after = n.status()
            print(f"\n  {n.host} discards: { {k: v for k, v in after['discards'].items() if v} }",
                  file=sys.stderr)
            self.assertEqual(after["discards_total"] - before[n.host]["discards_total"],
                             sum(expected.values()))
            self.assertEqual(after["transitions"], before[n.host]["transitions"], n.describe())
            log = n.log()
            for name in expected:  # rate-limited: one line per reason, however many packets
                self.assertEqual(log.count(name), 1, f"{name} in\n{log}")
        self.assertEqual((a.state(), b.state()), ("MASTER", "BACKUP"))

    def test_v3_hostile_packets_are_counted_and_change_nothing(self):
        c = self.topo.address("c")
        good = vrrp_packet(c)  # priority 255: would win if it were ever accepted
        self.hostile([
            (good[:6], 255, "vrrpv3StatisticsPacketLengthErrors"),            # truncated
            (vrrp_packet(c, count=2), 255, "vrrpv3StatisticsPacketLengthErrors"),  # count lies
            (good, 64, "vrrpv3StatisticsIpTtlErrors"),                        # routed
            (vrrp_packet(c, checksum_delta=1), 255, "vrrpv3RouterChecksumErrors"),
            (vrrp_packet(c, version=5), 255, "vrrpv3RouterVersionErrors"),    # malformed
            (vrrp_packet(c, kind=2), 255, "vrrpv3StatisticsRcvdInvalidTypePackets"),
            (vrrp_packet(c, vrid=52), 255, "vrrpv3RouterVrIdErrors"),         # foreign VRID
            (vrrp_packet(c, vrid=52, priority=100), 255, "vrrpv3RouterVrIdErrors"),
            (vrrp_packet(c, addresses=("10.77.0.200",)), 255, "vrrpv3StatisticsAddressListErrors"),
            (vrrp_packet(c, interval=0), 255, "vrrpv3StatisticsAdvIntervalErrors"),
            (vrrp_packet(c, version=2, interval=1), 255, "vrrpv3RouterVersionErrors"),  # v2 at v3
            (b"\xff" * 3, 255, "vrrpv3StatisticsPacketLengthErrors"),         # garbage
        ])

    def test_v2_hostile_auth_packets_are_counted_and_change_nothing(self):
        c = self.topo.address("c")

        def v2(**kw):
            args = dict(version=2, interval=1, auth_type=1, password=b"s3cret")
            args.update(kw)
            return vrrp_packet(c, **args)
        self.hostile([
            (v2(password=b"guess"), 255, "vrrpStatsAuthFailures"),            # wrong password
            (v2(password=b"s3cret!"), 255, "vrrpStatsAuthFailures"),
            (v2(auth_type=0, password=b""), 255, "vrrpStatsAuthTypeMismatch"),
            (v2(auth_type=7), 255, "vrrpStatsInvalidAuthType"),
            (v2(interval=2), 255, "vrrpv3StatisticsAdvIntervalErrors"),      # RFC 3768 §7.1
            (v2(checksum_delta=1), 255, "vrrpv3RouterChecksumErrors"),
            (v2(), 1, "vrrpv3StatisticsIpTtlErrors"),
            (v2(vrid=9), 255, "vrrpv3RouterVrIdErrors"),
            (v2()[:-3], 255, "vrrpv3StatisticsPacketLengthErrors"),           # truncated auth
        ], version=2, interval_ms=1000, auth="s3cret")


if __name__ == "__main__":
    unittest.main()
