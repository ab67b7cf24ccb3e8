"""Where a ticket's CPU goes: a private stack under steady intake, every service sampled by
py-spy at once, the hottest frames per process (docs/performance.md, "Profile").

    .venv/bin/python bench/profile.py                 # 30 s of samples, 8 connections
    .venv/bin/python bench/profile.py --seconds 60 --connections 16 --keep /tmp/prof
    .venv/bin/python bench/profile.py --statements    # also SQL statements per ticket, per database
    .venv/bin/python bench/profile.py --cpu-clock     # cProfile on each thread's CPU clock, not py-spy
    .venv/bin/python bench/profile.py --perf          # Linux perf over the whole machine, C and kernel

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
from typing import Any

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.proctree import process_tree  # noqa: E402
#: frames worth naming in the inclusive table: the project's and the libraries on the hot path
_INTERESTING = re.compile(r"(helpdesk_common|_svc/|gateway/|fastapi|starlette|asyncpg|aiokafka|pydantic|sqlalchemy|"
                          r"aiohttp|orjson|email/|jieba)")


def summarise(path: Path, *, top: int = 12, inclusive: int = 25) -> str:
    """The hottest frames of one ``py-spy -f raw`` file: self time (the frame on top) and
    inclusive time (the frame anywhere on the stack), as shares of all samples (pure)."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    # py-spy writes frame names byte for byte: a truncated UTF-8 name must not end the summary
    for line in path.read_text(errors="replace").splitlines():
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


#: one row per database and statement over the sampling window (pg_stat_statements, loaded with --statements)
_STATEMENTS_SQL = """
SELECT d.datname AS db, s.calls, s.total_exec_time AS ms, s.plans, s.total_plan_time AS plan_ms, s.query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE s.calls > 0 AND s.query NOT LIKE '%pg_stat_statements%'
"""


#: a comment naming the extension: the tools' own queries of the counted window are left out by
#: ``_STATEMENTS_SQL``'s filter
_UNCOUNTED = " /* the bench's own query, not pg_stat_statements' subject */"


def statements_table(rows: list[dict], tickets: int, *, top: int = 20,
                     taken_in: dict[str, int] | None = None) -> str:
    """Statements per ticket and their server time, per database, and each database's most
    frequent statements (pure: ``rows`` as ``_STATEMENTS_SQL`` returns them). Planning is its
    own column: a prepared statement PostgreSQL replans at every execution (a custom plan) pays it
    each time, one on a generic plan once per connection.

    ``taken_in``: per database, the tickets its service's consumer took in over the window (its
    inbox's ``ticket.created`` rows), which divide that database's statements instead of the
    ``tickets`` created. A consumer still working off the warm-up's tickets when the window
    opens runs more statements in it than the window created tickets (round 22, under
    ``--cpu-clock``: customer-svc's identity lookup read 1.92 per ticket on the tickets created,
    1.01 on those it took in; ``bench/statements.py`` counts 1.00 on a stack that settles).
    Statements of other events (the echo of the customer link, a batch's BEGIN) still lag by
    their own delay: ``bench/statements.py`` gives the exact counts."""
    by_db: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_db[row["db"]].append(row)
    per = {db: max(1, (taken_in or {}).get(db) or tickets) for db in by_db}
    lines = [f"SQL statements per ticket ({tickets} tickets; calls include BEGIN/COMMIT; per statement: "
             "exec ms per call, plans per call, plan ms per plan):",
             f"  {'database':<14} {'calls/ticket':>12} {'exec ms/ticket':>15} {'plan ms/ticket':>15} {'tickets':>8}"]
    ranked = sorted(by_db.items(), key=lambda kv: -sum(r["calls"] for r in kv[1]) / per[kv[0]])
    totals = [0.0, 0.0, 0.0]
    for db, entries in ranked:
        sums = [sum(r[k] for r in entries) / per[db] for k in ("calls", "ms", "plan_ms")]
        totals = [t + s for t, s in zip(totals, sums)]
        lines.append(f"  {db:<14} {sums[0]:12.2f} {sums[1]:15.3f} {sums[2]:15.3f} {per[db]:8d}")
    lines.append(f"  {'all':<14} {totals[0]:12.2f} {totals[1]:15.3f} {totals[2]:15.3f}")
    for db, entries in ranked:
        lines.append(f"  {db}: most frequent")
        for r in sorted(entries, key=lambda r: -r["calls"])[:top]:
            query = " ".join(r["query"].split())
            lines.append(f"    {r['calls'] / per[db]:6.2f}/ticket {r['ms'] / max(r['calls'], 1):7.3f} ms "
                         f"{r['plans'] / max(r['calls'], 1):5.2f} plans {r['plan_ms'] / max(r['plans'], 1):6.3f} ms  "
                         f"{query[:100]}")
    return "\n".join(lines)


