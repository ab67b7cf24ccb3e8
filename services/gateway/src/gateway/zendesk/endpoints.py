"""``/api/v2/`` routes (docs/zendesk-api.md): tickets and their comments, so far.

Each route resolves Zendesk's integer ids, calls the owning service's own API as the caller
(``upstream.call``) and answers in Zendesk's shapes (``shapes.py``) and error envelope
(``errors.ZendeskRoute``). No business rule lives here: who may see or change what, what is
valid, what happens next, is the service's."""

from __future__ import annotations

import html
import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..auth import repository as auth_repository
from ..deps import Caller
from . import ids, search, shapes, upstream
from .errors import ZendeskRoute, error_response, not_found

router = APIRouter(prefix="/api/v2", route_class=ZendeskRoute, include_in_schema=False)


class TicketEnvelope(BaseModel):
    """Zendesk's ``{"ticket": {...}}``. Unknown fields are ignored, as Zendesk ignores them: a
    script may PUT back a whole ticket it read, id, url and timestamps included. Only the fields
    ``shapes.py`` names are read and translated, so nothing else reaches a service (the mass-
    assignment tests list this body among the open ones for that reason)."""

    model_config = ConfigDict(extra="ignore")
    ticket: dict[str, Any]

TICKETS = "ticket_url"
CUSTOMERS = "customer_url"
#: Zendesk's page size bounds (offset and cursor pagination alike)
MAX_PAGE, DEFAULT_PAGE = 100, 100
#: Zendesk's offset pagination stops at 100 pages (10,000 records); cursors go on
MAX_OFFSET_PAGES = 100
TicketNumber = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _invalid(exc: shapes.Invalid) -> Problem:
    return Problem(422, "validation-error", "Validation failed", "Record validation errors",
                   errors=[{"field": f"body.{field}", "message": message, "code": "invalid"}
                           for field, message in exc.errors])


async def _id_map(request: Request, refs: list[tuple[str, str]]) -> shapes.IdMap:
    async with request.app.state.runtime.engine.begin() as conn:
        return await ids.ids_for(conn, refs)


async def _native(request: Request, zendesk_id: Any, kinds: tuple[str, ...], field: str) -> tuple[str, str] | None:
    """What an integer id in a request names (None for null); a 422 naming ``field`` otherwise."""
    if zendesk_id is None:
        return None
    if not isinstance(zendesk_id, int) or isinstance(zendesk_id, bool) or not 1 <= zendesk_id < 2**63:
        raise _invalid(shapes.Invalid([(field, "must be an id (an integer)")]))
    async with request.app.state.runtime.engine.connect() as conn:
        found = await ids.native_of(conn, zendesk_id, kinds)
    if found is None:
        raise _invalid(shapes.Invalid([(field, f"no {field.removesuffix('_id')} has id {zendesk_id}")]))
    return found


async def _custom_fields_in(request: Request, value: Any, ticket_type: str | None) -> dict[str, Any]:
    """Zendesk's ``custom_fields: [{id, value}]`` as ours (``{key: value}``): each id must name a
    field of the ticket's type's form (``GET /api/v2/ticket_fields.json`` shows them)."""
    if not isinstance(value, list) or not all(isinstance(item, dict) and "id" in item for item in value):
        raise shapes.Invalid([("custom_fields", "a list of {id, value}")])
    out: dict[str, Any] = {}
    for item in value:
        field_id = item["id"]
        if not isinstance(field_id, int) or isinstance(field_id, bool) or not 1 <= field_id < 2**63:
            raise shapes.Invalid([("custom_fields", "field ids are integers")])
        async with request.app.state.runtime.engine.connect() as conn:
            found = await ids.native_of(conn, field_id, (ids.FIELD,))
        if found is None:
            raise shapes.Invalid([("custom_fields", f"no ticket field has id {field_id}")])
        form_type, _, key = found[1].partition(":")
        if form_type != (ticket_type or "default"):
            raise shapes.Invalid([("custom_fields", f"field {field_id} belongs to the {form_type} form, not "
                                                    f"the ticket's ({ticket_type or 'default'})")])
        out[key] = item.get("value")
    return out


async def _ticket(request: Request, caller: Principal, number: int) -> dict[str, Any]:
    """Our ticket with that number, as the caller may see it (404 otherwise, like ticket-svc's)."""
    page, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets", params=[("number", str(number))])
    if not page["items"]:
        raise not_found(f"No ticket {number}.")
    return page["items"][0]


