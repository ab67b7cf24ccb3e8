"""The only place with SQL for duplicate suggestions (bare asyncpg).

The key expressions below are the ones migration 0007 indexes, written identically so the
planner matches them: ``ix_customer_identities_phone_digits`` (phones by their last digits),
``ix_customer_identities_email_local`` (e-mail local parts), ``ix_customers_org_name_key``
(organisation and folded name, live customers only). A unionid is compared by value: the
primary key ``(kind, value)`` walks unionids, ``ix_customer_identities_value`` finds the same
value under another kind. Which index serves which query: docs/customers.md, "Duplicates"."""

from __future__ import annotations

import uuid
from typing import Any

from ..customers.repository import COLUMNS
from .rules import PHONE_DIGITS, PHONE_MIN_DIGITS

PHONE_KEY = "right(regexp_replace({t}value, '[^0-9]', '', 'g'), " + str(PHONE_DIGITS) + ")"
LOCAL_PART = "split_part({t}value, '@', 1)"
NAME_KEY = "lower(normalize(btrim({t}name), NFKC))"


def _k(template: str, alias: str) -> str:
    return template.format(t=f"{alias}.")


_NOT_DISMISSED = ("NOT EXISTS (SELECT 1 FROM duplicate_dismissals d WHERE d.first_id = least({a}, {b}) "
                  "AND d.second_id = greatest({a}, {b}))")

#: one customer's candidates: (other customer, reason, the shared value), each branch bounded
_OF_CUSTOMER = f"""
WITH me AS (SELECT id, organization_id, {_k(NAME_KEY, 'c')} AS name_key FROM customers c WHERE id = $1),
mine AS (SELECT kind, value FROM customer_identities WHERE customer_id = $1)
SELECT other, reason, shared FROM (
  (SELECT o.customer_id AS other, 'same_phone' AS reason, o.value AS shared
     FROM mine m JOIN customer_identities o ON o.kind = 'phone' AND {_k(PHONE_KEY, 'o')} = {_k(PHONE_KEY, 'm')}
    WHERE m.kind = 'phone' AND length({_k(PHONE_KEY, 'm')}) >= {PHONE_MIN_DIGITS} AND o.customer_id <> $1 LIMIT $2)
  UNION ALL
  (SELECT o.customer_id, 'same_wechat_unionid', o.value
     FROM mine m JOIN customer_identities o ON o.value = m.value AND o.kind <> m.kind
    WHERE (m.kind = 'wechat_unionid' OR o.kind = 'wechat_unionid') AND o.customer_id <> $1 LIMIT $2)
  UNION ALL
  (SELECT o.customer_id, 'same_email_local_part_and_name', o.value
     FROM me, mine m
     JOIN customer_identities o ON o.kind = 'email' AND {_k(LOCAL_PART, 'o')} = {_k(LOCAL_PART, 'm')}
     JOIN customers c ON c.id = o.customer_id
    WHERE m.kind = 'email' AND o.customer_id <> $1 AND me.name_key <> '' AND {_k(NAME_KEY, 'c')} = me.name_key
    LIMIT $2)
  UNION ALL
  (SELECT c.id, 'same_name_and_organization', NULL
     FROM me JOIN customers c ON c.organization_id = me.organization_id AND {_k(NAME_KEY, 'c')} = me.name_key
    WHERE c.merged_into IS NULL AND c.organization_id IS NOT NULL AND c.name IS NOT NULL AND me.name_key <> ''
      AND c.id <> $1 LIMIT $2)
) found
WHERE {_NOT_DISMISSED.format(a='$1::uuid', b='found.other')}
"""


async def candidates_of(conn: Any, customer_id: uuid.UUID, *, limit: int) -> list[Any]:
    return await conn.fetch(_OF_CUSTOMER, customer_id, limit)


#: groups of customers sharing one key, walked in key order from the cursor's key; each returns
#: (key text, second key text or '', customer ids), at most ``members`` customers per group
_GROUPS = {
    "same_wechat_unionid": """
        SELECT u.value AS key, '' AS key2, (array_agg(DISTINCT o.customer_id))[1:$2] AS ids
          FROM customer_identities u JOIN customer_identities o ON o.value = u.value
         WHERE u.kind = 'wechat_unionid' AND u.value > $1
         GROUP BY u.value HAVING count(DISTINCT o.customer_id) > 1 ORDER BY u.value LIMIT $3""",
    "same_phone": f"""
        SELECT k AS key, '' AS key2, (array_agg(DISTINCT customer_id))[1:$2] AS ids
          FROM (SELECT {_k(PHONE_KEY, 'i')} AS k, i.customer_id FROM customer_identities i
                 WHERE i.kind = 'phone' AND {_k(PHONE_KEY, 'i')} > $1 ORDER BY 1) s
         WHERE length(k) >= {PHONE_MIN_DIGITS}
         GROUP BY k HAVING count(DISTINCT customer_id) > 1 ORDER BY k LIMIT $3""",
    # one walk of the local-part index joining each customer's name (an ordered index scan, cut by
    # the limit): a two-step form (shared local parts first, then names) made the planner sort
    # every e-mail first (scripts/duplicate_plans.py: 1.4 s against 0.4 s at 1,000,000)
    "same_email_local_part_and_name": f"""
        SELECT lp AS key, nk AS key2, (array_agg(DISTINCT customer_id))[1:$3] AS ids
          FROM (SELECT {_k(LOCAL_PART, 'i')} AS lp, {_k(NAME_KEY, 'c')} AS nk, i.customer_id
                  FROM customer_identities i JOIN customers c ON c.id = i.customer_id
                 WHERE i.kind = 'email' AND {_k(LOCAL_PART, 'i')} >= $1 ORDER BY 1) s
         WHERE nk <> '' AND (lp, nk) > ($1, $2)
         GROUP BY lp, nk HAVING count(DISTINCT customer_id) > 1 ORDER BY lp, nk LIMIT $4""",
    "same_name_and_organization": f"""
        SELECT c.organization_id::text AS key, {_k(NAME_KEY, 'c')} AS key2, (array_agg(c.id ORDER BY c.id))[1:$3] AS ids
          FROM customers c
         WHERE c.merged_into IS NULL AND c.organization_id IS NOT NULL AND c.name IS NOT NULL
           AND (c.organization_id, {_k(NAME_KEY, 'c')}) > ($1::uuid, $2)
         GROUP BY c.organization_id, {_k(NAME_KEY, 'c')}
        HAVING count(*) > 1 AND {_k(NAME_KEY, 'c')} <> ''
         ORDER BY c.organization_id, {_k(NAME_KEY, 'c')} LIMIT $4""",
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
    return {r["id"]: r for r in rows}
