"""Shared helpers for redvip's integration tests.

Real parts only: redis-server processes, the redvip binaries, network
namespaces built by the test. Safety rules (DEVELOPERS.md):
  * traffic goes to loopback or to addresses inside namespaces this process
    created (10.77.0.0/16, no default route, the bridge lives in a namespace
    of its own so nothing touches a real interface);
  * namespace names are unique per run and always removed, also on failure,
    SIGINT or SIGTERM;
  * only processes started here are ended, by pid;
  * every wait is bounded (tries x delay), never a bare sleep.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

REDVIP_BIN = os.environ.get("REDVIP_BIN", "redvip")
REDVIP_BENCH_BIN = os.environ.get("REDVIP_BENCH_BIN", "redvip-bench")
SOURCE_DIR = os.environ.get(
    "REDVIP_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

_processes = []   # Popen objects this process started and must end
_namespaces = []  # namespace names this process created and must remove
_tempdirs = []


def _cleanup():
    for proc in reversed(_processes):
        stop_process(proc)
    _processes.clear()
    for name in reversed(_namespaces):
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL, check=False)
    _namespaces.clear()
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tempdirs.clear()


def _on_signal(signum, _frame):
    _cleanup()
    raise SystemExit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def wait_for(predicate, what, tries=100, delay=0.05):
    """Polls predicate() until it returns a true value; fails with `what` after tries x delay."""
    last = None
    for _ in range(tries):
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # a refused connection while starting is expected
            last = exc
        time.sleep(delay)
    raise AssertionError(f"timed out after {tries * delay:.1f}s waiting for {what} (last: {last!r})")


def temp_dir(prefix="redvip-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def start_process(argv, netns=None, **kwargs):
    """Starts argv (inside netns if given) and registers it for cleanup."""
    if netns:
        argv = ["ip", "netns", "exec", netns] + list(argv)
    proc = subprocess.Popen(argv, **kwargs)
    _processes.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=5.0):
    """Ends a process this module started, by pid; SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    if proc in _processes:
        _processes.remove(proc)
    return proc.returncode


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(argv, netns=None, check=True, timeout=30, **kwargs):
    if netns:
        argv = ["ip", "netns", "exec", netns] + list(argv)
    return subprocess.run(argv, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


class RedisServer:
    """A redis-server of our own: a private dir, no persistence unless asked, bound to one address."""

    def __init__(self, host="127.0.0.1", port=None, netns=None, password=None, extra=(), dir=None):
        self.host = host
        self.port = port or (free_port(host) if netns is None else 6379)
        self.netns = netns
        self.password = password
        self.dir = dir or temp_dir("redvip-redis-")  # an old dir: restart with its dump.rdb
        argv = ["redis-server", "--bind", host, "--port", str(self.port), "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log",
                "--protected-mode", "no"]
        if password:
            argv += ["--requirepass", password, "--masterauth", password]
        argv += list(extra)
        self.proc = start_process(argv, netns=netns, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING").strip() == "PONG", f"redis-server on {host}:{self.port}")

    def cli(self, *args, check=True):
        argv = ["redis-cli", "-h", self.host, "-p", str(self.port)]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        return run(argv + list(args), netns=self.netns, check=check).stdout

    def client(self, **kwargs):
        import redis  # python3-redis from Debian
        return redis.Redis(host=self.host, port=self.port, password=self.password, **kwargs)

    def stop(self, sig=signal.SIGTERM):
        return stop_process(self.proc, sig=sig)


class Topology:
    """Hosts in network namespaces on one private bridge (itself in a namespace).

    topo = Topology(["a", "b", "client"]); topo.address("a") -> "10.77.0.1".
    Host i gets 10.77.0.<i+1>/24 on eth0; no default route anywhere.
    """

    SUBNET = "10.77.0"

    def __init__(self, hosts):
        self.prefix = "rv" + uuid.uuid4().hex[:8]
        self.switch = self._add_netns("sw")
        self.hosts = {}
        run(["ip", "link", "add", "br0", "type", "bridge"], netns=self.switch)
        run(["ip", "link", "set", "br0", "up"], netns=self.switch)
        for i, host in enumerate(hosts):
            ns = self._add_netns(host)
            port = f"p{i}"
            run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
                 "netns", self.switch])
            run(["ip", "link", "set", port, "master", "br0", "up"], netns=self.switch)
            addr = f"{self.SUBNET}.{i + 1}"
            run(["ip", "addr", "add", f"{addr}/24", "dev", "eth0"], netns=ns)
            run(["ip", "link", "set", "eth0", "up"], netns=ns)
            run(["ip", "link", "set", "lo", "up"], netns=ns)
            self.hosts[host] = (ns, addr)

    def _add_netns(self, suffix):
        name = f"{self.prefix}-{suffix}"
        run(["ip", "netns", "add", name])
        _namespaces.append(name)
        return name

    def netns(self, host):
        return self.hosts[host][0]

    def address(self, host):
        return self.hosts[host][1]

    def run(self, host, argv, **kwargs):
        return run(argv, netns=self.netns(host), **kwargs)

    def set_link(self, host, up):
        """Cuts or restores a host's cable (its port on the bridge)."""
        i = list(self.hosts).index(host)
        run(["ip", "link", "set", f"p{i}", "up" if up else "down"], netns=self.switch)

    def close(self):
        for ns, _ in self.hosts.values():
            if ns in _namespaces:
                subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, check=False)
                _namespaces.remove(ns)
        if self.switch in _namespaces:
            subprocess.run(["ip", "netns", "del", self.switch], stderr=subprocess.DEVNULL, check=False)
            _namespaces.remove(self.switch)


