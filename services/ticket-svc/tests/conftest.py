import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import SESSION_PII_ENV, running_app, service_env

#: the key of reply attachment links (conversation/outbound.py) in every test app
ATTACHMENT_URL_KEY = "test-attachment-url-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def pii_keys(monkeypatch):
    """Every test runs with the session's personal-data keys (ticket-svc does not start without
    them) and the default masking rule, whatever an earlier test configured (rotation tests
    install other keys)."""
    from ticket_svc.pii import access, codec

    env = SESSION_PII_ENV["TICKET_"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    codec.configure(env["TICKET_PII_KEYS"], env["TICKET_PII_INDEX_KEY"])
    access.configure(unmasked_roles=("admin", "supervisor"), assignee_sees=True)
    yield


@pytest.fixture
def ticket_db(infra):
    return infra.new_database("ticket_svc")


@pytest.fixture
async def client(infra, ticket_db, monkeypatch):
    """The API with its relay but without consumers (intake tests need no projections)."""
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", ATTACHMENT_URL_KEY)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


@pytest.fixture
def known_users(ticket_db):
    """``await known_users("a1", "a2", role=..., active=...)``: make ids gateway users, as the
    gateway's ``users.events`` would (rows of ticket-svc's user projection): agent profiles
    (``PUT /v1/agents/{id}``) are only for users."""

    async def add(*user_ids: str, role: str = "agent", active: bool = True) -> None:
        engine = create_async_engine(ticket_db)
        try:
            async with engine.begin() as conn:
                for user_id in user_ids:
                    await conn.execute(text(
                        "INSERT INTO user_projection (id, display_name, role, active, version) "
                        "VALUES (:id, :id, :role, :active, 1) ON CONFLICT (id) DO NOTHING"),
                        {"id": user_id, "role": role, "active": active})
        finally:
            await engine.dispose()

    return add


@pytest.fixture
async def db(ticket_db):
    engine = create_async_engine(ticket_db)
    yield engine
    await engine.dispose()


@pytest.fixture
async def full_client(infra, ticket_db, monkeypatch):
    """The API with relay and consumers running against the test broker."""
    topics = service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", ATTACHMENT_URL_KEY)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    app = create_app(Settings())
    async with running_app(app) as c:
        c.app = app
        c.topics = topics
        yield c
