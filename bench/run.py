"""`make bench`: ticket intake through the gateway vs straight to ticket-svc vs two baselines,
plus propagation lag (ticket created -> counted by analytics-svc), all in one run on one machine.

Phases (each bounded in time):
  1. a private stack (embedded PostgreSQL + tansu + the five services) on free ports;
  2. baselines: a bare uvicorn JSON hello, and FastAPI + one raw asyncpg INSERT (pool of 10);
  3. intake straight to ticket-svc (signed internal identity), then through the gateway
     (channel API key), both driven by wrk with the same ~600-byte bodies;
  4. propagation lag: under the saturated gateway phase (and how long analytics takes to catch
     up), and under a light steady load (~50 req/s);
  5. CPU seconds per 1000 requests for each process group, sampled with psutil;
  6. the whole pipeline's CPU per ticket with notify-svc running and without it, in the same run
     (with, without, with again: the mean of the two "with" phases against "without");
  7. outbound: e-mails per second to a local SMTP server and webhook deliveries per second to a
     local receiver (bench/outbound.py), with notify-svc's CPU per e-mail and per delivery;
  8. the board's freshness: during the gateway phase, marked tickets posted through the gateway
     and GET /v1/analytics/kpis polled as the admin until it reflects each (bench/analytics_freshness.py);
     --freshness-only runs this phase alone.

Writes bench/results/latest.json (flat keys) and a timestamped copy, prints a short table.
Numbers move +-20 % from run to run on shared machines: compare the ratios.
Exit status: 0 when every phase ran clean, 3 when a phase had errors, analytics did not
catch up or the board's freshness p99 exceeded 2 s (results are still written and the table
flags it), 2 when wrk is missing, 1 on failure.
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

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_port, wait_http_ok  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402

sys.path.insert(0, str(ROOT))
from bench.baselines import SCHEMA  # noqa: E402
from bench.analytics_freshness import FreshnessSampler, admin_token, print_freshness  # noqa: E402
from bench.outbound import NotifyDb, OutboundSinks, per_second, verify_samples  # noqa: E402
from bench.proctree import process_tree  # noqa: E402

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs noise on headless boxes

PROPAGATION_TIMEOUT_S = 120.0
#: every process of the stack (kb-svc too: it consumes the ticket events for its deflection
#: counts; before round 21 its CPU was sampled but left out of every sum)
CPU_GROUPS = ("gateway", "ticket-svc", "customer-svc", "sla-svc", "analytics-svc", "notify-svc", "kb-svc",
              "postgres", "broker")
#: the event side running beside intake (the table's and JSON's "consumers")
CONSUMER_GROUPS = ("customer-svc", "sla-svc", "analytics-svc", "notify-svc", "kb-svc", "broker")
#: the process of bench/outbound.py: measured, never counted in the pipeline
SINKS_GROUP = "outbound-sinks"
#: how long a group's idle level is sampled just before a measured phase
IDLE_SAMPLE_S = 2.0
#: bounds of the outbound phases: queueing the work behind a closed gate (and the stack settling
#: before it opens), then draining it. The sends held at the gate must outlive the closed time:
#: the bench stack's SMTP and egress timeouts are OUTBOUND_TIMEOUT_S, its lease OUTBOUND_LEASE_S
#: (a send is abandoned at 0.8 x the lease)
QUEUE_TIMEOUT_S = 60.0
GATED_SETTLE_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 120.0
OUTBOUND_TIMEOUT_S = 240
OUTBOUND_LEASE_S = 300
#: notify-svc re-reads which event types have webhook subscribers every 2 s (its default)
WEBHOOK_TYPES_WAIT_S = 3.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- ports and processes -------------------------------------------------------------------

def free_block(size: int = PORT_BLOCK) -> int:
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
                for p in process_tree(pid):
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
    """CPU used per group, machine busy share, wall time and wall clock between start and end.

    ``other_cores``: what the machine was busy with beyond the watched groups, this harness and
    its finished children (wrk): other people's work on a shared machine, or a neighbour VM's
    steal. A phase with a high figure measured on a crowded machine."""

    sampler: CpuSampler
    cpu: dict[str, float] = field(default_factory=dict)
    busy_pct: float = 0.0
    other_cores: float = 0.0
    seconds: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def __enter__(self) -> "Window":
        self._cpu0 = self.sampler.snapshot()
        self._sys0 = psutil.cpu_times()
        self._own0 = _own_cpu()
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
        own = _own_cpu() - self._own0
        if self.seconds > 0:
            self.other_cores = max(0.0, (total - idle - sum(self.cpu.values()) - own) / self.seconds)


def _own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (wrk runs)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


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
        self.notify_dsn = raw_dsn(stack.database_url("notify-svc"))
        self.outbox_dsns = [raw_dsn(stack.database_url(s)) for s in ("ticket-svc", "customer-svc", "sla-svc",
                                                                      "analytics-svc", "notify-svc")]

    async def unsent_everywhere(self, *, deliveries: bool = True) -> int:
        """Unsent outbox rows over every service that has an outbox, plus (``deliveries``)
        notify-svc's deliveries due or in flight: each new ticket's acknowledgement is work of the
        pipeline too. A retry not yet due does not hold the harness up (the outbound phases
        count whatever was not sent)."""
        total = 0
        for dsn in self.outbox_dsns:
            conn = await asyncpg.connect(dsn)
            try:
                if await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"):
                    total += await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                if deliveries and dsn == self.notify_dsn and await conn.fetchval(
                        "SELECT to_regclass('deliveries') IS NOT NULL"):
                    total += await conn.fetchval("SELECT count(*) FROM deliveries WHERE status IN ('queued', "
                                                 "'sending') AND next_attempt_at <= now()")
            finally:
                await conn.close()
        return total

    def settle(self, sampler: CpuSampler, *, idle: dict[str, float], timeout: float = 60.0,
               deliveries: bool = True) -> bool:
        """Wait until the event side has finished the previous phase's work: every ticket counted,
        every outbox drained, every due delivery sent (unless ``deliveries`` is off: the outbound
        phases hold them at a closed gate on purpose), and each service and PostgreSQL back at its
        idle CPU for a second (projections keep folding links after analytics counted the
        tickets). Then the next phase neither competes with a leftover backlog nor measures it.
        The broker is left out: its idle CPU (consumers' fetch polling) grows with the data it
        holds."""
        started = time.monotonic()
        self.wait_caught_up(timeout)
        busy: dict[str, float] = {}
        while time.monotonic() - started < timeout:
            if asyncio.run(self.unsent_everywhere(deliveries=deliveries)) == 0:
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


# ---- the whole pipeline, with and without notify-svc ---------------------------------------

def net_cpu(cpu: dict[str, float], idle: dict[str, float], seconds: float, *,
            groups: tuple[str, ...] = CPU_GROUPS, gross: tuple[str, ...] = ()) -> dict[str, float]:
    """CPU seconds per group net of what the group burns idle over the same ``seconds``
    (``idle`` in cores); groups in ``gross`` are taken as measured."""
    return {g: cpu.get(g, 0.0) if g in gross else max(0.0, cpu.get(g, 0.0) - idle.get(g, 0.0) * seconds)
            for g in groups}


@dataclass
class PipelineRun:
    """One intake phase through the gateway, measured from its start (warm-up included) until
    the event side had finished its tickets: what the whole thin path costs per ticket."""

    phase: Phase
    cpu: dict[str, float]  # CPU seconds per group over the whole window
    idle: dict[str, float]  # cores per group, sampled just before the phase
    seconds: float
    tickets: int
    catch_up: float | None
    settled: bool
    other_cores: float = 0.0  # the machine's other load meanwhile (Window.other_cores)

    def per_ticket(self, *, broker_net: bool = False) -> dict[str, float]:
        """ms per ticket and group: services and PostgreSQL net of their idle level; the broker
        gross (its idle polling is a cost of every consumer running) unless ``broker_net``."""
        net = net_cpu(self.cpu, self.idle, self.seconds, gross=() if broker_net else ("broker",))
        return {g: v * 1000 / max(1, self.tickets) for g, v in net.items()}

    def total(self, *, broker_net: bool = False) -> float:
        return round(sum(self.per_ticket(broker_net=broker_net).values()), 3)


def pipeline_phase(name: str, *, gateway: str, key: str, pipeline: Pipeline, sampler: CpuSampler,
                   idle: dict[str, float], tag: str, wrk_args: dict,
                   during: contextlib.AbstractContextManager | None = None) -> tuple[PipelineRun, bool]:
    """Settle, sample each group's idle level, then one wrk intake phase through the gateway and
    everything the event side does for its tickets. Returns the run and whether the stack had
    settled before it started. ``during`` is entered just before wrk starts and left when it
    ends (the freshness sampler rides on the load this way)."""
    settled_before = pipeline.settle(sampler, idle=idle)
    levels = stack_cpu_levels(sampler, IDLE_SAMPLE_S)
    auth = f"Bearer {key}"
    smoke(name, f"{gateway}/v1/tickets", {"Authorization": auth})
    tickets_before = asyncio.run(pipeline.counts())[0]
    with Window(sampler) as whole:
        with during or contextlib.nullcontext():
            phase = wrk(name, f"{gateway}/v1/tickets", script="post.lua",
                        env={"BENCH_AUTH_HEADER": "Authorization", "BENCH_AUTH_VALUE": auth, "BENCH_TAG": tag},
                        **wrk_args)
        log("waiting until analytics has counted every ticket ...")
        catch_up = pipeline.wait_caught_up()
        settled = pipeline.settle(sampler, idle=idle)
    tickets = asyncio.run(pipeline.counts())[0] - tickets_before
    return PipelineRun(phase=phase, cpu=whole.cpu, idle=levels, seconds=whole.seconds, tickets=tickets,
                       catch_up=catch_up, settled=settled, other_cores=whole.other_cores), settled_before


def pipeline_keys(run: PipelineRun, suffix: str) -> dict:
    """``pipeline_cpu_ms_per_ticket<suffix>`` with its groups, and the phase's own figures."""
    per = run.per_ticket()
    return {
        f"pipeline_cpu_ms_per_ticket{suffix}": run.total(),
        **{f"pipeline_cpu_ms_per_ticket{suffix}_{g.replace('-', '_')}": round(per[g], 3) for g in CPU_GROUPS},
        f"pipeline_net_cpu_ms_per_ticket{suffix}": run.total(broker_net=True),
        f"pipeline_broker_idle_cores{suffix}": round(run.idle.get("broker", 0.0), 3),
        f"pipeline_other_cores{suffix}": round(run.other_cores, 3),
        f"pipeline_tickets{suffix}": run.tickets,
    }


# ---- outbound: e-mails and webhooks through notify-svc -------------------------------------

def outbound_env(sinks: OutboundSinks, args: argparse.Namespace) -> dict[str, str]:
    """notify-svc's settings for the bench stack: the local SMTP server, the receiver's address
    allowed (nothing else reachable), per-destination limits raised above the defaults that
    protect real providers, and timeouts and a lease long enough for sends held at a gate."""
    return {
        "SMTP_URL": sinks.smtp_url,
        "NOTIFY_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "NOTIFY_EGRESS_ALLOWLIST_ONLY": "true",
        "NOTIFY_DESTINATION_RATE_PER_S": str(args.notify_rate),
        "NOTIFY_DESTINATION_BURST": str(args.notify_burst),
        "NOTIFY_DESTINATION_CONCURRENCY": str(args.notify_destination_concurrency),
        "NOTIFY_DISPATCHER_CONCURRENCY": str(args.notify_concurrency),
        "NOTIFY_SMTP_TIMEOUT_S": str(OUTBOUND_TIMEOUT_S),
        "NOTIFY_EGRESS_TOTAL_TIMEOUT_S": str(OUTBOUND_TIMEOUT_S),
        "NOTIFY_DISPATCHER_LEASE_S": str(OUTBOUND_LEASE_S),
    }


@dataclass
class OutboundRun:
    """notify-svc emptying a full queue of one kind of delivery through an opened gate."""

    expected: int  # deliveries waiting when the gate opened
    opened_at: float  # unix time the gate opened
    received: dict  # the sink's view: count, first, last, duplicates, missing_id
    dispatcher: dict  # notify-svc's records: count, first, last sent_at, retried
    not_sent: int  # rows of the phase not sent in the end
    cpu: dict[str, float]
    idle: dict[str, float]
    seconds: float
    drained: bool
    busy_pct: float = 0.0
    other_cores: float = 0.0
    queued: int = 0
    queue_s: float = 0.0

    @property
    def count(self) -> int:
        return self.received["count"]

    def rate(self) -> float | None:
        return per_second(self.count, self.received["first"], self.received["last"])

    def dispatcher_rate(self) -> float | None:
        return per_second(self.dispatcher["count"], self.dispatcher["first"], self.dispatcher["last"])

    def ms_per_item(self, group: str | None = None, *, gross: bool = False) -> float | None:
        """CPU ms per delivery of one group (None: the whole stack), net of idle unless ``gross``."""
        if not self.count:
            return None
        groups = (group,) if group else CPU_GROUPS
        cpu = net_cpu(self.cpu, self.idle, self.seconds, groups=groups, gross=groups if gross else ())
        return round(sum(cpu.values()) * 1000 / self.count, 3)


def wait_queued(notify_db: NotifyDb, kind: str, since, expected: int) -> tuple[int, float]:
    """Until notify-svc's consumer has queued ``expected`` deliveries of ``kind`` since ``since``,
    or stopped queueing (nothing new for 5 s), within QUEUE_TIMEOUT_S: (queued, seconds)."""
    started = time.monotonic()
    last, last_change = -1, started
    while True:
        queued = asyncio.run(notify_db.created_since(kind, since))
        now = time.monotonic()
        if queued != last:
            last, last_change = queued, now
        if queued >= expected:
            return queued, now - started
        if now - started > QUEUE_TIMEOUT_S or (queued > 0 and now - last_change > 5.0):
            log(f"only {queued} of {expected} {kind} deliveries were queued; going on with those")
            return queued, now - started
        time.sleep(0.2)


def drain_through_gate(gate: str, kind: str, since, *, sinks: OutboundSinks, notify_db: NotifyDb,
                       pipeline: Pipeline, sampler: CpuSampler, idle: dict[str, float]) -> OutboundRun:
    """With the queue full behind the closed gate and the rest of the stack quiet, sample idle
    levels, open the gate and time notify-svc emptying the queue; the window ends when the
    stack has settled again (delivery events recorded and consumed)."""
    pipeline.settle(sampler, idle=idle, timeout=GATED_SETTLE_TIMEOUT_S, deliveries=False)
    levels = stack_cpu_levels(sampler, IDLE_SAMPLE_S)
    expected = asyncio.run(notify_db.pending())
    opened_db = asyncio.run(notify_db.now())
    drained = False
    with Window(sampler) as window:
        opened_at = time.time()
        sinks.gate(gate, True)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            # the sink is cheap to ask; the database only once everything has arrived
            if sinks.stats(gate)["count"] >= expected and asyncio.run(notify_db.pending()) == 0:
                drained = True
                break
            time.sleep(0.1)
        if not drained:
            log(f"notify-svc did not deliver {expected} {kind} deliveries within {DRAIN_TIMEOUT_S:.0f}s")
        pipeline.settle(sampler, idle=idle)
    return OutboundRun(
        expected=expected, opened_at=opened_at, received=sinks.stats(gate),
        dispatcher=asyncio.run(notify_db.sent_between(kind, opened_db)),
        not_sent=asyncio.run(notify_db.not_sent(kind, since)),
        cpu=window.cpu, idle=levels, seconds=window.seconds, drained=drained, busy_pct=window.busy_pct,
        other_cores=window.other_cores)


def email_phase(*, stack: Stack, sinks: OutboundSinks, notify_db: NotifyDb, pipeline: Pipeline,
                sampler: CpuSampler, idle: dict[str, float], down_since, expected: int) -> OutboundRun:
    """E-mails per second: the acknowledgements of the tickets created while notify-svc was
    stopped (one per ticket: every bench requester has an address), queued by its consumer
    behind the closed SMTP gate once it is back, then sent."""
    sinks.gate("smtp", False)
    sinks.reset("smtp")
    log("starting notify-svc again; its consumer queues the acknowledgements behind the closed SMTP gate ...")
    stack.start_service("notify-svc")
    stack.wait_service("notify-svc")
    sampler.watch("notify-svc", stack.procs["notify-svc"].pid)
    queued, queue_s = wait_queued(notify_db, "notification", down_since, expected)
    log(f"e-mail: {queued} acknowledgements queued in {queue_s:.1f} s; opening the SMTP gate ...")
    run = drain_through_gate("smtp", "notification", down_since, sinks=sinks, notify_db=notify_db,
                             pipeline=pipeline, sampler=sampler, idle=idle)
    run.queued, run.queue_s = queued, queue_s
    return run


def phone_ticket_body(tag: str, n: int) -> dict:
    """A bench ticket whose requester has a phone and no e-mail: no acknowledgement is sent,
    so the webhook phase's queue holds webhook deliveries only."""
    body = ticket_body(tag, n)
    body["requester"] = {k: v for k, v in body["requester"].items() if k != "email"}
    return body


async def ticket_burst(gateway_url: str, key: str, *, count: int, tag: str, concurrency: int = 16) -> dict[str, int]:
    statuses: dict[str, int] = {}
    limit = asyncio.Semaphore(concurrency)

    async def post(client: httpx.AsyncClient, n: int) -> None:
        async with limit:
            try:
                r = await client.post("/v1/tickets", json=phone_ticket_body(tag, n))
                code = str(r.status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
        statuses[code] = statuses.get(code, 0) + 1

    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        await asyncio.gather(*(post(client, n) for n in range(count)))
    return statuses


def webhook_phase(*, creds: dict, sinks: OutboundSinks, notify_db: NotifyDb, pipeline: Pipeline,
                  sampler: CpuSampler, idle: dict[str, float], count: int, tag: str,
                  samples: int = 20) -> tuple[OutboundRun, dict]:
    """Webhook deliveries per second: one subscription to ticket.created (the admin, through the
    gateway), a burst of ``count`` tickets queued behind the receiver's closed gate, then sent;
    a spread sample of what arrived is verified with the subscription's secret."""
    gateway = creds["gateway_url"]
    r = httpx.post(f"{gateway}/v1/auth/login", json={"email": creds["admin_email"], "password": creds["admin_password"]},
                   timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"admin login answered {r.status_code}: {r.text[:300]}")
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = httpx.post(f"{gateway}/v1/webhooks", headers=admin, timeout=10,
                   json={"url": sinks.hook_url, "event_types": ["ticket.created"], "description": "make bench"})
    if r.status_code != 201:
        raise RuntimeError(f"POST /v1/webhooks answered {r.status_code}: {r.text[:300]}")
    secret = r.json()["secret"]
    time.sleep(WEBHOOK_TYPES_WAIT_S)  # until notify-svc's webhook consumer knows ticket.created has a subscriber
    sinks.gate("webhook", False)
    sinks.reset("webhook")
    since = asyncio.run(notify_db.now())
    log(f"webhooks: {count} tickets through the gateway behind the receiver's closed gate ...")
    statuses = asyncio.run(ticket_burst(gateway, creds["channel_api_key"], count=count, tag=tag))
    created = statuses.get("201", 0)
    queued, queue_s = wait_queued(notify_db, "webhook", since, created)
    pipeline.wait_caught_up()
    log(f"webhooks: {queued} deliveries queued; opening the receiver's gate ...")
    run = drain_through_gate("webhook", "webhook", since, sinks=sinks, notify_db=notify_db, pipeline=pipeline,
                             sampler=sampler, idle=idle)
    run.queued, run.queue_s = queued, queue_s
    verified, problems = verify_samples(secret, sinks.samples(samples))
    for problem in problems[:5]:
        log(f"webhook signature check failed: {problem}")
    return run, {"tickets": created, "statuses": statuses, "verified": verified,
                 "checked": verified + len(problems)}


def outbound_keys(prefix: str, run: OutboundRun, *, notify_key: str, stack_key: str, sink_key: str) -> dict:
    """Flat keys of one outbound phase (``prefix`` = outbound_email / outbound_webhook) and its
    CPU per delivery: notify-svc's, the whole stack's, the sink's."""
    rate, dispatcher_rate = run.rate(), run.dispatcher_rate()
    last = run.received["last"]
    return {
        f"{prefix}_per_s": None if rate is None else round(rate, 1),
        f"{prefix}_per_s_dispatcher": None if dispatcher_rate is None else round(dispatcher_rate, 1),
        f"{prefix}_count": run.count,
        f"{prefix}_expected": run.expected,
        f"{prefix}_drain_s": None if last is None else round(last - run.opened_at, 2),
        f"{prefix}_duplicates": run.received["duplicates"],
        f"{prefix}_not_sent": run.not_sent,
        f"{prefix}_retried": run.dispatcher["retried"],
        f"{prefix}_queued": run.queued,
        f"{prefix}_queue_s": round(run.queue_s, 2),
        f"{prefix}_machine_busy_pct": round(run.busy_pct, 1),
        f"{prefix}_other_cores": round(run.other_cores, 3),
        notify_key: run.ms_per_item("notify-svc"),
        stack_key: run.ms_per_item(),
        sink_key: run.ms_per_item(SINKS_GROUP, gross=True),
    }


def outbound_problems(r: dict, *, webhooks_wanted: int) -> list[str]:
    """What makes the outbound figures untrustworthy: everything queued must arrive once, be
    recorded as sent at the first attempt, and the sampled webhook signatures must verify."""
    problems = []
    for kind in ("email", "webhook"):
        k = f"outbound_{kind}"
        if r[f"{k}_count"] < r[f"{k}_expected"] or not r[f"{k}_expected"]:
            problems.append(f"{kind}: {r[f'{k}_count']} of {r[f'{k}_expected']} received")
        for what in ("duplicates", "not_sent", "retried"):
            if r[f"{k}_{what}"]:
                problems.append(f"{kind}: {r[f'{k}_{what}']} {what.replace('_', ' ')}")
    if r["outbound_email_queued"] < r["outbound_email_tickets"]:
        problems.append(f"email: {r['outbound_email_queued']} acknowledgements queued for "
                        f"{r['outbound_email_tickets']} tickets")
    if r["outbound_webhook_tickets"] < webhooks_wanted:
        problems.append(f"webhook: {r['outbound_webhook_tickets']} of {webhooks_wanted} tickets created "
                        f"({r['outbound_webhook_ticket_statuses']})")
    if not r["outbound_webhook_signatures_checked"] or (
            r["outbound_webhook_signatures_verified"] < r["outbound_webhook_signatures_checked"]):
        problems.append(f"webhook: signatures verified {r['outbound_webhook_signatures_verified']} of "
                        f"{r['outbound_webhook_signatures_checked']}")
    return problems


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
        consumers = sum(p.cpu_ms_per_req(g) for g in CONSUMER_GROUPS)
        wrk_ms = p.wrk_cpu_s * 1000 / max(1, p.requests)
        print(f"{label:<34}{p.cpu_ms_per_req('gateway'):>9.3f}{p.cpu_ms_per_req('ticket-svc'):>9.3f}"
              f"{p.cpu_ms_per_req('postgres'):>9.3f}{consumers:>10.3f}{wrk_ms:>7.3f}{p.window.busy_pct:>6.0f}%")
    print()
    print("whole thin path, CPU ms per ticket until settled (services and PostgreSQL net of idle, broker gross):")
    short = {"gateway": "gateway", "ticket-svc": "ticket", "customer-svc": "customer", "sla-svc": "sla",
             "analytics-svc": "analyt.", "notify-svc": "notify", "kb-svc": "kb", "postgres": "postgres",
             "broker": "broker"}
    print(f"{'':<26}{'total':>7}" + "".join(f"{short[g]:>9}" for g in CPU_GROUPS)
          + f"{'net':>7}{'tickets':>8}{'req/s':>7}{'other':>7}")
    for label, suffix, phase in (("  with notify-svc", "", intake),
                                 ("  without notify-svc", "_without_notify", phases["intake_without_notify"]),
                                 ("  with notify-svc again", "_with_notify_again", phases["intake_with_notify_again"])):
        key = f"pipeline_cpu_ms_per_ticket{suffix}"
        print(f"{label:<26}{r[key]:>7.2f}" + "".join(f"{r[key + '_' + g.replace('-', '_')]:>9.2f}" for g in CPU_GROUPS)
              + f"{r['pipeline_net_cpu_ms_per_ticket' + suffix]:>7.2f}{r['pipeline_tickets' + suffix]:>8}"
              f"{phase.rps:>7.0f}{r['pipeline_other_cores' + suffix]:>7.2f}{flag(phase)}")
    print(f"  with (mean of both) / without: {r['ratio_pipeline_cpu_with_vs_without_notify']:.3f}"
          f"  ({r['pipeline_cpu_ms_per_ticket_with_notify_mean']:.2f} / {r['pipeline_cpu_ms_per_ticket_without_notify']:.2f});"
          f"  everything net of idle ('net'): {r['ratio_pipeline_net_cpu_with_vs_without_notify']:.3f};"
          f"  drift, again / first: {r['ratio_pipeline_cpu_with_notify_again_vs_first']:.3f}")
    print()
    print(f"outbound through notify-svc, from a full queue (per destination {r['outbound_destination_rate_per_s']:.0f}/s, "
          f"burst {r['outbound_destination_burst']}, {r['outbound_destination_concurrency']} in flight; "
          f"{r['outbound_dispatcher_concurrency']} in all):")
    print(f"{'':<26}{'count':>7}{'per s':>8}{'(records)':>10}{'drain s':>9}{'notify ms':>10}{'stack ms':>9}"
          f"{'sink ms':>9}{'busy':>6}{'other':>7}")
    for label, k, item in (("  e-mail to SMTP on lo", "outbound_email", "email"),
                           ("  webhook to 127.0.0.1", "outbound_webhook", "webhook")):
        notify_key, stack_key = f"notify_cpu_ms_per_{item}", f"stack_cpu_ms_per_{item}"
        sink_key = "smtp_sink_cpu_ms_per_email" if item == "email" else "webhook_receiver_cpu_ms_per_webhook"
        print(f"{label:<26}{r[k + '_count']:>7}{fmt(r[k + '_per_s']):>8}{fmt(r[k + '_per_s_dispatcher']):>10}"
              f"{fmt(r[k + '_drain_s'], '.2f'):>9}{fmt(r[notify_key], '.2f'):>10}{fmt(r[stack_key], '.2f'):>9}"
              f"{fmt(r[sink_key], '.2f'):>9}{r[k + '_machine_busy_pct']:>5.0f}%{r[k + '_other_cores']:>7.2f}")
    print(f"  webhook signatures verified (Standard Webhooks): {r['outbound_webhook_signatures_verified']}"
          f"/{r['outbound_webhook_signatures_checked']}"
          + (f"  !! {r['outbound_problems']}" if r["outbound_problems"] else ""))
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
    print_freshness(r)


# ---- the board's freshness alone ---------------------------------------------------------------

def freshness_only(*, stack: Stack, creds: dict, sampler: CpuSampler, idle: dict[str, float],
                   args: argparse.Namespace, run_id: str, wrk_args: dict) -> int:
    """``--freshness-only``: the saturated gateway intake phase with the freshness sampler and
    nothing else (no baselines, no direct or outbound phases); merges ``freshness_*`` keys into
    latest.json. The caller's ``finally`` stops the stack."""
    gateway = creds["gateway_url"]
    pipeline = Pipeline(stack)
    freshness = FreshnessSampler(gateway, channel_key=creds["channel_api_key"],
                                 admin_token=admin_token(gateway, creds), tickets_dsn=pipeline.tickets_dsn,
                                 analytics_dsn=pipeline.analytics_dsn, tag=f"fresh-{run_id}",
                                 rate=args.freshness_rate, poll_hz=args.freshness_poll_hz)
    log("intake through the gateway with the board's freshness sampled ...")
    run, _settled = pipeline_phase("intake", gateway=gateway, key=creds["channel_api_key"], pipeline=pipeline,
                                   sampler=sampler, idle=idle, tag=f"gw-{run_id}", wrk_args=wrk_args,
                                   during=freshness)
    results = {**freshness.result.keys(rate=args.freshness_rate, poll_hz=args.freshness_poll_hz),
               "freshness_problems": "; ".join(freshness.result.problems()),
               "freshness_intake_rps": round(run.phase.rps, 1),
               "freshness_intake_errors": run.phase.errors,
               "freshness_catch_up_s": None if run.catch_up is None else round(run.catch_up, 2),
               # what the phase cost per ticket (services and PostgreSQL net of idle): how much of
               # the machine the fold needs to keep up with intake
               "freshness_analytics_cpu_ms_per_ticket": round(run.per_ticket()["analytics-svc"], 2),
               "freshness_pipeline_cpu_ms_per_ticket": run.total(),
               "freshness_other_cores": round(run.other_cores, 2),
               "freshness_timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update(results)
    latest.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"intake through the gateway: {run.phase.rps:.1f} req/s, p99 {run.phase.p99_ms:.1f} ms, "
          f"{run.phase.errors} errors; analytics caught up {fmt(run.catch_up, '.2f')} s after the phase; CPU per "
          f"ticket: analytics-svc {results['freshness_analytics_cpu_ms_per_ticket']:.2f} ms, whole pipeline "
          f"{results['freshness_pipeline_cpu_ms_per_ticket']:.2f} ms; other people's load "
          f"{results['freshness_other_cores']:.2f} cores")
    print_freshness(results)
    return 3 if results["freshness_problems"] or run.phase.errors else 0


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
    parser.add_argument("--webhooks", type=int, default=500,
                        help="tickets (so webhook deliveries) of the webhook phase (default 500)")
    parser.add_argument("--notify-rate", type=float, default=1000.0,
                        help="notify-svc's per-destination sends/s for the run (default 1000; the service's 20 "
                             "protects real providers)")
    parser.add_argument("--notify-burst", type=int, default=1000, help="its per-destination burst (default 1000)")
    parser.add_argument("--notify-destination-concurrency", type=int, default=16,
                        help="sends in flight per destination (default 16; the service's default is 4)")
    parser.add_argument("--notify-concurrency", type=int, default=16,
                        help="sends in flight in all (NOTIFY_DISPATCHER_CONCURRENCY, default 16 as the service's)")
    parser.add_argument("--freshness-rate", type=float, default=5.0,
                        help="marked tickets per second the freshness sampler posts during the gateway phase "
                             "(default 5)")
    parser.add_argument("--freshness-poll-hz", type=float, default=20.0,
                        help="how often its one reader polls GET /v1/analytics/kpis (default 20)")
    parser.add_argument("--freshness-only", action="store_true",
                        help="only the gateway intake phase with the freshness sampler (no baselines, direct or "
                             "outbound phases); merges freshness_* into bench/results/latest.json")
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
    base = free_block(PORT_BLOCK)
    block = range(base, base + PORT_BLOCK)  # the gateway at base, the services at base + 1 .. base + PORT_BLOCK - 1
    pg_port = free_port_outside(block)
    kafka_port = free_port_outside(block, {pg_port})
    smtp_port = free_port_outside(block, {pg_port, kafka_port})
    sinks_http_port = free_port_outside(block, {pg_port, kafka_port, smtp_port})
    taken = {pg_port, kafka_port, smtp_port, sinks_http_port}
    sinks = OutboundSinks(smtp_port=smtp_port, http_port=sinks_http_port, log_path=data_dir / "logs" / "outbound-sinks.log",
                          cwd=ROOT)
    stack = Stack(StackConfig(
        data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port, kafka_port=kafka_port,
        extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "WARNING", **outbound_env(sinks, args)},
    ))
    baselines: list[subprocess.Popen] = []
    phases: dict[str, Phase] = {}
    results: dict = {}
    failed = False
    wrk_args = dict(duration=args.duration, connections=args.connections, threads=args.threads,
                    warmup=args.warmup, sampler=sampler)
    started = time.monotonic()
    try:
        # before the stack: notify-svc is given the SMTP server's address when it starts
        sampler.watch(SINKS_GROUP, sinks.start(preexec_fn=_die_with_parent).pid)
        log(f"starting a private stack (gateway :{base}, services :{base + 1}-{base + PORT_BLOCK - 1}, "
            f"SMTP sink :{smtp_port}, webhook receiver :{sinks_http_port}, data {data_dir.relative_to(ROOT)}) ...")
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
        if args.freshness_only:
            return freshness_only(stack=stack, creds=creds, sampler=sampler, idle=idle, args=args, run_id=run_id,
                                  wrk_args=wrk_args)

        # -- baselines ----------------------------------------------------------------------
        bench_dsn = asyncio.run(prepare_bench_db(stack.db_base))
        hello_port = free_port_outside(block, taken)
        insert_port = free_port_outside(block, taken | {hello_port})
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

        # -- intake through the gateway (notify-svc running): the intake figures, and the first
        # of the three pipeline phases --------------------------------------------------------------
        key = creds["channel_api_key"]
        pipe_args = dict(gateway=gateway, key=key, pipeline=pipeline, sampler=sampler, idle=idle, wrk_args=wrk_args)
        log("intake through the gateway (with the board's freshness sampled) ...")
        freshness = FreshnessSampler(gateway, channel_key=key, admin_token=admin_token(gateway, creds),
                                     tickets_dsn=pipeline.tickets_dsn, analytics_dsn=pipeline.analytics_dsn,
                                     tag=f"fresh-{run_id}", rate=args.freshness_rate,
                                     poll_hz=args.freshness_poll_hz)
        with_first, settled = pipeline_phase("intake", tag=f"gw-{run_id}", during=freshness, **pipe_args)
        fresh_keys = freshness.result.keys(rate=args.freshness_rate, poll_hz=args.freshness_poll_hz)
        fresh_keys["freshness_problems"] = "; ".join(freshness.result.problems())
        log(f"freshness: p99 {fresh_keys['freshness_p99_s']} s over {fresh_keys['freshness_samples']} samples")
        phases["intake"] = intake = with_first.phase
        unsettled += [] if settled else ["before gateway"]
        unsettled += [] if with_first.settled else ["before light load"]
        catch_up = with_first.catch_up
        assert intake.window and intake.window.started_at and intake.window.ended_at
        p50, p99, counted = asyncio.run(pipeline.lag(intake.window.started_at, intake.window.ended_at))

        # -- propagation under light load --------------------------------------------------------
        log(f"propagation under light load ({args.light_rate:.0f} req/s for {args.light_seconds:.0f} s) ...")
        light_start = datetime.now(UTC)
        light_statuses = asyncio.run(light_load(gateway, key, rate=args.light_rate,
                                                seconds=args.light_seconds, tag=f"light-{run_id}"))
        light_end = datetime.now(UTC)
        light_caught_up = pipeline.wait_caught_up()
        light_p50, light_p99, light_n = asyncio.run(pipeline.lag(light_start, light_end))
        light_errors = sum(n for code, n in light_statuses.items() if not code.startswith("2"))
        if not pipeline.settle(sampler, idle=idle):
            unsettled.append("before stopping notify-svc")

        # -- the same intake phase without notify-svc ----------------------------------------------
        log("stopping notify-svc; intake through the gateway without it ...")
        notify_db = NotifyDb(pipeline.notify_dsn)
        sampler.unwatch("notify-svc")  # its pid is not ours to follow once it has exited
        stack.stop_service("notify-svc")
        down_since = asyncio.run(notify_db.now())
        tickets_down = asyncio.run(pipeline.counts())[0]
        without, settled = pipeline_phase("intake_without_notify", tag=f"gw-wo-{run_id}", **pipe_args)
        phases["intake_without_notify"] = without.phase
        unsettled += [] if settled else ["before the phase without notify-svc"]
        acknowledgements = asyncio.run(pipeline.counts())[0] - tickets_down

        # -- e-mail: notify-svc back, the acknowledgements of those tickets sent -------------------
        email = email_phase(stack=stack, sinks=sinks, notify_db=notify_db, pipeline=pipeline, sampler=sampler,
                            idle=idle, down_since=down_since, expected=acknowledgements)
        log(f"e-mail: {email.count} received, {fmt(email.rate())}/s")

        # -- the intake phase with notify-svc again (the "with" figure is the mean of both) --------
        log("intake through the gateway with notify-svc again ...")
        with_again, settled = pipeline_phase("intake_with_notify_again", tag=f"gw-again-{run_id}", **pipe_args)
        phases["intake_with_notify_again"] = with_again.phase
        unsettled += [] if settled else ["before the phase with notify-svc again"]

        # -- webhooks -------------------------------------------------------------------------------
        hooks, hooks_info = webhook_phase(creds=creds, sinks=sinks, notify_db=notify_db, pipeline=pipeline,
                                          sampler=sampler, idle=idle, count=args.webhooks, tag=f"hook-{run_id}")
        log(f"webhooks: {hooks.count} received, {fmt(hooks.rate())}/s, signatures verified "
            f"{hooks_info['verified']}/{hooks_info['checked']}")

        hello, insert, direct = phases["uvicorn"], phases["asyncpg"], phases["direct"]
        with_mean = (with_first.total() + with_again.total()) / 2
        with_mean_net = (with_first.total(broker_net=True) + with_again.total(broker_net=True)) / 2
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
            **fresh_keys,
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
            "consumers_cpu_ms_per_req": round(sum(intake.cpu_ms_per_req(g) for g in CONSUMER_GROUPS), 3),
            "notify_cpu_ms_per_req": intake.cpu_ms_per_req("notify-svc"),
            "wrk_cpu_ms_per_req": round(intake.wrk_cpu_s * 1000 / max(1, intake.requests), 3),
            "machine_busy_pct": round(intake.window.busy_pct, 1),
            # the same during the direct phase
            "direct_ticket_cpu_ms_per_req": direct.cpu_ms_per_req("ticket-svc"),
            "direct_postgres_cpu_ms_per_req": direct.cpu_ms_per_req("postgres"),
            "direct_consumers_cpu_ms_per_req": round(sum(direct.cpu_ms_per_req(g) for g in CONSUMER_GROUPS), 3),
            "direct_machine_busy_pct": round(direct.window.busy_pct, 1) if direct.window else None,
            # every process of the stack, from the start of the gateway phase until it settled again
            # (notify-svc running, sending each ticket's acknowledgement), then the same phase
            # without notify-svc, then with it again
            **pipeline_keys(with_first, ""),
            **pipeline_keys(without, "_without_notify"),
            **pipeline_keys(with_again, "_with_notify_again"),
            "intake_rps_without_notify": round(without.phase.rps, 1),
            "intake_rps_with_notify_again": round(with_again.phase.rps, 1),
            "pipeline_cpu_ms_per_ticket_with_notify_mean": round(with_mean, 3),
            "ratio_pipeline_cpu_with_vs_without_notify": round(with_mean / max(1e-9, without.total()), 3),
            "ratio_pipeline_net_cpu_with_vs_without_notify": round(
                with_mean_net / max(1e-9, without.total(broker_net=True)), 3),
            "ratio_pipeline_cpu_with_notify_again_vs_first": round(
                with_again.total() / max(1e-9, with_first.total()), 3),
            # outbound: notify-svc emptying a full queue (limits raised for the run, see below)
            **outbound_keys("outbound_email", email, notify_key="notify_cpu_ms_per_email",
                            stack_key="stack_cpu_ms_per_email", sink_key="smtp_sink_cpu_ms_per_email"),
            **outbound_keys("outbound_webhook", hooks, notify_key="notify_cpu_ms_per_webhook",
                            stack_key="stack_cpu_ms_per_webhook", sink_key="webhook_receiver_cpu_ms_per_webhook"),
            "outbound_email_tickets": acknowledgements,
            "outbound_webhook_tickets": hooks_info["tickets"],
            "outbound_webhook_ticket_statuses": statuses_text(hooks_info["statuses"]),
            "outbound_webhook_signatures_checked": hooks_info["checked"],
            "outbound_webhook_signatures_verified": hooks_info["verified"],
            "outbound_destination_rate_per_s": args.notify_rate,
            "outbound_destination_burst": args.notify_burst,
            "outbound_destination_concurrency": args.notify_destination_concurrency,
            "outbound_dispatcher_concurrency": args.notify_concurrency,
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
            "catch_up_s_without_notify": None if without.catch_up is None else round(without.catch_up, 2),
            "catch_up_s_with_notify_again": None if with_again.catch_up is None else round(with_again.catch_up, 2),
        }
        results["outbound_problems"] = "; ".join(outbound_problems(results, webhooks_wanted=args.webhooks))
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
            sinks.stop()
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

    results["run_s"] = round(time.monotonic() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    (RESULTS / "latest.json").write_text(text)
    stamped = RESULTS / f"bench-{results['timestamp'].replace(':', '').replace('+0000', 'Z')}.json"
    stamped.write_text(text)
    print_table(results, phases)
    clean = (all(p.errors == 0 for p in phases.values()) and results["propagation_light_errors"] == 0
             and results["catch_up_s"] is not None and results["light_caught_up_s"] is not None
             and results["drained_before_gateway_s"] is not None
             and results["catch_up_s_without_notify"] is not None
             and results["catch_up_s_with_notify_again"] is not None and not results["outbound_problems"]
             and not results["freshness_problems"])
    print(f"\nwritten: {(RESULTS / 'latest.json').relative_to(ROOT)} and {stamped.relative_to(ROOT)}"
          f"  (run took {time.monotonic() - started:.0f} s)")
    if not clean:
        print("!! some phases had errors, analytics did not catch up or outbound was not clean: see the flags "
              "above", file=sys.stderr)
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
