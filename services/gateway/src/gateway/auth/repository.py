from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import api_keys, sessions, users


async def user_by_email(conn: AsyncConnection, email: str) -> Row | None:
    return (await conn.execute(select(users).where(users.c.email == email))).first()


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> Row | None:
    return (await conn.execute(select(*_USER_COLUMNS, users.c.password_hash).where(users.c.id == user_id))).first()


async def session_state(conn: AsyncConnection, session_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """The user's current role and whether the session still stands (None: no such session)."""
    live = sessions.c.revoked_at.is_(None) & (sessions.c.expires_at > func.now()) & users.c.active
    stmt = (select(users.c.role, live.label("live"))
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(sessions.c.id == session_id, sessions.c.user_id == user_id))
    return (await conn.execute(stmt)).first()


async def insert_session(conn: AsyncConnection, *, user_id: uuid.UUID, refresh_hash: str, ttl_s: int,
                         client_address: str | None) -> uuid.UUID:
    session_id = uuid.uuid4()
    await conn.execute(sessions.insert().values(
        id=session_id, user_id=user_id, refresh_hash=refresh_hash, client_address=client_address,
        expires_at=func.now() + text(f"interval '{int(ttl_s)} seconds'"),
    ))
    return session_id


async def session_by_refresh_hash(conn: AsyncConnection, refresh_hash: str) -> Row | None:
    """The live session whose current refresh token this is, locked, with its user."""
    stmt = (select(sessions.c.id, sessions.c.user_id, users.c.role, users.c.email)
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(sessions.c.refresh_hash == refresh_hash, sessions.c.revoked_at.is_(None),
                   sessions.c.expires_at > func.now(), users.c.active)
            .with_for_update(of=sessions))
    return (await conn.execute(stmt)).first()


async def rotate_refresh(conn: AsyncConnection, session_id: uuid.UUID, *, old_hash: str, new_hash: str) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id).values(
        refresh_hash=new_hash, previous_refresh_hash=old_hash, refreshed_at=func.now()))


async def revoke_session_by_previous_hash(conn: AsyncConnection, refresh_hash: str) -> uuid.UUID | None:
    """A replayed (already rotated) refresh token: end the session it belonged to."""
    return await conn.scalar(
        update(sessions).where(sessions.c.previous_refresh_hash == refresh_hash, sessions.c.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(sessions.c.id)
    )


async def revoke_session(conn: AsyncConnection, session_id: uuid.UUID) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                       .values(revoked_at=func.now()))


async def revoke_user_sessions(conn: AsyncConnection, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> None:
    stmt = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(sessions.c.id != keep)
    await conn.execute(stmt.values(revoked_at=func.now()))


async def delete_dead_sessions(conn: AsyncConnection, *, older_than_s: int) -> None:
    await conn.execute(sessions.delete().where(
        func.coalesce(sessions.c.revoked_at, sessions.c.expires_at) < func.now() - text(f"interval '{int(older_than_s)} seconds'")))


async def lock_active_admins(conn: AsyncConnection) -> list[uuid.UUID]:
    """Lock every active admin row: a demotion or deactivation decided against this set cannot
    race another one into leaving no admin."""
    stmt = select(users.c.id).where(users.c.role == "admin", users.c.active).order_by(users.c.id).with_for_update()
    return list((await conn.execute(stmt)).scalars())


async def set_password_hash(conn: AsyncConnection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=func.now()))


async def lock_user_by_email(conn: AsyncConnection, email: str) -> Row | None:
    return (await conn.execute(select(*_USER_COLUMNS).where(users.c.email == email).with_for_update())).first()


async def active_key_by_hash(conn: AsyncConnection, key_hash: str) -> Row | None:
    return (
        await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)))
    ).first()


async def insert_api_key(conn: AsyncConnection, *, name: str, channel: str, key_prefix: str, key_hash: str,
                         created_by: str | None) -> Row:
    stmt = (
        pg_insert(api_keys)
        .values(id=uuid.uuid4(), name=name, channel=channel, key_prefix=key_prefix, key_hash=key_hash, created_by=created_by)
        .on_conflict_do_update(index_elements=[api_keys.c.key_hash], set_={"revoked_at": None})
        .returning(*api_keys.c)
    )
    return (await conn.execute(stmt)).one()


async def list_api_keys(conn: AsyncConnection) -> list[Row]:
    return list((await conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc()))).all())


async def revoke_api_key(conn: AsyncConnection, key_id: uuid.UUID) -> str | None:
    """Revoke; returns the key's hash (to evict it from caches) or None if unknown."""
    return await conn.scalar(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(api_keys.c.key_hash)
    )


async def insert_user(conn: AsyncConnection, *, email: str, password_hash: str, role: str, name: str | None) -> Row | None:
    """A new user, or None when the e-mail is taken."""
    stmt = (pg_insert(users).values(id=uuid.uuid4(), email=email, password_hash=password_hash, role=role, name=name)
            .on_conflict_do_nothing(index_elements=[users.c.email]).returning(*_USER_COLUMNS))
    return (await conn.execute(stmt)).first()


async def list_users(conn: AsyncConnection) -> list[Row]:
    return list((await conn.execute(select(*_USER_COLUMNS).order_by(users.c.email).limit(1000))).all())


async def lock_user(conn: AsyncConnection, user_id: uuid.UUID) -> Row | None:
    """The user as it is before a change, locked until the change commits."""
    return (await conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id).with_for_update())).first()


async def update_user(conn: AsyncConnection, user_id: uuid.UUID, values: dict, *, new_version: bool) -> Row | None:
    """``new_version``: the change is one other services hear of (a user.updated event)."""
    if new_version:
        values = {**values, "version": users.c.version + 1}
    stmt = update(users).where(users.c.id == user_id).values(**values, updated_at=func.now()).returning(*_USER_COLUMNS)
    return (await conn.execute(stmt)).first()


_USER_COLUMNS = (users.c.id, users.c.email, users.c.name, users.c.role, users.c.active, users.c.created_at,
                 users.c.version)