class RespReader:
    """Reads whole RESP2/RESP3 replies from a socket and returns their raw bytes,
    so that replies through the proxy and straight from Redis compare byte for byte."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _line(self, pos):
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end >= 0:
                return end
            self._fill()

    def _value(self, pos):
        end = self._line(pos)
        kind, head = self.buf[pos:pos + 1], self.buf[pos + 1:end]
        pos = end + 2
        if kind in b"$=!" and head not in (b"-1", b"?"):
            size = int(head)
            while len(self.buf) < pos + size + 2:
                self._fill()
            return pos + size + 2
        if kind in b"*~>%|" and head != b"-1":
            count = int(head) * (2 if kind in b"%|" else 1)
            for _ in range(count):
                pos = self._value(pos)
            if kind == b"|":  # an attribute precedes the value it annotates
                pos = self._value(pos)
            return pos
        return pos

    def reply(self):
        end = self._value(0)
        raw, self.buf = self.buf[:end], self.buf[end:]
        return raw

    def closed(self, timeout=5.0):
        """True once the peer has closed the connection (after any bytes left)."""
        return self.ending(timeout) != "open"

    def ending(self, timeout=5.0):
        """How the peer ended: "eof" (FIN, after any bytes left), "reset", or "open"."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return "eof"
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except socket.timeout:
            return "open"


def connect(port, host="127.0.0.1", timeout=10.0):
    sock = socket.create_connection((host, port), timeout=timeout)
    return sock, RespReader(sock, timeout)


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class Redvip:
    """A redvip daemon of our own, from a TOML text, waited for until it listens."""

    def __init__(self, config_text, listen_port, host="127.0.0.1", netns=None, log_level="info"):
        self.dir = temp_dir("redvip-daemon-")
        self.config = os.path.join(self.dir, "redvip.toml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "redvip.log")
        self.log = open(self.log_path, "w")
        self.proc = start_process([REDVIP_BIN, "--config", self.config, "--log-level", log_level], netns=netns,
                                  stdout=self.log, stderr=subprocess.STDOUT)
        self.port = listen_port
        self.host = host
        if netns is None:
            wait_for(self._listening, f"redvip listening on {host}:{listen_port}")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"redvip exited with {self.proc.returncode}: {self.read_log()}")
        with socket.create_connection((self.host, self.port), timeout=1):
            return True

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        code = stop_process(self.proc, sig=sig)
        self.log.close()
        return code


def plain_config(listen_port, redis_port, extra_proxy="", extra="", metrics_port=None, extra_redis=""):
    """A plain-proxy config on loopback (no election, always serving)."""
    metrics = f"127.0.0.1:{metrics_port}" if metrics_port else ""
    return (f'[proxy]\nlisten = "127.0.0.1:{listen_port}"\n{extra_proxy}\n'
            f'[redis]\naddress = "127.0.0.1:{redis_port}"\n{extra_redis}\n'
            f'[metrics]\nlisten = "{metrics}"\n[admin]\nsocket = "/tmp/redvip-test-{listen_port}.sock"\n{extra}')


def metrics(port):
    """The /metrics text as {"name{labels}": value}."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