async def _requester_customer(request: Request, caller: Principal, ticket: dict[str, Any]) -> dict[str, Any]:
    """The ticket with its customer's id filled in when customer-svc has the requester but the
    link has not reached ticket-svc yet (moments after creation): Zendesk shows a requester_id
    at once."""
    if ticket.get("customer_id") or not (ticket.get("requester") or {}).get("email"):
        return ticket
    page, _ = await upstream.call(request, caller, CUSTOMERS, "GET", "/v1/customers",
                                  params=[("email", ticket["requester"]["email"]), ("limit", "1")])
    items = page.get("items") or []
    return {**ticket, "customer_id": items[0]["id"]} if items else ticket


async def _ticket_doc(request: Request, caller: Principal, ticket: dict[str, Any]) -> dict[str, Any]:
    ticket = await _requester_customer(request, caller, ticket)
    return shapes.ticket_out(ticket, await _id_map(request, shapes.ticket_refs(ticket)), _base(request))


def _audit(ticket_doc: dict[str, Any], caller_id: int | None) -> dict[str, Any]:
    """The ``audit`` Zendesk answers a create or update with (zenpy reads the ticket from it)."""
    return {"id": None, "ticket_id": ticket_doc["id"], "created_at": ticket_doc["updated_at"], "author_id": caller_id,
            "metadata": {}, "via": ticket_doc["via"], "events": []}


async def _caller_id(request: Request, caller: Principal) -> int | None:
    return (await _id_map(request, [(ids.USER, caller.id)])).get((ids.USER, caller.id))


def _text_of(html_body: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", html_body)).strip()


async def _add_comment(request: Request, caller: Principal, ticket_id: str, comment: tuple) -> None:
    text, html_body, public = comment
    body: dict[str, Any] = {"body": text or _text_of(html_body or "") or "(empty)", "public": public}
    if html_body:
        body["html"] = html_body
    await upstream.call(request, caller, TICKETS, "POST", f"/v1/tickets/{ticket_id}/messages", json=body)


@router.post("/tickets.json", status_code=201)
@router.post("/tickets", status_code=201, include_in_schema=False)
async def create_ticket(request: Request, caller: Caller, payload: TicketEnvelope,
                        idempotency_key: IdempotencyKey = None) -> Response:
    upstream.require_agent(caller)
    ticket = payload.ticket
    try:
        requester = None
        if isinstance(ticket, dict) and ticket.get("requester") is not None:
            requester = shapes.requester_in(ticket["requester"])
        elif isinstance(ticket, dict) and ticket.get("requester_id") is not None:
            requester = await _requester_by_id(request, caller, ticket["requester_id"])
        native, public = shapes.create_in(ticket, requester)
        if isinstance(ticket, dict):
            assignee = await _native(request, ticket.get("assignee_id"), (ids.USER,), "assignee_id")
            team = await _native(request, ticket.get("group_id"), (ids.TEAM,), "group_id")
            if assignee:
                native["assignee_id"] = assignee[1]
            if team:
                native["team_id"] = team[1]
            if ticket.get("custom_fields") is not None:
                native["custom_fields"] = await _custom_fields_in(request, ticket["custom_fields"], native.get("type"))
    except shapes.Invalid as exc:
        raise _invalid(exc) from exc
    private_note = None
    if not public:  # Zendesk's private first comment: an internal note, not the (public) description
        private_note, native["description"] = (native["description"], None, False), ""
    headers = {"idempotency-key": idempotency_key} if idempotency_key else None
    created, answer_headers = await upstream.call(request, caller, TICKETS, "POST", "/v1/tickets", json=native,
                                                  headers=headers)
    if private_note is not None and private_note[0] and not answer_headers.get("idempotent-replayed"):
        await _add_comment(request, caller, created["id"], private_note)
    doc = await _ticket_doc(request, caller, created)
    replayed = {"Idempotent-Replayed": "true"} if answer_headers.get("idempotent-replayed") else {}
    return JSONBytesResponse({"ticket": doc, "audit": _audit(doc, await _caller_id(request, caller))},
                             status_code=201, headers={"Location": doc["url"], **replayed})


async def _requester_by_id(request: Request, caller: Principal, requester_id: Any) -> dict[str, Any]:
    """A requester named by id: the customer's identities, as ticket-svc takes a requester."""
    found = await _native(request, requester_id, (ids.CUSTOMER,), "requester_id")
    assert found is not None
    customer, _ = await upstream.call(request, caller, CUSTOMERS, "GET", f"/v1/customers/{found[1]}")
    identities = {identity["kind"]: identity["value"] for identity in customer.get("identities") or []
                  if identity.get("value")}
    requester = {k: identities[k] for k in ("email", "phone") if k in identities}
    if customer.get("name"):
        requester["name"] = customer["name"]
    if not any(k in requester for k in ("email", "phone")):
        raise _invalid(shapes.Invalid([("requester_id", "that customer has no e-mail address or phone number")]))
    return requester


async def _ticket_docs(request: Request, caller: Principal, tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tickets = [await _requester_customer(request, caller, ticket) for ticket in tickets]
    id_map = await _id_map(request, [ref for ticket in tickets for ref in shapes.ticket_refs(ticket)])
    base = _base(request)
    return [shapes.ticket_out(ticket, id_map, base) for ticket in tickets]


@router.get("/tickets.json")
async def list_tickets(request: Request, caller: Caller,
                       page_size: Annotated[int | None, Query(alias="page[size]", ge=1, le=MAX_PAGE)] = None,
                       after: Annotated[str | None, Query(alias="page[after]", max_length=512)] = None,
                       per_page: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
                       page: Annotated[int, Query(ge=1, le=MAX_OFFSET_PAGES)] = 1) -> Response:
    """Newest first (our list's order; Zendesk's is by id). Cursor pagination (``page[size]``,
    ``page[after]``: ``meta.has_more``, ``links.next``, what zenpy uses) and offset pagination
    (``page``, ``per_page``: ``next_page``, up to Zendesk's 100 pages), whose next page carries
    the cursor so a client that follows ``next_page`` never makes us walk. No ``count``: the
    total would cost a count of every ticket the caller may see."""
    upstream.require_agent(caller)
    size = page_size or per_page or DEFAULT_PAGE
    cursor = after
    if cursor is None and page > 1:  # an offset page asked for directly: walk to it
        for _ in range(page - 1):
            skipped, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets",
                                             params=[("limit", str(size))] + ([("cursor", cursor)] if cursor else []))
            cursor = skipped.get("next_cursor")
            if cursor is None:
                return JSONBytesResponse(shapes.cursor_page("tickets", [], None, None))
    listed, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets",
                                    params=[("limit", str(size))] + ([("cursor", cursor)] if cursor else []))
    next_cursor = listed.get("next_cursor")
    base = _base(request)
    cursor_mode = page_size is not None or after is not None
    next_url = None
    if next_cursor:
        query = {"page[size]": size, "page[after]": next_cursor} if cursor_mode else {
            "per_page": size, "page": min(page + 1, MAX_OFFSET_PAGES), "page[after]": next_cursor}
        next_url = f"{base}/api/v2/tickets.json?{urlencode(query)}"
    return JSONBytesResponse(shapes.cursor_page("tickets", await _ticket_docs(request, caller, listed["items"]),
                                                next_cursor, next_url))


