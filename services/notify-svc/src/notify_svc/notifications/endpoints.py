"""Notification API. Admins edit templates and rules; every user reads them and previews; any
user records a customer's opt-out (agents act on the customer's request); an agent sets their own
chat ids, admins anyone's. Channel keys reach none of it. One request, one transaction."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import BARE_EMAIL_PATTERN

from . import repository, service
from .schemas import (ContactIn, ContactRead, LogList, PreferenceIn, PreferenceRead, PreviewIn, PreviewRead, RuleList,
                      RulePatch, RuleRead, TeamOverrideIn, TemplateIn, TemplateList, TemplateRead)

router = APIRouter(tags=["notifications"])

KeyPath = Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$", description="a notification key: ticket_received, "
                              "ticket_solved, ticket_assigned, sla_warning, sla_breached, escalation")]
LanguagePath = Annotated[str, Path(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$",
                                   description="a language tag: zh-CN, en, ...")]
EmailPath = Annotated[str, Path(max_length=254, pattern=BARE_EMAIL_PATTERN,
                                description="the customer's e-mail address (case does not matter)")]
_TEMPLATE_422 = problem_responses(422, _422="The template does not render: `errors` names each part and line.")


def _user(principal: Principal) -> None:
    require_user(principal)


def _admin(principal: Principal) -> None:
    require_user(principal, "admin")


def _answer(body: dict, status: int = 200) -> JSONBytesResponse:
    return JSONBytesResponse(body, status_code=status, headers={"ETag": etag(body["version"])})


# ---- templates ------------------------------------------------------------------------------------------

@router.get("/v1/notification-templates", response_model=TemplateList,
            summary="Every template: each key in each language, built-in or edited")
async def list_templates(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        items = await service.list_templates(conn)
    return JSONBytesResponse({"items": items, "next_cursor": None})


@router.get("/v1/notification-templates/{key}/{language}", response_model=TemplateRead,
            summary="One template (the built-in until an admin edits it)")
async def get_template(request: Request, key: KeyPath, language: LanguagePath,
                       principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return _answer(await service.get_template(conn, key=key, language=language))


@router.put("/v1/notification-templates/{key}/{language}", response_model=TemplateRead, responses=_TEMPLATE_422,
            summary="Save a template (checked first: a template that does not render is refused)")
async def put_template(request: Request, key: KeyPath, language: LanguagePath, body: TemplateIn,
                       principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.put_template(conn, key=key, language=language, body=body, by=principal.ref,
                                                  if_match=if_match))


@router.delete("/v1/notification-templates/{key}/{language}", status_code=204,
               summary="Forget an edited template: the built-in applies again")
async def delete_template(request: Request, key: KeyPath, language: LanguagePath, principal: CurrentPrincipal,
                          if_match: IfMatch = None) -> Response:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await service.delete_template(conn, key=key, language=language, if_match=if_match)
    return Response(status_code=204)


@router.post("/v1/notification-templates/preview", response_model=PreviewRead,
             responses={**_TEMPLATE_422, **problem_responses(
                 404, _404="No template of this key in this language, and the body does not give subject and "
                           "body_text (`not-found`).")},
             summary="Render a template with sample values (nothing is sent or saved)")
async def preview_template(request: Request, body: PreviewIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse(await service.preview(conn, body=body))


# ---- rules ------------------------------------------------------------------------------------------------

@router.get("/v1/notification-rules", response_model=RuleList, summary="Notification rules with their team overrides")
async def list_rules(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        items = await service.list_rules(conn)
    return JSONBytesResponse({"items": items, "next_cursor": None})


@router.get("/v1/notification-rules/{key}", response_model=RuleRead, summary="One notification rule")
async def get_rule(request: Request, key: KeyPath, principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return _answer(await service.get_rule(conn, key=key))


@router.patch("/v1/notification-rules/{key}", response_model=RuleRead,
              summary="Switch a rule on or off, change its recipients or the agents' channel")
async def patch_rule(request: Request, key: KeyPath, body: RulePatch, principal: CurrentPrincipal,
                     if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.patch_rule(conn, key=key, body=body, by=principal.ref, if_match=if_match))


@router.put("/v1/notification-rules/{key}/teams/{team_id:uuid}", response_model=RuleRead,
            summary="Switch a rule on or off for one team's tickets")
async def put_team_override(request: Request, key: KeyPath, team_id: uuid.UUID, body: TeamOverrideIn,
                            principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.put_team_override(conn, key=key, team_id=team_id, enabled=body.enabled,
                                                       by=principal.ref, if_match=if_match))


@router.delete("/v1/notification-rules/{key}/teams/{team_id:uuid}", response_model=RuleRead,
               summary="Remove a team's override: the rule's own switch applies to the team again")
async def delete_team_override(request: Request, key: KeyPath, team_id: uuid.UUID, principal: CurrentPrincipal,
                               if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.delete_team_override(conn, key=key, team_id=team_id, if_match=if_match))


# ---- customers' opt-out -------------------------------------------------------------------------------------

@router.get("/v1/notification-preferences/customers/{customer_id:uuid}", response_model=PreferenceRead,
            summary="Whether a customer opted out of notifications")
async def get_customer_preference(request: Request, customer_id: uuid.UUID,
                                  principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return _answer(await service.get_preference(conn, kind="customer", value=str(customer_id)))


@router.put("/v1/notification-preferences/customers/{customer_id:uuid}", response_model=PreferenceRead,
            summary="Opt a customer out of notifications, or back in (replies are never affected)")
async def put_customer_preference(request: Request, customer_id: uuid.UUID, body: PreferenceIn,
                                  principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    _user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.put_preference(conn, kind="customer", value=str(customer_id),
                                                    opted_out=body.opted_out, by=principal.ref, if_match=if_match))


@router.get("/v1/notification-preferences/emails/{email}", response_model=PreferenceRead,
            summary="Whether an e-mail address opted out of notifications")
async def get_email_preference(request: Request, email: EmailPath, principal: CurrentPrincipal) -> JSONBytesResponse:
    _user(principal)
    value = service.email_key(email)
    async with runtime_of(request).raw_connection() as conn:
        return _answer(await service.get_preference(conn, kind="email", value=value))


@router.put("/v1/notification-preferences/emails/{email}", response_model=PreferenceRead,
            summary="Opt an e-mail address out of notifications, or back in (before the customer is known)")
async def put_email_preference(request: Request, email: EmailPath, body: PreferenceIn, principal: CurrentPrincipal,
                               if_match: IfMatch = None) -> JSONBytesResponse:
    _user(principal)
    value = service.email_key(email)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.put_preference(conn, kind="email", value=value, opted_out=body.opted_out,
                                                    by=principal.ref, if_match=if_match))


# ---- agents' chat ids ----------------------------------------------------------------------------------------

def _self_or_admin(principal: Principal, user_id: uuid.UUID) -> None:
    require_user(principal)
    if principal.role != "admin" and principal.id != str(user_id):
        raise Problem(403, "forbidden", "Forbidden", "Only the user themselves or an admin may do this.")


@router.get("/v1/notification-contacts/{user_id:uuid}", response_model=ContactRead,
            summary="A user's WeCom and DingTalk ids for notifications")
async def get_contact(request: Request, user_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _self_or_admin(principal, user_id)
    async with runtime_of(request).raw_connection() as conn:
        return _answer(service.contact_read(user_id, await repository.contact(conn, user_id)))


@router.put("/v1/notification-contacts/{user_id:uuid}", response_model=ContactRead,
            summary="Set a user's WeCom and DingTalk ids (the user themselves, or an admin)")
async def put_contact(request: Request, user_id: uuid.UUID, body: ContactIn, principal: CurrentPrincipal,
                      if_match: IfMatch = None) -> JSONBytesResponse:
    _self_or_admin(principal, user_id)
    async with runtime_of(request).raw_transaction() as conn:
        return _answer(await service.put_contact(conn, user_id=user_id, wecom_userid=body.wecom_userid,
                                                 dingtalk_userid=body.dingtalk_userid, by=principal.ref,
                                                 if_match=if_match))


# ---- what events sent or skipped ------------------------------------------------------------------------

@router.get("/v1/notification-log", response_model=LogList,
            summary="What the events of a ticket notified, and who was skipped and why (supervisors, admins)")
async def notification_log(request: Request, principal: CurrentPrincipal,
                           ticket_id: Annotated[uuid.UUID, Query(description="the ticket")]) -> JSONBytesResponse:
    # supervisors and admins see every ticket; agents' ticket visibility is ticket-svc's to decide
    require_user(principal, "admin", "supervisor")
    async with runtime_of(request).raw_connection() as conn:
        rows = await repository.log_of_ticket(conn, ticket_id)
    return JSONBytesResponse({"items": [dict(r) for r in rows], "next_cursor": None})
