import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import running_app, service_env


@pytest.fixture
def ticket_db(infra):
    return infra.new_database("ticket_svc")


@pytest.fixture
async def client(infra, ticket_db, monkeypatch):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


@pytest.fixture
async def db(ticket_db):
    engine = create_async_engine(ticket_db)
    yield engine
    await engine.dispose()
