"""Helpers for the election's integration tests (test_election.py,
test_keepalived_interop.py): vrrp_node and keepalived processes inside
redvip_testlib's namespaces, raw VRRP packets built here (independently of the
codec under test), bounded waits only.

Times: vrrp_node stamps every line with CLOCK_MONOTONIC (t=...), the clock of
time.monotonic(), so a takeover is measured from the moment the test sent the
signal to the moment the survivor's state machine changed state.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import redvip_testlib as tl

NODE = os.environ.get("REDVIP_VRRP_NODE", "vrrp_node")
VIP = "10.77.0.100"
VIP6 = "fd77::100"
VRID = 51
STATES = ("MASTER", "BACKUP", "FAULT", "STOPPED")


def read(path):
    with open(path) as f:
        return f.read()


def link_local(topo, host):
    """`host`'s IPv6 link-local address on eth0, once DAD is done with it."""
    def usable():
        out = json.loads(topo.run(host, ["ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "link"]).stdout)
        # iproute2 prints filtered-out addresses as objects without "local"
        return next((a["local"] for a in out[0].get("addr_info", [])
                     if a.get("local", "").startswith("fe80:") and not a.get("tentative")), None)
    return tl.wait_for(usable, f"{host}'s IPv6 link-local address", tries=100, delay=0.05)


def node_config(topo, host, peers, priority, version=3, interval_ms=100, auth="", unicast=False,
                preempt=True, vrid=VRID, ipv6=False):
    """A redvip TOML for `host` whose [[peer]]s are `peers` (host names).
    ipv6: the VIP is fd77::100 and the peers' VRRP addresses link-local."""
    me = topo.address(host)
    vip = f"{VIP6}/64" if ipv6 else f"{VIP}/24"
    if ipv6:  # a tentative (DAD) source address cannot send: EINVAL
        link_local(topo, host)
    vrrp = [f"version = {version}", 'interface = "eth0"', f"virtual_router_id = {vrid}",
            f"priority = {priority}", f"advert_interval_ms = {interval_ms}",
            f"preempt = {'true' if preempt else 'false'}"]
    if auth:
        vrrp.append(f'auth_pass = "{auth}"')
    if unicast:
        vrrp.append(f'unicast_src = "{me}"')
        vrrp.append("unicast_peers = [" + ", ".join(f'"{topo.address(p)}"' for p in peers) + "]")
    text = (f'[node]\nname = "{host}"\nstate_dir = "/tmp"\n'
            f'[proxy]\nlisten = "{f"[{VIP6}]" if ipv6 else VIP}:6379"\n'
            f'[redis]\naddress = "{me}:6379"\n'
            "[vrrp]\n" + "\n".join(vrrp) + "\n")
    for p in peers:
        source = link_local(topo, p) if ipv6 else topo.address(p)
        text += (f'[[peer]]\nname = "{p}"\nvrrp_address = "{source}"\n'
                 f'redis = "{topo.address(p)}:6379"\n')
    return text + f'[vip]\naddresses = ["{vip}"]\n'


class Event:
    def __init__(self, line):
        words = line.split()
        self.kind = words[0]
        self.fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        self.t = float(self.fields.get("t", "nan"))

    def __repr__(self):
        return f"{self.kind} {self.fields}"


class Node:
    """vrrp_node in a host of a Topology: one Election, its actions as lines."""

    def __init__(self, topo, host, config_text):
        self.host = host
        self.dir = tl.temp_dir(f"redvip-vrrp-{host}-")
        self.config = os.path.join(self.dir, "redvip.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.out_path = os.path.join(self.dir, "out")
        self.err_path = os.path.join(self.dir, "log")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = tl.start_process([NODE, "--config", self.config], netns=topo.netns(host),
                                         stdout=out, stderr=err)

    def lines(self):
        return read(self.out_path).splitlines()

    def events(self):
        return [Event(l) for l in self.lines() if l and not l.startswith("STATUS ")]

    def state(self):
        """The last state the node announced (MASTER, BACKUP, FAULT, STOPPED) or None."""
        states = [e.kind for e in self.events() if e.kind in STATES]
        return states[-1] if states else None

    def log(self):
        return read(self.err_path)

    def describe(self):
        return f"{self.host}: {self.lines()}\nlog:\n{self.log()}"

    def wait_event(self, kind, since=0, tries=200, delay=0.02):
        """The first `kind` event at index >= since, waited for (tries x delay)."""
        def found():
            events = self.events()
            return next((e for e in events[since:] if e.kind == kind), None)
        try:
            return tl.wait_for(found, f"{self.host} {kind}", tries=tries, delay=delay)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def status(self):
        """The status snapshot (SIGHUP makes the node print one STATUS line)."""
        before = sum(1 for l in self.lines() if l.startswith("STATUS "))
        self.proc.send_signal(signal.SIGHUP)

        def fresh():
            found = [l for l in self.lines() if l.startswith("STATUS ")]
            return json.loads(found[-1][len("STATUS "):]) if len(found) > before else None
        return tl.wait_for(fresh, f"{self.host} STATUS line", tries=100, delay=0.02)

    def send(self, sig):
        """Sends `sig`; returns the monotonic time just before, for takeover times."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        return t

    def stop(self):
        return tl.stop_process(self.proc)


def wait_roles(master, backups, tries=250, delay=0.02):
    """Waits until `master` says MASTER and every backup BACKUP; checks the
    status snapshots agree: exactly one Master."""
    def settled():
        return master.state() == "MASTER" and all(b.state() == "BACKUP" for b in backups)
    try:
        tl.wait_for(settled, f"{master.host} master, others backup", tries=tries, delay=delay)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(n.describe() for n in [master] + backups)) from None
    states = [n.status()["state"] for n in [master] + backups]
    assert states == ["Master"] + ["Backup"] * len(backups), states


# --- Raw VRRP packets, built here from the RFCs ------------------------------------------

def ones_complement(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return total


def vrrp_packet(src, dst="224.0.0.18", version=3, vrid=VRID, priority=255, addresses=(VIP,),
                interval=100, auth_type=0, password=b"", kind=1, count=None, checksum_delta=0):
    """An IPv4 VRRP message (no IP header). interval: centiseconds (v3) or
    seconds (v2). count overrides the address count field; checksum_delta
    spoils the checksum."""
    count = len(addresses) if count is None else count
    if version == 3:
        head = struct.pack("!BBBBH", version << 4 | kind, vrid, priority, count, interval & 0x0fff)
    else:
        head = struct.pack("!BBBBBB", version << 4 | kind, vrid, priority, count, auth_type, interval)
    body = b"".join(socket.inet_aton(a) for a in addresses)
    tail = password.ljust(8, b"\0")[:8] if version == 2 else b""
    message = head + b"\0\0" + body + tail
    covered = message
    if version == 3:  # RFC 5798 §5.2.8: the pseudo-header of RFC 768 for IPv4
        covered = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(message)) + message
    checksum = (~ones_complement(covered) + checksum_delta) & 0xffff
    return message[:6] + struct.pack("!H", checksum) + message[8:]


SENDER = r"""
import json, socket, sys
spec = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(spec["src"]))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
for p in spec["packets"]:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, p["ttl"])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, p["ttl"])
    s.sendto(bytes.fromhex(p["hex"]), (p["dst"], 0))
"""


def send_raw(topo, host, packets):
    """Sends [(bytes, ttl, dst)] from `host` with a raw IPPROTO 112 socket."""
    spec = {"src": topo.address(host),
            "packets": [{"hex": b.hex(), "ttl": ttl, "dst": dst} for b, ttl, dst in packets]}
    topo.run(host, ["python3", "-c", SENDER, json.dumps(spec)])


def block_multicast(topo, blocked=True):
    """Stops (or lets again) the bridge flood multicast, 224.0.0.18 included,
    to any port; unicast and broadcast (ARP) still pass."""
    for i in range(len(topo.hosts)):
        tl.run(["ip", "link", "set", "dev", f"p{i}", "type", "bridge_slave", "mcast_flood",
                "off" if blocked else "on"], netns=topo.switch)


# --- keepalived -------------------------------------------------------------------------

# What keepalived 2.2's vrrp_in_chk() and friends log for a packet it refuses.
KEEPALIVED_INVALID = re.compile(
    r"invalid|mismatch|too short|not present in MASTER advert|not a unicast peer|ignoring received"
    r"|wrong|Received packet length", re.IGNORECASE)
STATE_LINE = re.compile(r"\(VI_1\) Entering (\w+) STATE")


class Keepalived:
    """Debian's keepalived (VRRP only) in a host, with its own config, pid
    files and log in a temp dir: nothing outside the namespace and that dir."""

    def __init__(self, topo, host, priority, version=3, interval_ms=100, auth="", vrid=VRID,
                 unicast_peers=(), ipv6=False):
        self.host = host
        vip = f"{VIP6}/64" if ipv6 else f"{VIP}/24"
        if ipv6:  # keepalived too gets EINVAL from a tentative link-local source
            link_local(topo, host)
        self.dir = tl.temp_dir(f"redvip-keepalived-{host}-")
        advert_int = interval_ms / 1000
        lines = ["global_defs {", f"  router_id ka_{host}", "}",
                 "vrrp_instance VI_1 {", "  state BACKUP", "  interface eth0",
                 f"  version {version}", f"  virtual_router_id {vrid}", f"  priority {priority}",
                 f"  advert_int {advert_int:g}", f"  virtual_ipaddress {{\n    {vip}\n  }}"]
        if auth:
            lines.append(f"  authentication {{\n    auth_type PASS\n    auth_pass {auth}\n  }}")
        if unicast_peers:
            lines.append(f"  unicast_src_ip {topo.address(host)}")
            lines.append("  unicast_peer {\n" + "".join(f"    {topo.address(p)}\n" for p in unicast_peers) + "  }")
        lines.append("}")
        self.config = os.path.join(self.dir, "keepalived.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.dir, "keepalived.log")
        self.vrrp_pid = os.path.join(self.dir, "vrrp.pid")
        argv = ["keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
                "--dont-respawn", "--use-file", self.config,
                "--pid", os.path.join(self.dir, "keepalived.pid"), "--vrrp_pid", self.vrrp_pid]
        with open(self.log_path, "w") as log:
            self.proc = tl.start_process(argv, netns=topo.netns(host), stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        return read(self.log_path)

    def state(self):
        states = STATE_LINE.findall(self.log())
        return states[-1] if states else None

    def invalid_lines(self):
        return [l for l in self.log().splitlines() if KEEPALIVED_INVALID.search(l)]

    def kill_vrrp_child(self):
        """SIGKILL to the VRRP process (a crash: no priority 0); the parent,
        told not to respawn it, is then stopped. Returns the kill time."""
        pid = int(tl.wait_for(lambda: read(self.vrrp_pid).strip(), "keepalived vrrp pid file"))
        t = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        self.stop()
        return t

    def stop(self):
        return tl.stop_process(self.proc)


def assert_steady(nodes, seconds, delay=0.05):
    """No node announces a new state for `seconds` (polled; fails at once on a change)."""
    def count(n):
        return sum(1 for e in n.events() if e.kind in STATES)
    before = [count(n) for n in nodes]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = [count(n) for n in nodes]
        if now != before:
            raise AssertionError("state changed while settled:\n" + "\n".join(n.describe() for n in nodes))
        time.sleep(delay)
