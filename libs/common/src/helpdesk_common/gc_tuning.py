"""Python's cyclic garbage collector, tuned for a long-running service process.

At its defaults the collector costs a request service dearly: a young collection every 700
container allocations (a page of 25 tickets allocates several thousand objects), and now and
then a full collection that walks every object the process holds, most of them the modules,
routes, models and caches built at start-up, which live until the process ends. Measured on
ticket-svc answering searches (docs/performance.md, "Garbage collection"): the full collections
were the tail of the latency, and the young ones a tenth of the CPU.

So, once start-up is done, the heap as it stands is collected once and then frozen (moved to
the permanent generation the collector never scans: ``gc.freeze``), and young collections wait
for more allocations. Reference counting still frees everything that is not in a cycle at
once. What that costs: cyclic garbage waits for 50,000 allocations instead of 700 (a few
megabytes; more while large request bodies are caught in such cycles), and a start-up object
that later becomes cyclic garbage (a pool connection replaced after its idle limit) is never
freed: a bounded, one-off amount.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


#: apps inside ``settled_heap`` in this process: the collector is process-wide, so the first
#: app in settles it and the last one out restores it (tests and benches run several apps)
_depth = 0
_saved_thresholds: tuple[int, int, int] | None = None


@contextlib.contextmanager
def settled_heap(young_threshold: int) -> Iterator[int]:
    """Freeze the heap as it is now and raise the young generation's threshold to
    ``young_threshold`` for the duration; yields how many objects are frozen. 0 leaves the
    collector as Python has it (the test suite: it starts thousands of apps in one process, and a
    full collection of that heap at every start would cost more than it saves).

    On exit of the last app that settled it, the frozen objects go back to the collector and the
    thresholds are restored, so a process that builds and drops apps does not keep the dropped
    ones."""
    global _depth, _saved_thresholds
    if young_threshold <= 0:
        yield 0
        return
    if _depth == 0:
        _saved_thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(young_threshold, _saved_thresholds[1], _saved_thresholds[2])
    _depth += 1
    try:
        yield gc.get_freeze_count()
    finally:
        _depth -= 1
        if _depth == 0 and _saved_thresholds is not None:
            gc.set_threshold(*_saved_thresholds)
            gc.unfreeze()
