"""The parts of bench/compare_proxies.py its figures rest on: the confidence
interval of the paired medians, and every server started in a session (so a
scheduling group) of its own, as `haproxy -D` puts itself."""

import importlib.util
import math
import os
import tempfile
import unittest
from unittest import mock

import redvip_testlib as lib

spec = importlib.util.spec_from_file_location("compare_proxies",
                                              os.path.join(lib.SOURCE_DIR, "bench", "compare_proxies.py"))
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def below(n, k):
    """P(Binomial(n, 1/2) < k)."""
    return sum(math.comb(n, i) for i in range(k)) / 2 ** n


class MedianInterval(unittest.TestCase):
    def test_too_few_rounds_give_none(self):
        for n in range(1, 6):
            self.assertIsNone(compare.median_ci([1.0] * n), n)

    def test_the_widest_order_statistics_that_keep_95_percent(self):
        for n in range(6, 41):
            values = [float(v) for v in range(n, 0, -1)]  # given unsorted
            lo, hi = compare.median_ci(values)
            k = int(lo)  # values are 1..n, so the k-th lowest is k
            self.assertEqual(hi, n - k + 1, n)
            self.assertLessEqual(below(n, k), 0.025, n)   # each tail at most 2.5%
            self.assertGreater(below(n, k + 1), 0.025, n)  # and no narrower pair would do

    def test_known_rows_of_the_binomial_table(self):
        # n: k (the k-th lowest and k-th highest)
        for n, k in {6: 1, 8: 1, 9: 2, 10: 2, 12: 3, 16: 4, 20: 6}.items():
            self.assertEqual(compare.median_ci(list(range(1, n + 1))), (k, n - k + 1), n)


class ServersInSessionsOfTheirOwn(unittest.TestCase):
    def test_a_started_server_leads_a_session_apart_from_the_script(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = compare.start(["sleep", "30"], os.path.join(tmp, "sleep.log"), "")
            try:
                self.assertEqual(os.getsid(proc.pid), proc.pid)
                self.assertNotEqual(os.getsid(proc.pid), os.getsid(0))
                try:  # (a kernel built without autogroups has no such file)
                    with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
                        autogroups = f.read().strip() == "1"
                except FileNotFoundError:
                    autogroups = False
                # Where the script runs in an autogroup of its session (not in
                # the root group), the kernel's fair share is per session.
                if autogroups and compare.autogroup(os.getpid()) != "-":
                    self.assertNotEqual(compare.autogroup(proc.pid), compare.autogroup(os.getpid()))
            finally:
                compare.stop_all()
            self.assertIsNotNone(proc.poll())
            self.assertEqual(compare.STARTED, [])

    def test_a_task_with_no_autogroup_reads_as_none(self):
        # A process in the root group (no setsid() in its tree since boot)
        # has an empty autogroup file.
        for text in ("", "\n"):
            with mock.patch("builtins.open", mock.mock_open(read_data=text)):
                self.assertEqual(compare.autogroup(os.getpid()), "-")
        with mock.patch("builtins.open", mock.mock_open(read_data="/autogroup-7 nice 0\n")):
            self.assertEqual(compare.autogroup(os.getpid()), "autogroup-7")
        with mock.patch("builtins.open", side_effect=FileNotFoundError):
            self.assertEqual(compare.autogroup(os.getpid()), "-")


if __name__ == "__main__":
    unittest.main()
