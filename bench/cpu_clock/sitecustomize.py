"""Loaded by every Python process of a ``bench/profile.py --cpu-clock`` stack (its PYTHONPATH):
in a service (a ``uvicorn ... <package>.main:create_app`` process), cProfile on the thread's CPU
clock, started by SIGUSR1 and written to ``$HELPDESK_CPU_PROFILE_DIR/<package>.prof`` by
SIGUSR2. Anything else, or without that variable, it does nothing.

Why a CPU clock: py-spy samples a thread that is runnable but not running as busy, and on a
loaded two-core machine a process that wakes its peer (a socket write to the database, the
broker, the next service) is preempted inside that call while it holds the GIL, so py-spy
charges the peer's CPU to the write (round 19 of docs/performance.md). ``time.thread_time``
counts only the CPU this thread used. cProfile's own cost per call inflates functions called
very often: read its figures as a ranking, and measure a candidate alone before trusting a size.
"""

import os
import sys

_DIR = os.environ.get("HELPDESK_CPU_PROFILE_DIR")
_APP = next((arg for arg in sys.argv if arg.endswith(":create_app")), None)

if _DIR and _APP:
    import cProfile
    import signal
    import time

    _profile = cProfile.Profile(time.thread_time)

    def _start(signum, frame):  # noqa: ANN001 - a signal handler's signature
        _profile.enable()

    def _stop(signum, frame):  # noqa: ANN001
        _profile.disable()
        _profile.dump_stats(os.path.join(_DIR, _APP.split(".", 1)[0] + ".prof"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
