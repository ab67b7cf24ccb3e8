"""The only place with SQL for duplicate suggestions (bare asyncpg).

Keys are compared through their blind indexes (``pii/codec.py``), never the plaintext:
``customer_identities.phone_key`` (a phone's last ``PHONE_DIGITS`` digits, set only when it has
``PHONE_MIN_DIGITS``), ``email_local`` (an e-mail's local part), ``value_bidx`` (the same value under
another kind: unionids), ``customers.name_key`` (the folded name), each with its partial index
(migration 0008). Group keys in cursors are those opaque indexes too. Rows written before 0008
take part once ``python -m customer_svc.pii reencrypt`` has given them their indexes.
Which index serves which query: docs/customers.md, "Duplicates"."""

from __future__ import annotations

import uuid
from typing import Any

from ..customers.repository import COLUMNS
from ..pii.codec import codec

_NOT_DISMISSED = ("NOT EXISTS (SELECT 1 FROM duplicate_dismissals d WHERE d.first_id = least({a}, {b}) "
                  "AND d.second_id = greatest({a}, {b}))")

#: one customer's candidates: (other customer, reason, the shared identity's stored forms), each
#: branch bounded
_OF_CUSTOMER = f"""
WITH me AS (SELECT id, organization_id, name_key FROM customers c WHERE id = $1),
mine AS (SELECT kind, value_bidx, phone_key, email_local FROM customer_identities WHERE customer_id = $1)
SELECT other, reason, shared, shared_enc FROM (
  (SELECT o.customer_id AS other, 'same_phone' AS reason, o.value AS shared, o.value_enc AS shared_enc
     FROM mine m JOIN customer_identities o ON o.phone_key = m.phone_key
    WHERE m.phone_key IS NOT NULL AND o.customer_id <> $1 LIMIT $2)
  UNION ALL
  (SELECT o.customer_id, 'same_wechat_unionid', o.value, o.value_enc
     FROM mine m JOIN customer_identities o ON o.value_bidx = m.value_bidx AND o.kind <> m.kind
    WHERE (m.kind = 'wechat_unionid' OR o.kind = 'wechat_unionid') AND o.customer_id <> $1 LIMIT $2)
  UNION ALL
  (SELECT o.customer_id, 'same_email_local_part_and_name', o.value, o.value_enc
     FROM me, mine m
     JOIN customer_identities o ON o.email_local = m.email_local
     JOIN customers c ON c.id = o.customer_id
    WHERE m.email_local IS NOT NULL AND o.customer_id <> $1 AND me.name_key IS NOT NULL AND c.name_key = me.name_key
    LIMIT $2)
  UNION ALL
  (SELECT c.id, 'same_name_and_organization', NULL, NULL
     FROM me JOIN customers c ON c.organization_id = me.organization_id AND c.name_key = me.name_key
    WHERE c.merged_into IS NULL AND c.organization_id IS NOT NULL AND c.name_key IS NOT NULL
      AND c.id <> $1 LIMIT $2)
) found
WHERE {_NOT_DISMISSED.format(a='$1::uuid', b='found.other')}
"""


async def candidates_of(conn: Any, customer_id: uuid.UUID, *, limit: int) -> list[dict[str, Any]]:
    """(other, reason, shared): ``shared`` is the other customer's identity in plaintext (None for names)."""
    box = codec()
    return [{"other": r["other"], "reason": r["reason"],
             "shared": None if r["shared"] is None and r["shared_enc"] is None
             else box.identity_value({"value": r["shared"], "value_enc": r["shared_enc"]})}
            for r in await conn.fetch(_OF_CUSTOMER, customer_id, limit)]


#: groups of customers sharing one key, walked in key order from the cursor's key; each returns
#: (key text, second key text or '', customer ids), at most ``members`` customers per group
_GROUPS = {
    "same_wechat_unionid": """
        SELECT u.value_bidx AS key, '' AS key2, (array_agg(DISTINCT o.customer_id))[1:$2] AS ids
          FROM customer_identities u JOIN customer_identities o ON o.value_bidx = u.value_bidx
         WHERE u.kind = 'wechat_unionid' AND u.value_bidx > $1
         GROUP BY u.value_bidx HAVING count(DISTINCT o.customer_id) > 1 ORDER BY u.value_bidx LIMIT $3""",
    "same_phone": """
        SELECT phone_key AS key, '' AS key2, (array_agg(DISTINCT customer_id))[1:$2] AS ids
          FROM customer_identities WHERE phone_key > $1
         GROUP BY phone_key HAVING count(DISTINCT customer_id) > 1 ORDER BY phone_key LIMIT $3""",
    # one walk of the local-part index joining each customer's name key (an ordered index scan,
    # cut by the limit)
    "same_email_local_part_and_name": """
        SELECT lp AS key, nk AS key2, (array_agg(DISTINCT customer_id))[1:$3] AS ids
          FROM (SELECT i.email_local AS lp, c.name_key AS nk, i.customer_id
                  FROM customer_identities i JOIN customers c ON c.id = i.customer_id
                 WHERE i.email_local >= $1 AND c.name_key IS NOT NULL ORDER BY 1) s
         WHERE (lp, nk) > ($1, $2)
         GROUP BY lp, nk HAVING count(DISTINCT customer_id) > 1 ORDER BY lp, nk LIMIT $4""",
    "same_name_and_organization": """
        SELECT c.organization_id::text AS key, c.name_key AS key2, (array_agg(c.id ORDER BY c.id))[1:$3] AS ids
          FROM customers c
         WHERE c.merged_into IS NULL AND c.organization_id IS NOT NULL AND c.name_key IS NOT NULL
           AND (c.organization_id, c.name_key) > ($1::uuid, $2)
         GROUP BY c.organization_id, c.name_key
        HAVING count(*) > 1
         ORDER BY c.organization_id, c.name_key LIMIT $4""",
}
#: reasons whose groups have a one-part key ($1; then members $2, limit $3)
_ONE_KEY = frozenset({"same_wechat_unionid", "same_phone"})
_NO_UUID = "00000000-0000-0000-0000-000000000000"


async def groups(conn: Any, reason: str, *, after: tuple[str, str] | None, members: int, limit: int) -> list[Any]:
    """The next ``limit`` groups of customers sharing ``reason``'s key, after the key ``after``."""
    key, key2 = after if after is not None else ((_NO_UUID if reason == "same_name_and_organization" else ""), "")
    if reason in _ONE_KEY:
        return await conn.fetch(_GROUPS[reason], key, members, limit)
    return await conn.fetch(_GROUPS[reason], key, key2, members, limit)


async def dismissed(conn: Any, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    if not pairs:
        return set()
    rows = await conn.fetch(
        "SELECT d.first_id, d.second_id FROM duplicate_dismissals d "
        "JOIN unnest($1::uuid[], $2::uuid[]) AS p(a, b) ON d.first_id = p.a AND d.second_id = p.b",
        [a for a, _ in pairs], [b for _, b in pairs])
    return {(r["first_id"], r["second_id"]) for r in rows}


async def dismiss(conn: Any, *, first_id: uuid.UUID, second_id: uuid.UUID, actor: str) -> bool:
    """Record that two customers are not one person; False when it was recorded already."""
    status = await conn.execute(
        "INSERT INTO duplicate_dismissals (first_id, second_id, actor) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        first_id, second_id, actor)
    return status.endswith(" 1")


async def live_customers(conn: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM customers WHERE id = ANY($1::uuid[]) AND merged_into IS NULL", ids)
    box = codec()
    return {r["id"]: box.customer(r) for r in rows}
