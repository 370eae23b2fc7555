#!/usr/bin/env python3
"""Unit tests of the consistency checker (checker.py): it must pass valid
histories and fail each planted violation. Ends with "[check] N passed, N failed"."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Op, linearizable, replica_reads_ok  # noqa: E402


def op(kind, call, ret, key="k", value=None, status=None, etag=None, result=None, if_match=None,
       client=0, node=None):
    o = Op(client, kind, key, call, value=value, if_match=if_match, node=node)
    if ret is not None:
        o.ret = ret
        o.status = status
        o.etag = etag
        o.result = result
    return o


def put(call, ret, value, status, etag, **kw):
    return op("put", call, ret, value=value, status=status, etag=etag, **kw)


def get(call, ret, result, etag=None, **kw):
    return op("get", call, ret, status=200 if result is not None else 404, result=result,
              etag=etag, **kw)


class LinearizabilityTest(unittest.TestCase):
    def assertLinearizable(self, ops, moves=False):
        ok, why = linearizable(ops, moves)
        self.assertTrue(ok, why)

    def assertNotLinearizable(self, ops, moves=False):
        ok, why = linearizable(ops, moves)
        self.assertFalse(ok)
        self.assertIn("no linearization", why)

    def test_sequential_history_passes(self):
        self.assertLinearizable([
            get(0, 1, None), put(2, 3, "a", 201, 1), get(4, 5, "a", 1), put(6, 7, "b", 200, 2),
            op("cas", 8, 9, value="c", if_match=2, status=200, etag=3), get(10, 11, "c", 3),
            op("cas", 12, 13, value="d", if_match=2, status=412), op("delete", 14, 15, status=204),
            get(16, 17, None), op("delete", 18, 19, status=404)])

    def test_planted_stale_read_fails(self):
        # b is acknowledged before the read starts, yet the read returns a.
        self.assertNotLinearizable([
            put(0, 1, "a", 201, 1), put(2, 3, "b", 200, 2), get(4, 5, "a", 1, client=1)])

    def test_concurrent_read_may_see_either_value(self):
        self.assertLinearizable([
            put(0, 1, "a", 201, 1), put(2, 6, "b", 200, 2), get(3, 4, "a", 1, client=1),
            get(3.5, 5, "b", 2, client=2), get(7, 8, "b", 2, client=1)])

    def test_reads_that_disagree_on_order_fail(self):
        # Once one read saw b, a later read may not see a again.
        self.assertNotLinearizable([
            put(0, 1, "a", 201, 1), put(2, 9, "b", 200, 2), get(3, 4, "b", 2, client=1),
            get(5, 6, "a", 1, client=2)])

    def test_lost_acknowledged_write_fails(self):
        self.assertNotLinearizable([put(0, 1, "a", 201, 1), get(2, 3, None)])

    def test_indeterminate_write_may_take_effect_or_not(self):
        lost = put(0, None, "a", None, None)
        self.assertLinearizable([lost, get(5, 6, None, client=1)])
        applied = put(0, None, "a", None, None)
        self.assertLinearizable([applied, get(5, 6, "a", 7, client=1),
                                 op("cas", 7, 8, value="b", if_match=7, status=200, etag=9)])

    def test_indeterminate_write_cannot_come_back_after_being_overwritten(self):
        self.assertNotLinearizable([
            put(0, None, "a", None, None), get(1, 2, "a", 3, client=1),
            put(3, 4, "b", 200, 4, client=1), get(5, 6, "a", 3, client=1)])

    def test_cas_against_a_stale_etag_that_succeeds_fails(self):
        self.assertNotLinearizable([
            put(0, 1, "a", 201, 1), put(2, 3, "b", 200, 2),
            op("cas", 4, 5, value="c", if_match=1, status=200, etag=3)])

    def test_reused_etag_fails(self):
        self.assertNotLinearizable([put(0, 1, "a", 201, 5), put(2, 3, "b", 200, 5)])

    def test_a_moved_key_may_show_a_higher_etag(self):
        # The key moved to another shard between the put and the read: same value, new ETag.
        history = [put(0, 1, "a", 201, 5), get(2, 3, "a", 9), op("cas", 4, 5, value="b",
                                                                  if_match=5, status=412)]
        self.assertNotLinearizable(history)
        self.assertLinearizable(history, moves=True)
        self.assertLinearizable([put(0, 1, "a", 201, 5),
                                 op("cas", 2, 3, value="b", if_match=9, status=200, etag=10),
                                 get(4, 5, "b", 10)], moves=True)

    def test_a_moved_key_still_never_goes_back(self):
        # ETag lower than the acknowledged one: the move must jump past the source's LSNs.
        self.assertNotLinearizable([put(0, 1, "a", 201, 5), get(2, 3, "a", 3)], moves=True)
        # A stale value read after the move, with the new shard's higher ETag.
        self.assertNotLinearizable([put(0, 1, "a", 201, 5), put(2, 3, "b", 200, 6),
                                    get(4, 5, "a", 9)], moves=True)
        # A value the move lost.
        self.assertNotLinearizable([put(0, 1, "a", 201, 5), get(2, 3, None)], moves=True)
        # A new write must still get a higher ETag than the moved value showed.
        self.assertNotLinearizable([put(0, 1, "a", 201, 5), get(2, 3, "a", 9),
                                    put(4, 5, "b", 200, 7)], moves=True)

    def test_keys_are_independent(self):
        self.assertLinearizable([put(0, 1, "a", 201, 1, key="x"), put(0, 1, "b", 201, 2, key="y"),
                                 get(2, 3, "a", 1, key="x"), get(2, 3, "b", 2, key="y")])


class ReplicaReadsTest(unittest.TestCase):
    writes = [put(0, 1, "a", 201, 1), put(2, 3, "b", 200, 2)]

    def check(self, reads, writes=None):
        return replica_reads_ok(reads, self.writes if writes is None else writes)

    def test_lagging_but_monotonic_reads_pass(self):
        ok, why = self.check([get(4, 5, None, node="r"), get(6, 7, "a", 1, node="r"),
                              get(8, 9, "a", 1, node="r"), get(10, 11, "b", 2, node="r")])
        self.assertTrue(ok, why)

    def test_going_back_fails(self):
        ok, why = self.check([get(4, 5, "b", 2, node="r"), get(6, 7, "a", 1, node="r")])
        self.assertFalse(ok)
        self.assertIn("went back", why)

    def test_two_replicas_are_judged_apart(self):
        ok, why = self.check([get(4, 5, "b", 2, node="r1"), get(6, 7, "a", 1, node="r2")])
        self.assertTrue(ok, why)

    def test_unwritten_value_fails(self):
        ok, why = self.check([get(4, 5, "zzz", 9, node="r")])
        self.assertFalse(ok)
        self.assertIn("no client wrote", why)

    def test_wrong_etag_fails(self):
        ok, why = self.check([get(4, 5, "a", 2, node="r")])
        self.assertFalse(ok)

    def test_a_moved_value_may_have_a_higher_etag_never_a_lower(self):
        ok, why = self.check([get(4, 5, "a", 7, node="r")])
        self.assertFalse(ok)
        ok, why = replica_reads_ok([get(4, 5, "a", 7, node="r")], self.writes, moves=True)
        self.assertTrue(ok, why)
        ok, why = replica_reads_ok([get(4, 5, "b", 1, node="r")], self.writes, moves=True)
        self.assertFalse(ok)

    def test_streams_are_judged_apart(self):
        # One node's reads at two epochs (before and after it was deposed and resynced).
        first, second = get(4, 5, "b", 2, node="r"), get(6, 7, "a", 1, node="r")
        self.assertFalse(self.check([first, second])[0])
        first.stream, second.stream = ("r", 1), ("r", 2)
        ok, why = self.check([first, second])
        self.assertTrue(ok, why)

    def test_disappearing_without_a_delete_fails(self):
        ok, why = self.check([get(4, 5, "a", 1, node="r"), get(6, 7, None, node="r")])
        self.assertFalse(ok)
        with_delete = self.writes + [op("delete", 3, 4, status=204)]
        ok, why = self.check([get(4, 5, "a", 1, node="r"), get(6, 7, None, node="r")], with_delete)
        self.assertTrue(ok, why)
        ok, why = self.check([get(4, 5, "a", 1, node="r"), get(6, 7, None, node="r"),
                              get(8, 9, "a", 1, node="r")], with_delete)
        self.assertFalse(ok)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"[check] {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
