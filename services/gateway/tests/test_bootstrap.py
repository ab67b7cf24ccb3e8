"""The dev bootstrap (make run): admin plus one key per channel, idempotent across restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.timeout(60)


async def test_bootstrap_creates_every_channel_key_once(gateway_env, gateway_db):
    from gateway.bootstrap import bootstrap
    from gateway.config import get_settings

    get_settings.cache_clear()
    keys = {kind: f"hdk_dev_{kind}_0123456789" for kind in ("email", "web", "chat", "wechat", "wecom", "dingtalk", "phone")}
    try:
        for _ in range(2):  # a restart runs it again
            await bootstrap(admin_email="Admin@Example.com", admin_password="pw", channel_api_key="hdk_dev_api_0123",
                            channel_keys=keys)
    finally:
        get_settings.cache_clear()
    engine = create_async_engine(gateway_db)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT name, channel FROM api_keys WHERE revoked_at IS NULL"))).all()
        users = await conn.scalar(text("SELECT count(*) FROM users WHERE email = 'admin@example.com'"))
    await engine.dispose()
    assert sorted(rows) == sorted([("dev", "api"), *((f"dev-{k}", k) for k in keys)])
    assert users == 1
