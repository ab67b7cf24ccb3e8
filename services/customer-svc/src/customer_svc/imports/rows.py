"""One imported row, written through the API's own rules.

Each row is validated by the request models the API uses (``CustomerCreate``,
``OrganizationCreate``, ``OrderIn``) and written by the same service functions, so a row is
refused for exactly the reasons a request would be, with the same messages, and emits the same
events. A 422's field names map back to the file's columns for the report. An empty cell leaves
the stored value as it is (an import fills and corrects; it never clears).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from helpdesk_common.identities import InvalidIdentity
from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem
from helpdesk_common.validation import fold_key

from ..customers import repository as customer_rows
from ..customers import service as customers
from ..customers.schemas import CustomerCreate, CustomerUpdate
from ..identities import repository as identities
from ..identities import service as identity_service
from ..identities.rules import strict_key
from ..organizations import repository as organization_rows
from ..organizations import service as organizations
from ..organizations.schemas import OrganizationCreate, OrganizationUpdate
from ..orders import repository as order_rows
from ..orders import service as orders
from ..orders.schemas import OrderIn

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Context:
    kind: str
    source: str
    zone: ZoneInfo
    principal: Principal
    #: our field → the file's header text (what the report names)
    columns: dict[str, str]


class RowInvalid(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{c}: {m}" for c, m in errors))
        self.errors = errors  # (our field or "", message)


def _from_validation(exc: ValidationError, where: dict[Any, str] | None = None) -> RowInvalid:
    """Pydantic's errors as (field, message); ``where`` names the field of list positions
    (``identities.1`` → phone)."""
    out = []
    for error in exc.errors():
        loc = error["loc"]
        field = str(loc[0]) if loc else ""
        if where and len(loc) >= 2 and (loc[0], loc[1]) in where:
            field = where[(loc[0], loc[1])]
        out.append((field, error["msg"].removeprefix("Value error, ")))
    return RowInvalid(out)


_BODY_FIELD = re.compile(r"^body\.([a-z_]+)(?:\.(\d+))?")


def _from_problem(exc: Problem, where: dict[Any, str] | None = None) -> RowInvalid:
    """A service's 4xx as (field, message): ``body.identities.1.value`` → phone."""
    out = []
    for error in exc.extensions.get("errors") or []:
        match = _BODY_FIELD.match(str(error.get("field", "")))
        field = ""
        if match:
            field = match.group(1)
            if match.group(2) is not None and where:
                field = where.get((field, int(match.group(2))), field)
        out.append((field, str(error.get("message", exc.detail or exc.title))))
    return RowInvalid(out or [("", exc.detail or exc.title)])


