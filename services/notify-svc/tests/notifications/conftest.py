"""An app with the notifications router alone (the service's other parts are tested elsewhere)
and a bare asyncpg connection on the same database, for the handlers."""

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from helpdesk_common.testing import running_app, service_env


@pytest.fixture
async def notifications_api(infra, notify_db, monkeypatch):
    service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("NOTIFY_RELAY_ENABLED", "false")
    from helpdesk_common.app import ServiceParts, build_app
    from notify_svc.config import Settings
    from notify_svc.db import inbox, outbox
    from notify_svc.notifications.endpoints import router

    app = build_app(Settings(), ServiceParts(title="notify-svc", routers=[router], outbox=outbox, inbox=inbox,
                                             raw_pool=True, consumers=[]))
    async with running_app(app) as client:
        yield client


@pytest.fixture
async def raw(notify_db):
    """A bare asyncpg connection with the service's codecs (jsonb as Python values)."""
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(notify_db, size=1)
    try:
        async with pool.acquire() as conn:
            yield conn
    finally:
        await pool.close()
