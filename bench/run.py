"""`make bench`: ticket intake through the gateway vs straight to ticket-svc vs two baselines,
plus propagation lag (ticket created -> counted by analytics-svc), all in one run on one machine.

Phases (each bounded in time):
  1. a private stack (embedded PostgreSQL + tansu + the five services) on free ports;
  2. baselines: a bare uvicorn JSON hello, and FastAPI + one raw asyncpg INSERT (pool of 10);
  3. intake straight to ticket-svc (signed internal identity), then through the gateway
     (channel API key), both driven by wrk with the same ~600-byte bodies;
  4. propagation lag: under the saturated gateway phase (and how long analytics takes to catch
     up), and under a light steady load (~50 req/s);
  5. CPU seconds per 1000 requests for each process group, sampled with psutil.

Writes bench/results/latest.json (flat keys) and a timestamped copy, prints a short table.
Numbers move +-20 % from run to run on shared machines: compare the ratios.
Exit status: 0 when every phase ran clean, 3 when a phase had errors or analytics did not
catch up (results are still written and the table flags it), 2 when wrk is missing, 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WRK_INSTALL_HINT = "wrk is not installed; install it with: apt-get install -y wrk  (Debian/Ubuntu package `wrk`)"

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from helpdesk_common.devstack import Stack, StackConfig, free_port, wait_http_ok  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402

sys.path.insert(0, str(ROOT))
from bench.baselines import SCHEMA  # noqa: E402

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs noise on headless boxes

PROPAGATION_TIMEOUT_S = 120.0
CPU_GROUPS = ("gateway", "ticket-svc", "customer-svc", "sla-svc", "analytics-svc", "postgres", "broker")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- ports and processes -------------------------------------------------------------------

def free_block(size: int = 6) -> int:
    """A base port such that base .. base+size-1 are all free (services listen on base+offset)."""
    for _ in range(200):
        base = free_port()
        if base + size > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports found")


def free_port_outside(block: range, taken: set[int] = frozenset()) -> int:
    while True:
        port = free_port()
        if port not in block and port not in taken:
            return port


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_baseline(factory: str, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"bench.baselines:{factory}", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
         "--workers", "1"],
        cwd=ROOT, env=os.environ | env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_die_with_parent,
    )


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- CPU accounting ------------------------------------------------------------------------

class CpuSampler(threading.Thread):
    """Accumulates CPU seconds (user + system) per process group, children included.

    A group is a root pid plus all its descendants, re-discovered on every sample, so
    PostgreSQL backends forked mid-phase are counted; a process created after the sampler
    started counts from zero. ``snapshot()`` takes a fresh sample and returns the totals.
    """

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="cpu-sampler")
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.totals: dict[str, float] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._since = time.time()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def watch(self, group: str, pid: int) -> None:
        with self._lock:
            self.roots[group] = pid
            self.totals.setdefault(group, 0.0)
        self.sample()

    def unwatch(self, group: str) -> None:
        self.sample()
        with self._lock:
            self.roots.pop(group, None)

    def sample(self) -> None:
        with self._lock:
            for group, pid in self.roots.items():
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                for p in procs:
                    try:
                        with p.oneshot():
                            t = p.cpu_times()
                            created = p.create_time()
                    except psutil.Error:
                        continue
                    used = t.user + t.system
                    key = (p.pid, created)
                    if key not in self._last:
                        # first sight: count everything if it was born while we watched
                        self._last[key] = 0.0 if created > self._since else used
                    self.totals[group] += used - self._last[key]
                    self._last[key] = used

    def snapshot(self) -> dict[str, float]:
        self.sample()
        with self._lock:
            return dict(self.totals)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - sampling must never kill the run
                pass

    def stop(self) -> None:
        self._halt.set()


@dataclass
class Window:
    """CPU used per group, machine busy share, wall time and wall clock between start and end."""

    sampler: CpuSampler
    cpu: dict[str, float] = field(default_factory=dict)
    busy_pct: float = 0.0
    seconds: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def __enter__(self) -> "Window":
        self._cpu0 = self.sampler.snapshot()
        self._sys0 = psutil.cpu_times()
        self._t0 = time.monotonic()
        self.started_at = datetime.now(UTC)
        return self

    def __exit__(self, *exc) -> None:
        self.ended_at = datetime.now(UTC)
        self.seconds = time.monotonic() - self._t0
        cpu1 = self.sampler.snapshot()
        self.cpu = {g: cpu1.get(g, 0.0) - self._cpu0.get(g, 0.0) for g in cpu1}
        sys1 = psutil.cpu_times()
        total = sum(sys1) - sum(self._sys0)
        idle = (sys1.idle + getattr(sys1, "iowait", 0.0)) - (self._sys0.idle + getattr(self._sys0, "iowait", 0.0))
        self.busy_pct = 100.0 * (1 - idle / total) if total > 0 else 0.0


# ---- wrk -----------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    socket_errors: int
    timeouts: int
    non2xx: int
    errors: int
    wrk_cpu_s: float = 0.0
    window: Window | None = None
    p95_ms: float | None = None  # scripts that report it (search.lua, email.lua)

    def cpu_ms_per_req(self, group: str) -> float:
        if not self.window or not self.requests:
            return 0.0
        return round(self.window.cpu.get(group, 0.0) * 1000 / self.requests, 3)


def wrk(name: str, url: str, *, script: str, duration: int, connections: int, threads: int,
        env: dict[str, str] | None = None, sampler: CpuSampler, warmup: int = 0) -> Phase:
    def run(seconds: int) -> tuple[dict, float]:
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
               "-s", str(BENCH / script), url]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | (env or {}), timeout=seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        match = re.search(r"WRK_JSON (\{.*\})", out.stdout)
        if out.returncode != 0 or not match:
            raise RuntimeError(f"wrk failed ({out.returncode}) for {name}:\n{out.stdout}\n{out.stderr}")
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return json.loads(match.group(1)), used

    if warmup > 0:
        run(warmup)  # connections, pools, caches and code paths warm; results discarded
    with Window(sampler) as window:
        stats, wrk_cpu = run(duration)
    statuses = {str(k): int(v) for k, v in stats.get("statuses", {}).items()}
    if statuses:
        non2xx = sum(n for code, n in statuses.items() if not code.startswith("2"))
    else:  # get.lua does not count statuses; wrk counts >= 400 itself
        non2xx = stats["errors_status"]
    socket_errors = stats["errors_connect"] + stats["errors_read"] + stats["errors_write"]
    timeouts = stats["errors_timeout"]
    seconds = stats["duration_us"] / 1e6
    return Phase(
        name=name,
        rps=stats["requests"] / seconds,
        p50_ms=stats["p50_us"] / 1000,
        p90_ms=stats["p90_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        requests=stats["requests"],
        statuses=statuses,
        socket_errors=socket_errors,
        timeouts=timeouts,
        non2xx=non2xx,
        errors=socket_errors + timeouts + non2xx,
        wrk_cpu_s=wrk_cpu,
        window=window,
        p95_ms=stats["p95_us"] / 1000 if "p95_us" in stats else None,
    )


# ---- databases -----------------------------------------------------------------------------

def raw_dsn(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy URLs carry the driver (postgresql+asyncpg://)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", sqlalchemy_url)


async def prepare_bench_db(db_base: str) -> str:
    """A `bench` database on the stack's PostgreSQL with the baseline's table; returns its DSN."""
    base = raw_dsn(db_base).rstrip("/")
    conn = await asyncpg.connect(base + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bench'"):
            await conn.execute("CREATE DATABASE bench")
    finally:
        await conn.close()
    dsn = base + "/bench"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()
    return dsn


def stack_cpu_levels(sampler: CpuSampler, seconds: float) -> dict[str, float]:
    """Cores each of the stack's process groups uses over the next `seconds`."""
    before = sampler.snapshot()
    time.sleep(seconds)
    after = sampler.snapshot()
    return {g: (after[g] - before.get(g, 0.0)) / seconds for g in CPU_GROUPS if g in after}


