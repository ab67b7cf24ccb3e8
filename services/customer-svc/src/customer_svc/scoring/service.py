"""Scoring customers from their stored facts, and what follows a change.

One path for both runs: :func:`score_customers` reads the facts of a set of customers in a few
set-based statements, scores them with the pure functions of :mod:`customer_svc.insights`
against the stored quintile cut points, writes the scores, and in the same transaction emits
what changed (``customer.segment_changed``, ``insight.churn_risk_changed``, a tier set by a
rule as ``customer.updated``) with a timeline entry each. The incremental worker calls it for
the customers marked dirty; :func:`recompute_all` recomputes the cut points over everyone and
calls it for every customer in batches. Nothing here commits except :func:`recompute_all`,
which owns its batches' transactions.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw

from ..customers import repository as customers
from ..customers.service import changes_of, updated_event
from ..db import outbox
from ..insights import (
    ChurnInputs,
    ChurnRisk,
    ChurnSettings,
    Direction,
    EpisodeChange,
    EpisodeStep,
    QuintileBoundaries,
    Reason,
    RfmBoundaries,
    RfmScores,
    RfmSettings,
    RfmValues,
    Segment,
    TicketFact,
    TierDecision,
    TierFacts,
    TierRule,
    TierRules,
    churn_risk,
    decide_tier,
    episode_step,
    repeated_contacts,
    rfm_scores,
    segment_of,
)
from ..timeline import repository as timeline
from . import repository
from .settings import InsightRunSettings

log = logging.getLogger(__name__)

SOURCE = "customer-svc"
_CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError, OSError)
#: who changes a tier when a rule decides it (customer.updated's actor, the timeline's)
ACTOR = "system:insights"
_DAY = timedelta(days=1)


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a scoring needs besides the customers' own facts."""

    as_of: datetime
    rfm: RfmSettings
    churn: ChurnSettings
    boundaries: RfmBoundaries | None
    rules: tuple[TierRule, ...] = ()
    rates: dict[str, Decimal] = field(default_factory=dict)

    @property
    def window_start(self) -> datetime:
        return self.as_of - timedelta(days=self.rfm.window_days)

    @property
    def recent_start(self) -> datetime:
        return self.as_of - timedelta(days=self.churn.recent_days)

    @property
    def baseline_start(self) -> datetime:
        return self.recent_start - timedelta(days=self.churn.baseline_days)


def boundaries_to_json(boundaries: RfmBoundaries) -> dict[str, Any]:
    return {"recency": list(boundaries.recency.cuts), "frequency": list(boundaries.frequency.cuts),
            "monetary": [str(cut) for cut in boundaries.monetary.cuts]}


def boundaries_from_json(doc: dict[str, Any], population: int) -> RfmBoundaries:
    return RfmBoundaries(
        recency=QuintileBoundaries(Direction.LOWER_IS_BETTER, tuple(int(c) for c in doc["recency"]), population),
        frequency=QuintileBoundaries(Direction.HIGHER_IS_BETTER, tuple(int(c) for c in doc["frequency"]), population),
        monetary=QuintileBoundaries(Direction.HIGHER_IS_BETTER, tuple(Decimal(c) for c in doc["monetary"]),
                                    population))


def boundaries_from_row(row: Any, *, min_population: int) -> RfmBoundaries | None:
    """The aggregate's answer as cut points; None for a base too small to rank."""
    population = int(row["population"] or 0)
    if population < min_population or row["r_cuts"] is None:
        return None
    return boundaries_from_json({"recency": row["r_cuts"], "frequency": row["f_cuts"],
                                 "monetary": [str(c) for c in row["m_cuts"]]}, population)


async def recompute_boundaries(conn: Any, *, as_of: datetime, rfm: RfmSettings,
                               rates: dict[str, Decimal]) -> RfmBoundaries | None:
    """Cut points over the whole base as of ``as_of``, stored (or dropped when it is too small)."""
    row = await repository.compute_boundaries(conn, as_of=as_of, window_start=as_of - timedelta(days=rfm.window_days),
                                              base_currency=rfm.base_currency, rates=rates)
    boundaries = boundaries_from_row(row, min_population=rfm.min_population)
    await repository.store_boundaries(conn, boundaries=boundaries_to_json(boundaries) if boundaries else None,
                                      population=int(row["population"] or 0), as_of=as_of)
    return boundaries


