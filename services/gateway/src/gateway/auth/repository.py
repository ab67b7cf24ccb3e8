from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import api_keys, oidc_logins, recovery_codes, sessions, user_api_tokens, users


async def user_by_email(conn: AsyncConnection, email: str) -> Row | None:
    return (await conn.execute(select(users).where(users.c.email == email))).first()


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> Row | None:
    return (await conn.execute(select(*_USER_COLUMNS, users.c.password_hash).where(users.c.id == user_id))).first()


async def session_state(conn: AsyncConnection, session_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    """The user's current role and whether the session still stands (None: no such session)."""
    live = sessions.c.revoked_at.is_(None) & (sessions.c.expires_at > func.now()) & users.c.active
    stmt = (select(users.c.role, live.label("live"), users.c.totp_confirmed_at.is_not(None).label("totp"))
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


# ---- sign-in from a known address (the guessing window, service.py) ----------------------------
async def signed_in_from(conn: AsyncConnection, email: str, client_address: str, *, within_s: int) -> bool:
    """Whether the account signed in from this address within ``within_s`` seconds."""
    stmt = (select(sessions.c.id).select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(users.c.email == email, sessions.c.client_address == client_address,
                   sessions.c.created_at > func.now() - text(f"interval '{int(within_s)} seconds'"))
            .limit(1))
    return (await conn.scalar(stmt)) is not None


# ---- two-factor sign-in (totp.py) --------------------------------------------------------------
async def totp_state(conn: AsyncConnection, user_id: uuid.UUID) -> Row | None:
    stmt = select(users.c.id, users.c.email, users.c.password_hash, users.c.totp_secret, users.c.totp_confirmed_at,
                  users.c.totp_last_step).where(users.c.id == user_id)
    return (await conn.execute(stmt)).first()


async def set_pending_totp(conn: AsyncConnection, user_id: uuid.UUID, encrypted_secret: str) -> bool:
    """A new secret awaiting confirmation; False when two-factor sign-in is already on."""
    stmt = (update(users).where(users.c.id == user_id, users.c.totp_confirmed_at.is_(None))
            .values(totp_secret=encrypted_secret, totp_last_step=None, updated_at=func.now()).returning(users.c.id))
    return (await conn.scalar(stmt)) is not None


async def accept_totp_step(conn: AsyncConnection, user_id: uuid.UUID, step: int, *, confirm: bool = False) -> bool:
    """Record ``step`` as used; False when it (or a later one) was used already (a replay)."""
    values: dict = {"totp_last_step": step}
    if confirm:
        values |= {"totp_confirmed_at": func.now(), "updated_at": func.now()}
    stmt = (update(users).where(users.c.id == user_id, users.c.totp_secret.is_not(None),
                                (users.c.totp_last_step.is_(None)) | (users.c.totp_last_step < step))
            .values(**values).returning(users.c.id))
    return (await conn.scalar(stmt)) is not None


async def clear_totp(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(
        totp_secret=None, totp_confirmed_at=None, totp_last_step=None, updated_at=func.now()))
    await conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))


async def replace_recovery_codes(conn: AsyncConnection, user_id: uuid.UUID, code_hashes: list[str]) -> None:
    await conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
    await conn.execute(recovery_codes.insert(), [{"id": uuid.uuid4(), "user_id": user_id, "code_hash": h}
                                                 for h in code_hashes])


async def use_recovery_code(conn: AsyncConnection, user_id: uuid.UUID, code_hash: str) -> bool:
    stmt = (update(recovery_codes).where(recovery_codes.c.user_id == user_id, recovery_codes.c.code_hash == code_hash,
                                         recovery_codes.c.used_at.is_(None))
            .values(used_at=func.now()).returning(recovery_codes.c.id))
    return (await conn.scalar(stmt)) is not None