class Pipeline:
    """Counts on both ends of the thin path: tickets in ticket-svc vs facts in analytics-svc."""

    def __init__(self, stack: Stack) -> None:
        self.tickets_dsn = raw_dsn(stack.database_url("ticket-svc"))
        self.analytics_dsn = raw_dsn(stack.database_url("analytics-svc"))
        self.outbox_dsns = [raw_dsn(stack.database_url(s)) for s in ("ticket-svc", "customer-svc", "sla-svc",
                                                                      "analytics-svc")]

    async def unsent_everywhere(self) -> int:
        """Unsent outbox rows over every service that has an outbox."""
        total = 0
        for dsn in self.outbox_dsns:
            conn = await asyncpg.connect(dsn)
            try:
                if await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"):
                    total += await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            finally:
                await conn.close()
        return total

    def settle(self, sampler: CpuSampler, *, idle: dict[str, float], timeout: float = 60.0) -> bool:
        """Wait until the event side has finished the previous phase's work: every ticket counted,
        every outbox drained, and each service and PostgreSQL back at its idle CPU for a second
        (projections keep folding links after analytics counted the tickets). Then the next
        phase neither competes with a leftover backlog nor measures it. The broker is left out:
        its idle CPU (consumers' fetch polling) grows with the data it holds."""
        started = time.monotonic()
        self.wait_caught_up(timeout)
        busy: dict[str, float] = {}
        while time.monotonic() - started < timeout:
            if asyncio.run(self.unsent_everywhere()) == 0:
                levels = stack_cpu_levels(sampler, 1.0)
                busy = {g: round(v, 2) for g, v in levels.items() if g != "broker" and v > idle.get(g, 0.0) + 0.05}
                if not busy:
                    return True
            else:
                time.sleep(0.2)
        log(f"the stack did not settle within {timeout:.0f}s (still busy, in cores: {busy}); going on")
        return False

    async def counts(self) -> tuple[int, int, int]:
        """(tickets, unsent outbox rows in ticket-svc, tickets counted by analytics)."""
        t = await asyncpg.connect(self.tickets_dsn)
        a = await asyncpg.connect(self.analytics_dsn)
        try:
            tickets = await t.fetchval("SELECT count(*) FROM tickets")
            unsent = await t.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            counted = await a.fetchval("SELECT count(*) FROM ticket_facts WHERE created_at IS NOT NULL")
            return tickets, unsent, counted
        finally:
            await t.close()
            await a.close()

    def wait_caught_up(self, timeout: float = PROPAGATION_TIMEOUT_S) -> float | None:
        """Seconds until the outbox is drained and analytics counted every ticket; None on timeout."""
        started = time.monotonic()
        while True:
            tickets, unsent, counted = asyncio.run(self.counts())
            if unsent == 0 and counted >= tickets:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                log(f"analytics did not catch up within {timeout:.0f}s: {counted}/{tickets} tickets counted, "
                    f"{unsent} outbox rows unsent")
                return None
            time.sleep(0.1)

    async def lag(self, since: datetime, until: datetime) -> tuple[float | None, float | None, int]:
        """p50 / p99 of ingested_at - created_at (ms) over tickets created in [since, until)."""
        conn = await asyncpg.connect(self.analytics_dsn)
        try:
            row = await conn.fetchrow(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms) AS p50,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) AS p99,
                       count(*) AS n
                FROM (SELECT extract(epoch FROM ingested_at - created_at) * 1000 AS lag_ms
                      FROM ticket_facts
                      WHERE created_at >= $1 AND created_at < $2 AND ingested_at IS NOT NULL) AS s
                """,
                since, until,
            )
        finally:
            await conn.close()
        p50, p99 = row["p50"], row["p99"]
        return (None if p50 is None else round(float(p50), 1), None if p99 is None else round(float(p99), 1),
                int(row["n"]))


# ---- light load ----------------------------------------------------------------------------

def ticket_body(tag: str, n: int) -> dict:
    """The same shape and size as bench/post.lua's body."""
    return {
        "subject": f"Order {tag}-{n} arrived damaged",
        "description": "The parcel arrived with a broken corner and the item inside is scratched. I would like a "
                       "replacement, or a refund if none is in stock. Photos are attached to the order page. "
                       "包裹一角破损，商品有划痕，请协助换货或退款。",
        "requester": {"name": f"Bench User {n}", "email": f"requester-{tag}-{n}@example.com",
                      "phone": f"+86 139 {n % 10000:04d} {n % 7919:04d}"},
        "priority": ("low", "normal", "normal", "high", "urgent")[n % 5],
        "type": "complaint",
        "tags": ["bench", "damaged", "logistics"],
        "custom_fields": {"order_no": f"B-{tag}-{n}", "channel_ref": "httpx", "region": "cn-east",
                          "value_cents": (n * 7919) % 100000},
    }


