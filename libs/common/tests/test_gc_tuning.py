"""The collector settings a service process runs with (gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref

from helpdesk_common.gc_tuning import settled_heap


def test_heap_frozen_and_threshold_raised_then_restored() -> None:
    before = gc.get_threshold()
    survivor = [object() for _ in range(10)]  # alive at start-up: frozen with the rest
    with settled_heap(50_000) as frozen:
        assert frozen >= len(survivor)
        # in no generation the collector scans: the permanent one
        assert not any(o is survivor for g in (0, 1, 2) for o in gc.get_objects(generation=g))
        assert gc.get_threshold() == (50_000, before[1], before[2])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert any(o is survivor for o in gc.get_objects())


def test_zero_leaves_the_collector_alone() -> None:
    before = gc.get_threshold()
    with settled_heap(0) as frozen:
        assert frozen == 0
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_cycles_made_after_start_up_are_still_collected() -> None:
    class Node:
        pass

    with settled_heap(50_000):
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None


def test_overlapping_apps_settle_once_and_the_last_one_out_restores() -> None:
    before = gc.get_threshold()
    with settled_heap(50_000):
        with settled_heap(50_000):
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[0] == 50_000 and gc.get_freeze_count() > 0  # the first app still runs
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