async def load_context(conn: Any, *, as_of: datetime, rfm: RfmSettings, churn: ChurnSettings,
                       rates: dict[str, Decimal]) -> Context:
    """The stored cut points (computed on first need: a deployment scores before its first
    nightly run) and the tier rules."""
    stored = await repository.stored_boundaries(conn)
    if stored is not None:
        boundaries: RfmBoundaries | None = boundaries_from_json(stored["boundaries"], stored["population"])
    else:
        boundaries = await recompute_boundaries(conn, as_of=as_of, rfm=rfm, rates=rates)
    settings = await repository.insight_settings(conn)
    rules = tuple(TierRules.model_validate({"rules": settings["tier_rules"]}).rules) if settings else ()
    return Context(as_of=as_of, rfm=rfm, churn=churn, boundaries=boundaries, rules=rules, rates=rates)


# --------------------------------------------------------------------------- facts and the pure scoring


@dataclass(frozen=True, slots=True)
class Facts:
    """One customer's facts as of the context's instant (plain data: :func:`score` is pure)."""

    customer_id: uuid.UUID
    tier: str | None = None
    account_owner_id: uuid.UUID | None = None
    language: str | None = None
    last_order_at: datetime | None = None
    first_order_at: datetime | None = None
    orders: int = 0
    frequency: int = 0
    monetary: Decimal = Decimal(0)
    orders_recent: int = 0
    orders_baseline: int = 0
    open_tickets: int = 0
    breached_recent: int = 0
    bad_csat_recent: int = 0
    last_nps: int | None = None
    tickets: tuple[TicketFact, ...] = ()


@dataclass(frozen=True, slots=True)
class Stored:
    """What the last scoring stored (the events compare against it)."""

    segment: str | None = None
    churn_score: int | None = None
    episode_active: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    facts: Facts
    recency_days: int | None
    scores: RfmScores | None
    segment: Segment | None
    risk: ChurnRisk
    episode: EpisodeStep
    tier: TierDecision


