"""Duplicate suggestions: one customer's candidates, the strongest pairs across the base, and
dismissals. Service functions run on the endpoint's connection and never commit."""

from __future__ import annotations

import base64
import itertools
import uuid
from typing import Any

import orjson

from helpdesk_common.identities import mask
from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem

from ..customers import repository as customer_rows
from ..customers import service as customers
from ..identities import repository as identities
from ..pii import access
from . import repository
from .rules import REASONS, combined, ordered_pair, strongest

ROLES = ("admin", "supervisor")
#: candidates read per reason for one customer
CANDIDATES_PER_REASON = 50
#: customers of one shared key listed across the base (a name shared by hundreds in one company
#: is not a duplicate suggestion any more)
GROUP_MEMBERS = 20
#: group pages read for one page of pairs at most (each ``limit`` groups)
MAX_ROUNDS = 8
_REASON_NAMES = list(REASONS)


def require_supervisor(principal: Principal) -> None:
    if not principal.has_role(*ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins review duplicate customers.")


def reasons_by_other(rows: list[Any]) -> dict[uuid.UUID, dict[str, str | None]]:
    """Candidate rows (other, reason, shared) → each other customer's reasons with a shared value."""
    out: dict[uuid.UUID, dict[str, str | None]] = {}
    for row in rows:
        out.setdefault(row["other"], {}).setdefault(row["reason"], row["shared"])
    return out


def reasons_read(reasons: dict[str, str | None]) -> list[dict[str, Any]]:
    return [{"reason": name, "confidence": float(REASONS[name]), "shared": reasons[name]}
            for name in sorted(reasons, key=_REASON_NAMES.index)]


async def _render(conn: Any, rows: dict[uuid.UUID, Any], principal: Principal) -> dict[uuid.UUID, dict[str, Any]]:
    found = await access.shown(conn, principal, await identities.identities_of(conn, list(rows)), route="duplicates")
    return {cid: customers.to_read(row, found[cid]) for cid, row in rows.items()}


def _shared_shown(reasons: dict[str, str | None], unmasked: bool) -> dict[str, str | None]:
    """The shared identity values of a pair's reasons, masked like the other customer's identities."""
    if unmasked:
        return reasons
    kinds = {"same_phone": "phone", "same_email_local_part_and_name": "email"}
    return {name: None if value is None else mask(kinds.get(name, "wechat_unionid"), value)
            for name, value in reasons.items()}


async def candidates(conn: Any, *, customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """The customers probably the same person as ``customer_id``, most probable first."""
    require_supervisor(principal)
    customers.live(await customer_rows.get_customer(conn, customer_id), customer_id)
    by_other = reasons_by_other(await repository.candidates_of(conn, customer_id, limit=CANDIDATES_PER_REASON))
    rows = await repository.live_customers(conn, list(by_other))
    rendered = await _render(conn, rows, principal)
    revealed = await access.reasons(conn, principal, list(rendered))
    items = [{"customer": rendered[other], "confidence": combined(reasons),
              "reasons": reasons_read(_shared_shown(reasons, other in revealed))}
             for other, reasons in by_other.items() if other in rendered]
    items.sort(key=lambda item: (-item["confidence"], str(item["customer"]["id"])))
    return {"items": items, "next_cursor": None}


def encode_cursor(reason_index: int, key: tuple[str, str] | None, skip: int = 0) -> str:
    """Where the walk goes on: the reason, the key of the last group fully listed (None: from the
    start of the reason) and how many pairs of the next group were listed already."""
    raw = orjson.dumps([reason_index, list(key) if key else None, skip])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, tuple[str, str] | None, int]:
    try:
        index, key, skip = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(index, int) or not 0 <= index < len(REASONS):
            raise ValueError("reason")
        if not isinstance(skip, int) or not 0 <= skip < GROUP_MEMBERS * GROUP_MEMBERS:
            raise ValueError("skip")
        if key is not None:
            first, second = key
            if not isinstance(first, str) or not isinstance(second, str) or "\x00" in first + second:
                raise ValueError("key")
            if _REASON_NAMES[index] == "same_name_and_organization":
                uuid.UUID(first)
            key = (first, second)
        return index, key, skip
    except Exception as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.") from exc


async def pairs(conn: Any, *, limit: int, cursor: str | None, principal: Principal) -> dict[str, Any]:
    """Pairs across the base, strongest reason first, then by the shared key; each pair once,
    under its strongest reason, with all its reasons; dismissed pairs left out."""
    require_supervisor(principal)
    index, after, skip = decode_cursor(cursor) if cursor else (0, None, 0)
    found: list[tuple[uuid.UUID, uuid.UUID, dict[str, str | None]]] = []
    next_cursor = None
    for _ in range(MAX_ROUNDS):
        if index >= len(REASONS):
            break
        reason = _REASON_NAMES[index]
        groups = await repository.groups(conn, reason, after=after, members=GROUP_MEMBERS, limit=limit)
        for group in groups:
            listed = (await _pairs_of_group(conn, reason, sorted(group["ids"])))[skip:]
            taken = listed[:limit - len(found)]
            found += taken
            if len(taken) < len(listed):  # the page ends inside this group
                next_cursor = encode_cursor(index, after, skip + len(taken))
                break
            after, skip = (group["key"], group["key2"]), 0
            if len(found) >= limit:
                next_cursor = encode_cursor(index, after)
                break
        if next_cursor is not None:
            break
        if len(groups) < limit:  # this reason is done
            index, after, skip = index + 1, None, 0
    else:  # a page of mostly dismissed pairs: stop here, the cursor goes on from where the walk is
        if index < len(REASONS):
            next_cursor = encode_cursor(index, after, skip)
    ids = list({cid for a, b, _ in found for cid in (a, b)})
    rendered = await _render(conn, await repository.live_customers(conn, ids), principal)
    revealed = await access.reasons(conn, principal, list(rendered))
    items = [{"first": rendered[a], "second": rendered[b], "confidence": combined(reasons),
              "reasons": reasons_read(_shared_shown(reasons, a in revealed and b in revealed))}
             for a, b, reasons in found if a in rendered and b in rendered]
    return {"items": items, "next_cursor": next_cursor}


async def _pairs_of_group(conn: Any, reason: str, ids: list[uuid.UUID]
                          ) -> list[tuple[uuid.UUID, uuid.UUID, dict[str, str | None]]]:
    """The group's pairs not dismissed and not listed under a stronger reason, with every reason."""
    pairs_ = [ordered_pair(a, b) for a, b in itertools.combinations(ids, 2)]
    gone = await repository.dismissed(conn, pairs_)
    out = []
    cache: dict[uuid.UUID, dict[uuid.UUID, dict[str, str | None]]] = {}
    for a, b in pairs_:
        if (a, b) in gone:
            continue
        if a not in cache:
            cache[a] = reasons_by_other(await repository.candidates_of(conn, a, limit=CANDIDATES_PER_REASON))
        reasons = dict(cache[a].get(b, {}))
        reasons.setdefault(reason, None)
        if strongest(reasons) != reason:
            continue
        out.append((a, b, reasons))
    return out


async def dismiss(conn: Any, *, first_id: uuid.UUID, second_id: uuid.UUID, principal: Principal) -> bool:
    """Two customers are two people: never suggested together again. Whether it is new."""
    require_supervisor(principal)
    if first_id == second_id:
        raise Problem(422, "validation-error", "Validation failed", "body.second_id: the same customer as first_id.",
                      errors=[{"field": "body.second_id", "message": "is first_id", "code": "cross_field"}])
    rows = await repository.live_customers(conn, [first_id, second_id])
    missing = [(field, cid) for field, cid in (("body.first_id", first_id), ("body.second_id", second_id))
               if cid not in rows]
    if missing:
        raise Problem(422, "validation-error", "Validation failed",
                      "; ".join(f"{field}: no customer {cid}" for field, cid in missing),
                      errors=[{"field": field, "message": "no such customer (or merged)", "code": "not_found"}
                              for field, _ in missing])
    first, second = ordered_pair(first_id, second_id)
    return await repository.dismiss(conn, first_id=first, second_id=second, actor=principal.ref)
