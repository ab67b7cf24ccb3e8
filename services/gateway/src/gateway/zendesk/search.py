"""Zendesk's search syntax (``GET /api/v2/search.json?query=``) as our ticket list's filters.

Pure: ``parse`` turns the query into the native list's parameters; what it cannot express is an
``Unsupported`` naming the term (a 422), never a term silently dropped, since a search that
ignores ``-tags:spam`` answers something else than what was asked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

#: Zendesk's status order (``status<solved``: new, open, pending, hold)
STATUS_ORDER = ["new", "open", "pending", "hold", "solved", "closed"]
OURS = {"hold": "on_hold"}
_TERM = re.compile(r'(-)?(?:([A-Za-z_]+)(>=|<=|:|<|>)("[^"]*"|\S+)|"([^"]*)"|(\S+))')


class Unsupported(ValueError):
    """A search term this surface cannot answer (the message names it)."""


@dataclass
class Search:
    kind: str = "ticket"  # ticket | user
    params: list[tuple[str, str]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    #: ``assignee:`` as given (``me``, ``none`` or an id), resolved by the caller
    assignee: str | None = None


def _statuses(op: str, value: str) -> list[str]:
    if value not in STATUS_ORDER:
        raise Unsupported(f"status:{value} (statuses are {', '.join(STATUS_ORDER)})")
    at = STATUS_ORDER.index(value)
    chosen = {":": [value], "<": STATUS_ORDER[:at], "<=": STATUS_ORDER[:at + 1], ">": STATUS_ORDER[at + 1:],
              ">=": STATUS_ORDER[at:]}[op]
    return [OURS.get(s, s) for s in chosen]


def _moment(value: str) -> tuple[datetime, bool]:
    """The instant and whether it was a date (a whole day) rather than a time."""
    try:
        if "T" in value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment, False
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Unsupported(f"{value} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return datetime(day.year, day.month, day.day), True


def _iso(moment: datetime) -> str:
    return moment.isoformat() if moment.tzinfo else moment.isoformat() + "Z"  # a bare date is UTC


def _range(prefix: str, op: str, value: str) -> list[tuple[str, str]]:
    """``created>2026-01-01`` and friends as ``created_after`` / ``created_before`` (UTC)."""
    moment, whole_day = _moment(value)
    step = timedelta(days=1) if whole_day else timedelta(0)
    if op == ":":
        if not whole_day:
            raise Unsupported(f"{prefix}:{value} (an exact time; use > or <)")
        return [(f"{prefix}_after", _iso(moment)), (f"{prefix}_before", _iso(moment + step))]
    return {">": [(f"{prefix}_after", _iso(moment + step))], ">=": [(f"{prefix}_after", _iso(moment))],
            "<": [(f"{prefix}_before", _iso(moment))], "<=": [(f"{prefix}_before", _iso(moment + step))]}[op]


def parse(query: str) -> Search:
    search = Search()
    statuses: list[str] | None = None
    for match in _TERM.finditer(query):
        negated, key, op, value, phrase, word = match.groups()
        if key is None:
            text = phrase if phrase is not None else word
            if negated:
                raise Unsupported(f"-{text} (excluding words)")
            if text:
                search.words.append(text)
            continue
        key, value = key.lower(), value.strip('"')
        if negated:
            raise Unsupported(f"-{key}{op}{value} (negated terms)")
        if key == "type":
            if value not in ("ticket", "user"):
                raise Unsupported(f"type:{value} (tickets and users are searched)")
            search.kind = value
        elif key == "status":
            chosen = _statuses(op, value.lower())
            statuses = chosen if statuses is None else [s for s in statuses if s in chosen]
        elif op != ":" and key not in ("created", "updated"):
            raise Unsupported(f"{key}{op}{value} (only status, created and updated compare)")
        elif key == "priority":
            search.params.append(("priority", value.lower()))
        elif key == "ticket_type":
            search.params.append(("type", value))
        elif key in ("tags", "tag"):
            search.params.append(("tag", value))
        elif key == "requester":
            search.params.append(("requester", value))
        elif key == "assignee":
            search.assignee = value
        elif key in ("created", "updated"):
            search.params += _range(key, op, value)
        elif key in ("email", "phone", "name", "external_id"):
            search.words.append(value)  # a user's: looked up among their identities and names
        else:
            raise Unsupported(f"{key}:{value} (this API searches type, status, priority, ticket_type, tags, "
                              "requester, assignee, created, updated and words)")
    if statuses is not None:
        if not statuses:
            raise Unsupported("status terms that no status meets")
        search.params += [("status", s) for s in statuses]
    return search
