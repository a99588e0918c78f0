"""The redvip command line: --check-config exit codes and output, the daemon's
start, SIGHUP and graceful stop, on real files and a real process."""

import os
import signal
import socket
import subprocess
import unittest

import redvip_testlib as lib

EXAMPLES = os.path.join(lib.SOURCE_DIR, "conf")


def redvip(*args, **kwargs):
    return subprocess.run([lib.REDVIP_BIN, *args], capture_output=True, text=True, timeout=20, **kwargs)


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = lib.temp_dir()

    def test_examples_are_valid_and_print_the_effective_config(self):
        for name in ("redvip.example.toml", "node-a.toml", "node-b.toml"):
            with self.subTest(name=name):
                r = redvip("--check-config", os.path.join(EXAMPLES, name))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                self.assertIn("[vrrp]\nversion = 3\n", r.stdout)
                self.assertIn("max_clients = 10000", r.stdout)  # a default filled in

    def test_printed_config_is_itself_valid(self):
        r = redvip("--check-config", os.path.join(EXAMPLES, "node-b.toml"))
        printed = write(self.dir, "printed.toml", r.stdout)
        again = redvip("--check-config", printed)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout.split("\n", 1)[1], r.stdout.split("\n", 1)[1])

    def test_secrets_are_not_printed(self):
        path = write(self.dir, "secret.toml",
                     '[proxy]\nlisten = "127.0.0.1:7000"\npassword = "hunter2"\n'
                     '[redis]\naddress = "127.0.0.1:6379"\n')
        r = redvip("--check-config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("hunter2", r.stdout)

    def test_bad_file_exits_1_naming_file_line_column_and_key(self):
        path = write(self.dir, "bad.toml",
                     '[proxy]\nlisten = "127.0.0.1:7000"\n[redis]\naddress = "127.0.0.1:6379"\npool_size = -1\n')
        r = redvip("--check-config", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, f"{path}:5:13: redis.pool_size = -1: must be between 0 and 1024\n")

    def test_every_error_is_listed(self):
        path = write(self.dir, "bad.toml", '[proxy]\nlisten = "x"\nthreads = 0\n[redis]\naddres = "127.0.0.1:6379"\n')
        r = redvip("--check-config", path)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 4, r.stderr)
        self.assertTrue(any("proxy.threads = 0" in line for line in lines))
        self.assertTrue(any("redis.addres: unknown key, did you mean 'address'?" in line for line in lines))

    def test_not_toml_missing_and_empty(self):
        r = redvip("--check-config", write(self.dir, "junk.toml", "\x00\x01 this is not toml ]]\n"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not valid TOML", r.stderr)
        r = redvip("--check-config", os.path.join(self.dir, "absent.toml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("absent.toml: cannot open: No such file or directory", r.stderr)
        r = redvip("--check-config", write(self.dir, "empty.toml", ""))
        self.assertEqual(r.returncode, 1)
        self.assertIn("empty configuration", r.stderr)

    def test_usage(self):
        self.assertEqual(redvip().returncode, 2)
        r = redvip("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^redvip \d+\.\d+\.\d+")
        self.assertIn("--check-config", redvip("--help").stdout)
        self.assertNotEqual(redvip("--log-level", "loud", "--check-config", "x").returncode, 0)


class Daemon(unittest.TestCase):
    """The daemon on loopback only: a plain-proxy config whose Redis port has
    nobody listening (the pool's attempts are refused on 127.0.0.1)."""

    def start(self, *args):
        d = lib.temp_dir()
        port = lib.free_port()
        path = write(d, "plain.toml", lib.plain_config(port, lib.free_port()))
        return lib.start_process([lib.REDVIP_BIN, "--config", path, *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)

    def test_runs_until_sigterm_and_survives_sighup(self):
        proc = self.start("--log-level", "debug")
        line = proc.stderr.readline()  # blocks until the daemon has logged its start
        self.assertIn("[main] redvip", line)
        self.assertIn("plain proxy", line)
        proc.send_signal(signal.SIGHUP)
        with self.assertRaises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)  # SIGHUP must not stop it
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=5), 0)
        err = proc.stderr.read()
        self.assertIn("SIGHUP", err)
        self.assertIn("SIGTERM: stopping", err)
        lib.stop_process(proc)

    def test_sigint_stops_too(self):
        proc = self.start()
        proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=5), 0)
        lib.stop_process(proc)

    def test_bad_config_refuses_to_start(self):
        d = lib.temp_dir()
        path = write(d, "bad.toml", "[proxy]\n")
        r = redvip("--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("proxy.listen: required key missing", r.stderr)

    def test_a_taken_port_is_a_clear_error(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            d = lib.temp_dir()
            path = write(d, "plain.toml", lib.plain_config(port, lib.free_port()))
            r = redvip("--config", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: Address already in use", r.stderr)


if __name__ == "__main__":
    unittest.main()