async def recovery_codes_left(conn: AsyncConnection, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(recovery_codes).where(recovery_codes.c.user_id == user_id,
                                                                 recovery_codes.c.used_at.is_(None))
    return int(await conn.scalar(stmt) or 0)


# ---- OIDC sign-in (oidc.py) ----------------------------------------------------------------------
async def insert_oidc_login(conn: AsyncConnection, *, state_hash: str, provider: str, nonce: str,
                            code_verifier: str, ttl_s: int) -> None:
    await conn.execute(oidc_logins.insert().values(
        state_hash=state_hash, provider=provider, nonce=nonce, code_verifier=code_verifier,
        expires_at=func.now() + text(f"interval '{int(ttl_s)} seconds'")))


async def take_oidc_login(conn: AsyncConnection, state_hash: str, provider: str) -> Row | None:
    """The unexpired, unused sign-in this state started, marked used (a state works once)."""
    stmt = (update(oidc_logins).where(oidc_logins.c.state_hash == state_hash, oidc_logins.c.provider == provider,
                                      oidc_logins.c.used_at.is_(None), oidc_logins.c.expires_at > func.now())
            .values(used_at=func.now()).returning(oidc_logins.c.nonce, oidc_logins.c.code_verifier))
    return (await conn.execute(stmt)).first()


async def delete_old_oidc_logins(conn: AsyncConnection, *, older_than_s: int) -> None:
    await conn.execute(oidc_logins.delete().where(
        oidc_logins.c.expires_at < func.now() - text(f"interval '{int(older_than_s)} seconds'")))


# ---- per-user API tokens -------------------------------------------------------------------------
async def insert_user_api_token(conn: AsyncConnection, *, user_id: uuid.UUID, name: str, token_prefix: str,
                                token_hash: str) -> Row:
    stmt = (user_api_tokens.insert().values(id=uuid.uuid4(), user_id=user_id, name=name, token_prefix=token_prefix,
                                            token_hash=token_hash)
            .returning(*_TOKEN_COLUMNS))
    return (await conn.execute(stmt)).one()


async def list_user_api_tokens(conn: AsyncConnection, user_id: uuid.UUID) -> list[Row]:
    stmt = (select(*_TOKEN_COLUMNS).where(user_api_tokens.c.user_id == user_id)
            .order_by(user_api_tokens.c.created_at.desc(), user_api_tokens.c.id).limit(1000))
    return list((await conn.execute(stmt)).all())


async def count_live_user_api_tokens(conn: AsyncConnection, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(user_api_tokens).where(user_api_tokens.c.user_id == user_id,
                                                                  user_api_tokens.c.revoked_at.is_(None))
    return int(await conn.scalar(stmt) or 0)


async def revoke_user_api_token(conn: AsyncConnection, user_id: uuid.UUID, token_id: uuid.UUID) -> str | None:
    """Revoke one of the user's tokens; its hash (to evict it from caches), None if not theirs or revoked."""
    return await conn.scalar(
        update(user_api_tokens).where(user_api_tokens.c.id == token_id, user_api_tokens.c.user_id == user_id,
                                      user_api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(user_api_tokens.c.token_hash))


async def user_of_api_token(conn: AsyncConnection, token_hash: str) -> Row | None:
    """The active user behind a live token (id, role, email); None for unknown, revoked or a
    deactivated user. Marks the token used (at most once a minute: a busy script writes little)."""
    stmt = (select(user_api_tokens.c.id.label("token_id"), users.c.id, users.c.role, users.c.email)
            .select_from(user_api_tokens.join(users, users.c.id == user_api_tokens.c.user_id))
            .where(user_api_tokens.c.token_hash == token_hash, user_api_tokens.c.revoked_at.is_(None), users.c.active))
    row = (await conn.execute(stmt)).first()
    if row is not None:
        await conn.execute(update(user_api_tokens).where(
            user_api_tokens.c.id == row.token_id,
            func.coalesce(user_api_tokens.c.last_used_at, func.now() - text("interval '1 hour'"))
            < func.now() - text("interval '1 minute'")).values(last_used_at=func.now()))
    return row


_TOKEN_COLUMNS = (user_api_tokens.c.id, user_api_tokens.c.name, user_api_tokens.c.token_prefix,
                  user_api_tokens.c.created_at, user_api_tokens.c.last_used_at, user_api_tokens.c.revoked_at)
