"""The servers bench/compare_proxies.py measures: one redis-server and, each
on its own port with its own config, pid and log files in a temporary
directory, redvip (plain proxy mode), HAProxy (TCP mode) and twemproxy.
Every process started here is listed in STARTED and ended by stop_all(), by
its pid."""

import os
import signal
import socket
import subprocess
import sys
import time

STARTED = []  # Popen objects, or (name, pidfile) for daemons that fork


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, tries=100, delay=0.05):
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(delay)
    raise SystemExit(f"{what} did not answer PING on port {port} within {tries * delay:.0f} s")


def pid_of(entry):
    if isinstance(entry, subprocess.Popen):
        return entry.pid
    _, pidfile = entry
    with open(pidfile) as f:
        return int(f.read().split()[0])


def stop_all():
    for entry in reversed(STARTED):
        try:
            pid = pid_of(entry)
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                if isinstance(entry, subprocess.Popen):
                    if entry.poll() is not None:
                        break
                else:
                    os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if isinstance(entry, subprocess.Popen):
            try:
                entry.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    STARTED.clear()


def autogroup(pid):
    """The process's autogroup, or "-" where it has none: the file is missing
    on a kernel without autogroups, and empty for a process still in the
    kernel's root group, one whose process tree has made no setsid() since
    boot (as on CI's machine)."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            fields = f.read().split()
    except OSError:
        return "-"
    return fields[0].removeprefix("/") if fields else "-"


def pinned(cpus, argv):
    return (["taskset", "-c", cpus] if cpus else []) + argv


# Each server in a session of its own, as `haproxy -D` puts itself: with the
# kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled),
# CPU time is shared fairly between sessions first, so a proxy left in the
# session of this script, Redis and redis-benchmark would get a smaller share
# than a daemon in its own (measured: Redis and redis-benchmark woke two to
# three times as often per request behind redvip, which lost 4-15% against
# HAProxy until it had a session of its own).
# systemd starts every service in a session (and a cgroup) of its own: the same.
def start(argv, log_path, cpus):
    with open(log_path, "w") as log_file:  # (the child keeps its own copy)
        proc = subprocess.Popen(pinned(cpus, argv), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    STARTED.append(proc)
    return proc


class Targets:
    def __init__(self, args, tmp):
        self.tmp = tmp
        redis_cpus, proxy_cpus, self.bench_cpus = (args.pin.split(":") if args.pin else ("", "", ""))
        self.redis_port = free_port()
        proc = start(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", tmp, "--maxclients", "15000", "--protected-mode", "no"],
                     f"{tmp}/redis.log", redis_cpus)
        wait_port(self.redis_port, "redis-server")
        self.ports = {"redis": self.redis_port}
        self.pids = {"redis": proc.pid}

        self.start_redvip("redvip", args.redvip, args, proxy_cpus)
        # The same binary with a connection per session (multiplex = false), as before multiplexing.
        self.start_redvip("redvip-pinned", args.redvip, args, proxy_cpus, "multiplex = false\n")
        if args.redvip_b:
            self.start_redvip("redvip-b", args.redvip_b, args, proxy_cpus)

        port = free_port()
        with open(f"{tmp}/haproxy.cfg", "w") as f:
            f.write(f"global\n    maxconn 8000\n    nbthread {args.haproxy_threads}\n\n"
                    "defaults\n    mode tcp\n    maxconn 8000\n    timeout connect 5s\n"
                    "    timeout client 1h\n    timeout server 1h\n\n"
                    f"listen redis\n    bind 127.0.0.1:{port}\n    server redis 127.0.0.1:{self.redis_port}\n")
        with open(f"{tmp}/haproxy.log", "w") as log_file:
            subprocess.run(pinned(proxy_cpus, ["haproxy", "-f", f"{tmp}/haproxy.cfg", "-D", "-p", f"{tmp}/haproxy.pid"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=log_file)
        STARTED.append(("haproxy", f"{tmp}/haproxy.pid"))
        wait_port(port, "haproxy")
        self.ports["haproxy"], self.pids["haproxy"] = port, pid_of(STARTED[-1])

        port, stats = free_port(), free_port()
        with open(f"{tmp}/nutcracker.yml", "w") as f:
            f.write(f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n"
                    f"  redis: true\n  auto_eject_hosts: false\n  server_connections: 1\n"
                    f"  servers:\n   - 127.0.0.1:{self.redis_port}:1\n")
        proc = start(["nutcracker", "-c", f"{tmp}/nutcracker.yml", "-p", f"{tmp}/nutcracker.pid",
                      "-o", f"{tmp}/nutcracker.log", "-s", str(stats), "-a", "127.0.0.1"],
                     f"{tmp}/nutcracker.out", proxy_cpus)
        wait_port(port, "twemproxy")
        self.ports["twemproxy"], self.pids["twemproxy"] = port, proc.pid

    def start_redvip(self, name, binary, args, cpus, proxy_extra=""):
        port = free_port()
        with open(f"{self.tmp}/{name}.toml", "w") as f:
            f.write(f'[proxy]\nlisten = "127.0.0.1:{port}"\nthreads = {args.redvip_threads}\n'
                    f'max_clients = 15000\n{proxy_extra}'
                    f'[redis]\naddress = "127.0.0.1:{self.redis_port}"\npool_size = 8\n'
                    f'[metrics]\nlisten = ""\n[admin]\nsocket = "{self.tmp}/{name}-admin.sock"\n'
                    f'[log]\nlevel = "warn"\n')
        proc = start([binary, "--config", f"{self.tmp}/{name}.toml"], f"{self.tmp}/{name}.log", cpus)
        wait_port(port, name)
        self.ports[name], self.pids[name] = port, proc.pid
