"""Freshness of the live board under `make bench`'s intake load (issue 13): how long after a
ticket is posted through the gateway does `GET /v1/analytics/kpis` (also through the gateway,
as the admin) reflect it?

`bench/run.py` runs a ``FreshnessSampler`` beside its saturated gateway intake phase (the wrk
warm-up and measured runs): every 1/rate s it posts a marked ticket through the gateway with the
channel key, and one client polls the board at ``poll_hz`` (20 Hz: one reader, a dashboard's load,
not a second load generator). A sample is reflected at the first poll that answers

  * ``as_of`` >= the ticket's ``created_at`` (the board has folded events up to that instant), and
  * ``tickets_created_today`` >= the number of tickets ticket-svc had created today up to and
    including this one (read from ticket-svc's database right after the 201): the board counts
    this ticket and every one before it, so the count cannot be reached by other tickets alone.

Its freshness is the time from the POST's 201 (the ticket is posted) to the reflecting poll's
answer: the goal (p99 <= 2 s) is judged on it. The time from *sending* the POST is reported too:
it adds the intake's own latency at saturation, which is the intake phase's figure, not the
board's. Samples not reflected within ``timeout`` s (from sending) count as timeouts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, time as dtime

import asyncpg
import httpx

GOAL_P99_S = 2.0


def _quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Sample:
    ticket_id: str
    sent: float  # perf_counter when the POST was sent
    accepted: float  # perf_counter when its 201 arrived: the ticket is posted from here on
    created_at: datetime
    needed: int  # tickets ticket-svc had created today up to and including this one
    reflected: float | None = None


@dataclass
class FreshnessResult:
    seconds: list[float] = field(default_factory=list)
    timeouts: int = 0
    post_errors: dict[str, int] = field(default_factory=dict)
    poll_errors: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    failure: str | None = None
    #: seconds from each sample's creation until analytics-svc first folded it (ticket_facts'
    #: ingested_at, written in the fold's transaction): tells a slow fold from a slow board
    fold_seconds: list[float] = field(default_factory=list)
    #: seconds from each sample's creation until ticket-svc's outbox relay sent its
    #: ticket.created (outbox.sent_at): the part of the fold's lag before the broker
    relay_seconds: list[float] = field(default_factory=list)
    #: seconds from each sample's 201 (the ticket is posted) until a board answer showed it; the
    #: goal is judged on these: the intake's own latency under saturation is the intake phase's
    #: figure, not the board's (``seconds``, from the POST being sent, is reported alongside)
    accepted_seconds: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float | None:
        return _quantile(self.seconds, q)

    def keys(self, *, rate: float, poll_hz: float) -> dict:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "freshness_p50_s": r(self.quantile(0.5)),
            "freshness_p95_s": r(self.quantile(0.95)),
            "freshness_p99_s": r(self.quantile(0.99)),
            "freshness_max_s": r(max(self.seconds) if self.seconds else None),
            "freshness_posted_p50_s": r(_quantile(self.accepted_seconds, 0.5)),
            "freshness_posted_p95_s": r(_quantile(self.accepted_seconds, 0.95)),
            "freshness_posted_p99_s": r(_quantile(self.accepted_seconds, 0.99)),
            "freshness_posted_max_s": r(max(self.accepted_seconds) if self.accepted_seconds else None),
            "freshness_samples": len(self.seconds),
            "freshness_timeouts": self.timeouts,
            "freshness_post_errors": " ".join(f"{k}={v}" for k, v in sorted(self.post_errors.items())),
            "freshness_poll_errors": " ".join(f"{k}={v}" for k, v in sorted(self.poll_errors.items())),
            "freshness_polls": self.polls,
            "freshness_fold_p50_s": r(_quantile(self.fold_seconds, 0.5)),
            "freshness_fold_p99_s": r(_quantile(self.fold_seconds, 0.99)),
            "freshness_fold_samples": len(self.fold_seconds),
            "freshness_relay_p50_s": r(_quantile(self.relay_seconds, 0.5)),
            "freshness_relay_p99_s": r(_quantile(self.relay_seconds, 0.99)),
            "freshness_rate_per_s": rate,
            "freshness_poll_hz": poll_hz,
        }

    def problems(self) -> list[str]:
        """What makes the phase fail: no sample, a timeout, p99 over the goal, errors."""
        out = [f"sampler failed: {self.failure}"] if self.failure else []
        p99 = _quantile(self.accepted_seconds, 0.99)
        if not self.seconds:
            out.append("no sample reflected")
        elif p99 is not None and p99 > GOAL_P99_S:
            out.append(f"p99 from posted {p99:.2f} s > {GOAL_P99_S:.0f} s")
        if self.timeouts:
            out.append(f"{self.timeouts} samples not reflected in time")
        if self.post_errors or self.poll_errors:
            out.append("request errors")
        return out


def kpis_reflect(body: dict, sample: Sample) -> bool:
    """Whether a kpis answer shows the sample (module docstring): ``as_of`` at or after its
    creation and the day's count at least the tickets created up to it."""
    as_of = datetime.fromisoformat(str(body["as_of"]).replace("Z", "+00:00"))
    return as_of >= sample.created_at and int(body["tickets_created_today"]) >= sample.needed


