"""The customer-confirmation link: ``GET`` and ``POST /v1/confirmations/{token}``, with no login.

The signed token in the path is the only credential. The gateway forwards these two routes, and
only these, with a ``visitor`` identity whose id is a digest of the token; this service accepts
that kind nowhere else and checks the digest names this very token. A browser gets
pages, a client asking for JSON (``Accept``, or a JSON body) JSON and problems; the page's form posts
``application/x-www-form-urlencoded`` to the same URL, an API client JSON. Nothing changes on GET
(a mail scanner following the link answers nothing), and the token is never logged; no answer
may be cached, indexed, framed or pass the URL on (``page.SECURITY_HEADERS``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import HTMLResponse, Response

from helpdesk_common import link_pages
from helpdesk_common.app import runtime_of
from helpdesk_common.events import STEP_COMMENT_MAX_CHARS
from helpdesk_common.identity import current_visitor
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem

from ..customers.texts import language_of
from . import page, service, tokens
from .schemas import ConfirmationAnswer, ConfirmationRead

router = APIRouter(tags=["customer confirmation"])

FORM_TYPE = "application/x-www-form-urlencoded"
#: no length or pattern here: whatever is not a token this service made is the same 404
Token = Annotated[str, Path(description="The signed token from the confirmation link (the link is the only credential).")]


async def _visitor_for(request: Request, token: str) -> None:
    """The gateway's ``visitor`` identity for this very link (a digest of its token)."""
    principal = await current_visitor(request)
    if principal.id != tokens.digest(token):
        raise Problem(401, "unauthorized", "Unauthorized", "The identity was not issued for this link.")


def _wants_html(request: Request) -> bool:
    """A page unless the client asks for JSON: ``Accept`` naming JSON (and not HTML), or, with no
    preference (``*/*``, none), a JSON body. The link opens in whatever a mail or chat app uses,
    which may send no useful ``Accept`` at all."""
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return True
    if "json" in accept:
        return False
    return not request.headers.get("content-type", "").split(";", 1)[0].strip().lower().endswith("json")


def _language(request: Request, ticket: Any) -> str:
    if ticket is not None and ticket["language"]:
        return language_of(ticket["language"])
    return language_of(request.headers.get("accept-language", "").split(",", 1)[0].split(";", 1)[0].strip())


def _html(body: str, status: int = 200) -> HTMLResponse:
    return link_pages.html(body, page.SECURITY_HEADERS, status)


def _problem(problem: Problem) -> Problem:
    return link_pages.problem(problem, page.SECURITY_HEADERS)


def _closed(request: Request, closed: service.LinkClosed) -> Response:
    if not _wants_html(request):
        raise _problem(service.problem_of(closed))
    language = _language(request, closed.ticket)
    key = closed.reason
    if closed.reason == "answered" and closed.step is not None and closed.step["outcome"] == "timed_out":
        key = "expired"
    ticket = closed.ticket
    return _html(page.message(language, key, number=ticket["number"] if ticket else None,
                              subject=ticket["subject"] if ticket else None), service.PROBLEMS[closed.reason][0])


_RESPONSES = problem_responses(
    400, 401, 409, 410, 413, 422, 429,
    _409="Already answered, or ended another way (`step-finished`): the first answer stands.",
    _410="The link expired with the step (`confirmation-expired`).",
    _429="Too many requests from this address (the gateway's limit; `Retry-After`).")
_HTML_OK = {"content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The confirmation page (a form posting back to this URL)."}
_ANSWER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ConfirmationAnswer.model_json_schema(ref_template="#/components/schemas/{model}")},
    FORM_TYPE: {"schema": {"type": "object", "additionalProperties": False, "required": ["answer"], "properties": {
        "answer": {"type": "string", "enum": ["confirm", "reject"]},
        "comment": {"type": "string", "maxLength": STEP_COMMENT_MAX_CHARS}}}},
}}}


@router.get("/v1/confirmations/{token}", response_model=ConfirmationRead,
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}},
                       **problem_responses(401, 409, 410, 429, _409=_RESPONSES[409]["description"],
                                           _410=_RESPONSES[410]["description"], _429=_RESPONSES[429]["description"])},
            summary="The confirmation page: is the request resolved? (no login: the link's token is the credential)")
