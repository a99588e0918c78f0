"""bench/demo.sh --quick, as README's first command runs it (in its short form):
a live pair in namespaces, a failover, the failed node rejoining, a switchover
back. Asserts the demo's own outcome and that it left no namespace behind."""

import os
import re
import signal
import subprocess
import unittest
import xml.etree.ElementTree as ET

import redvip_testlib as lib

DEMO = os.path.join(lib.SOURCE_DIR, "bench", "demo.sh")
SUMMARY = re.compile(r"^demo: failover window (\d+) ms \(worst connection (\d+) ms\), "
                     r"switchover (\d+) ms \(worst connection (\d+) ms\), acknowledged writes lost (\d+)$")


def namespaces():
    return lib.run(["ip", "netns", "list"]).stdout


class Demo(unittest.TestCase):
    def test_quick_demo(self):
        out_dir = lib.temp_dir("redvip-demo-test-")
        proc = subprocess.Popen(["bash", DEMO, "--quick", "--out", out_dir], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            output, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the demo's trap removes what it started
            output, _ = proc.communicate(timeout=30)
            self.fail(f"the demo took over 180 s:\n{output}")
        print(output)
        prefix = re.search(r"namespaces (rvdemo-[0-9a-f]+)-", output)
        self.assertIsNotNone(prefix, "the demo did not name its namespaces")
        self.assertNotIn(prefix.group(1), namespaces(), "the demo left namespaces behind")

        self.assertEqual(proc.returncode, 0, "the demo failed")
        last = output.strip().splitlines()[-1]
        summary = SUMMARY.match(last)
        self.assertIsNotNone(summary, f"unexpected last line: {last!r}")
        failover_ms, failover_worst_ms, switchover_ms, switchover_worst_ms, lost = map(int, summary.groups())
        self.assertEqual(lost, 0)
        self.assertGreater(failover_ms, 0)  # a failover happened and was measured
        self.assertGreaterEqual(failover_worst_ms, failover_ms)  # no connection did better than all of them
        self.assertGreaterEqual(switchover_worst_ms, switchover_ms)
        self.assertLess(failover_ms, 4000)  # and writes came back within the quick run
        # The chart the demo writes is well-formed SVG.
        root = ET.parse(os.path.join(out_dir, "failover.svg")).getroot()
        self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")


if __name__ == "__main__":
    unittest.main()
