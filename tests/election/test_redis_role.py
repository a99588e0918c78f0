"""The controller's Redis executor (RedisExecutor) against real redis-servers on
loopback, through tests/election/role_driver: promote, demote to a replica of
another server (confirmed by ROLE), INFO replication, a wrong password, a
Redis that is down, one that never answers, and a ROLE that never agrees.

Run by ctest (label `election`), which sets REDVIP_ROLE_DRIVER. Only
127.0.0.1; every server is started here and stopped by pid.
"""

import json
import os
import socket
import threading
import unittest

import redvip_testlib as tl

DRIVER = os.environ.get("REDVIP_ROLE_DRIVER", "role_driver")


def drive(port, *command, password=None, **timeouts):
    argv = [DRIVER, "--redis", f"127.0.0.1:{port}"]
    if password is not None:
        argv += ["--password", password]
    for key, value in timeouts.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    out = tl.run(argv + list(command), timeout=20).stdout
    result = json.loads(out.strip().splitlines()[-1])
    # Exactly one completion per operation, whatever happened.
    assert result["completions"] == 1, result
    return result


def role(server):
    return server.cli("ROLE").split("\n")[0].strip()


class FakeRedis:
    """A TCP server on loopback: `answer(command)` gives the reply bytes for
    each request line's command name, or None to stay silent."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.open = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        buf = b""
        while True:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            # Requests are *N arrays of bulk strings; the command is the first bulk.
            while buf.startswith(b"*"):
                parts = buf.split(b"\r\n")
                count = int(parts[0][1:])
                if len(parts) < 1 + 2 * count + 1:
                    break
                args = [parts[2 + 2 * i] for i in range(count)]
                buf = b"\r\n".join(parts[1 + 2 * count:])
                reply = self.answer(args[0].upper().decode())
                if reply is not None:
                    conn.sendall(reply)

    def close(self):
        self.sock.close()
        for c in self.open:
            c.close()


class RedisRoleTest(unittest.TestCase):
    def setUp(self):
        self.local = tl.RedisServer()
        self.master = tl.RedisServer()

    def tearDown(self):
        self.local.stop()
        self.master.stop()

    def test_promote_a_replica(self):
        self.local.cli("REPLICAOF", "127.0.0.1", str(self.master.port))
        self.assertEqual(role(self.local), "slave")
        result = drive(self.local.port, "promote")
        self.assertTrue(result["ok"], result)
        self.assertEqual(role(self.local), "master")
        # Promoting a master is a no-op that still confirms.
        self.assertTrue(drive(self.local.port, "promote")["ok"])

    def test_demote_to_replica_of_the_other_and_read_it_back(self):
        self.master.cli("SET", "written-before", "1")
        result = drive(self.local.port, "replicate", f"127.0.0.1:{self.master.port}")
        self.assertTrue(result["ok"], result)
        lines = self.local.cli("ROLE").split("\n")
        self.assertEqual(lines[0].strip(), "slave")
        self.assertEqual(lines[1].strip(), "127.0.0.1")
        self.assertEqual(lines[2].strip(), str(self.master.port))
        # A full sync can wait Redis 7's repl-diskless-sync-delay (5 s) first.
        tl.wait_for(lambda: self.local.cli("GET", "written-before").strip() == "1", "the replica to sync",
                    tries=300)
        info = drive(self.local.port, "info")
        self.assertTrue(info["ok"], info)
        facts = info["facts"]
        self.assertEqual(facts["role"], "slave")
        self.assertEqual(facts["master_host"], "127.0.0.1")
        self.assertEqual(facts["master_port"], self.master.port)
        tl.wait_for(lambda: drive(self.local.port, "info")["facts"]["master_link_status"] == "up",
                    "master_link_status:up")
        # Back again: promote, and the master's INFO shows no replica left.
        self.assertTrue(drive(self.local.port, "promote")["ok"])
        self.assertEqual(drive(self.local.port, "info")["facts"]["role"], "master")

    def test_password(self):
        secured = tl.RedisServer(password="s3cret")
        try:
            wrong = drive(secured.port, "promote", password="nope")
            self.assertFalse(wrong["ok"])
            self.assertTrue(wrong["error"].startswith("AUTH: WRONGPASS"), wrong["error"])
            missing = drive(secured.port, "promote")
            self.assertFalse(missing["ok"])
            self.assertIn("NOAUTH", missing["error"])
            info = drive(secured.port, "info")
            self.assertFalse(info["ok"])
            self.assertFalse(info["refused"])
            self.assertTrue(drive(secured.port, "promote", password="s3cret")["ok"])
        finally:
            secured.stop()

    def test_redis_down_fails_at_once_as_refused(self):
        port = tl.free_port()
        for command in (["promote"], ["replicate", f"127.0.0.1:{self.master.port}"], ["info"]):
            result = drive(port, *command)
            self.assertFalse(result["ok"])
            self.assertEqual(result["error"], f"connect to 127.0.0.1:{port}: Connection refused")
            self.assertLess(result["elapsed_ms"], 500)
        self.assertTrue(drive(port, "info")["refused"])

    def test_a_redis_that_never_answers_times_out(self):
        silent = FakeRedis(lambda command: None)
        try:
            result = drive(silent.port, "promote", command_ms=300)
            self.assertFalse(result["ok"])
            self.assertEqual(result["error"], "REPLICAOF NO ONE: timed out after 300 ms")
            self.assertLess(result["elapsed_ms"], 2000)
            info = drive(silent.port, "info", command_ms=300)
            self.assertEqual(info["error"], "INFO: timed out after 300 ms")
            self.assertFalse(info["refused"])
        finally:
            silent.close()

    def test_a_role_that_never_agrees_fails_after_confirm(self):
        stubborn = FakeRedis(lambda command: {
            "REPLICAOF": b"+OK\r\n",
            "ROLE": b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n",
        }.get(command, b"-ERR unknown\r\n"))
        try:
            result = drive(stubborn.port, "replicate", "127.0.0.1:6999", confirm_ms=300)
            self.assertFalse(result["ok"])
            self.assertEqual(result["error"],
                             "REPLICAOF 127.0.0.1 6999: ROLE still says master after 300 ms")
            self.assertLess(result["elapsed_ms"], 2000)
        finally:
            stubborn.close()

    def test_an_error_reply_is_the_failure_text(self):
        refusing = FakeRedis(lambda command: b"-ERR REPLICAOF not allowed in cluster mode.\r\n")
        try:
            result = drive(refusing.port, "promote")
            self.assertEqual(result["error"],
                             "REPLICAOF NO ONE: ERR REPLICAOF not allowed in cluster mode.")
        finally:
            refusing.close()


if __name__ == "__main__":
    unittest.main()
