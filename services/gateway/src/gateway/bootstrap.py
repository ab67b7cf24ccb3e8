"""Idempotently create the dev admin user and the dev channel key.

Reads {"admin_password", "channel_api_key"} as JSON on stdin so no secret appears in the
process list; prints nothing secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from helpdesk_common.db import create_engine

from .auth import repository, security
from .config import get_settings


async def bootstrap(*, admin_email: str, admin_password: str, channel_api_key: str) -> None:
    engine = create_engine(get_settings().database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await repository.upsert_user(conn, email=admin_email.lower(), password_hash=security.hash_password(admin_password),
                                         role="admin", name="Dev admin")
            await repository.insert_api_key(conn, name="dev", channel="api", key_prefix=channel_api_key[:8],
                                            key_hash=security.hash_api_key(channel_api_key), created_by="bootstrap")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-email", required=True)
    args = parser.parse_args()
    secrets_in = json.loads(sys.stdin.read())
    key = secrets_in["channel_api_key"]
    if not key.startswith(security.API_KEY_PREFIX):
        raise SystemExit(f"channel_api_key must start with {security.API_KEY_PREFIX}")
    asyncio.run(bootstrap(admin_email=args.admin_email, admin_password=secrets_in["admin_password"], channel_api_key=key))
    print(f"bootstrapped admin {args.admin_email} and the dev channel key")


if __name__ == "__main__":
    main()