@router.get("/tickets/show_many.json")
async def show_many_tickets(request: Request, caller: Caller,
                            numbers: Annotated[str, Query(alias="ids", max_length=2000,
                                                          pattern=r"^[0-9]{1,19}(,[0-9]{1,19}){0,99}$")]) -> Response:
    """Up to 100 tickets by id (``ids=1,2,3``), those the caller may see, in the order asked."""
    upstream.require_agent(caller)
    wanted = [int(n) for n in numbers.split(",")]
    if any(not 1 <= n < 2**63 for n in wanted):
        raise _invalid(shapes.Invalid([("ids", "ids are ticket numbers")]))
    listed, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets",
                                    params=[("limit", "100")] + [("number", str(n)) for n in dict.fromkeys(wanted)])
    by_number = {t["number"]: t for t in listed["items"]}
    docs = await _ticket_docs(request, caller, [by_number[n] for n in dict.fromkeys(wanted) if n in by_number])
    return JSONBytesResponse({"tickets": docs, "next_page": None, "previous_page": None, "count": len(docs)})


@router.get("/groups.json")
async def list_groups(request: Request, caller: Caller) -> Response:
    """Our teams."""
    upstream.require_agent(caller)
    teams, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/teams")
    id_map = await _id_map(request, [(ids.TEAM, str(team["id"])) for team in teams])
    groups = [shapes.group_out(team, id_map, _base(request)) for team in teams]
    return JSONBytesResponse({"groups": groups, "next_page": None, "previous_page": None, "count": len(groups)})


