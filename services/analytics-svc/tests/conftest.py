import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import running_app, service_env


@pytest.fixture
def analytics_db(infra):
    return infra.new_database("analytics_svc")


@pytest.fixture
async def db(analytics_db):
    engine = create_async_engine(analytics_db)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(infra, analytics_db, monkeypatch):
    """The API alone: no consumer, no relay."""
    service_env(monkeypatch, infra, "ANALYTICS_", analytics_db)
    monkeypatch.setenv("ANALYTICS_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("ANALYTICS_RELAY_ENABLED", "false")
    from analytics_svc.config import Settings
    from analytics_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def full(infra, analytics_db, monkeypatch):
    """The whole service on the test broker; ``full.topics`` is the topic prefix."""
    topics = service_env(monkeypatch, infra, "ANALYTICS_", analytics_db)
    from analytics_svc.config import Settings
    from analytics_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client


@pytest.fixture
async def raw(analytics_db):
    """A bare asyncpg connection: what the raw consumer hands its handlers."""
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(analytics_db, size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()
