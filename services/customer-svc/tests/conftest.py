import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.pii_crypto import new_settings
from helpdesk_common.testing import running_app, service_env

#: this test session's personal-data keys (customer-svc does not start without them)
PII_ENV = new_settings("CUSTOMER_")


@pytest.fixture(autouse=True)
def pii_keys(monkeypatch):
    """Every test runs with the session's keys and the default masking rule, whatever an earlier
    test configured (rotation tests install other keys)."""
    from customer_svc.pii import access, codec

    for name, value in PII_ENV.items():
        monkeypatch.setenv(name, value)
    codec.configure(PII_ENV["CUSTOMER_PII_KEYS"], PII_ENV["CUSTOMER_PII_INDEX_KEY"])
    access.configure(unmasked_roles=("admin", "supervisor"), assignee_sees=True)
    yield


@pytest.fixture
def customer_db(infra):
    return infra.new_database("customer_svc")


@pytest.fixture
async def db(customer_db):
    engine = create_async_engine(customer_db)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(infra, customer_db, monkeypatch):
    """The API alone: no consumer, no relay (reads need neither; starts in milliseconds)."""
    service_env(monkeypatch, infra, "CUSTOMER_", customer_db)
    monkeypatch.setenv("CUSTOMER_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("CUSTOMER_RELAY_ENABLED", "false")
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def full(infra, customer_db, monkeypatch):
    """The whole service (API, consumer, relay) on the test broker; ``full.topics`` is the topic prefix."""
    topics = service_env(monkeypatch, infra, "CUSTOMER_", customer_db)
    monkeypatch.setenv("CUSTOMER_CONSUMER_RETRY_BASE_S", "0.05")
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client


@pytest.fixture
async def raw(customer_db):
    """A bare asyncpg connection: what the raw consumer and the endpoints work on."""
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(customer_db, size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()