@router.get("/tickets/{number}.json")
async def show_ticket(request: Request, caller: Caller, number: TicketNumber) -> Response:
    upstream.require_agent(caller)
    return JSONBytesResponse({"ticket": await _ticket_doc(request, caller, await _ticket(request, caller, number))})


@router.put("/tickets/{number}.json")
async def update_ticket(request: Request, caller: Caller, number: TicketNumber, payload: TicketEnvelope) -> Response:
    """Zendesk adds comments only through an update: the comment first (ticket-svc's reply or
    internal note), then the fields. Not one transaction: a refused field change leaves the
    comment added, and the answer says which part was refused."""
    upstream.require_agent(caller)
    ticket = payload.ticket
    try:
        assignee = team = None
        if isinstance(ticket, dict):
            found = await _native(request, ticket.get("assignee_id"), (ids.USER,), "assignee_id")
            assignee = found[1] if found else None
            found = await _native(request, ticket.get("group_id"), (ids.TEAM,), "group_id")
            team = found[1] if found else None
        patch, comment = shapes.update_in(ticket, assignee=assignee, team=team)
    except shapes.Invalid as exc:
        raise _invalid(exc) from exc
    current = await _ticket(request, caller, number)
    if isinstance(ticket, dict) and ticket.get("custom_fields") is not None:
        try:
            patch["custom_fields"] = await _custom_fields_in(request, ticket["custom_fields"],
                                                             patch.get("type", current.get("type")))
        except shapes.Invalid as exc:
            raise _invalid(exc) from exc
    if comment is not None:
        await _add_comment(request, caller, current["id"], comment)
    if patch:
        current, _ = await upstream.call(request, caller, TICKETS, "PATCH", f"/v1/tickets/{current['id']}", json=patch)
    else:
        current = await _ticket(request, caller, number)
    doc = await _ticket_doc(request, caller, current)
    return JSONBytesResponse({"ticket": doc, "audit": _audit(doc, await _caller_id(request, caller))})


@router.delete("/tickets/{number}.json", status_code=204)
async def delete_ticket(request: Request, caller: Caller, number: TicketNumber) -> Response:
    """A soft delete (ticket-svc: closed, hidden, restorable; admins and supervisors)."""
    upstream.require_agent(caller)
    ticket = await _ticket(request, caller, number)
    await upstream.call(request, caller, TICKETS, "DELETE", f"/v1/tickets/{ticket['id']}")
    return Response(status_code=204)


async def _deleted(request: Request, caller: Principal, number: int) -> dict[str, Any]:
    page, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets/deleted",
                                  params=[("number", str(number)), ("limit", "1")])
    if not page["items"]:
        raise not_found(f"No deleted ticket {number}.")
    return page["items"][0]


async def _names(request: Request, user_ids: set[str]) -> dict[str, str]:
    """The gateway users' names by id (who deleted what)."""
    names = {}
    async with request.app.state.runtime.engine.connect() as conn:
        for user_id in sorted(user_ids):
            try:
                row = await auth_repository.user_by_id(conn, uuid.UUID(user_id))
            except ValueError:
                continue
            if row is not None:
                names[user_id] = row.name
    return names


@router.get("/deleted_tickets.json")
async def list_deleted_tickets(
        request: Request, caller: Caller,
        page_size: Annotated[int | None, Query(alias="page[size]", ge=1, le=MAX_PAGE)] = None,
        after: Annotated[str | None, Query(alias="page[after]", max_length=512)] = None,
        per_page: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None) -> Response:
    """Most recently deleted first; cursor pagination, ``next_page`` carrying the cursor."""
    upstream.require_agent(caller)
    size = page_size or per_page or DEFAULT_PAGE
    listed, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets/deleted",
                                    params=[("limit", str(size))] + ([("cursor", after)] if after else []))
    rows = listed["items"]
    refs = [ref for row in rows for ref in shapes.deleted_by_ref(row)]
    id_map = await _id_map(request, refs)
    names = await _names(request, {native for _, native in refs})
    next_cursor = listed.get("next_cursor")
    next_url = (f"{_base(request)}/api/v2/deleted_tickets.json?" + urlencode({"page[size]": size,
                                                                                "page[after]": next_cursor})
                ) if next_cursor else None
    return JSONBytesResponse(shapes.cursor_page(
        "deleted_tickets", [shapes.deleted_ticket_out(row, id_map, names) for row in rows], next_cursor, next_url))


