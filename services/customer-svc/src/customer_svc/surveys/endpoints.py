"""Surveys: settings (admins change, supervisors read), lists, and the public answer link.

``GET/POST /v1/surveys/{token}`` take no login: the signed token in the path is the only
credential (the gateway forwards them without authentication, limited per address). A browser
(``Accept: text/html``) gets pages, anything else JSON and problems; the form posts
``application/x-www-form-urlencoded`` to the same URL, an API client JSON. The token is never
logged, and no answer may be cached, framed or leak the URL onwards (``page.SECURITY_HEADERS``).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import HTMLResponse, Response

from helpdesk_common import link_pages
from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.events import SURVEY_COMMENT_MAX_CHARS
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from . import page, rules, service
from .schemas import (CsatAnswer, NpsAnswer, PageQuery, SurveyAnswerRead, SurveyListQuery, SurveyPage,
                      SurveySettingsIn, SurveySettingsRead)

router = APIRouter(tags=["surveys"])
public = APIRouter(tags=["surveys"])

FORM_TYPE = "application/x-www-form-urlencoded"
_SMALL_INT = re.compile(r"^[0-9]{1,2}$")


class _TokenConvertor(Convertor[str]):
    """A path segment other than ``settings``: ``/v1/surveys/settings`` is the settings' resource
    alone, so a 405 there lists only its methods (``Allow``), not the link's."""

    regex = r"(?!settings$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("survey_token", _TokenConvertor())
#: not ``not: {const: settings}`` in the document: OpenAPI already gives the concrete path
#: precedence, and a generator would send ``settings`` as an invalid token and meet the settings
Token = Annotated[str, Path(description="The signed token from the survey's link (the link is the only credential).")]


# --- settings and lists (signed-in users) -----------------------------------------------------


@router.get("/v1/surveys/settings", response_model=SurveySettingsRead,
            summary="The survey settings (supervisors, admins)")
async def get_settings(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        found = await service.get_settings(conn, principal=principal)
    return JSONBytesResponse(found, headers={"ETag": etag(found["version"])})


@router.put("/v1/surveys/settings", response_model=SurveySettingsRead,
            summary="Replace the survey settings (admins; If-Match: their version)")
async def put_settings(request: Request, body: SurveySettingsIn, principal: CurrentPrincipal,
                       if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).raw_transaction() as conn:
        found = await service.put_settings(conn, principal=principal, body=body, if_match=if_match)
    return JSONBytesResponse(found, headers={"ETag": etag(found["version"])})


@router.get("/v1/surveys", response_model=SurveyPage,
            summary="Surveys, newest first, by kind, status and ticket (supervisors, admins)")
async def list_surveys(request: Request, principal: CurrentPrincipal,
                       query: Annotated[SurveyListQuery, Query()]) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        found = await service.list_surveys(conn, principal=principal, kind=query.kind, status=query.status,
                                           ticket_id=query.ticket_id, limit=query.limit, cursor=query.cursor)
    return JSONBytesResponse(found)


@router.get("/v1/customers/{customer_id}/surveys", response_model=SurveyPage,
            summary="A customer's surveys and answers, newest first")
async def list_customer_surveys(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal,
                                query: Annotated[PageQuery, Query()]) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        found = await service.list_surveys(conn, principal=principal, customer_id=customer_id, limit=query.limit,
                                           cursor=query.cursor)
    return JSONBytesResponse(found)


# --- the public answer link -------------------------------------------------------------------


def _key(request: Request) -> bytes | None:
    secret = request.app.state.settings.survey_token_key
    return secret.get_secret_value().encode() if secret is not None else None


_wants_html = link_pages.wants_html


def _browser_language(request: Request) -> str:
    return rules.page_language(request.headers.get("accept-language", "").split(",", 1)[0].strip())


def _html(body: str, status: int = 200) -> HTMLResponse:
    return link_pages.html(body, page.SECURITY_HEADERS, status)


def _json(body: Any, status: int = 200) -> Response:
    return link_pages.json(body, page.SECURITY_HEADERS, status)


def _problem(problem: Problem) -> Problem:
    return link_pages.problem(problem, page.SECURITY_HEADERS)


def _closed(request: Request, closed: service.SurveyClosed) -> Response:
    if _wants_html(request):
        language = rules.page_language(closed.language) if closed.language else _browser_language(request)
        return _html(page.message(language, closed.reason), service.PROBLEMS[closed.reason][0])
    raise _problem(service.problem_of(closed))


def _form_view(survey: Any, title: Any, **extra: Any) -> page.FormView:
    return page.FormView(kind=survey["kind"], language=rules.page_language(survey["language"]),
                         number=title["number"] if title else None, subject=title["subject"] if title else None,
                         **extra)


_CLOSED = {"_409": "The survey was answered already (`survey-answered`): the answer stands.",
           "_410": "The survey's link expired (`survey-expired`).",
           # the link takes no login, so the gateway limits it per client address
           "_429": "Too many requests from this address (the gateway's limit; `Retry-After`)."}
_HTML_OK = {"content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The survey's page (a form posting back to this URL)."}
_ANSWER_BODY = {
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [
            CsatAnswer.model_json_schema(ref_template="#/components/schemas/{model}"),
            NpsAnswer.model_json_schema(ref_template="#/components/schemas/{model}")]}},
        FORM_TYPE: {"schema": {"type": "object", "additionalProperties": False, "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
            "comment": {"type": "string", "maxLength": SURVEY_COMMENT_MAX_CHARS}}}},
    }},
}