async def confirmation_page(request: Request, token: Token) -> Response:
    """The ticket's number and subject with the two answers, in the ticket's language (zh-CN or
    en; the browser's without one). A browser is shown an invalid, expired or answered link as a
    page; other clients get the problem (404, 410, 409)."""
    await _visitor_for(request, token)
    async with runtime_of(request).raw_connection() as conn:
        try:
            ticket, step = await service.open_link(conn, token)
        except service.LinkClosed as closed:
            return _closed(request, closed)
    if _wants_html(request):
        return _html(page.form(page.View(language=_language(request, ticket), number=ticket["number"],
                                         subject=ticket["subject"])))
    return link_pages.json(service.link_view(ticket, step), page.SECURITY_HEADERS)


def _form_values(raw: bytes) -> dict[str, Any]:
    """The page's form as the JSON body it stands for (an empty comment as none); a repeated or
    unknown field stays for the model to refuse."""
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "malformed-body", "Malformed form", "The form is not valid UTF-8 form data.") from None
    values = {name: found if len(found) > 1 else found[0] for name, found in fields.items()}
    if values.get("comment") == "":
        del values["comment"]
    return values


def _parse(raw: bytes, *, form: bool) -> tuple[Any, ConfirmationAnswer | None, ValidationError | None]:
    if form:
        values: Any = _form_values(raw)
    else:
        try:
            values = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Problem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.") from None
    try:
        return values, ConfirmationAnswer.model_validate(values), None
    except ValidationError as exc:
        return values, None, exc


@router.post("/v1/confirmations/{token}", response_model=ConfirmationRead, openapi_extra=_ANSWER_BODY,
             responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                              "description": "Answered (a thank-you page for a browser's form)."}, **_RESPONSES},
             summary="Answer the confirmation once: {\"answer\": \"confirm\" | \"reject\", \"comment\"}")
async def answer_confirmation(request: Request, token: Token) -> Response:
    """JSON or the page's form. ``confirm`` closes the ticket, ``reject`` reopens it. The same
    answer again is the same result (``replayed``); another answer after the step ended is a 409;
    an expired link a 410; an invalid one a 404."""
    await _visitor_for(request, token)
    form = request.headers.get("content-type", "").split(";", 1)[0].strip().lower() == FORM_TYPE
    raw = await request.body()
    html = _wants_html(request)
    values, body, error = _parse(raw, form=form)
    async with runtime_of(request).raw_connection() as conn:
        if body is None:
            try:
                ticket, _ = await service.open_link(conn, token)
            except service.LinkClosed as closed:
                return _closed(request, closed)
            if not html:
                assert error is not None
                raise RequestValidationError(error.errors(include_url=False), body=values)
            language = _language(request, ticket)
            comment = values.get("comment") if isinstance(values, dict) else None
            too_long = isinstance(comment, str) and len(comment) > STEP_COMMENT_MAX_CHARS
            return _html(page.form(page.View(language=language, number=ticket["number"], subject=ticket["subject"],
                                             error=page.words(language)["too_long" if too_long else "choose"],
                                             comment=comment if isinstance(comment, str) else "")), 422)
        try:
            async with conn.transaction():
                ticket, step, replayed = await service.answer_by_link(conn, token, answer=body.answer,
                                                                      comment=body.comment)
        except service.LinkClosed as closed:
            return _closed(request, closed)
        except Problem as refused:  # the step machine's refusal (e.g. its deadline passed a moment ago)
            if not html:
                raise _problem(refused) from None
            code = refused.extensions.get("code")
            reason = "expired" if code == "expired" else "answered" if refused.status == 409 else "invalid"
            return _closed(request, service.LinkClosed(reason))
    runtime_of(request).notify_relay()
    if html:
        language = _language(request, ticket)
        return _html(page.message(language, "confirmed" if body.answer == "confirm" else "rejected",
                                  number=ticket["number"], subject=ticket["subject"]))
    return link_pages.json(service.link_view(ticket, step, answer=body.answer, replayed=replayed),
                           page.SECURITY_HEADERS)