def smoke(name: str, url: str, headers: dict[str, str]) -> None:
    """One request before a phase: a misconfigured phase fails loudly instead of timing 4xx."""
    r = httpx.post(url, json=ticket_body(f"smoke-{name}", 0), headers=headers, timeout=10)
    if not r.is_success:
        raise RuntimeError(f"{name}: POST {url} answered {r.status_code}: {r.text[:500]}")


async def light_load(gateway_url: str, key: str, *, rate: float, seconds: float, tag: str) -> dict[str, int]:
    """Open loop at a fixed rate (what a help desk mostly sees): lag without queueing."""
    statuses: dict[str, int] = {}

    async def post(client: httpx.AsyncClient, n: int) -> None:
        try:
            r = await client.post("/v1/tickets", json=ticket_body(tag, n))
            code = str(r.status_code)
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        statuses[code] = statuses.get(code, 0) + 1

    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=10) as client:
        tasks = []
        started = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(client, n)))
        await asyncio.gather(*tasks)
    return statuses


# ---- output --------------------------------------------------------------------------------

def statuses_text(statuses: dict[str, int]) -> str:
    """{"201": 1500, "503": 2} -> "201=1500 503=2" (keeps latest.json flat)."""
    return " ".join(f"{code}={n}" for code, n in sorted(statuses.items()))


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(r: dict, phases: dict[str, Phase]) -> None:
    def flag(p: Phase) -> str:
        if not p.errors:
            return ""
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(p.statuses.items()) if not k.startswith("2"))
        extra = [x for x in (detail, p.socket_errors and f"socket {p.socket_errors}",
                             p.timeouts and f"timeouts {p.timeouts}") if x]
        return f"  !! {p.errors} errors ({'; '.join(extra) or 'status >= 400'})"

    hello, insert, direct, intake = (phases[k] for k in ("uvicorn", "asyncpg", "direct", "intake"))
    print()
    print(f"{'case':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  ratio")
    rows = [
        ("bare uvicorn JSON hello", hello, "H = 1"),
        ("FastAPI + raw asyncpg INSERT", insert, f"{insert.rps / hello.rps:.3f} H"),
        ("intake straight to ticket-svc", direct, f"{r['ratio_direct_vs_asyncpg_baseline']:.3f} x asyncpg baseline"),
        ("intake through the gateway", intake, f"{r['ratio_intake_vs_direct']:.3f} x direct, "
                                               f"{r['ratio_intake_vs_uvicorn']:.4f} H"),
    ]
    for label, p, ratio in rows:
        print(f"{label:<34}{p.rps:>9.1f}{p.p50_ms:>9.2f}{p.p99_ms:>9.2f}  {ratio}{flag(p)}")
    print()
    print(f"{'CPU ms per request':<34}{'gateway':>9}{'ticket':>9}{'postgres':>9}{'consumers':>10}{'wrk':>7}{'busy':>7}")
    for label, p in (("  intake straight to ticket-svc", direct), ("  intake through the gateway", intake)):
        consumers = sum(p.cpu_ms_per_req(g) for g in ("customer-svc", "sla-svc", "analytics-svc", "broker"))
        wrk_ms = p.wrk_cpu_s * 1000 / max(1, p.requests)
        print(f"{label:<34}{p.cpu_ms_per_req('gateway'):>9.3f}{p.cpu_ms_per_req('ticket-svc'):>9.3f}"
              f"{p.cpu_ms_per_req('postgres'):>9.3f}{consumers:>10.3f}{wrk_ms:>7.3f}{p.window.busy_pct:>6.0f}%")
    parts = ", ".join(f"{g} {r['pipeline_cpu_ms_per_ticket_' + g.replace('-', '_')]:.2f}" for g in CPU_GROUPS)
    print(f"whole thin path, CPU ms per ticket until settled: {r['pipeline_cpu_ms_per_ticket']:.2f}  ({parts})")
    print()
    print("propagation (ticket created -> counted by analytics-svc):")
    print(f"  light load ({r['propagation_light_rate_rps']:.0f} req/s for {r['propagation_light_seconds']:.0f} s):"
          f"  p50 {fmt(r['propagation_light_p50_ms'])} ms   p99 {fmt(r['propagation_light_p99_ms'])} ms"
          f"   ({r['propagation_light_samples']} tickets)"
          + (f"  !! {r['propagation_light_errors']} errors {r['propagation_light_statuses']}"
             if r["propagation_light_errors"] else ""))
    print(f"  saturated gateway phase:       p50 {fmt(r['propagation_p50_ms'])} ms   p99 {fmt(r['propagation_p99_ms'])} ms"
          f"   ({r['propagation_samples']} tickets), caught up {fmt(r['catch_up_s'], '.2f')} s after the phase"
          + ("" if r["catch_up_s"] is not None else f"  !! not within {PROPAGATION_TIMEOUT_S:.0f} s"))