def churn_inputs(facts: Facts, ctx: Context) -> ChurnInputs:
    """The score's inputs (the definitions of ``insights.churn.order_history`` and
    ``repeated_contacts``, on aggregates)."""
    days_since = (max(0, (ctx.as_of - facts.last_order_at) // _DAY) if facts.last_order_at is not None else None)
    gap = None
    if facts.orders > 1 and facts.last_order_at is not None and facts.first_order_at is not None:
        gap = (facts.last_order_at - facts.first_order_at) / _DAY / (facts.orders - 1)
    repeats = repeated_contacts(facts.tickets, as_of=ctx.as_of, recent_days=ctx.churn.recent_days,
                                window_days=ctx.churn.repeat_window_days)
    return ChurnInputs(orders_recent=facts.orders_recent, orders_baseline=facts.orders_baseline,
                       days_since_last_order=days_since, usual_gap_days=gap, open_tickets=facts.open_tickets,
                       breached_tickets_recent=facts.breached_recent, bad_csat_recent=facts.bad_csat_recent,
                       last_nps=facts.last_nps, repeat_contacts_recent=repeats)


def score(facts: Facts, stored: Stored, ctx: Context) -> Result:
    """Scores, segment, churn risk, episode step and tier of one customer (pure)."""
    recency = None if facts.last_order_at is None else max(0, (ctx.as_of - facts.last_order_at) // _DAY)
    scores = None
    if recency is not None and ctx.boundaries is not None:
        scores = rfm_scores(RfmValues(recency_days=recency, frequency=facts.frequency, monetary=facts.monetary),
                            ctx.boundaries)
    segment = segment_of(scores, ctx.rfm.segment_high_from)
    risk = churn_risk(churn_inputs(facts, ctx), ctx.churn)
    step = episode_step(active=stored.episode_active, new_score=risk.score, settings=ctx.churn)
    tier = decide_tier(ctx.rules, TierFacts(
        current_tier=facts.tier, monetary=facts.monetary, frequency=facts.frequency,
        r=scores.r if scores else None, f=scores.f if scores else None, m=scores.m if scores else None,
        segment=segment.key if segment else None, churn_score=risk.score))
    return Result(facts=facts, recency_days=recency, scores=scores, segment=segment, risk=risk, episode=step,
                  tier=tier)


def stored_reason(reason: Reason) -> dict[str, Any]:
    """The stored and served shape of a reason (``customer_insights.churn_reasons``, the 360 view):
    ``{"factor", "points", "message": {"en", "zh-CN"}}`` (points named as in the event)."""
    return {"factor": reason.factor, "points": reason.contribution,
            "message": {"en": reason.message_en, "zh-CN": reason.message_zh}}


def event_reason(reason: Reason) -> events.ChurnReason:
    return events.ChurnReason(factor=reason.factor, points=reason.contribution, en=reason.message_en,
                              zh_cn=reason.message_zh)


def stored_row(result: Result) -> dict[str, Any]:
    scores = result.scores
    return {
        "customer_id": result.facts.customer_id, "recency_days": result.recency_days,
        "frequency": result.facts.frequency, "monetary": result.facts.monetary,
        "r": scores.r if scores else None, "f": scores.f if scores else None, "m": scores.m if scores else None,
        "segment": result.segment.key if result.segment else None, "churn_score": result.risk.score,
        "churn_band": result.risk.band, "churn_reasons": [stored_reason(r) for r in result.risk.reasons],
        "churn_episode_active": result.episode.active,
    }


def _tickets(rows: Sequence[Any]) -> dict[uuid.UUID, list[TicketFact]]:
    found: dict[uuid.UUID, list[TicketFact]] = defaultdict(list)
    for row in rows:
        found[row["customer_id"]].append(TicketFact(created_at=row["created_at"], type=row["type"],
                                                    tags=frozenset(row["tags"] or ()), reopened=row["reopened"] or 0))
    return found


async def gather(conn: Any, customer_rows: Sequence[Any], ctx: Context) -> list[Facts]:
    """The facts of these customers: four set-based statements whatever their number."""
    ids = [row["id"] for row in customer_rows]
    orders = {r["customer_id"]: r for r in await repository.order_facts(
        conn, ids, window_start=ctx.window_start, recent_start=ctx.recent_start, baseline_start=ctx.baseline_start,
        as_of=ctx.as_of, base_currency=ctx.rfm.base_currency, rates=ctx.rates)}
    tickets = {r["customer_id"]: r for r in await repository.ticket_facts(conn, ids, recent_start=ctx.recent_start)}
    recent = _tickets(await repository.recent_tickets(
        conn, ids, since=ctx.recent_start - timedelta(days=ctx.churn.repeat_window_days)))
    surveys = {r["customer_id"]: r for r in await repository.survey_facts(conn, ids, recent_start=ctx.recent_start,
                                                                          as_of=ctx.as_of)}
    out = []
    for row in customer_rows:
        cid = row["id"]
        o, t, s = orders.get(cid), tickets.get(cid), surveys.get(cid)
        out.append(Facts(
            customer_id=cid, tier=row["tier"], account_owner_id=row["account_owner_id"], language=row["language"],
            last_order_at=o["last_at"] if o else None, first_order_at=o["first_at"] if o else None,
            orders=o["orders"] if o else 0, frequency=o["frequency"] if o else 0,
            monetary=o["monetary"] if o else Decimal(0), orders_recent=o["recent"] if o else 0,
            orders_baseline=o["baseline"] if o else 0, open_tickets=t["open"] if t else 0,
            breached_recent=t["breached"] if t else 0, bad_csat_recent=s["bad_csat"] if s else 0,
            last_nps=s["last_nps"] if s else None, tickets=tuple(recent.get(cid, ())),
        ))
    return out


# --------------------------------------------------------------------------- effects


@dataclass(slots=True)
class Outcome:
    scored: int = 0
    segment_changes: int = 0
    episodes_started: int = 0
    episodes_ended: int = 0
    tier_changes: int = 0


def segment_event(result: Result, previous: str | None, at: datetime) -> events.CustomerSegmentChanged:
    """Built without validation (``model_construct``): every value is a segment key or a 1-5 score
    made here, and the first full run emits one per ranked customer (a million at most)."""
    scores = result.scores
    return events.CustomerSegmentChanged.model_construct(
        source=SOURCE, subject=str(result.facts.customer_id), data=events.SegmentChangedData.model_construct(
            customer_id=result.facts.customer_id, previous=previous,
            segment=result.segment.key if result.segment else None, r=scores.r if scores else None,
            f=scores.f if scores else None, m=scores.m if scores else None, at=at))


def churn_event(result: Result, previous: int | None, at: datetime) -> events.InsightChurnRiskChanged:
    assert result.episode.change is not None
    return events.InsightChurnRiskChanged(source=SOURCE, subject=str(result.facts.customer_id),
                                          data=events.ChurnRiskChangedData(
        customer_id=result.facts.customer_id, score=result.risk.score, previous_score=previous,
        band=result.risk.band, episode=result.episode.change.value,
        reasons=[event_reason(r) for r in result.risk.reasons], account_owner_id=result.facts.account_owner_id,
        language=result.facts.language, at=at))


async def set_tier(conn: Any, *, customer_id: uuid.UUID, tier: str | None) -> tuple[Any, Any] | None:
    """The tier a rule decided, written as a supervisor's PATCH writes it (version, ``customer.updated``
    with the tier in ``changes``), so ticket-svc's routing and sla-svc follow; actor ``system:insights``.
    (before, after) rows, or None when there was nothing to change."""
    row = await customers.get_customer(conn, customer_id, lock=True)
    if row is None or row["tier"] == tier:
        return None
    updated = await customers.update_customer(conn, customer_id, {"tier": tier})
    await enqueue_raw(conn, outbox, updated_event(updated, changes_of(row, {"tier": tier}), actor=ACTOR))
    return row, updated


async def apply_effects(conn: Any, results: Sequence[Result], stored: dict[uuid.UUID, Stored], *,
                        at: datetime) -> Outcome:
    outcome = Outcome(scored=len(results))
    emitted: list[Any] = []
    entries: list[dict[str, Any]] = []
    for result in results:
        cid = result.facts.customer_id
        before = stored.get(cid, Stored())
        segment = result.segment.key if result.segment else None
        if segment != before.segment:
            event = segment_event(result, before.segment, at)
            emitted.append(event)
            entries.append({"entry": timeline.entry_id(event.id, "segment.changed"), "customer_id": cid, "at": at,
                            "kind": "segment.changed", "summary": event.data.model_dump(
                                mode="json", include={"previous", "segment", "r", "f", "m"})})
            outcome.segment_changes += 1
        if result.episode.change is not None:
            event = churn_event(result, before.churn_score, at)
            emitted.append(event)
            entries.append({"entry": timeline.entry_id(event.id, "churn_risk.changed"), "customer_id": cid, "at": at,
                            "kind": "churn_risk.changed", "summary": {
                                "episode": result.episode.change.value, "score": result.risk.score,
                                "band": result.risk.band, "reasons": [r.factor for r in result.risk.reasons]}})
            if result.episode.change is EpisodeChange.STARTED:
                outcome.episodes_started += 1
            else:
                outcome.episodes_ended += 1
        if result.tier.changed:
            changed = await set_tier(conn, customer_id=cid, tier=result.tier.tier)
            if changed is not None:
                before_row, after_row = changed
                outcome.tier_changes += 1
                # the entry a tier change by hand writes (one per customer version), with the rule
                entries.append({"entry": timeline.entry_id(f"{cid}:{after_row['version']}", "tier.changed"),
                                "customer_id": cid, "at": after_row["updated_at"], "kind": "tier.changed",
                                "summary": {"before": before_row["tier"], "after": after_row["tier"], "actor": ACTOR,
                                            "rule": result.tier.rule_index}})
    if emitted:
        await enqueue_raw(conn, outbox, *emitted)
    await timeline.record_many(conn, entries)
    return outcome


@dataclass(frozen=True, slots=True)
class Prefetched:
    """A batch's customers and facts read ahead of its transaction (the full run reads the next
    batch while it writes this one), with when each was last scored: a customer scored by the
    incremental worker in between is read again under the lock, so a newer score is never
    overwritten from older facts."""

    rows: list[Any]
    facts: list[Facts]
    scored_at: dict[uuid.UUID, datetime | None]


async def prefetch(conn: Any, customer_ids: Sequence[uuid.UUID], ctx: Context) -> Prefetched:
    rows = await repository.customers_of(conn, customer_ids)
    scored_at = await repository.scored_at(conn, [r["id"] for r in rows])
    return Prefetched(rows=list(rows), facts=await gather(conn, rows, ctx), scored_at=scored_at)


def _score_all(facts: Sequence[Facts], stored: dict[uuid.UUID, Stored], ctx: Context) -> list[Result]:
    return [score(f, stored.get(f.customer_id, Stored()), ctx) for f in facts]


#: batches at least this large are scored in a worker thread, so the event loop keeps the
#: database busy meanwhile (the full run's read-ahead)
_THREAD_FROM = 200


async def score_customers(conn: Any, customer_ids: Sequence[uuid.UUID], ctx: Context,
                          prefetched: Prefetched | None = None) -> Outcome:
    """Rescore these customers in the caller's transaction: lock their stored scores (so two
    replicas take turns), read their facts (or take them read ahead), write the new scores and
    what follows."""
    # a customer merged away (or gone) is not scored: its survivor is
    rows = prefetched.rows if prefetched is not None else await repository.customers_of(conn, customer_ids)
    if not rows:
        return Outcome()
    locked = await repository.lock_insights(conn, [r["id"] for r in rows])
    stored = {r["customer_id"]: Stored(segment=r["segment"], churn_score=r["churn_score"],
                                       episode_active=r["churn_episode_active"]) for r in locked}
    if prefetched is None:
        facts = await gather(conn, rows, ctx)
    else:
        now_scored = {r["customer_id"]: r["churn_at"] for r in locked}
        stale = {cid for cid, at in now_scored.items() if at != prefetched.scored_at.get(cid)}
        facts = [f for f in prefetched.facts if f.customer_id not in stale]
        if stale:
            facts += await gather(conn, [r for r in rows if r["id"] in stale], ctx)
    if len(facts) >= _THREAD_FROM:
        results = await asyncio.to_thread(_score_all, facts, stored, ctx)
    else:
        results = _score_all(facts, stored, ctx)
    await repository.write_insights(conn, [stored_row(r) for r in results], at=ctx.as_of)
    return await apply_effects(conn, results, stored, at=ctx.as_of)


# --------------------------------------------------------------------------- the two runs


def _now() -> datetime:
    return datetime.now(UTC)


async def score_dirty(pool: Any, *, limit: int, lease_s: float, rfm: RfmSettings, churn: ChurnSettings,
                      rates: dict[str, Decimal], as_of: datetime | None = None) -> int:
    """One incremental pass: lease up to ``limit`` dirty customers, rescore them in one
    transaction, forget those not marked again meanwhile. The number leased."""
    async with pool.acquire() as conn:
        leased = [(r["customer_id"], r["since"]) for r in await repository.lease_dirty(conn, limit=limit,
                                                                                      lease_s=lease_s)]
        if not leased:
            return 0
        moment = as_of or _now()
        try:
            async with conn.transaction():
                ctx = await load_context(conn, as_of=moment, rfm=rfm, churn=churn, rates=rates)
                await score_customers(conn, [c for c, _ in leased], ctx)
                await repository.release_dirty(conn, leased)
        except _CONNECTION_ERRORS:
            raise
        except Exception:
            # one customer's facts break the batch: score them one by one, so the others are not
            # held back; the failing one keeps its lease and is tried again when it runs out
            log.exception("insight batch failed; scoring its customers one by one")
            for pair in leased:
                try:
                    async with conn.transaction():
                        ctx = await load_context(conn, as_of=moment, rfm=rfm, churn=churn, rates=rates)
                        await score_customers(conn, [pair[0]], ctx)
                        await repository.release_dirty(conn, [pair])
                except _CONNECTION_ERRORS:
                    raise
                except Exception:
                    log.exception("insight scoring failed", extra={"customer_id": str(pair[0])})
    return len(leased)


class _Single:
    """A pool-like wrapper of one connection, so the runs take a pool or a connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def acquire(self) -> Any:
        conn = self.conn

        class _Ctx:
            async def __aenter__(self) -> Any:
                return conn

            async def __aexit__(self, *exc: Any) -> None:
                return None

        return _Ctx()


def as_pool(pool_or_conn: Any) -> Any:
    """A connection (it has ``transaction``; a pool has not) wrapped to look like a pool."""
    return _Single(pool_or_conn) if hasattr(pool_or_conn, "transaction") else pool_or_conn


async def recompute_all(pool_or_conn: Any, as_of: datetime | None = None, *, rfm: RfmSettings | None = None,
                        churn: ChurnSettings | None = None, settings: InsightRunSettings | None = None,
                        on_batch: Callable[[int, datetime], Awaitable[None]] | None = None) -> Outcome:
    """The full run: the cut points over the whole base as of ``as_of``, then every customer
    rescored against them in batches (``CUSTOMER_INSIGHTS_FULL_BATCH``, one transaction each),
    then ``last_full_run_at``. Callable on its own (``make bench`` times it)."""
    rfm = rfm or RfmSettings()
    churn = churn or ChurnSettings()
    settings = settings or InsightRunSettings()
    as_of = as_of or _now()
    pool = as_pool(pool_or_conn)
    total = Outcome()

    def add(outcome: Outcome) -> None:
        for name in ("scored", "segment_changes", "episodes_started", "episodes_ended", "tier_changes"):
            setattr(total, name, getattr(total, name) + getattr(outcome, name))

    async with pool.acquire() as conn:
        async with conn.transaction():
            await recompute_boundaries(conn, as_of=as_of, rfm=rfm, rates=settings.rates)
            ctx = await load_context(conn, as_of=as_of, rfm=rfm, churn=churn, rates=settings.rates)
        if isinstance(pool, _Single) or pool.get_max_size() < 2:
            after: uuid.UUID | None = None
            while ids := await repository.customer_ids_after(conn, after, settings.full_batch):
                async with conn.transaction():
                    add(await score_customers(conn, ids, ctx))
                after = ids[-1]
                if on_batch is not None:
                    await on_batch(total.scored, as_of)
        else:
            # a second connection reads the next batch's facts while this one writes
            async with pool.acquire() as reader:
                async def read(after: uuid.UUID | None) -> tuple[list[uuid.UUID], Prefetched | None]:
                    ids = await repository.customer_ids_after(reader, after, settings.full_batch)
                    return ids, (await prefetch(reader, ids, ctx) if ids else None)

                pending = asyncio.create_task(read(None))
                try:
                    while True:
                        ids, ahead = await pending
                        if not ids:
                            break
                        pending = asyncio.create_task(read(ids[-1]))
                        async with conn.transaction():
                            add(await score_customers(conn, ids, ctx, ahead))
                        if on_batch is not None:
                            await on_batch(total.scored, as_of)
                finally:
                    if not pending.done():
                        pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)
        await repository.note_full_run(conn, _now())
    log.info("insights full run", extra={"scored": total.scored, "segment_changes": total.segment_changes,
                                         "episodes_started": total.episodes_started,
                                         "tier_changes": total.tier_changes})
    return total