async def _statements(pg_port: int, *, reset: bool) -> tuple[int, dict[str, int], list[dict]]:
    """Reset (or read) pg_stat_statements; with it, how many tickets ticket-svc has stored and,
    per database with an inbox, how many ``ticket.created`` its consumer has taken in."""
    import asyncpg

    async def connect(database: str) -> Any:
        return await asyncpg.connect(host="127.0.0.1", port=pg_port, user="postgres", database=database)

    admin = await connect("postgres")
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        taken_in: dict[str, int] = {}
        tickets = 0
        for name in [r["datname"] for r in await admin.fetch(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'" + _UNCOUNTED)]:
            conn = await connect(name)
            try:
                if name == "ticket":
                    tickets = await conn.fetchval("SELECT count(*) FROM tickets" + _UNCOUNTED)
                if await conn.fetchval("SELECT to_regclass('inbox') IS NOT NULL" + _UNCOUNTED):
                    taken_in[name] = await conn.fetchval(
                        "SELECT count(*) FROM inbox WHERE event_type = 'ticket.created'" + _UNCOUNTED)
            finally:
                await conn.close()
        if reset:
            await admin.execute("SELECT pg_stat_statements_reset()")
            return tickets, taken_in, []
        return tickets, taken_in, [dict(r) for r in await admin.fetch(_STATEMENTS_SQL)]
    finally:
        await admin.close()


#: PostgreSQL's settings for counting statements: pg_stat_statements, top-level statements, planning
STATEMENTS_PG_SETTINGS = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top",
                          "pg_stat_statements.track_planning=on")


def private_stack(name: str, *, pg_settings: tuple[str, ...] = (),
                  extra_env: dict[str, str] | None = None) -> tuple[Stack, Path]:
    """A stack of the tool's own (every server on 127.0.0.1, the gateway without a rate limit, the
    services logging warnings only, no SMTP server unless ``extra_env`` names one: never the
    caller's ``SMTP_URL``) and its data directory, ``.data/<name>/<pid>`` under the checkout,
    where PostgreSQL's user can reach it; the caller stops the stack and removes it."""
    data = ROOT / ".data" / name / str(os.getpid())
    data.mkdir(parents=True)
    os.chmod(data, 0o755)
    base = free_block(PORT_BLOCK)
    stack = Stack(StackConfig(data_dir=data, gateway_port=base, service_base_port=base, pg_port=free_port(),
                              kafka_port=free_port(), ephemeral=True, pg_settings=pg_settings,
                              extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "WARNING", "SMTP_URL": "",
                                         "NOTIFY_SMTP_URL": "", **(extra_env or {})}))
    return stack, data


def _cpu_clock_env(out_dir: Path) -> dict[str, str]:
    """The services' environment for ``--cpu-clock``: the bench's sitecustomize on their path."""
    path = os.pathsep.join(p for p in (str(ROOT / "bench" / "cpu_clock"), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "HELPDESK_CPU_PROFILE_DIR": str(out_dir)}


def _cpu_clock_window(procs: dict[str, subprocess.Popen], seconds: int, out_dir: Path) -> None:
    """Profile every service for ``seconds`` (SIGUSR1 starts, SIGUSR2 writes ``<package>.prof``),
    then name each file after its service, as py-spy's are."""
    import signal

    for proc in procs.values():
        proc.send_signal(signal.SIGUSR1)
    time.sleep(seconds)
    for proc in procs.values():
        proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 30
    for name in procs:
        written = out_dir / (name.replace("-", "_") + ".prof")
        while not written.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if written.exists():
            written.rename(out_dir / f"{name}.prof")


def summarise_cpu_clock(path: Path, name: str, *, top: int = 12, inclusive: int = 25) -> str:
    """The hottest functions of one service's CPU-clock profile: own time and inclusive time as
    shares of the CPU the process's main thread used in the window."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in stats.values()) or 1.0

    def label(func: tuple[str, int, str]) -> str:
        file, _line, fn = func
        short = re.sub(r"^.*/(site-packages|src)/", "", file)
        return f"{fn} ({short})"

    lines = [f"{name}: {total:.2f} s of CPU (main thread, cProfile's own cost included)", "  self:"]
    by_self = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines += [f"    {100 * tt / total:5.1f}%  {label(func)[:140]}" for func, (_cc, _nc, tt, _ct, _c) in by_self]
    lines.append("  inclusive:")
    by_cumulative = sorted(stats.items(), key=lambda item: item[1][3], reverse=True)
    shown = [(func, ct) for func, (_cc, _nc, _tt, ct, _c) in by_cumulative if _INTERESTING.search(func[0])][:inclusive]
    lines += [f"    {100 * ct / total:5.1f}%  {label(func)[:140]}" for func, ct in shown]
    return "\n".join(lines)


PERF_RATE_HZ = 499


def parse_perf_rows(text: str) -> list[tuple[float, int, str, str]]:
    """(percent, thread id, command, the other sort key) of ``perf report --stdio --sort
    pid,<key> -g none`` rows (headers and anything else skipped)."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(\d+):(\S+)\s+(.*\S)", line)
        if match:
            rows.append((float(match.group(1)), int(match.group(2)), match.group(3), match.group(4)))
    return rows


