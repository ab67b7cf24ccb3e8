import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import running_app, service_env


@pytest.fixture
def sla_db(infra):
    return infra.new_database("sla_svc")


@pytest.fixture
async def db(sla_db):
    engine = create_async_engine(sla_db)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(infra, sla_db, monkeypatch):
    """The API alone: no consumer, no relay."""
    service_env(monkeypatch, infra, "SLA_", sla_db)
    monkeypatch.setenv("SLA_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("SLA_RELAY_ENABLED", "false")
    from sla_svc.config import Settings
    from sla_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def full(infra, sla_db, monkeypatch):
    """The whole service on the test broker; ``full.topics`` is the topic prefix."""
    topics = service_env(monkeypatch, infra, "SLA_", sla_db)
    from sla_svc.config import Settings
    from sla_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client


# ---------------------------------------------------------------------------------------------
# Helpers shared by the engine tests (fixtures, because tests are imported with importlib).

import types  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import text  # noqa: E402

from helpdesk_common import events as ev  # noqa: E402


def _created(ticket_id=None, *, priority="normal", at=None, status="new", type=None, channel="api", tags=(),
             **extra):
    tid = ticket_id or uuid.uuid4()
    return ev.TicketCreated(source="test", subject=str(tid), data=ev.TicketCreatedData(
        ticket_id=tid, subject="s", status=status, priority=priority, type=type, channel=channel, tags=list(tags),
        requester=ev.Requester(email="a@b.co"), created_by="channel:k", created_at=at or datetime.now(UTC), **extra))


def _status(ticket_id, from_status, to_status, at, *, reason=None):
    return ev.TicketStatusChanged(source="test", subject=str(ticket_id), data=ev.TicketStatusChangedData(
        ticket_id=ticket_id, status=to_status, from_status=from_status, to_status=to_status, changed_at=at,
        reason=reason))


def _message(ticket_id, at, *, author="customer", public=True, first_response=False, response=False):
    return ev.TicketMessageAdded(source="test", subject=str(ticket_id), data=ev.TicketMessageAddedData(
        ticket_id=ticket_id, message_id=uuid.uuid4(), author_kind=author, public=public,
        first_response=first_response, response=response, created_at=at))


def _updated(ticket_id, at, **changes):
    return ev.TicketUpdated(source="test", subject=str(ticket_id), time=at, data=ev.TicketUpdatedData(
        ticket_id=ticket_id, changes={k: {"before": b, "after": a} for k, (b, a) in changes.items()}))


@pytest.fixture
def make():
    """Ticket event builders: make.created / make.status / make.message / make.updated."""
    return types.SimpleNamespace(created=_created, status=_status, message=_message, updated=_updated)


@pytest.fixture
def handle(db):
    """Apply ticket events through sla-svc's handlers, one transaction each (as the consumer does)."""
    from sla_svc.timers.handlers import HANDLERS

    async def run(*events):
        for e in events:
            async with db.begin() as conn:
                await HANDLERS[e.type](conn, e)

    return run


@pytest.fixture
def timers(db):
    """Read a ticket's timers as {metric: row mapping}."""
    async def read(ticket_id):
        async with db.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM sla_timers WHERE ticket_id = :t"), {"t": ticket_id})).all()
        return {r.metric: r._mapping for r in rows}

    return read


@pytest.fixture
def sla_events(db):
    """The outbox of a ticket (or all of it) as decoded events, in commit order."""
    async def read(ticket_id=None):
        sql = "SELECT payload FROM outbox" + (" WHERE key = :k" if ticket_id else "") + " ORDER BY seq"
        async with db.connect() as conn:
            rows = (await conn.execute(text(sql), {"k": str(ticket_id)} if ticket_id else {})).all()
        return [ev.decode(r.payload) for r in rows]

    return read


#: due timers written straight into the table (as a bulk import or a long downtime would
#: leave them): ``n`` tickets, fire points given as SQL interval offsets from now()
BULK_TIMERS_SQL = """
INSERT INTO sla_timers (ticket_id, metric, policy, target_minutes, started_at, running_since, due_at,
                        fire_at, fractions, next_fire_at, status)
SELECT gen_random_uuid(), 'first_response', 'bulk', 60, b.t0 - interval '1 hour', b.t0 - interval '1 hour',
       b.t0 + due_off, ARRAY(SELECT b.t0 + o FROM unnest(offsets) o), fr, b.t0 + offsets[1], 'running'
FROM generate_series(1, :n) g,
     (SELECT CAST(:t0 AS timestamptz) AS t0) b,
     LATERAL (SELECT CAST(CAST(:offsets AS text) AS interval[]) AS offsets,
                     CAST(CAST(:fractions AS text) AS float8[]) AS fr,
                     CAST(CAST(:due_off AS text) AS interval) AS due_off) x
"""


@pytest.fixture
def bulk_timers(db):
    async def insert(n, t0, offsets, fractions):
        async with db.begin() as conn:
            await conn.execute(text(BULK_TIMERS_SQL), {
                "n": n, "t0": t0, "offsets": "{" + ",".join(f'"{o}"' for o in offsets) + "}",
                "fractions": "{" + ",".join(str(f) for f in fractions) + "}", "due_off": offsets[-1]})
            await conn.execute(text("SELECT pg_notify('sla_timers', '0')"))

    return insert


@pytest.fixture
def sla_app_factory(infra, sla_db, monkeypatch):
    """Build extra sla-svc apps on the same database (replicas): scheduler only."""
    topics = service_env(monkeypatch, infra, "SLA_", sla_db)
    monkeypatch.setenv("SLA_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("SLA_RELAY_ENABLED", "false")

    def build():
        from sla_svc.config import Settings
        from sla_svc.main import create_app

        return create_app(Settings())

    build.topics = topics
    return build