@router.put("/deleted_tickets/{number}/restore.json")
async def restore_deleted_ticket(request: Request, caller: Caller, number: TicketNumber) -> Response:
    """Zendesk answers a restore with 200 and no body; the ticket is back with its status."""
    upstream.require_agent(caller)
    deleted = await _deleted(request, caller, number)
    await upstream.call(request, caller, TICKETS, "POST", f"/v1/tickets/{deleted['id']}/restore")
    return Response(status_code=200)


@router.get("/tickets/{number}/comments.json")
async def list_comments(request: Request, caller: Caller, number: TicketNumber,
                        page_size: Annotated[int, Query(alias="page[size]", ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
                        after: Annotated[str | None, Query(alias="page[after]", max_length=512)] = None) -> Response:
    """Oldest first, as Zendesk lists them; cursor pagination (``page[size]``, ``page[after]``,
    ``meta.has_more``, ``links.next``), and the offset fields (``next_page``, ``count``) zenpy reads."""
    upstream.require_agent(caller)
    ticket = await _requester_customer(request, caller, await _ticket(request, caller, number))
    params = [("limit", str(page_size))] + ([("cursor", after)] if after else [])
    page, _ = await upstream.call(request, caller, TICKETS, "GET", f"/v1/tickets/{ticket['id']}/messages", params=params)
    messages = page["items"]
    refs = [ref for message in messages for ref in shapes.comment_refs(message, ticket)]
    id_map = await _id_map(request, refs)
    base = _base(request)
    comments = [shapes.comment_out(message, ticket, id_map, base) for message in messages]
    next_cursor = page.get("next_cursor")
    next_url = (f"{base}/api/v2/tickets/{number}/comments.json?"
                + urlencode({"page[size]": page_size, "page[after]": next_cursor})) if next_cursor else None
    return JSONBytesResponse({**shapes.cursor_page("comments", comments, next_cursor, next_url),
                              "count": len(comments)})


class UserEnvelope(BaseModel):
    """Zendesk's ``{"user": {...}}``; unknown fields ignored, as ``TicketEnvelope``."""

    model_config = ConfigDict(extra="ignore")
    user: dict[str, Any]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def _agent_doc(request: Request, caller: Principal, user_id: str) -> dict[str, Any]:
    """A help-desk user (from the gateway's own table): themselves to anyone, others to
    supervisors and admins, as ``GET /v1/users`` decides."""
    if user_id != caller.id and caller.role not in ("admin", "supervisor"):
        raise not_found("No such user.")
    async with request.app.state.runtime.engine.connect() as conn:
        row = await auth_repository.user_by_id(conn, uuid.UUID(user_id))
    if row is None:
        raise not_found("No such user.")
    user = {"id": str(row.id), "email": row.email, "name": row.name, "role": row.role, "active": row.active,
            "created_at": _iso(row.created_at), "updated_at": _iso(row._mapping.get("updated_at", row.created_at))}
    return shapes.agent_out(user, await _id_map(request, [(ids.USER, user["id"])]), _base(request))


async def _end_user_doc(request: Request, customer: dict[str, Any]) -> dict[str, Any]:
    return shapes.end_user_out(customer, await _id_map(request, shapes.end_user_refs(customer)), _base(request))


async def _person(request: Request, zendesk_id: int) -> tuple[str, str]:
    async with request.app.state.runtime.engine.connect() as conn:
        found = await ids.native_of(conn, zendesk_id, ids.PEOPLE)
    if found is None:
        raise not_found(f"No user {zendesk_id}.")
    return found


UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/users/me.json")
async def show_me(request: Request, caller: Caller) -> Response:
    upstream.require_agent(caller)
    return JSONBytesResponse({"user": await _agent_doc(request, caller, caller.id)})


@router.get("/users/search.json")
async def search_users(request: Request, caller: Caller,
                       query: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                       external_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None) -> Response:
    """End users whose name contains the words of ``query`` or one of whose identities (e-mail,
    phone, external id) equals it; ``email:``, ``phone:``, ``name:`` and ``external_id:``
    prefixes are accepted. Agents are not searched here (``GET /v1/users`` lists them)."""
    upstream.require_agent(caller)
    text = external_id if external_id is not None else query
    if text is None:
        raise _invalid(shapes.Invalid([("query", "query or external_id is required")]))
    text = shapes.user_search_text(text)
    if not text:
        raise _invalid(shapes.Invalid([("query", "nothing to search for")]))
    page, _ = await upstream.call(request, caller, CUSTOMERS, "GET", "/v1/customers",
                                  params=[("q", text[:200]), ("limit", "100")])
    customers = page.get("items") or []
    id_map = await _id_map(request, [ref for c in customers for ref in shapes.end_user_refs(c)])
    users = [shapes.end_user_out(c, id_map, _base(request)) for c in customers]
    return JSONBytesResponse({"users": users, "next_page": None, "previous_page": None, "count": len(users)})


@router.get("/users/{user_id}.json")
async def show_user(request: Request, caller: Caller, user_id: UserId) -> Response:
    upstream.require_agent(caller)
    kind, native = await _person(request, user_id)
    if kind == ids.USER:
        return JSONBytesResponse({"user": await _agent_doc(request, caller, native)})
    customer, _ = await upstream.call(request, caller, CUSTOMERS, "GET", f"/v1/customers/{native}")
    return JSONBytesResponse({"user": await _end_user_doc(request, customer)})


@router.post("/users.json", status_code=201)
async def create_user(request: Request, caller: Caller, payload: UserEnvelope,
                      idempotency_key: IdempotencyKey = None) -> Response:
    """An end user: a customer of customer-svc (supervisors and admins, as there)."""
    upstream.require_agent(caller)
    try:
        native = shapes.end_user_in(payload.user, creating=True)
    except shapes.Invalid as exc:
        raise _invalid(exc) from exc
    headers = {"idempotency-key": idempotency_key} if idempotency_key else None
    customer, _ = await upstream.call(request, caller, CUSTOMERS, "POST", "/v1/customers", json=native, headers=headers)
    doc = await _end_user_doc(request, customer)
    return JSONBytesResponse({"user": doc}, status_code=201, headers={"Location": doc["url"]})


@router.put("/users/{user_id}.json")
async def update_user(request: Request, caller: Caller, user_id: UserId, payload: UserEnvelope) -> Response:
    """An end user's name, tags, notes, locale and time zone (agents change name and notes only,
    as on /v1); agents and admins are changed through /v1/users."""
    upstream.require_agent(caller)
    kind, native_id = await _person(request, user_id)
    if kind != ids.CUSTOMER:
        raise Problem(403, "forbidden", "Forbidden", "Agents and admins are changed through PATCH /v1/users/{id}.")
    try:
        patch = shapes.end_user_in(payload.user, creating=False)
    except shapes.Invalid as exc:
        raise _invalid(exc) from exc
    customer, _ = await upstream.call(request, caller, CUSTOMERS, "PATCH", f"/v1/customers/{native_id}", json=patch)
    return JSONBytesResponse({"user": await _end_user_doc(request, customer)})


@router.get("/users/{user_id}/identities.json")
async def list_identities(request: Request, caller: Caller, user_id: UserId) -> Response:
    upstream.require_agent(caller)
    kind, native_id = await _person(request, user_id)
    if kind != ids.CUSTOMER:
        raise not_found("Agents' identities are their e-mail address (GET /api/v2/users/{id}.json).")
    customer, _ = await upstream.call(request, caller, CUSTOMERS, "GET", f"/v1/customers/{native_id}")
    refs = [(ids.CUSTOMER, str(customer["id"]))] + [(ids.IDENTITY, str(i["id"])) for i in customer.get("identities") or []]
    identities = shapes.identities_out(customer, await _id_map(request, refs), _base(request))
    return JSONBytesResponse({"identities": identities, "next_page": None, "previous_page": None,
                              "count": len(identities)})


@router.get("/incremental/tickets/cursor.json")
async def incremental_tickets(request: Request, caller: Caller,
                              start_time: Annotated[int | None, Query(ge=0, le=253402300799)] = None,
                              cursor: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
                              per_page: Annotated[int, Query(ge=1, le=1000)] = 1000) -> Response:
    """Every ticket changed since ``start_time`` (Unix seconds), oldest change first, then on
    from ``after_url`` (its cursor) until ``end_of_stream``; keep the last cursor to continue
    later. ticket-svc's incremental export underneath (admins and supervisors, as there)."""
    upstream.require_agent(caller)
    if (start_time is None) == (cursor is None):
        raise _invalid(shapes.Invalid([("start_time", "give start_time (Unix seconds) or the cursor of a page")]))
    params = [("limit", str(per_page))] + ([("cursor", cursor)] if cursor else [("start_time", str(start_time))])
    page, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/export/tickets", params=params)
    base = _base(request)
    after = page["next_cursor"]
    return JSONBytesResponse({
        "tickets": await _ticket_docs(request, caller, page["items"]),
        "after_cursor": after,
        "after_url": f"{base}/api/v2/incremental/tickets/cursor.json?" + urlencode({"cursor": after, "per_page": per_page}),
        "before_cursor": None, "before_url": None,
        "end_of_stream": bool(page["end_of_stream"]),
    })


class OrganizationEnvelope(BaseModel):
    """Zendesk's ``{"organization": {...}}``; unknown fields ignored, as ``TicketEnvelope``."""

    model_config = ConfigDict(extra="ignore")
    organization: dict[str, Any]


async def _organization_doc(request: Request, organization: dict[str, Any]) -> dict[str, Any]:
    id_map = await _id_map(request, [(ids.ORGANIZATION, str(organization["id"]))])
    return shapes.organization_out(organization, id_map, _base(request))


@router.post("/organizations.json", status_code=201)
async def create_organization(request: Request, caller: Caller, payload: OrganizationEnvelope,
                              idempotency_key: IdempotencyKey = None) -> Response:
    """customer-svc's organisation (supervisors and admins); a name taken is Zendesk's 422."""
    upstream.require_agent(caller)
    try:
        native = shapes.organization_in(payload.organization)
    except shapes.Invalid as exc:
        raise _invalid(exc) from exc
    headers = {"idempotency-key": idempotency_key} if idempotency_key else None
    try:
        organization, _ = await upstream.call(request, caller, CUSTOMERS, "POST", "/v1/organizations", json=native,
                                              headers=headers)
    except Problem as exc:
        if exc.status == 409:  # Zendesk: "Name: has already been taken"
            raise _invalid(shapes.Invalid([("name", exc.detail or "has already been taken")])) from exc
        raise
    doc = await _organization_doc(request, organization)
    return JSONBytesResponse({"organization": doc}, status_code=201, headers={"Location": doc["url"]})


@router.get("/organizations/{organization_id}.json")
async def show_organization(request: Request, caller: Caller, organization_id: UserId) -> Response:
    upstream.require_agent(caller)
    async with request.app.state.runtime.engine.connect() as conn:
        found = await ids.native_of(conn, organization_id, (ids.ORGANIZATION,))
    if found is None:
        raise not_found(f"No organization {organization_id}.")
    organization, _ = await upstream.call(request, caller, CUSTOMERS, "GET", f"/v1/organizations/{found[1]}")
    return JSONBytesResponse({"organization": await _organization_doc(request, organization)})


@router.get("/organizations.json")
async def list_organizations(request: Request, caller: Caller,
                             page_size: Annotated[int | None, Query(alias="page[size]", ge=1, le=MAX_PAGE)] = None,
                             after: Annotated[str | None, Query(alias="page[after]", max_length=512)] = None,
                             per_page: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None) -> Response:
    """Newest first; cursor pagination, and ``next_page`` (carrying the cursor) for offset clients."""
    upstream.require_agent(caller)
    size = page_size or per_page or DEFAULT_PAGE
    listed, _ = await upstream.call(request, caller, CUSTOMERS, "GET", "/v1/organizations",
                                    params=[("limit", str(size))] + ([("cursor", after)] if after else []))
    organizations = listed["items"]
    id_map = await _id_map(request, [(ids.ORGANIZATION, str(o["id"])) for o in organizations])
    base = _base(request)
    next_cursor = listed.get("next_cursor")
    next_url = (f"{base}/api/v2/organizations.json?" + urlencode({"page[size]": size, "page[after]": next_cursor})
                ) if next_cursor else None
    return JSONBytesResponse(shapes.cursor_page(
        "organizations", [shapes.organization_out(o, id_map, base) for o in organizations], next_cursor, next_url))


@router.get("/ticket_fields.json")
async def list_ticket_fields(request: Request, caller: Caller) -> Response:
    """Every field of the latest form of every ticket type (ours belong to a type's form; each
    carries ``ticket_type``); a ticket's ``custom_fields`` name them by these ids."""
    upstream.require_agent(caller)
    forms, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/forms")
    pairs = [(form, field) for form in forms for field in form.get("fields") or []]
    id_map = await _id_map(request, [(ids.FIELD, shapes.field_native(form["ticket_type"], field["key"]))
                                     for form, field in pairs])
    base = _base(request)
    fields = [shapes.ticket_field_out(form, field, id_map, base) for form, field in pairs]
    return JSONBytesResponse({"ticket_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)})


#: Zendesk returns at most this many results of one search, whatever the page
MAX_SEARCH_RESULTS = 1000


@router.get("/search.json")
async def search_everything(request: Request, caller: Caller,
                            query: Annotated[str, Query(min_length=1, max_length=1000)],
                            page: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = 1,
                            per_page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
                            after: Annotated[str | None, Query(alias="page[after]", max_length=512)] = None,
                            sort_by: Annotated[str | None, Query(max_length=32)] = None,
                            sort_order: Annotated[str | None, Query(max_length=8)] = None) -> Response:
    """Tickets (or, with ``type:user``, end users) as Zendesk's search syntax names them
    (``search.py``), newest first, at most 1,000 results; a term this API cannot answer is a 422
    naming it, never dropped."""
    upstream.require_agent(caller)
    try:
        found = search.parse(query)
        if sort_by not in (None, "created_at", "updated_at") or sort_order not in (None, "desc"):
            raise search.Unsupported(f"sort_by={sort_by} sort_order={sort_order} (results come newest first, by "
                                     "created_at or updated_at)")
    except search.Unsupported as exc:
        raise _invalid(shapes.Invalid([("query", f"not supported: {exc}")])) from exc
    if page * per_page > MAX_SEARCH_RESULTS + per_page - 1:
        raise _invalid(shapes.Invalid([("page", f"a search returns at most {MAX_SEARCH_RESULTS} results")]))
    base = _base(request)
    if found.kind == "user":
        text = " ".join(found.words)
        if not text:
            raise _invalid(shapes.Invalid([("query", "a user search needs a name, e-mail, phone or external id")]))
        listed, _ = await upstream.call(request, caller, CUSTOMERS, "GET", "/v1/customers",
                                        params=[("q", text[:200]), ("limit", str(per_page))])
        customers = listed.get("items") or []
        id_map = await _id_map(request, [ref for c in customers for ref in shapes.end_user_refs(c)])
        results = [{**shapes.end_user_out(c, id_map, base), "result_type": "user"} for c in customers]
        return JSONBytesResponse({"results": results, "next_page": None, "previous_page": None, "facets": None,
                                  "count": len(results)})
    params = list(found.params)
    if found.words:
        params.append(("q", " ".join(found.words)[:500]))
    if found.assignee is not None:
        params.append(("assignee_id", await _assignee_param(request, caller, found.assignee)))
    if sort_by == "updated_at":
        params.append(("sort", "updated"))
    cursor = after
    if cursor is None and page > 1:  # walk to an offset page asked for directly
        for _ in range(page - 1):
            skipped, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets",
                                             params=params + [("limit", str(per_page))] + ([("cursor", cursor)] if cursor else []))
            cursor = skipped.get("next_cursor")
            if cursor is None:
                return JSONBytesResponse({"results": [], "next_page": None, "previous_page": None, "facets": None,
                                          "count": (page - 1) * per_page})
    listed, _ = await upstream.call(request, caller, TICKETS, "GET", "/v1/tickets",
                                    params=params + [("limit", str(per_page))] + ([("cursor", cursor)] if cursor else []))
    results = [{**doc, "result_type": "ticket"} for doc in await _ticket_docs(request, caller, listed["items"])]
    next_cursor = listed.get("next_cursor") if page * per_page < MAX_SEARCH_RESULTS else None
    body: dict[str, Any] = {"results": results, "previous_page": None, "facets": None, "next_page": (
        f"{base}/api/v2/search.json?" + urlencode({"query": query, "page": page + 1, "per_page": per_page,
                                                   "page[after]": next_cursor, **({"sort_by": sort_by} if sort_by else {})})
    ) if next_cursor else None}
    if next_cursor is None:
        body["count"] = (page - 1) * per_page + len(results)  # exact once the last page is reached
    return JSONBytesResponse(body)


async def _assignee_param(request: Request, caller: Principal, assignee: str) -> str:
    if assignee == "me":
        return caller.id
    if assignee == "none":
        return "none"
    if not assignee.isdigit():
        raise _invalid(shapes.Invalid([("query", "assignee: takes me, none or a user id")]))
    found = await _native(request, int(assignee), (ids.USER,), "assignee")
    assert found is not None
    return found[1]


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unknown_endpoint(rest: str, caller: Caller) -> Response:
    """Anything else under /api/v2 is not (yet) on this surface: Zendesk's own answer for an
    endpoint it does not have (docs/zendesk-api.md lists what is), to signed-in callers only."""
    upstream.require_agent(caller)
    return error_response(404, f"/api/v2/{rest} is not an endpoint of this API (docs/zendesk-api.md)",
                          error="InvalidEndpoint")
