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
once; only cyclic garbage waits a little longer, which costs a few megabytes at most.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def settled_heap(young_threshold: int) -> Iterator[int]:
    """Freeze the heap as it is now and raise the young generation's threshold to
    ``young_threshold`` for the duration; yields how many objects froze. 0 leaves the collector
    as Python has it (the test suite: it starts thousands of apps in one process, and a full
    collection of that heap at every start would cost more than it saves).

    On exit the frozen objects go back to the collector and the thresholds are restored, so a
    process that builds and drops apps does not keep the dropped ones."""
    if young_threshold <= 0:
        yield 0
        return
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, thresholds[1], thresholds[2])
    try:
        yield gc.get_freeze_count()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
