from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Table, Text, UniqueConstraint, Uuid, func

from ..db import metadata

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False, unique=True),  # lower-cased
    Column("name", Text, nullable=True),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # bumped by every change other services hear of (name, role, active; not a password): the
    # ``version`` of the user.* events, so their consumers can ignore an older one
    Column("version", BigInteger, nullable=False, server_default="1"),
    # two-factor sign-in (auth/totp.py): the secret encrypted under GATEWAY_PII_KEYS; enrolled but
    # not yet confirmed while totp_confirmed_at is null; the last 30-second step a code was
    # accepted for (a code works once)
    Column("totp_secret", Text, nullable=True),
    Column("totp_confirmed_at", DateTime(timezone=True), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", Text, nullable=False),  # SHA-256 hex of the normalised code (~50 random bits)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("used_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_id"),
)

#: an OIDC sign-in between its start and its callback: one row per ``state``, used once
oidc_logins = Table(
    "oidc_logins",
    metadata,
    Column("state_hash", Text, primary_key=True),  # SHA-256 hex of the state sent to the browser
    Column("provider", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("code_verifier", Text, nullable=False),  # PKCE
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

#: per-user API tokens: act as their user with the user's current role
user_api_tokens = Table(
    "user_api_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("token_prefix", Text, nullable=False),  # shown in lists to recognise a token
    Column("token_hash", Text, nullable=False, unique=True),  # SHA-256 hex of the whole token
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("key_prefix", Text, nullable=False),  # shown in lists to recognise a key
    Column("key_hash", Text, nullable=False, unique=True),  # SHA-256 hex of the whole key
    Column("created_by", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("refresh_hash", Text, nullable=False, unique=True),  # SHA-256 hex of the current refresh token
    # the token it replaced: presenting it again means it was stolen, and ends the session
    Column("previous_refresh_hash", Text, nullable=True, index=True),
    Column("client_address", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("refreshed_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
