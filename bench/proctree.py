"""A process and its descendants (PostgreSQL's backends forked under the postmaster), as the
CPU sampler (bench/run.py) and the perf summary (bench/profile.py) group them."""

from __future__ import annotations

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants now; [] when it is gone or cannot be read."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:  # gone, or not ours to read
        return []
