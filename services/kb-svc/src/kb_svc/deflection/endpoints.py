"""Deflection's routes: suggestions and their views (public: the new-ticket form calls them
before a ticket exists), the deflection report, articles linked to tickets and the reply snippet
(staff). One request, one transaction, committed here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import Principal
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.ticket_access import ticket_access_of
from helpdesk_common.validation import AwareUtcDatetime

from ..access import PUBLIC_ROUTE, CurrentViewer, StaffViewer, Viewer
from ..content.endpoints import LocaleQuery, locale_param
from . import repository, rules, service
from .schemas import (Channel, DeflectionReport, LinkCreate, LinkedArticleList, ReplySnippet, SuggestionCreate,
                      SuggestionList, SuggestionView, TicketLink)

router = APIRouter(prefix="/v1/kb", tags=["knowledge base deflection"])

#: an opaque key of the client address the gateway saw (a digest, its trusted-proxy rules
#: applied), for the per-address limit; a caller reaching kb-svc directly is keyed by its peer
CLIENT_ADDRESS_HEADER = "x-kb-client"
MAX_LINKS = 100


def _public(*statuses: int) -> dict:
    return {**PUBLIC_ROUTE, "responses": {**PUBLIC_ROUTE["responses"], **problem_responses(*statuses)}}


def client_key(request: Request, viewer: Viewer) -> str:
    """What the per-address limit counts under: an anonymous caller's signed ``anon:<address
    digest>`` (Viewer.caller), else the gateway's address digest (customer tokens), else the
    caller's key or the peer's address (calls that did not come through the gateway)."""
    if viewer.caller and viewer.caller.startswith("anon:"):
        return viewer.caller.removeprefix("anon:")
    forwarded = request.headers.get(CLIENT_ADDRESS_HEADER)
    if forwarded and len(forwarded) <= 64:
        return forwarded.strip()
    if viewer.caller:
        return viewer.caller
    return request.client.host if request.client else "unknown"


def limit_public(request: Request, viewer: Viewer) -> None:
    """Callers without a login (anonymous readers, customer tokens) get a token bucket per client
    address in this process (429 with Retry-After); users and channel keys are limited by the
    gateway per user and per key (a channel's backend asks for many customers from one address)."""
    if viewer.is_user or viewer.channel is not None:
        return
    state = request.app.state
    buckets = getattr(state, "kb_suggestion_buckets", None)
    if buckets is None:
        settings = state.settings
        buckets = state.kb_suggestion_buckets = rules.TokenBuckets(
            rate=settings.suggestions_rate_per_second, burst=settings.suggestions_burst)
    if wait := buckets.take(client_key(request, viewer)):
        raise Problem(429, "rate-limited", "Too many requests",
                      "Too many suggestions from this address; retry later.",
                      headers={"Retry-After": rules.retry_after(wait)})


@router.post("/suggestions", response_model=SuggestionList,
             summary="At most 5 published articles for a question about to become a ticket",
             **_public(422, 429))
async def suggest(request: Request, body: SuggestionCreate, viewer: CurrentViewer) -> JSONBytesResponse:
    limit_public(request, viewer)
    async with runtime_of(request).engine.begin() as conn:
        result = await service.suggest(conn, viewer=viewer, subject=body.subject, description=body.description,
                                       language=body.language, channel=body.channel, ticket_id=body.ticket_id)
    return JSONBytesResponse(result, headers={"Cache-Control": "no-store"})


@router.post("/suggestions/{suggestion_id}/views", status_code=204, response_class=Response,
             summary="A suggested article was opened (counts towards deflection)", **_public(404, 422, 429))
async def view_suggested(request: Request, suggestion_id: uuid.UUID, body: SuggestionView,
                         viewer: CurrentViewer) -> Response:
    limit_public(request, viewer)
    async with runtime_of(request).engine.begin() as conn:
        await service.record_view(conn, suggestion_id=suggestion_id, article_id=body.article_id)
    return Response(status_code=204)


@router.get("/deflection", response_model=DeflectionReport,
            summary="Suggestions and what came of them (self-service rate) over a period",
            responses=problem_responses(422))
async def deflection(request: Request, viewer: StaffViewer,
                     start: Annotated[AwareUtcDatetime | None, Query(alias="from",
                                                                     description="suggestions at or after")] = None,
                     end: Annotated[AwareUtcDatetime | None, Query(alias="to", description="suggestions before")] = None,
                     channel: Annotated[Channel | None, Query()] = None) -> JSONBytesResponse:
    if start is not None and end is not None and end < start:
        raise service.invalid("query.to", "'to' is before 'from'.", "range")
    settings = request.app.state.settings
    async with runtime_of(request).engine.connect() as conn:
        report = await service.deflection_report(conn, start=start, end=end, channel=channel,
                                                 window_minutes=settings.deflection_window_minutes)
    return JSONBytesResponse(report)


async def _require_ticket(request: Request, viewer: Any, ticket_id: uuid.UUID) -> None:
    """The ticket's links are shown and changed only by whoever may read the ticket (ticket-svc's
    rule, asked through helpdesk_common.ticket_access): another team's ticket is a 404."""
    principal = Principal(kind="user", id=viewer.user_id or "", role=viewer.role)
    await ticket_access_of(request).require_readable(request, principal, ticket_id)


@router.post("/articles/{article_id}/links", response_model=TicketLink, status_code=201,
             summary="Link an article to a ticket (idempotent: 200 when already linked)",
             responses=problem_responses(404, 422, 503))
async def link_article(request: Request, article_id: uuid.UUID, body: LinkCreate, viewer: StaffViewer) -> JSONBytesResponse:
    await _require_ticket(request, viewer, body.ticket_id)
    async with runtime_of(request).engine.begin() as conn:
        link, created = await service.link(conn, article_id=article_id, ticket_id=body.ticket_id,
                                           by=viewer.user_id or "")
    return JSONBytesResponse(link, status_code=201 if created else 200)


@router.delete("/articles/{article_id}/links/{ticket_id}", status_code=204, response_class=Response,
               summary="Unlink an article from a ticket (idempotent)", responses=problem_responses(404, 422, 503))
async def unlink_article(request: Request, article_id: uuid.UUID, ticket_id: uuid.UUID,
                         viewer: StaffViewer) -> Response:
    await _require_ticket(request, viewer, ticket_id)
    async with runtime_of(request).engine.begin() as conn:
        await repository.unlink(conn, ticket_id=ticket_id, article_id=article_id)
    return Response(status_code=204)


@router.get("/links", response_model=LinkedArticleList, summary="The articles linked to a ticket",
            responses=problem_responses(404, 422, 503))
async def ticket_links(request: Request, ticket_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    await _require_ticket(request, viewer, ticket_id)
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.links_of_ticket(conn, ticket_id, limit=MAX_LINKS)
    return JSONBytesResponse({"items": [dict(r._mapping) for r in rows], "next_cursor": None})


@router.get("/articles/{article_id}/reply-snippet", response_model=ReplySnippet,
            summary="The title and link an agent inserts into a reply", responses=problem_responses(404, 422))
async def reply_snippet(request: Request, article_id: uuid.UUID, viewer: StaffViewer,
                        locale: LocaleQuery = None) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.published_translation(conn, article_id=article_id,
                                                     locale=locale_param(locale, "query.locale"))
    if row is None:
        raise service.not_found("published article")
    return JSONBytesResponse(service.reply_snippet(row))
