"""A 60 s soak of one long-lived pair (bench/soak.py): kill -9 of the
master's Redis (restarted empty), kill -9 of its redvip (restarted), a
switchover, a cut cable and the Redis again, one after another under load
through the VIP.
After every fault the pair must settle as a fresh one does (one master with
the VIP, the other's Redis replicating from it); no write the design keeps
may be lost; no connection may wait a second for an answer where the design
answers at once; a killed Redis costs no READONLY (its node holds and
relays commands to the new master); descriptors must come back. The figures are printed, not
asserted (bench/results/ has the 10-minute ones)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import soak  # noqa: E402


class Soak(unittest.TestCase):
    def test_a_long_lived_pair_through_every_kind_of_fault(self):
        kinds = ["redis", "redvip", "switchover", "link"]
        # Five faults: the last, a killed Redis again, meets a pair that has
        # been through all the others.
        results, problems, start, end = soak.soak(60, 12, kinds, lambda line: print(line, flush=True))
        soak.print_tables(kinds, results, start, end)
        self.assertEqual([r["fault"] for r in results], kinds + ["redis"])
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()
