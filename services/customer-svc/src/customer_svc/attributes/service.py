"""Attribute definitions (admins) and the values customers and organisations hold.

Definitions are few and writes of values rare, so each write reads the scope's definitions
afresh (no cache to invalidate across replicas). Reading never re-validates stored values.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helpdesk_common import concurrency
from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem

from . import repository
from .schemas import MAX_DEFINITIONS, AttributeCreate, AttributeUpdate, stored_label, stored_options
from .types import CHOICE_TYPES, unique_key
from .validate import FIELD, AttributeErrors, values_for_create, values_for_update

ADMIN_ROLES = ("admin",)
SCOPES = ("customer", "organization")


@dataclass(frozen=True, slots=True)
class Definition:
    key: str
    type: str
    required: bool
    unique: bool
    scale: int | None
    options: list[dict[str, Any]] | None


def definition_of(row: Any) -> Definition:
    return Definition(key=row["key"], type=row["type"], required=row["required"], unique=row["unique"],
                      scale=row["scale"], options=row["options"])


async def definitions(conn: Any, scope: str) -> dict[str, Definition]:
    return {row["key"]: definition_of(row) for row in await repository.list_definitions(conn, scope)}


def _problem(exc: AttributeErrors) -> Problem:
    return Problem(422, "validation-error", "Invalid attributes", str(exc), errors=exc.errors)


def _coded(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Codes a client (and the API document's checker) can tell apart: an attribute nobody
    defined is ``not_found``; a value against an admin's definition is ``cross_field``."""
    codes = {"unknown": "not_found", "required": "cross_field", "invalid": "cross_field"}
    return [{**e, "code": codes.get(e.get("code", ""), e.get("code", ""))} for e in errors]


async def for_create(conn: Any, *, scope: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a new owner, or a 422 naming each failing ``body.attributes.<key>``."""
    try:
        return values_for_create(await definitions(conn, scope), given)
    except AttributeErrors as exc:
        raise _problem(AttributeErrors(_coded(exc.errors))) from exc


async def for_update(conn: Any, *, scope: str, current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return values_for_update(await definitions(conn, scope), current, patch)
    except AttributeErrors as exc:
        raise _problem(AttributeErrors(_coded(exc.errors))) from exc


async def claim_uniques(conn: Any, *, scope: str, owner_id: uuid.UUID, values: Mapping[str, Any]) -> None:
    """Claim the owner's values of unique attributes (releasing its older ones); 409 naming the
    field when another owner holds one."""
    taken = []
    for key, definition in (await definitions(conn, scope)).items():
        if not definition.unique:
            continue
        value = values.get(key)
        keep = unique_key(value) if value is not None else None
        await repository.release_unique(conn, scope=scope, key=key, owner_id=owner_id, keep=keep)
        if keep is not None and await repository.claim_unique(
                conn, scope=scope, key=key, value=keep, owner_id=owner_id) != owner_id:
            taken.append({"field": f"{FIELD}.{key}", "message": "is taken by another " + scope, "code": "unique"})
    if taken:
        raise Problem(409, "attribute-value-taken", "Attribute value taken",
                      "; ".join(f"{e['field']}: {e['message']}" for e in taken), errors=taken)


async def release(conn: Any, *, scope: str, owner_id: uuid.UUID) -> None:
    await repository.release_all(conn, scope=scope, owner_id=owner_id)


# --- definitions --------------------------------------------------------------------------------


def to_read(row: Any) -> dict[str, Any]:
    return {
        "scope": row["scope"], "key": row["key"], "label": row["label"], "type": row["type"],
        "options": row["options"], "scale": row["scale"], "required": row["required"], "unique": row["unique"],
        "position": row["position"], "created_at": row["created_at"], "updated_at": row["updated_at"],
        "version": row["version"],
    }


def _not_found(scope: str, key: str) -> Problem:
    return Problem(404, "not-found", "Attribute not found", f"No {scope} attribute {key!r}.")


def require_admin(principal: Principal) -> None:
    if not principal.has_role(*ADMIN_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only admins define attributes.")


async def list_definitions(conn: Any, *, scope: str) -> dict[str, Any]:
    return {"items": [to_read(r) for r in await repository.list_definitions(conn, scope)]}


async def get_definition(conn: Any, *, scope: str, key: str) -> dict[str, Any]:
    row = await repository.get_definition(conn, scope, key)
    if row is None:
        raise _not_found(scope, key)
    return to_read(row)


async def create_definition(conn: Any, *, scope: str, body: AttributeCreate, principal: Principal) -> dict[str, Any]:
    require_admin(principal)
    if await repository.count_definitions(conn, scope) >= MAX_DEFINITIONS:
        raise Problem(409, "too-many-attributes", "Too many attributes",
                      f"A {scope} has at most {MAX_DEFINITIONS} attribute definitions.")
    row = await repository.insert_definition(conn, {
        "scope": scope, "key": body.key, "label": stored_label(body.label), "type": body.type,
        "options": stored_options(body.options), "scale": body.scale, "required": body.required,
        "unique": body.unique, "position": body.position,
    })
    if row is None:
        raise Problem(409, "conflict", "Attribute exists", f"A {scope} attribute {body.key!r} exists already.",
                      errors=[{"field": "body.key", "message": "exists already", "code": "unique"}])
    return to_read(row)


async def update_definition(conn: Any, *, scope: str, key: str, body: AttributeUpdate, principal: Principal,
                            if_match: str | None) -> dict[str, Any]:
    require_admin(principal)
    row = await repository.get_definition(conn, scope, key, lock=True)
    if row is None:
        raise _not_found(scope, key)
    concurrency.check_version(row["version"], if_match, what="attribute")
    sent = body.model_fields_set
    if "options" in sent and body.options is not None and row["type"] not in CHOICE_TYPES:
        raise Problem(422, "validation-error", "Validation failed", "options belong to select and multiselect.",
                      errors=[{"field": "body.options", "message": f"a {row['type']} attribute has no options",
                               "code": "cross_field"}])
    values: dict[str, Any] = {}
    if "label" in sent and body.label is not None:
        values["label"] = stored_label(body.label)
    if "options" in sent and body.options is not None:
        values["options"] = stored_options(body.options)
    if "required" in sent and body.required is not None:
        values["required"] = body.required
    if "position" in sent and body.position is not None:
        values["position"] = body.position
    values = {k: v for k, v in values.items() if row[k] != v}
    if values:
        row = await repository.update_definition(conn, scope, key, values)
    return to_read(row)


async def delete_definition(conn: Any, *, scope: str, key: str, principal: Principal, if_match: str | None) -> None:
    """Refused (409) while any owner holds a value: a definition deleted under stored values
    would leave them unreadable, and a new one of the same key could read them as another type."""
    require_admin(principal)
    row = await repository.get_definition(conn, scope, key, lock=True)
    if row is None:
        raise _not_found(scope, key)
    concurrency.check_version(row["version"], if_match, what="attribute")
    if await repository.in_use(conn, scope, key):
        raise Problem(409, "attribute-in-use", "Attribute in use",
                      f"Some {scope}s hold a value of {key!r}; clear them first.")
    await repository.delete_definition(conn, scope, key)
