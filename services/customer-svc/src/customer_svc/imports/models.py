from sqlalchemy import (Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Table, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

#: one import job; ``content`` is the uploaded file (at most IMPORT_MAX_BYTES), dropped when it ends
imports = Table(
    "imports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),  # customers | organizations | orders
    Column("status", Text, nullable=False, server_default="queued"),  # queued | running | completed | failed
    Column("source", Text, nullable=False),  # the system external ids belong to (external:<source>)
    Column("time_zone", Text, nullable=False),  # how times without an offset are read
    Column("filename", Text, nullable=True),
    Column("format", Text, nullable=False),  # xlsx | csv
    Column("mapping", JSONB, nullable=False, server_default=text("'{}'")),
    Column("content", LargeBinary, nullable=True),
    Column("rows_total", Integer, nullable=True),
    #: rows handled and committed: where a job interrupted by a restart resumes
    Column("rows_done", Integer, nullable=False, server_default="0"),
    Column("rows_ok", Integer, nullable=False, server_default="0"),
    Column("rows_failed", Integer, nullable=False, server_default="0"),
    Column("failure", Text, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("created_by_role", Text, nullable=False),
    #: the replica running it holds it until then (renewed per batch); past it, another may resume it
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
Index("ix_imports_pending", imports.c.created_at, postgresql_where=text("status IN ('queued', 'running')"))

import_errors = Table(
    "import_errors",
    metadata,
    Column("import_id", Uuid, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True),
    Column("row", Integer, primary_key=True),  # the row number in the file (the header is row 1)
    Column("column", Text, primary_key=True),  # the file's header text, or "" for the whole row
    Column("message", Text, nullable=False),
)
