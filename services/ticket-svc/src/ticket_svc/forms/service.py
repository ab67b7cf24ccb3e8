"""The form engine at the database edge: which version validates which write.

Tickets of a type with no form (and no default form) keep free-form custom fields, so an API
integration works before an admin designs forms; once a form exists it is enforced. Each save
is a new immutable version and each ticket records the version it was created with
(``form_version``); see ``validate`` for how updates treat older tickets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from helpdesk_common.problems import Problem

from . import limits, repository
from .schemas import FieldDef
from .validate import FieldErrors, validate_create, validate_update

_FIELDS: TypeAdapter[list[FieldDef]] = TypeAdapter(list[FieldDef])
CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, Any]] = {}


def invalidate() -> None:
    _cache.clear()


def type_key(ticket_type: str | None) -> str:
    return ticket_type or repository.DEFAULT_TYPE


def fields_of(row: Mapping[str, Any]) -> list[FieldDef]:
    """A stored form's definitions, as saved (not checked again against today's rules)."""
    return _FIELDS.validate_python(row["fields"], context={"stored": True})


async def latest_form(conn: Any, ticket_type: str | None) -> Any:
    """The latest form for the type, else the default form, else None (cached 2 s per process)."""
    key = type_key(ticket_type)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    row = await repository.latest(conn, key)
    if row is None and key != repository.DEFAULT_TYPE:
        row = await repository.latest(conn, repository.DEFAULT_TYPE)
    _cache[key] = (time.monotonic(), row)
    return row


def _problem(exc: FieldErrors) -> Problem:
    return Problem(422, "validation-error", "Invalid custom fields",
                   "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors), errors=exc.errors)


def _bounded(values: dict[str, Any], *, written: Any, free_form: bool) -> dict[str, Any]:
    """``values`` if they fit the bounds every event-carried value needs (``limits``), else 422."""
    errors = limits.check(values, written=written, free_form=free_form)
    if errors:
        raise _problem(FieldErrors(errors))
    return values


async def validate_new(conn: Any, *, ticket_type: str | None, values: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    form = await latest_form(conn, ticket_type)
    if form is None:
        return _bounded(dict(values), written=values.keys(), free_form=True), None
    try:
        created = validate_create(fields_of(form), values)
    except FieldErrors as exc:
        raise _problem(exc) from exc
    return _bounded(created, written=created.keys(), free_form=False), form["version"]


async def validate_patch(conn: Any, *, ticket_type: str | None, ticket: Mapping[str, Any],
                         patch: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    form = await latest_form(conn, ticket_type)
    if form is None:
        merged = {**ticket["custom_fields"], **patch}
        return _bounded({k: v for k, v in merged.items() if v is not None}, written=patch.keys(), free_form=True), None
    own = None
    if ticket["form_version"] is not None:
        own = await repository.version(conn, form["ticket_type"], ticket["form_version"])
    try:
        values = validate_update(fields_of(form), fields_of(own) if own else [], ticket["custom_fields"], patch)
    except FieldErrors as exc:
        raise _problem(exc) from exc
    return _bounded(values, written=patch.keys(), free_form=False), ticket["form_version"] or form["version"]
