"""Business calendars as stored: the validated ``CalendarIn`` document in ``definition``."""

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

calendars = Table(
    "calendars",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: a team's calendar: business-time targets without a calendar of their own count in it
team_calendars = Table(
    "team_calendars",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("calendar_id", Uuid, ForeignKey("calendars.id"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: the version of each team's ``sla.team_calendar_changed`` (``team_key``: the team id, or
#: ``default``): bumped with every change, kept after a team's calendar is removed
team_calendar_versions = Table(
    "team_calendar_versions",
    metadata,
    Column("team_key", Text, primary_key=True),
    Column("version", BigInteger, nullable=False, server_default="1"),
)
