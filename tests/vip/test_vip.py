"""vip/ against the real kernel, inside namespaces built by redvip_testlib.

Run by ctest (label `vip`), which sets REDVIP_VIP_DRIVER to the vip_driver
binary. Addresses: 10.77.0.0/16 and fd77::/16 only, on veth interfaces inside
namespaces this test creates; every namespace is removed, also on failure.
"""

import json
import os
import sys
import unittest

import redvip_testlib as tl

DRIVER = os.environ.get("REDVIP_VIP_DRIVER", "vip_driver")
VIP4, VIP6 = "10.77.0.100", "fd77::100"
P4, P6 = f"{VIP4}/24", f"{VIP6}/64"
PORT = 6390

# Answers every connection with the node's name: dual-stack, so one listener
# serves the IPv4 and the IPv6 VIP.
LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[2])))
s.listen()
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode())
    c.close()
"""

FETCH = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as s:
    print(s.recv(64).decode())
"""


def read(path):
    with open(path) as f:
        return f.read()


def addr_args(prefixes):
    return [arg for p in prefixes for arg in ("-a", p)]


def driver(topo, host, command, prefixes, *extra, interface="eth0", wrap=()):
    """Runs one driver operation in `host`; returns the CompletedProcess."""
    argv = list(wrap) + [DRIVER, command, "-i", interface] + addr_args(prefixes) + list(extra)
    return topo.run(host, argv, check=False)


def addresses(topo, host, dev="eth0"):
    """{address: addr_info} of `dev` as `ip -j` reports it."""
    out = topo.run(host, ["ip", "-j", "addr", "show", "dev", dev]).stdout
    return {a["local"]: a for link in json.loads(out) for a in link.get("addr_info", [])}


def mac(topo, host, dev="eth0"):
    return json.loads(topo.run(host, ["ip", "-j", "link", "show", "dev", dev]).stdout)[0]["address"]


def neighbour(topo, host, ip, dev="eth0"):
    """(lladdr, states) of `ip`'s entry in `host`'s neighbour table, or None."""
    family = "-6" if ":" in ip else "-4"
    entries = json.loads(topo.run(host, ["ip", family, "-j", "neigh", "show", ip, "dev", dev]).stdout or "[]")
    if not entries or "lladdr" not in entries[0]:
        return None
    return entries[0]["lladdr"], entries[0].get("state", [])


class Holder:
    """`vip_driver hold` in a node: watch, clean up, acquire; one line per event."""

    def __init__(self, topo, host, prefixes, *extra):
        d = tl.temp_dir("redvip-vip-")
        self.out_path, self.err_path = os.path.join(d, "events"), os.path.join(d, "log")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = tl.start_process([DRIVER, "hold", "-i", "eth0"] + addr_args(prefixes) + list(extra),
                                         netns=topo.netns(host), stdout=out, stderr=err)

    def events(self):
        return read(self.out_path).splitlines()

    def log(self):
        return read(self.err_path)

    def wait_event(self, line, tries=60):
        try:
            return tl.wait_for(lambda: line in self.events(), f"event {line!r}", tries=tries)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nevents: {self.events()}\nlog:\n{self.log()}") from None

    def stop(self):
        return tl.stop_process(self.proc)


class AddressTest(unittest.TestCase):
    """Add, remove, idempotency, labels and error paths on one node."""

    def setUp(self):
        self.topo = tl.Topology(["a"])
        self.addCleanup(self.topo.close)

    def test_add_and_remove_ipv4_with_label_and_ipv6_nodad(self):
        r = driver(self.topo, "a", "add", [P4, P6], "--label", "eth0:vip")
        self.assertEqual(r.returncode, 0, r.stderr)
        have = addresses(self.topo, "a")
        self.assertEqual(have[VIP4]["prefixlen"], 24)
        self.assertEqual(have[VIP4]["label"], "eth0:vip")
        self.assertEqual(have[VIP6]["prefixlen"], 64)
        self.assertTrue(have[VIP6].get("nodad"), have[VIP6])
        self.assertFalse(have[VIP6].get("tentative"), "usable at once, no DAD")

        r = driver(self.topo, "a", "remove", [P4, P6])
        self.assertEqual(r.returncode, 0, r.stderr)
        have = addresses(self.topo, "a")
        self.assertNotIn(VIP4, have)
        self.assertNotIn(VIP6, have)
        self.assertIn(self.topo.address("a"), have, "the node's own address is untouched")

    def test_add_and_remove_are_idempotent(self):
        for _ in range(2):
            r = driver(self.topo, "a", "add", [P4, P6])
            self.assertEqual(r.returncode, 0, r.stderr)
        out = self.topo.run("a", ["ip", "-j", "addr", "show", "dev", "eth0"]).stdout
        self.assertEqual(out.count(f'"{VIP4}"'), 1)
        self.assertEqual(out.count(f'"{VIP6}"'), 1)
        for _ in range(2):
            r = driver(self.topo, "a", "remove", [P4, P6])
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(VIP4, addresses(self.topo, "a"))

    def test_missing_interface_is_named_with_the_errno_text(self):
        r = driver(self.topo, "a", "add", [P4], interface="nosuch0")
        self.assertEqual(r.returncode, 1)
        for part in ("nosuch0", P4, "No such device"):
            self.assertIn(part, r.stderr)

    def test_address_already_on_another_interface_is_refused(self):
        self.topo.run("a", ["ip", "link", "add", "v1", "type", "veth", "peer", "name", "v2"])
        self.topo.run("a", ["ip", "addr", "add", f"{VIP4}/32", "dev", "v1"])
        r = driver(self.topo, "a", "add", [P4])
        self.assertEqual(r.returncode, 1)
        for part in ("eth0", P4, "Address already in use", "v1"):
            self.assertIn(part, r.stderr)
        self.assertNotIn(VIP4, addresses(self.topo, "a"))

    def test_no_permission_is_reported(self):
        no_net_admin = ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"]
        r = driver(self.topo, "a", "add", [P4], wrap=no_net_admin)
        self.assertEqual(r.returncode, 1)
        for part in ("eth0", P4, "Operation not permitted"):
            self.assertIn(part, r.stderr)

    def test_cleanup_removes_stale_vips_of_any_prefix_length_only(self):
        # A crashed run left its VIPs (one with another prefix length) next
        # to an address that is not ours.
        self.topo.run("a", ["ip", "addr", "add", f"{VIP4}/32", "dev", "eth0"])
        self.topo.run("a", ["ip", "addr", "add", P6, "dev", "eth0", "nodad"])
        self.topo.run("a", ["ip", "addr", "add", "10.77.0.55/32", "dev", "eth0"])
        r = driver(self.topo, "a", "cleanup", [P4, P6])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stale", r.stderr)
        have = addresses(self.topo, "a")
        self.assertNotIn(VIP4, have)
        self.assertNotIn(VIP6, have)
        self.assertIn("10.77.0.55", have)
        self.assertIn(self.topo.address("a"), have)


