"""Where a ticket's CPU goes: a private stack under steady intake, every service sampled by
py-spy at once, the hottest frames per process (docs/performance.md, "Profile").

    .venv/bin/python bench/profile.py                 # 30 s of samples, 8 connections
    .venv/bin/python bench/profile.py --seconds 60 --connections 16 --keep /tmp/prof

It needs wrk (``make wrk``) and py-spy (requirements-dev.txt). py-spy attaches to processes of
this user with ptrace; where that is not allowed (containers without CAP_SYS_PTRACE) it exits
with py-spy's own error. The raw samples (``py-spy record -f raw``: one collapsed stack and a
count per line) are kept with ``--keep`` for a flame graph tool.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port

ROOT = Path(__file__).resolve().parents[1]
#: frames worth naming in the inclusive table: the project's and the libraries on the hot path
_INTERESTING = re.compile(r"(helpdesk_common|_svc/|gateway/|fastapi|starlette|asyncpg|aiokafka|pydantic|sqlalchemy|"
                          r"aiohttp|orjson|email/|jieba)")


def summarise(path: Path, *, top: int = 12, inclusive: int = 25) -> str:
    """The hottest frames of one ``py-spy -f raw`` file: self time (the frame on top) and
    inclusive time (the frame anywhere on the stack), as shares of all samples (pure)."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)", ")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    if not total:
        return f"{path.stem}: no samples"
    lines = [f"{path.stem}: {total} samples", "  self:"]
    lines += [f"    {100 * n / total:5.1f}%  {frame[:140]}" for frame, n in own.most_common(top)]
    lines.append("  inclusive:")
    shown = [(f, n) for f, n in anywhere.most_common() if _INTERESTING.search(f)][:inclusive]
    lines += [f"    {100 * n / total:5.1f}%  {frame[:140]}" for frame, n in shown]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="sampling window (after a 8 s warm-up)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second and process")
    parser.add_argument("--keep", type=Path, help="keep the raw samples in this directory")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if not spy or not shutil.which("wrk"):
        print("needs py-spy (requirements-dev.txt) and wrk (make wrk)", file=sys.stderr)
        return 2
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="helpdesk-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = ROOT / ".data" / "profile" / str(os.getpid())  # under the checkout: PostgreSQL's user must reach it
    data.mkdir(parents=True)
    os.chmod(data, 0o755)
    base = free_block(PORT_BLOCK)
    stack = Stack(StackConfig(data_dir=data, gateway_port=base, service_base_port=base, pg_port=free_port(),
                              kafka_port=free_port(), ephemeral=True,
                              extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "WARNING"}))
    try:
        creds = stack.up()
        env = os.environ | {"BENCH_AUTH_HEADER": "Authorization", "BENCH_AUTH_VALUE": f"Bearer {creds['channel_api_key']}",
                            "BENCH_TAG": f"profile{os.getpid()}"}
        load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds + 15}s", "-s",
                                 str(ROOT / "bench" / "post.lua"), f"{creds['gateway_url']}/v1/tickets"],
                                env=env, cwd=ROOT / "bench", stdout=subprocess.PIPE, text=True)
        time.sleep(8)
        spies = {name: subprocess.Popen([spy, "record", "-p", str(proc.pid), "-d", str(args.seconds), "-r", str(args.rate),
                                         "-f", "raw", "-o", str(out_dir / f"{name}.txt"), "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name, proc in stack.procs.items()}
        for name, proc in spies.items():
            if proc.wait() != 0:
                print(f"py-spy on {name} failed: {proc.stderr.read().strip()[-300:]}", file=sys.stderr)
        result = load.communicate(timeout=args.seconds + 60)[0]
        print(next((l for l in result.splitlines() if l.startswith("Requests/sec")), "").strip())
        for name in stack.procs:
            if (out_dir / f"{name}.txt").exists():
                print(summarise(out_dir / f"{name}.txt"))
        if args.keep:
            print(f"raw samples: {out_dir}")
    finally:
        stack.stop_all()
        shutil.rmtree(data, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