def _perf_report(path: Path, sort: str) -> list[tuple[float, int, str, str]]:
    """``perf report`` by thread and ``sort``. No ``--pid``/``--comm`` filter: perf drops the
    kernel's samples under one."""
    done = subprocess.run(["perf", "report", "-i", str(path), "--stdio", "--no-children", "-g", "none",
                           "--sort", f"pid,{sort}"], capture_output=True, text=True)
    rows = parse_perf_rows(done.stdout)
    if not rows:
        print(f"perf report --sort pid,{sort} gave nothing: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return rows


def thread_groups(roots: dict[str, int]) -> dict[int, str]:
    """Thread id → group for each root process, its threads and its children's (PostgreSQL's
    backends): perf's ``pid`` key is the thread's id."""
    import psutil

    groups: dict[int, str] = {}
    for group, pid in roots.items():
        for proc in process_tree(pid):
            try:
                groups.update({thread.id: group for thread in proc.threads()})
            except psutil.Error:
                groups[proc.pid] = group
    return groups


def summarise_perf(by_dso: list[tuple[float, int, str, str]], by_symbol: list[tuple[float, int, str, str]],
                   groups: dict[int, str], python_groups: set[str], *, top: int = 15) -> str:
    """The machine's CPU by process group (each service, PostgreSQL, the broker, idle, anything
    else on the machine), the services' CPU by library (the interpreter, each C extension, the
    kernel) and PostgreSQL's hottest functions: sampled on every CPU's clock at once, so no
    process is charged with another's time and compiled code is seen (what py-spy and cProfile
    cannot show)."""
    def group_of(tid: int, comm: str) -> str:
        return groups.get(tid) or ("idle" if comm == "swapper" else f"other on the machine: {comm}")

    shares: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    for pct, tid, comm, dso in by_dso:
        group = group_of(tid, comm)
        shares[group] += pct
        if group in python_groups:
            libraries[dso] += pct
    functions: collections.Counter[str] = collections.Counter()
    for pct, tid, comm, sym in by_symbol:
        if group_of(tid, comm) == "postgres":
            functions[sym] += pct
    lines = ["perf, whole machine (share of all CPUs' samples):"]
    lines += [f"  {pct:6.2f}%  {group}" for group, pct in shares.most_common() if pct >= 0.05]
    lines.append("  the services' processes by library (share of all samples):")
    lines += [f"  {pct:6.2f}%  {dso}" for dso, pct in libraries.most_common(top)]
    lines.append("  PostgreSQL's functions (self, share of all samples):")
    lines += [f"  {pct:6.2f}%  {sym}" for sym, pct in functions.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="sampling window (after a 8 s warm-up)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second and process")
    parser.add_argument("--keep", type=Path, help="keep the raw samples in this directory")
    parser.add_argument("--statements", action="store_true",
                        help="load pg_stat_statements and print SQL statements per ticket, per database")
    parser.add_argument("--gil", action="store_true",
                        help="keep only samples that hold the GIL (py-spy --gil): the processes' Python CPU, "
                             "without the event loop's waits that a container's thread states do not tell apart")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="instead of py-spy, cProfile in each service on the thread's CPU clock "
                             "(bench/cpu_clock/sitecustomize.py): what each function cost in CPU, not in "
                             "samples of a runnable thread (py-spy charges a preempted writer with its peer's CPU)")
    parser.add_argument("--native", action="store_true",
                        help="C frames too (py-spy --native; it pauses each process per sample): where a "
                             "driver's or the event loop's compiled code spends its time")
    parser.add_argument("--perf", action="store_true",
                        help="instead of py-spy, Linux perf over the whole machine (perf record -a, every "
                             "CPU's clock): each process's share, the Python processes' CPU by library "
                             "(interpreter, C extensions, kernel) and PostgreSQL's hottest functions; needs "
                             "perf and a perf_event_paranoid that allows it")
    args = parser.parse_args()
    if args.perf and (args.cpu_clock or args.native or args.gil):
        parser.error("--perf samples the machine itself: not with --cpu-clock, --native or --gil")
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if args.perf and not shutil.which("perf"):
        print("--perf needs perf (the linux-perf package)", file=sys.stderr)
        return 2
    if not (spy or args.cpu_clock or args.perf) or not shutil.which("wrk"):
        print("needs py-spy (requirements-dev.txt) and wrk (make wrk)", file=sys.stderr)
        return 2
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="helpdesk-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    stack, data = private_stack("profile", pg_settings=STATEMENTS_PG_SETTINGS if args.statements else (),
                                extra_env=_cpu_clock_env(out_dir) if args.cpu_clock else None)
    try:
        creds = stack.up()
        env = os.environ | {"BENCH_AUTH_HEADER": "Authorization", "BENCH_AUTH_VALUE": f"Bearer {creds['channel_api_key']}",
                            "BENCH_TAG": f"profile{os.getpid()}"}
        load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds + 15}s", "-s",
                                 str(ROOT / "bench" / "post.lua"), f"{creds['gateway_url']}/v1/tickets"],
                                env=env, cwd=ROOT / "bench", stdout=subprocess.PIPE, text=True)
        time.sleep(8)
        if args.statements:
            import asyncio

            start_tickets, start_taken_in, _ = asyncio.run(_statements(stack.config.pg_port, reset=True))
        if args.cpu_clock:
            _cpu_clock_window(stack.procs, args.seconds, out_dir)
        perf_groups: dict[int, str] = {}
        if args.perf:
            # the CPU clock, not the default ``cycles``: an idle (halted) CPU makes no cycles
            recorded = subprocess.run(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F", str(PERF_RATE_HZ),
                                       "-o", str(out_dir / "perf.data"), "--", "sleep", str(args.seconds)],
                                      capture_output=True, text=True)
            if recorded.returncode != 0:
                print(f"perf record failed: {recorded.stderr.strip()[-300:]}", file=sys.stderr)
                return 1
            roots = {name: proc.pid for name, proc in stack.procs.items()}
            if stack.pg and stack.pg.proc:
                roots["postgres"] = stack.pg.proc.pid
            if stack.broker and stack.broker.proc:
                roots["broker"] = stack.broker.proc.pid
            perf_groups = thread_groups(roots)  # while the load runs: every backend still there
        spies = {} if args.cpu_clock or args.perf else {name: subprocess.Popen([spy, "record", "-p", str(proc.pid), "-d", str(args.seconds), "-r", str(args.rate),
                                         "-f", "raw", "-o", str(out_dir / f"{name}.txt"),
                                         *(["--native"] if args.native else ["--nonblocking"]),
                                         *(["--gil"] if args.gil else [])],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name, proc in stack.procs.items()}
        for name, proc in spies.items():
            if proc.wait() != 0:
                print(f"py-spy on {name} failed: {proc.stderr.read().strip()[-300:]}", file=sys.stderr)
        if args.statements:
            end_tickets, end_taken_in, rows = asyncio.run(_statements(stack.config.pg_port, reset=False))
            # read at the window's end while the load still runs: each consumer's statements are
            # divided by the tickets it took in over the window, not by those created in it
            # (a consumer behind at the window's start works off more tickets than it created)
            statements = statements_table(rows, max(end_tickets - start_tickets, 1), taken_in={
                db: n - start_taken_in.get(db, 0) for db, n in end_taken_in.items()})
        result = load.communicate(timeout=args.seconds + 60)[0]
        print(next((l for l in result.splitlines() if l.startswith("Requests/sec")), "").strip())
        for name in stack.procs:
            if (out_dir / f"{name}.txt").exists():
                print(summarise(out_dir / f"{name}.txt"))
            if (out_dir / f"{name}.prof").exists():
                print(summarise_cpu_clock(out_dir / f"{name}.prof", name))
        if args.perf:
            data = out_dir / "perf.data"
            print(summarise_perf(_perf_report(data, "dso"), _perf_report(data, "sym"), perf_groups, set(stack.procs)))
        if args.statements:
            print(statements)
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