class HoldTest(unittest.TestCase):
    """The watch while held: repair, link down/up, release on SIGTERM."""

    def setUp(self):
        self.topo = tl.Topology(["a"])
        self.addCleanup(self.topo.close)

    def hold(self, *extra):
        holder = Holder(self.topo, "a", [P4, P6], *extra)
        self.addCleanup(holder.stop)
        holder.wait_event("acquired")
        return holder

    def test_stale_vip_is_removed_at_start(self):
        self.topo.run("a", ["ip", "addr", "add", f"{VIP4}/28", "dev", "eth0"])
        holder = self.hold()
        self.assertIn("stale", holder.log())
        have = addresses(self.topo, "a")
        self.assertEqual(have[VIP4]["prefixlen"], 24, "the stale /28 replaced by the configured /24")

    def test_externally_deleted_vip_is_restored(self):
        holder = self.hold()
        for prefix, ip in ((P4, VIP4), (P6, VIP6)):
            self.topo.run("a", ["ip", "addr", "del", prefix, "dev", "eth0"])
            holder.wait_event(f"repaired {prefix} ok")
            tl.wait_for(lambda: ip in addresses(self.topo, "a"), f"{ip} back on eth0")

    def test_carrier_loss_and_admin_down_are_reported(self):
        holder = self.hold()
        self.topo.set_link("a", False)  # the switch port: eth0 loses carrier
        holder.wait_event("link_down no carrier")
        self.topo.set_link("a", True)
        holder.wait_event("link_up")

        self.topo.run("a", ["ip", "link", "set", "eth0", "down"])
        holder.wait_event("link_down administratively down")
        self.topo.run("a", ["ip", "link", "set", "eth0", "up"])
        tl.wait_for(lambda: holder.events().count("link_up") == 2, "second link_up")
        # An admin down flushes IPv6 addresses; the VIP comes back with the link.
        tl.wait_for(lambda: VIP6 in addresses(self.topo, "a"), f"{VIP6} back after link up")
        self.assertIn(VIP4, addresses(self.topo, "a"))

    def test_sigterm_releases(self):
        holder = self.hold()
        self.assertEqual(holder.stop(), 0, holder.log())
        self.assertIn("released", holder.events())
        have = addresses(self.topo, "a")
        self.assertNotIn(VIP4, have)
        self.assertNotIn(VIP6, have)


