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