def read_time(text: str, zone: ZoneInfo) -> str:
    """ISO 8601 (``2026-11-01 10:00``, ``2026-11-01T10:00:00+08:00``, a date alone); without an
    offset, in the import's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise RowInvalid([("ordered_at", "must be a date and time such as 2026-11-01 10:00:00")]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


async def apply(conn: Any, ctx: Context, values: dict[str, str]) -> Outcome:
    if ctx.kind == "customers":
        return await customer_row(conn, ctx, values)
    if ctx.kind == "organizations":
        return await organization_row(conn, ctx, values)
    return await order_row(conn, ctx, values)


async def customer_row(conn: Any, ctx: Context, values: dict[str, str]) -> Outcome:
    if not values.get("external_id"):
        raise RowInvalid([("external_id", "is required")])
    given = [(f"external:{ctx.source}", values["external_id"], "external_id")]
    given += [(kind, values[kind], kind) for kind in ("email", "phone") if values.get(kind)]
    where = {("identities", i): column for i, (_, _, column) in enumerate(given)}
    profile = {name: values[name] for name in ("name", "tier") if values.get(name)}
    try:
        body = CustomerCreate(identities=[{"kind": k, "value": v} for k, v, _ in given], **profile)
    except ValidationError as exc:
        raise _from_validation(exc, where) from None
    try:
        pairs = [(i.kind, strict_key(i.kind, i.value)) for i in body.identities]
    except InvalidIdentity:
        errors = []
        for i, identity in enumerate(body.identities):
            try:
                strict_key(identity.kind, identity.value)
            except InvalidIdentity as exc:
                errors.append((where[("identities", i)], str(exc)))
        raise RowInvalid(errors) from None
    organization_id = None
    if values.get("organization"):
        found = await organization_rows.by_name_key(conn, fold_key(values["organization"]))
        if found is None:
            raise RowInvalid([("organization", f"no organisation named {values['organization']!r}")])
        organization_id = found["id"]
    owners = await identities.owners_of(conn, pairs)
    existing = owners.get(pairs[0])
    taken = [where[("identities", i)] for i, p in enumerate(pairs) if p in owners and owners[p] != existing]
    if taken:
        raise RowInvalid([(column, "belongs to another customer") for column in taken])
    try:
        if existing is None:
            body = body.model_copy(update={"organization_id": organization_id})
            await customers.create_customer(conn, body=body, principal=ctx.principal, answer=False)
            return "created"
        row = await customer_rows.get_customer(conn, existing)
        wanted = {**{k: getattr(body, k) for k in profile}, **({"organization_id": organization_id}
                                                                 if organization_id else {})}
        changed = {k: v for k, v in wanted.items() if row[k] != v}
        if changed:
            update = CustomerUpdate(**{k: (str(v) if k == "organization_id" else v) for k, v in changed.items()})
            await customers.update_customer(conn, customer_id=existing, update=update,
                                            principal=ctx.principal, if_match=None, answer=False)
        new = [p for p in pairs if p not in owners]
        for kind, value in new:
            await identity_service.add(conn, customer_id=existing, kind=kind, value=value, principal=ctx.principal,
                                       if_match=None, answer=False)
        return "updated" if changed or new else "unchanged"
    except Problem as exc:
        if exc.status >= 500:
            raise
        raise _from_problem(exc, where) from None


def split_domains(text: str) -> list[str]:
    return [d for d in re.split(r"[\s,;，；、]+", text) if d]


async def organization_row(conn: Any, ctx: Context, values: dict[str, str]) -> Outcome:
    if not values.get("name"):
        raise RowInvalid([("name", "is required")])
    given: dict[str, Any] = {"name": values["name"]}
    if values.get("domains"):
        given["domains"] = split_domains(values["domains"])
    if values.get("tier"):
        given["tier"] = values["tier"]
    try:
        body = OrganizationCreate(**given)
        existing = await organization_rows.by_name_key(conn, fold_key(body.name))
        if existing is None:
            await organizations.create(conn, body=body, principal=ctx.principal)
            return "created"
        update = OrganizationUpdate(**{k: v for k, v in given.items() if k != "name"})
        after = await organizations.update(conn, organization_id=existing["id"], body=update,
                                           principal=ctx.principal, if_match=None)
        return "updated" if after["version"] != existing["version"] else "unchanged"
    except ValidationError as exc:
        raise _from_validation(exc) from None
    except Problem as exc:
        if exc.status >= 500:
            raise
        raise _from_problem(exc) from None


async def order_row(conn: Any, ctx: Context, values: dict[str, str]) -> Outcome:
    missing = [f for f in ("external_id", "customer_external_id", "ordered_at", "amount", "currency")
               if not values.get(f)]
    if missing:
        raise RowInvalid([(f, "is required") for f in missing])
    status = values.get("status")
    if status is None:
        known = await order_rows.by_external_id(conn, source=ctx.source, external_id=values["external_id"].strip())
        status = known["status"] if known is not None else "pending"
    try:
        body = OrderIn(external_id=values["external_id"], source=ctx.source,
                       ordered_at=read_time(values["ordered_at"], ctx.zone), amount=values["amount"].strip(),
                       currency=values["currency"].strip().upper(), status=status.strip().lower())
    except ValidationError as exc:
        raise _from_validation(exc) from None
    pair = (f"external:{ctx.source}", values["customer_external_id"].strip())
    try:
        pair = (pair[0], strict_key(*pair))
    except InvalidIdentity as exc:
        raise RowInvalid([("customer_external_id", str(exc))]) from None
    owner = (await identities.owners_of(conn, [pair])).get(pair)
    if owner is None:
        raise RowInvalid([("customer_external_id", f"no customer has the external id {pair[1]!r}")])
    try:
        _, outcome = await orders.record(conn, customer_id=owner, body=body, principal=ctx.principal)
    except Problem as exc:
        if exc.status >= 500:
            raise
        raise _from_problem(exc) from None
    return outcome

