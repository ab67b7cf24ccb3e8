from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Table, Text, Uuid, func

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