class FreshnessSampler(threading.Thread):
    """Posts marked tickets and polls the board in its own thread and event loop, so the bench's
    main thread can run wrk meanwhile; ``stop()`` ends posting and waits for the pending samples
    (each at most ``timeout`` s)."""

    def __init__(self, gateway: str, *, channel_key: str, admin_token: str, tickets_dsn: str, analytics_dsn: str,
                 tag: str, rate: float = 5.0, poll_hz: float = 20.0, timeout: float = 10.0) -> None:
        super().__init__(daemon=True, name="freshness-sampler")
        self.gateway, self.channel_key, self.admin_token = gateway, channel_key, admin_token
        self.tickets_dsn, self.analytics_dsn, self.tag = tickets_dsn, analytics_dsn, tag
        self.samples: list[Sample] = []
        self.rate, self.poll_hz, self.timeout = rate, poll_hz, timeout
        self.result = FreshnessResult()
        self._posting = threading.Event()
        self._posting.set()
        self._failure: BaseException | None = None

    def __enter__(self) -> "FreshnessSampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop posting and wait for the pending samples; a failure of the sampler itself is
        reported in ``result.failure`` (the phase is flagged), not raised into the load phase."""
        self._posting.clear()
        self.join(self.timeout + 30)
        if self._failure is not None:
            self.result.failure = repr(self._failure)

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self._failure = exc

    async def _main(self) -> None:
        from bench.run import ticket_body  # the same ticket as the load's

        pending: list[Sample] = []
        db = await asyncpg.connect(self.tickets_dsn)
        db_lock = asyncio.Lock()  # one connection, posts overlap
        poster = httpx.AsyncClient(base_url=self.gateway, timeout=10,
                                   headers={"Authorization": f"Bearer {self.channel_key}"})
        reader = httpx.AsyncClient(base_url=self.gateway, timeout=10,
                                   headers={"Authorization": f"Bearer {self.admin_token}"})
        res = self.result

        async def post(n: int) -> None:
            sent = time.perf_counter()
            try:
                r = await poster.post("/v1/tickets", json=ticket_body(self.tag, n))
                accepted = time.perf_counter()
            except httpx.HTTPError as exc:
                res.post_errors[type(exc).__name__] = res.post_errors.get(type(exc).__name__, 0) + 1
                return
            if r.status_code != 201:
                res.post_errors[str(r.status_code)] = res.post_errors.get(str(r.status_code), 0) + 1
                return
            body = r.json()
            created_at = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
            day_start = datetime.combine(created_at.astimezone(UTC).date(), dtime(0), tzinfo=UTC)
            async with db_lock:
                needed = await db.fetchval(
                    "SELECT count(*) FROM tickets WHERE created_at >= $1 AND created_at <= $2", day_start, created_at)
            sample = Sample(ticket_id=body["id"], sent=sent, accepted=accepted, created_at=created_at,
                            needed=int(needed))
            pending.append(sample)
            self.samples.append(sample)

        async def posting() -> None:
            started, n, tasks = time.perf_counter(), 0, []
            while self._posting.is_set():
                tasks.append(asyncio.create_task(post(n)))
                n += 1
                await asyncio.sleep(max(0.0, started + n / self.rate - time.perf_counter()))
            await asyncio.gather(*tasks)

        async def polling(post_task: asyncio.Task) -> None:
            period = 1.0 / self.poll_hz
            while not (post_task.done() and not pending):
                t0 = time.perf_counter()
                try:
                    r = await reader.get("/v1/analytics/kpis", params={"tz": "UTC"})
                    res.polls += 1
                    if r.status_code == 200:
                        body = r.json()
                        answered = time.perf_counter()
                        for s in list(pending):
                            if kpis_reflect(body, s):
                                s.reflected = answered
                                res.seconds.append(answered - s.sent)
                                res.accepted_seconds.append(max(0.0, answered - s.accepted))
                                pending.remove(s)
                    else:
                        res.poll_errors[str(r.status_code)] = res.poll_errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    res.poll_errors[type(exc).__name__] = res.poll_errors.get(type(exc).__name__, 0) + 1
                now = time.perf_counter()
                for s in list(pending):
                    if now - s.sent > self.timeout:
                        res.timeouts += 1
                        pending.remove(s)
                await asyncio.sleep(max(0.0, t0 + period - time.perf_counter()))

        try:
            post_task = asyncio.create_task(posting())
            await polling(post_task)
            await post_task
            analytics = await asyncpg.connect(self.analytics_dsn)
            try:
                rows = await analytics.fetch(
                    "SELECT extract(epoch FROM ingested_at - created_at) AS s FROM ticket_facts "
                    "WHERE ticket_id = ANY($1::uuid[]) AND ingested_at IS NOT NULL",
                    [s.ticket_id for s in self.samples])
                res.fold_seconds = [float(r["s"]) for r in rows]
            finally:
                await analytics.close()
            try:
                rows = await db.fetch(
                    "SELECT extract(epoch FROM o.sent_at - t.created_at) AS s FROM outbox o "
                    "JOIN tickets t ON o.key = t.id::text WHERE o.event_type = 'ticket.created' "
                    "AND t.id = ANY($1::uuid[]) AND o.sent_at IS NOT NULL", [s.ticket_id for s in self.samples])
                res.relay_seconds = [float(r["s"]) for r in rows]
            except asyncpg.PostgresError:
                res.relay_seconds = []
        finally:
            await poster.aclose()
            await reader.aclose()
            await db.close()


def admin_token(gateway: str, creds: dict) -> str:
    r = httpx.post(f"{gateway}/v1/auth/login", json={"email": creds["admin_email"], "password": creds["admin_password"]},
                   timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"admin login answered {r.status_code}: {r.text[:300]}")
    return r.json()["access_token"]


def print_freshness(r: dict) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    problems = r.get("freshness_problems")
    print(f"freshness (ticket posted through the gateway -> in GET /v1/analytics/kpis, polled at "
          f"{r['freshness_poll_hz']:.0f} Hz; {r['freshness_rate_per_s']:.0f} samples/s under the gateway phase):")
    print(f"  p50 {f(r['freshness_p50_s'])} s   p95 {f(r['freshness_p95_s'])} s   p99 {f(r['freshness_p99_s'])} s"
          f"   max {f(r['freshness_max_s'])} s   ({r['freshness_samples']} samples, {r['freshness_timeouts']} timeouts)"
          + (f"  !! {problems}" if problems else ""))
    print(f"  from the 201 (the ticket posted; the goal, p99 <= 2 s): p50 {f(r.get('freshness_posted_p50_s'))} s"
          f"   p95 {f(r.get('freshness_posted_p95_s'))} s   p99 {f(r.get('freshness_posted_p99_s'))} s"
          f"   max {f(r.get('freshness_posted_max_s'))} s")
    print(f"  the same tickets' fold (created -> first folded by analytics-svc): p50 {f(r['freshness_fold_p50_s'])} s"
          f"   p99 {f(r['freshness_fold_p99_s'])} s   ({r['freshness_fold_samples']} tickets)")
    print(f"  of which created -> sent by ticket-svc's outbox relay: p50 {f(r.get('freshness_relay_p50_s'))} s"
          f"   p99 {f(r.get('freshness_relay_p99_s'))} s")
