"""How fast an interpreter runs the kind of Python the services run per event: dataclasses,
dict and attribute work, coroutines switching on an event loop (stdlib only). Compares
interpreter builds (docs/performance.md, round 21: pyenv's default build against a
distribution's built with profile-guided and link-time optimisation).

    .venv/bin/python bench/interpreter.py /root/.pyenv/versions/3.11.7/bin/python3 /usr/bin/python3.11

Each interpreter runs the loop ``--runs`` times in a process of its own, alternating; the
table gives each one's user CPU seconds per run (best and median)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import uuid
from datetime import datetime, timezone


@dataclasses.dataclass
class Fact:
    kind: str
    at: datetime
    value: dict


def fold(facts: list[Fact]) -> dict:
    state: dict = {}
    for fact in facts:
        bucket = state.setdefault(fact.kind, {"n": 0, "last": None, "tags": set()})
        bucket["n"] += 1
        if bucket["last"] is None or fact.at > bucket["last"]:
            bucket["last"] = fact.at
        bucket["tags"].update(fact.value.get("tags", ()))
    return {k: (v["n"], v["last"].isoformat(), sorted(v["tags"])) for k, v in state.items()}


async def _worker(queue: asyncio.Queue, out: list) -> None:
    while (item := await queue.get()) is not None:
        out.append(fold(item))


async def _loop(batches: int) -> None:
    now = datetime.now(timezone.utc)
    facts = [Fact(kind=f"k{i % 7}", at=now, value={"tags": [f"t{i % 5}", "x"], "id": str(uuid.uuid4())})
             for i in range(40)]
    queue: asyncio.Queue = asyncio.Queue()
    out: list = []
    workers = [asyncio.create_task(_worker(queue, out)) for _ in range(4)]
    for i in range(batches):
        await queue.put(facts)
        if i % 50 == 0:
            json.dumps(out[-1] if out else {})
            await asyncio.sleep(0)
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)


def run_once(batches: int) -> float:
    """User CPU seconds of one loop in this process."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    asyncio.run(_loop(batches))
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("interpreters", nargs="*", default=[sys.executable])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    if args.once:
        print(run_once(args.batches))
        return 0
    times: dict[str, list[float]] = {i: [] for i in args.interpreters}
    for _ in range(args.runs):
        for interpreter in args.interpreters:
            out = subprocess.run([interpreter, __file__, "--once", "--batches", str(args.batches)],
                                 capture_output=True, text=True, check=True).stdout
            times[interpreter].append(float(out))
    for interpreter, seconds in times.items():
        version = subprocess.run([interpreter, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"{interpreter:<45} {version:<15} best {min(seconds):.3f} s  median {statistics.median(seconds):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
