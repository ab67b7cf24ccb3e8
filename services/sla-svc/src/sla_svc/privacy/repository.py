"""The only place with SQL for sla-svc's erasure."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import erasure

#: custom fields whose values the system gives a meaning (analytics' and policies' brand): kept
_KEPT = ("brand",)


async def erase(conn: AsyncConnection, customer_id: uuid.UUID) -> int:
    """The person's tickets keep their numbers, booleans and ``brand``; every other custom-field
    value (text, lists, objects: where a person's data can be) becomes ``[redacted]``. A policy
    condition on such a field no longer matches those tickets. Returns the tickets changed."""
    result = await conn.execute(text(
        "UPDATE sla_tickets SET custom_fields = (SELECT jsonb_object_agg(key, CASE "
        "  WHEN key = ANY(CAST(:kept AS text[])) OR jsonb_typeof(value) IN ('number', 'boolean', 'null') THEN value "
        "  ELSE to_jsonb(CAST(:redacted AS text)) END) FROM jsonb_each(custom_fields)) "
        "WHERE customer_id = :c AND EXISTS (SELECT 1 FROM jsonb_each(custom_fields) "
        "  WHERE NOT key = ANY(CAST(:kept AS text[])) AND jsonb_typeof(value) IN ('string', 'array', 'object') "
        "  AND value <> to_jsonb(CAST(:redacted AS text)))"),
        {"c": customer_id, "kept": list(_KEPT), "redacted": erasure.REDACTED})
    return result.rowcount
