import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import running_app, service_env


@pytest.fixture
def notify_db(infra):
    return infra.new_database("notify_svc")


@pytest.fixture
async def db(notify_db):
    engine = create_async_engine(notify_db)
    yield engine
    await engine.dispose()


@pytest.fixture
def secret_key():
    """A fresh NOTIFY_SECRET_KEY per test (there is no default key, on purpose)."""
    from notify_svc.webhooks.crypto import generate_key

    return generate_key()


@pytest.fixture
async def api(infra, notify_db, secret_key, monkeypatch):
    """The API alone: no consumer, no relay; loopback 127.0.0.1 allow-listed, as tests need."""
    service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("NOTIFY_RELAY_ENABLED", "false")
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def full(infra, notify_db, secret_key, monkeypatch):
    """The whole service on the test broker; ``full.topics`` is the topic prefix."""
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client