# ---- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk phase (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured wrk seconds before each phase (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, choices=(1, 2), help="wrk threads (default 1)")
    parser.add_argument("--light-rate", type=float, default=50.0, help="req/s of the light-load phase (default 50)")
    parser.add_argument("--light-seconds", type=float, default=5.0, help="length of the light-load phase (default 5)")
    parser.add_argument("--keep-data", action="store_true", help="keep the bench stack's data dir (logs, databases)")
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads")

    if shutil.which("wrk") is None:
        print(WRK_INSTALL_HINT, file=sys.stderr)
        return 2

    # SIGINT and SIGTERM (e.g. to `make`) unwind through the finally below, which stops
    # everything; set explicitly since a shell may start background jobs with SIGINT ignored
    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    sampler = CpuSampler()
    sampler.start()
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    # under the checkout (not a 0700 temp dir) so PostgreSQL, which runs as its own user when
    # we are root, can use it directly; removed at the end unless --keep-data or a failure
    data_root_existed = (ROOT / ".data").exists()
    data_dir = ROOT / ".data" / "bench" / run_id
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    base = free_block(6)
    pg_port = free_port_outside(range(base, base + 5))
    kafka_port = free_port_outside(range(base, base + 5), {pg_port})
    stack = Stack(StackConfig(
        data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port, kafka_port=kafka_port,
        extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "WARNING"},
    ))
    baselines: list[subprocess.Popen] = []
    phases: dict[str, Phase] = {}
    results: dict = {}
    failed = False
    wrk_args = dict(duration=args.duration, connections=args.connections, threads=args.threads,
                    warmup=args.warmup, sampler=sampler)
    started = time.monotonic()
    try:
        log(f"starting a private stack (gateway :{base}, services :{base + 1}-{base + 4}, "
            f"data {data_dir.relative_to(ROOT)}) ...")
        creds = stack.up()
        gateway = creds["gateway_url"]
        for name, proc in stack.procs.items():
            sampler.watch(name, proc.pid)
        if stack.pg and stack.pg.proc:
            sampler.watch("postgres", stack.pg.proc.pid)
        if stack.broker and stack.broker.proc:
            sampler.watch("broker", stack.broker.proc.pid)
        time.sleep(1.0)
        # idle consumers poll the broker, which costs some CPU even with no traffic
        idle = stack_cpu_levels(sampler, 2.0)
        idle_cores = sum(idle.values())

        # -- baselines ----------------------------------------------------------------------
        bench_dsn = asyncio.run(prepare_bench_db(stack.db_base))
        hello_port = free_port_outside(range(base, base + 5), {pg_port, kafka_port})
        insert_port = free_port_outside(range(base, base + 5), {pg_port, kafka_port, hello_port})
        baselines.append(start_baseline("hello_app", hello_port, {}, stack.logs_dir / "baseline-hello.log"))
        baselines.append(start_baseline("insert_app", insert_port, {"BENCH_DSN": bench_dsn},
                                        stack.logs_dir / "baseline-insert.log"))
        wait_http_ok(f"http://127.0.0.1:{hello_port}/", 30, baselines[0])
        wait_http_ok(f"http://127.0.0.1:{insert_port}/healthz", 30, baselines[1])
        sampler.watch("baseline-hello", baselines[0].pid)
        sampler.watch("baseline-insert", baselines[1].pid)
        log("baseline: bare uvicorn JSON hello ...")
        phases["uvicorn"] = wrk("uvicorn", f"http://127.0.0.1:{hello_port}/", script="get.lua", **wrk_args)
        log("baseline: FastAPI + raw asyncpg INSERT ...")
        smoke("asyncpg", f"http://127.0.0.1:{insert_port}/v1/tickets", {})
        phases["asyncpg"] = wrk("asyncpg", f"http://127.0.0.1:{insert_port}/v1/tickets", script="post.lua",
                                env={"BENCH_TAG": f"base-{run_id}"}, **wrk_args)
        for p in baselines:
            stop_proc(p)

        # -- intake straight to ticket-svc ------------------------------------------------------
        pipeline = Pipeline(stack)
        token = IdentitySigner(stack.secrets["internal_auth_private_key"]).token_for(
            Principal(kind="channel", id=str(uuid.uuid4()), channel="api", name="bench"))
        unsettled = [] if pipeline.settle(sampler, idle=idle) else ["before direct"]
        log("intake straight to ticket-svc ...")
        smoke("direct", f"{stack.url_of('ticket-svc')}/v1/tickets", {"X-Internal-Identity": token})
        phases["direct"] = wrk("direct", f"{stack.url_of('ticket-svc')}/v1/tickets", script="post.lua",
                               env={"BENCH_AUTH_HEADER": "X-Internal-Identity", "BENCH_AUTH_VALUE": token,
                                    "BENCH_TAG": f"direct-{run_id}"}, **wrk_args)
        log("waiting for the pipeline to drain before the gateway phase ...")
        drained_direct = pipeline.wait_caught_up()
        if not pipeline.settle(sampler, idle=idle):
            unsettled.append("before gateway")

        # -- intake through the gateway -----------------------------------------------------------
        log("intake through the gateway ...")
        smoke("intake", f"{gateway}/v1/tickets", {"Authorization": f"Bearer {creds['channel_api_key']}"})
        tickets_before = asyncio.run(pipeline.counts())[0]
        with Window(sampler) as whole:  # warm-up + phase + the event side finishing its tickets
            phases["intake"] = intake = wrk(
                "intake", f"{gateway}/v1/tickets", script="post.lua",
                env={"BENCH_AUTH_HEADER": "Authorization", "BENCH_AUTH_VALUE": f"Bearer {creds['channel_api_key']}",
                     "BENCH_TAG": f"gw-{run_id}"}, **wrk_args)
            log("waiting until analytics has counted every ticket ...")
            catch_up = pipeline.wait_caught_up()
            if not pipeline.settle(sampler, idle=idle):
                unsettled.append("before light load")
        pipeline_tickets = asyncio.run(pipeline.counts())[0] - tickets_before
        assert intake.window and intake.window.started_at and intake.window.ended_at
        p50, p99, counted = asyncio.run(pipeline.lag(intake.window.started_at, intake.window.ended_at))

        # -- propagation under light load --------------------------------------------------------
        log(f"propagation under light load ({args.light_rate:.0f} req/s for {args.light_seconds:.0f} s) ...")
        light_start = datetime.now(UTC)
        light_statuses = asyncio.run(light_load(gateway, creds["channel_api_key"], rate=args.light_rate,
                                                seconds=args.light_seconds, tag=f"light-{run_id}"))
        light_end = datetime.now(UTC)
        light_caught_up = pipeline.wait_caught_up()
        light_p50, light_p99, light_n = asyncio.run(pipeline.lag(light_start, light_end))
        light_errors = sum(n for code, n in light_statuses.items() if not code.startswith("2"))

        hello, insert, direct = phases["uvicorn"], phases["asyncpg"], phases["direct"]
        # services and PostgreSQL net of what they burn when idle (consumers polling) over that
        # time; the broker gross: its idle polling cost grows with the data it holds
        pipeline_cpu = {g: whole.cpu.get(g, 0.0) if g == "broker" else
                        max(0.0, whole.cpu.get(g, 0.0) - idle.get(g, 0.0) * whole.seconds) for g in CPU_GROUPS}
        now = datetime.now(UTC)
        results = {
            "intake_rps": round(intake.rps, 1),
            "intake_p50_ms": intake.p50_ms,
            "intake_p90_ms": intake.p90_ms,
            "intake_p99_ms": intake.p99_ms,
            "intake_requests": intake.requests,
            "intake_errors": intake.errors,
            "intake_non2xx": intake.non2xx,
            "intake_statuses": statuses_text(intake.statuses),
            "direct_intake_rps": round(direct.rps, 1),
            "direct_intake_p50_ms": direct.p50_ms,
            "direct_intake_p90_ms": direct.p90_ms,
            "direct_intake_p99_ms": direct.p99_ms,
            "direct_intake_requests": direct.requests,
            "direct_intake_errors": direct.errors,
            "direct_intake_non2xx": direct.non2xx,
            "direct_intake_statuses": statuses_text(direct.statuses),
            "propagation_p50_ms": p50,
            "propagation_p99_ms": p99,
            "propagation_samples": counted,
            "catch_up_s": None if catch_up is None else round(catch_up, 2),
            "propagation_light_p50_ms": light_p50,
            "propagation_light_p99_ms": light_p99,
            "propagation_light_samples": light_n,
            "propagation_light_rate_rps": args.light_rate,
            "propagation_light_seconds": args.light_seconds,
            "propagation_light_errors": light_errors,
            "propagation_light_statuses": statuses_text(light_statuses),
            "baseline_uvicorn_rps": round(hello.rps, 1),
            "baseline_uvicorn_p50_ms": hello.p50_ms,
            "baseline_uvicorn_p99_ms": hello.p99_ms,
            "baseline_uvicorn_errors": hello.errors,
            "baseline_asyncpg_insert_rps": round(insert.rps, 1),
            "baseline_asyncpg_insert_p50_ms": insert.p50_ms,
            "baseline_asyncpg_insert_p99_ms": insert.p99_ms,
            "baseline_asyncpg_insert_errors": insert.errors,
            "ratio_intake_vs_direct": round(intake.rps / direct.rps, 3),
            "ratio_direct_vs_asyncpg_baseline": round(direct.rps / insert.rps, 3),
            "ratio_intake_vs_asyncpg_baseline": round(intake.rps / insert.rps, 3),
            "ratio_intake_vs_uvicorn": round(intake.rps / hello.rps, 4),
            "ratio_asyncpg_baseline_vs_uvicorn": round(insert.rps / hello.rps, 3),
            # CPU per request during the gateway phase (the hop's cost = gateway + extra ticket-svc)
            "gateway_cpu_ms_per_req": intake.cpu_ms_per_req("gateway"),
            "ticket_cpu_ms_per_req": intake.cpu_ms_per_req("ticket-svc"),
            "postgres_cpu_ms_per_req": intake.cpu_ms_per_req("postgres"),
            "consumers_cpu_ms_per_req": round(sum(intake.cpu_ms_per_req(g) for g in
                                                  ("customer-svc", "sla-svc", "analytics-svc", "broker")), 3),
            "wrk_cpu_ms_per_req": round(intake.wrk_cpu_s * 1000 / max(1, intake.requests), 3),
            "machine_busy_pct": round(intake.window.busy_pct, 1),
            # the same during the direct phase
            "direct_ticket_cpu_ms_per_req": direct.cpu_ms_per_req("ticket-svc"),
            "direct_postgres_cpu_ms_per_req": direct.cpu_ms_per_req("postgres"),
            "direct_consumers_cpu_ms_per_req": round(sum(direct.cpu_ms_per_req(g) for g in
                                                         ("customer-svc", "sla-svc", "analytics-svc", "broker")), 3),
            "direct_machine_busy_pct": round(direct.window.busy_pct, 1) if direct.window else None,
            # every process of the stack, from the start of the gateway phase until it settled again
            "pipeline_cpu_ms_per_ticket": round(sum(pipeline_cpu.values()) * 1000 / max(1, pipeline_tickets), 3),
            **{f"pipeline_cpu_ms_per_ticket_{g.replace('-', '_')}":
               round(pipeline_cpu[g] * 1000 / max(1, pipeline_tickets), 3) for g in CPU_GROUPS},
            "pipeline_tickets": pipeline_tickets,
            "baseline_uvicorn_cpu_ms_per_req": hello.cpu_ms_per_req("baseline-hello"),
            "baseline_asyncpg_insert_cpu_ms_per_req": insert.cpu_ms_per_req("baseline-insert"),
            "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}",
            "machine_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "timestamp": now.isoformat(timespec="seconds"),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip() or "wrk",
            "drained_before_gateway_s": None if drained_direct is None else round(drained_direct, 2),
            "stack_idle_cores": round(idle_cores, 3),
            "unsettled": ", ".join(unsettled),  # phases that started before the stack was idle again
            "light_caught_up_s": None if light_caught_up is None else round(light_caught_up, 2),
        }
    except KeyboardInterrupt:
        log("interrupted; stopping everything ...")
        return 130
    except Exception:
        failed = True
        log(f"failed; logs of the stack are kept in {stack.logs_dir}")
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            sampler.stop()
            for p in baselines:
                stop_proc(p)
            stack.stop_all()
            if failed:
                remove_data_dir(data_dir, keep_logs=True)
            elif not args.keep_data:
                remove_data_dir(data_dir)
                if not data_root_existed:
                    with contextlib.suppress(OSError):
                        (ROOT / ".data").rmdir()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    (RESULTS / "latest.json").write_text(text)
    stamped = RESULTS / f"bench-{results['timestamp'].replace(':', '').replace('+0000', 'Z')}.json"
    stamped.write_text(text)
    print_table(results, phases)
    clean = (all(p.errors == 0 for p in phases.values()) and results["propagation_light_errors"] == 0
             and results["catch_up_s"] is not None and results["light_caught_up_s"] is not None
             and results["drained_before_gateway_s"] is not None)
    print(f"\nwritten: {(RESULTS / 'latest.json').relative_to(ROOT)} and {stamped.relative_to(ROOT)}"
          f"  (run took {time.monotonic() - started:.0f} s)")
    if not clean:
        print("!! some phases had errors or analytics did not catch up: see the flags above", file=sys.stderr)
        return 3
    return 0


def remove_data_dir(data_dir: Path, *, keep_logs: bool = False) -> None:
    """Remove the stack's data, including a PostgreSQL cluster kept elsewhere behind a symlink."""
    pg = data_dir / "postgres"
    if pg.is_symlink():
        shutil.rmtree(pg.resolve(), ignore_errors=True)
        pg.unlink()
    if keep_logs:
        for child in data_dir.iterdir():
            if child.name != "logs":
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        data_dir.parent.rmdir()  # .data/bench, when no other run is using it


if __name__ == "__main__":
    sys.exit(main())