@public.get("/v1/surveys/{token:survey_token}", response_class=HTMLResponse, responses={200: _HTML_OK, **problem_responses(409, 410, 429, **_CLOSED)},
            summary="The survey's answer page (no login: the link's token is the credential)")
async def survey_page(request: Request, token: Token) -> Response:
    """A page in the survey's language (zh-CN or en) with the ticket's number and subject (CSAT).
    A browser is shown an invalid, expired or answered link as a page; other clients get the
    problem (404, 410, 409)."""
    async with runtime_of(request).raw_connection() as conn:
        try:
            survey, title = await service.open_survey(conn, key=_key(request), token=token)
        except service.SurveyClosed as closed:
            return _closed(request, closed)
    return _html(page.form(_form_view(survey, title)))


def _form_values(raw: bytes) -> dict[str, Any]:
    """The page's form as the JSON body it stands for: ``rating`` / ``score`` as integers when
    they are, an empty comment as none. A repeated or unknown field stays for the model to refuse."""
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "malformed-body", "Malformed form", "The form is not valid UTF-8 form data.") from None
    out: dict[str, Any] = {}
    for name, values in fields.items():
        value: Any = values if len(values) > 1 else values[0]
        if name in ("rating", "score") and isinstance(value, str) and _SMALL_INT.match(value):
            value = int(value)
        if name == "comment" and value == "":
            continue
        out[name] = value
    return out


def _json_values(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Problem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.") from None


@public.post("/v1/surveys/{token:survey_token}", response_model=SurveyAnswerRead, openapi_extra=_ANSWER_BODY,
             responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                              "description": "Answered (a thank-you page for a browser's form)."},
                        **problem_responses(400, 409, 410, 413, 422, 429, **_CLOSED)},
             summary="Answer a survey once: CSAT {\"rating\": 1-5, \"comment\"}, NPS {\"score\": 0-10, \"comment\"}")
async def answer_survey(request: Request, token: Token) -> Response:
    """JSON or the page's form. A second answer changes nothing and is a 409; an expired link a
    410; an invalid one a 404."""
    form = request.headers.get("content-type", "").split(";", 1)[0].strip().lower() == FORM_TYPE
    raw = await request.body()
    async with runtime_of(request).raw_connection() as conn:
        try:
            survey, title = await service.open_survey(conn, key=_key(request), token=token)
        except service.SurveyClosed as closed:
            return _closed(request, closed)
        values = _form_values(raw) if form else _json_values(raw)
        try:
            answer: CsatAnswer | NpsAnswer = service.parse_answer(survey["kind"], values)
        except RequestValidationError:
            if not _wants_html(request):
                raise
            language = rules.page_language(survey["language"])
            key = "too_long" if len(str(values.get("comment", "") if isinstance(values, dict) else "")) > \
                SURVEY_COMMENT_MAX_CHARS else "choose"
            comment = values.get("comment") if isinstance(values, dict) and isinstance(values.get("comment"), str) else ""
            return _html(page.form(_form_view(survey, title, error=page.text(language, key), comment=comment)), 422)
        try:
            async with conn.transaction():
                row = await service.record_answer(conn, survey=survey, answer=answer)
        except service.SurveyClosed as closed:
            return _closed(request, closed)
    runtime_of(request).notify_relay()
    if _wants_html(request):
        return _html(page.message(rules.page_language(survey["language"]), "thanks"))
    return _json(service.answer_read(row))