class WireTest(unittest.TestCase):
    """The frames as a third party (tcpdump, in the client) decodes them."""

    def setUp(self):
        self.topo = tl.Topology(["a", "client"])
        self.addCleanup(self.topo.close)
        d = tl.temp_dir("redvip-vip-")
        self.cap_path, err_path = os.path.join(d, "capture"), os.path.join(d, "tcpdump")
        with open(self.cap_path, "w") as out, open(err_path, "w") as err:
            proc = tl.start_process(["tcpdump", "-i", "eth0", "-n", "-l", "-U", "-tt", "-vv", "-e",
                                     "arp or (icmp6 and ip6[40] == 136)"],
                                    netns=self.topo.netns("client"), stdout=out, stderr=err)
        self.addCleanup(tl.stop_process, proc)
        tl.wait_for(lambda: "listening on" in read(err_path), "tcpdump capturing")

    def frames(self, marker):
        """(timestamp, line) of each captured frame whose line has `marker`."""
        return [(float(line.split()[0]), line) for line in read(self.cap_path).splitlines() if marker in line]

    def test_burst_then_refresh_as_tcpdump_decodes_them(self):
        a_mac = mac(self.topo, "a")
        holder = Holder(self.topo, "a", [P4, P6], "--garp-count", "3", "--garp-interval-ms", "50",
                        "--refresh-ms", "400")
        self.addCleanup(holder.stop)
        holder.wait_event("acquired")
        garp = f"Request who-has {VIP4} (ff:ff:ff:ff:ff:ff) tell {VIP4}"
        na = f"[icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is {VIP6}, Flags [override]"
        # Three in the burst, then at least two refreshes.
        tl.wait_for(lambda: len(self.frames(garp)) >= 5 and len(self.frames(na)) >= 5, "burst and refreshes")
        for marker in (garp, na):
            frames = self.frames(marker)
            for _, line in frames:
                self.assertIn(f"{a_mac} > ", line, "sent from the interface's MAC")
            burst_gaps = [b[0] - a[0] for a, b in zip(frames, frames[1:3])]
            self.assertTrue(all(gap >= 0.04 for gap in burst_gaps), burst_gaps)
            self.assertGreaterEqual(frames[3][0] - frames[0][0], 0.35, "the refresh waits garp_refresh")
        self.assertIn("hlim 255", self.frames(na)[0][1])
        self.assertIn("ff02::1", self.frames(na)[0][1])


class FailoverTest(unittest.TestCase):
    """The VIP moves from a to b; the client's cache follows the announcement.

    The client's neighbour timers are set to minutes, so within this test
    nothing but b's GARP / NA can change its cached MAC for the VIP.
    """

    def setUp(self):
        self.topo = tl.Topology(["a", "b", "client"])
        self.addCleanup(self.topo.close)
        self.topo.run("client", ["ip", "addr", "add", "fd77::3/64", "dev", "eth0", "nodad"])
        for family in ("ipv4", "ipv6"):
            self.topo.run("client", ["sysctl", "-q", "-w",
                                     f"net.{family}.neigh.eth0.base_reachable_time_ms=600000",
                                     f"net.{family}.neigh.eth0.delay_first_probe_time=600"])
        for host in ("a", "b"):
            listener = tl.start_process([sys.executable, "-c", LISTENER, host, str(PORT)],
                                        netns=self.topo.netns(host))
            self.addCleanup(tl.stop_process, listener)
        self.mac = {host: mac(self.topo, host) for host in ("a", "b")}

    def fetch(self, ip):
        r = self.topo.run("client", [sys.executable, "-c", FETCH, ip, str(PORT)], check=False)
        return r.stdout.strip()

    def cache_a_then_move_to_b(self, ip, *b_extra):
        """a holds the VIP and the client caches a's MAC; then a releases and b acquires."""
        holder_a = Holder(self.topo, "a", [P4, P6])
        self.addCleanup(holder_a.stop)
        holder_a.wait_event("acquired")
        ping = ["ping", "-c", "1", "-W", "1", ip]
        tl.wait_for(lambda: self.topo.run("client", ping, check=False).returncode == 0, f"client pings {ip} on a")
        entry = neighbour(self.topo, "client", ip)
        self.assertIsNotNone(entry)
        self.assertEqual(entry[0], self.mac["a"])
        self.assertTrue({"REACHABLE", "STALE", "DELAY"} & set(entry[1]), entry)
        self.assertEqual(tl.wait_for(lambda: self.fetch(ip), f"connect to {ip}"), "a")

        self.assertEqual(holder_a.stop(), 0, holder_a.log())
        self.assertEqual(neighbour(self.topo, "client", ip)[0], self.mac["a"], "still cached before b announces")
        holder_b = Holder(self.topo, "b", [P4, P6], *b_extra)
        self.addCleanup(holder_b.stop)
        holder_b.wait_event("acquired")
        return holder_b

    def assert_moves_to_b(self, ip):
        self.cache_a_then_move_to_b(ip)
        # 1 s: the burst's first frame goes out before "acquired"; the ARP /
        # ND timers alone would take ten minutes here.
        tl.wait_for(lambda: neighbour(self.topo, "client", ip)[0] == self.mac["b"],
                    f"client caches {ip} at b's MAC", tries=20)
        self.assertEqual(self.fetch(ip), "b")

    def test_ipv4_gratuitous_arp_moves_the_client(self):
        self.assert_moves_to_b(VIP4)

    def test_ipv6_unsolicited_na_moves_the_client(self):
        self.assert_moves_to_b(VIP6)

    def test_without_announcements_the_client_keeps_the_old_mac(self):
        # The control: proves the two tests above measure the announcement,
        # not some other path that would refresh the cache.
        self.cache_a_then_move_to_b(VIP4, "--garp-count", "0")
        with self.assertRaises(AssertionError):
            tl.wait_for(lambda: neighbour(self.topo, "client", VIP4)[0] == self.mac["b"],
                        "no update without GARP", tries=20)


if __name__ == "__main__":
    unittest.main()
