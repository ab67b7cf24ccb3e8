"""Principals and the objects they own, built through the gateway of a running stack.

Two sides: **A** (the "team / channel" side: every path parameter of the matrix names one of its
objects) and **B** (the other team, the other channel). The principal kinds:

========================  ===============================================================
``admin``                 the stack's dev admin
``supervisor``            a supervisor (member of no team)
``agent``                 an agent of team A
``agent_other``           an agent of team B only
``key``                   channel key A (the ``api`` channel's dev key): it created ticket A
``key_other``             channel key B (the ``web`` channel's dev key)
``customer``              customer A's capabilities: a kb customer token (``hkc1.``) as the
                          bearer on every route, a survey token, a confirmation token and a
                          chat visitor token in the routes that take them
``anonymous``             no credentials
========================  ===============================================================

Other tests may import ``KINDS``, ``new_user`` and ``World``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from helpdesk_common.testing import wait_for

KINDS = ("admin", "supervisor", "agent", "agent_other", "key", "key_other", "customer", "anonymous")
USER_KINDS = ("admin", "supervisor", "agent", "agent_other")

#: one attachment's bytes (a PNG signature and a little text)
PNG = b"\x89PNG\r\n\x1a\n" + b"matrix attachment" * 4


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expect(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, f"{response.request.method} {response.request.url}: " \
                                            f"{response.status_code} {response.text[:500]}"
    return response.json() if response.content and "json" in response.headers.get("content-type", "") else None


async def login(gw: httpx.AsyncClient, email: str, password: str) -> str:
    return expect(await gw.post("/v1/auth/login", json={"email": email, "password": password}), 200)["access_token"]


async def new_user(gw: httpx.AsyncClient, admin: dict[str, str], *, role: str, name: str,
                   password: str | None = None) -> tuple[str, str, str]:
    """A gateway user of ``role`` (with its agent profile in ticket-svc for ticket roles); returns
    (user id, e-mail, access token)."""
    password = password or uuid.uuid4().hex + "Aa1!"
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    user = expect(await gw.post("/v1/users", json={"email": email, "password": password, "role": role, "name": name},
                                headers=admin), 201)
    if role != "editor":
        expect(await gw.put(f"/v1/agents/{user['id']}", json={"display_name": name, "status": "online"},
                            headers=admin), 200)
    return user["id"], email, await login(gw, email, password)


@dataclass
class World:
    """Everything the matrix's cells name. ``ids`` holds side A's objects by name (the path
    parameters), ``headers`` each principal kind's credentials, ``tokens`` the customer's
    capabilities, ``secrets`` the stack's keys (to mint capability tokens as the services do)."""

    gw: httpx.AsyncClient
    headers: dict[str, dict[str, str]]
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    #: user kinds' sign-in (e-mail, password) and role, for sessions of their own
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    json_values: dict[str, Any] = field(default_factory=dict)

    def ids_json(self, name: str) -> Any:
        """A JSON value built at set-up (a rule's body that names set-up objects); a fresh copy."""
        value = self.json_values[name]
        return value(self) if callable(value) else json.loads(json.dumps(value))

    async def relogin(self, kind: str) -> str:
        """A new session of the kind's user (for a cell that ends its session)."""
        return await login(self.gw, *self.passwords[kind])

    async def throwaway_login(self, role: str) -> tuple[str, str, str]:
        password = uuid.uuid4().hex + "Aa1!"
        email = f"throwaway-{uuid.uuid4().hex[:10]}@example.com"
        expect(await self.gw.post("/v1/users", json={"email": email, "password": password, "role": role},
                                  headers=self.admin), 201)
        return email, password, await login(self.gw, email, password)

    async def article(self, *, publish: bool, visibility: str = "public") -> str:
        article = await self.post("/v1/kb/articles", {"section_id": self.ids["section_id"], "locale": "en",
                                                      "title": f"Matrix refund article {uuid.uuid4().hex[:6]}",
                                                      "body_html": "<p>How refunds work 退款</p>",
                                                      "visibility": visibility})
        if publish:
            await self.post(f"/v1/kb/articles/{article['id']}/publish", {"locale": "en"}, status=200)
        return article["id"]

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    # --- throwaway objects (a cell that deletes or consumes one gets its own) -------------
    async def ticket(self, *, team: str = "team_a", key: str = "key", subject: str = "matrix ticket",
                     ticket_type: str | None = None, email: str | None = None) -> str:
        body: dict[str, Any] = {"subject": f"{subject} {self.suffix}",
                                "requester": {"email": email or self.ids["customer_a_email"]}}
        if ticket_type:
            body["type"] = ticket_type
        created = expect(await self.gw.post("/v1/tickets", json=body, headers=self.headers[key]), 201)
        if team:
            expect(await self.gw.patch(f"/v1/tickets/{created['id']}", json={"team_id": self.ids[team]},
                                       headers=self.admin), 200)
        return created["id"]

    async def ticket_number(self, ticket_id: str) -> int:
        return expect(await self.gw.get(f"/v1/tickets/{ticket_id}", headers=self.admin), 200)["number"]

    async def team(self) -> str:
        return expect(await self.gw.post("/v1/teams", json={"name": f"throwaway {uuid.uuid4().hex[:10]}",
                                                           "strategy": "manual", "members": []},
                                         headers=self.admin), 201)["id"]

    async def user(self, role: str = "agent") -> str:
        password = uuid.uuid4().hex + "Aa1!"
        return expect(await self.gw.post("/v1/users", json={
            "email": f"throwaway-{uuid.uuid4().hex[:10]}@example.com", "password": password, "role": role},
            headers=self.admin), 201)["id"]

    async def customer(self) -> str:
        return expect(await self.gw.post("/v1/customers", json={
            "name": "Throwaway 客户", "identities": [{"kind": "email", "value": f"tw-{uuid.uuid4().hex[:10]}@example.com"}]},
            headers=self.admin), 201)["id"]

    async def post(self, path: str, body: Any, *, status: int = 201, key: str = "admin") -> dict[str, Any]:
        return expect(await self.gw.post(path, json=body, headers=self.headers[key]), status)


async def build_world(gw: httpx.AsyncClient, *, creds: dict[str, Any], secrets: dict[str, str]) -> World:
    """Users, teams, keys and side A's objects of every kind the matrix names (and a few of side B)."""
    admin = bearer(await login(gw, creds["admin_email"], creds["admin_password"]))
    world = World(gw=gw, headers={"admin": admin}, secrets=secrets)
    ids, values = world.ids, world.json_values
    world.passwords["admin"] = (creds["admin_email"], creds["admin_password"])
    world.roles.update(admin="admin", supervisor="supervisor", agent="agent", agent_other="agent")
    for kind, role in (("supervisor", "supervisor"), ("agent", "agent"), ("agent_other", "agent")):
        password = uuid.uuid4().hex + "Aa1!"
        user_id, email, token = await new_user(gw, admin, role=role, name=f"matrix-{kind}", password=password)
        world.headers[kind] = bearer(token)
        world.passwords[kind] = (email, password)
        ids[f"{kind}_id"] = user_id
    world.headers.update(key=bearer(creds["channel_api_key"]), key_other=bearer(creds["channel_api_keys"]["web"]),
                         anonymous={})
    for side, member in (("a", ids["agent_id"]), ("b", ids["agent_other_id"])):
        ids[f"team_{side}"] = (await world.post("/v1/teams", {"name": f"matrix team {side} {world.suffix}",
                                                              "strategy": "manual", "members": [member]}))["id"]

    # customer A (and B), with tickets of team A created by key A
    ids["customer_a_email"] = f"matrix-customer-{world.suffix}@example.com"
    customer = await world.post("/v1/customers", {"name": "矩阵 Customer A", "identities": [
        {"kind": "email", "value": ids["customer_a_email"]}, {"kind": "phone", "value": f"+86138{int(world.suffix, 16) % 10**8:08d}"}]})
    ids["customer_id"] = customer["id"]
    ids["identity_id"] = customer["identities"][0]["id"]
    ids["customer_b"] = await world.customer()
    ids["ticket_id"] = await world.ticket(subject="矩阵 ticket A")
    ids["ticket_c"] = await world.ticket(subject="matrix ticket A2")
    ids["ticket_b"] = await world.ticket(team="team_b", key="key_other", subject="matrix ticket B")
    # the Zendesk-compatible surface's integer ids of ticket A, customer A and an organisation
    ids["ticket_number"] = str(await world.ticket_number(ids["ticket_id"]))
    found = expect(await gw.get("/api/v2/users/search.json", params={"query": ids["customer_a_email"]},
                                headers=admin), 200)["users"]
    ids["zendesk_customer_id"] = str(found[0]["id"])
    ids["zendesk_organization_id"] = str(expect(await gw.post("/api/v2/organizations.json", json={
        "organization": {"name": f"matrix zendesk org {world.suffix}"}}, headers=admin), 201)["organization"]["id"])
    message = await world.post(f"/v1/tickets/{ids['ticket_id']}/messages", {
        "body": "public reply with a file", "attachments": [
            {"filename": "receipt.png", "content_type": "image/png", "content_base64": base64.b64encode(PNG).decode()}]})
    attachments = message.get("attachments") or []
    if not attachments:
        listed = expect(await gw.get(f"/v1/tickets/{ids['ticket_id']}/messages", headers=admin), 200)["items"]
        attachments = [a for m in listed for a in m.get("attachments", [])]
    ids["attachment_id"] = attachments[0]["id"]
    await world.post(f"/v1/tickets/{ids['ticket_id']}/messages", {"body": "internal note", "public": False})
    ids["macro_id"] = (await world.post("/v1/macros", {"name": f"matrix macro {world.suffix}",
                                                       "actions": {"priority": "high"}, "shared": True}))["id"]

    # forms and processes: an approval process (its approvers: the supervisor role)
    ids["form_type"] = f"matrixform{world.suffix}"
    form = expect(await gw.put(f"/v1/forms/{ids['form_type']}", json={"fields": [
        {"key": "order_no", "label": "Order", "type": "text"}]}, headers=admin), 200, 201)
    ids["form_version"] = str(form.get("version", 1))
    values["process_body"] = {"steps": [{"key": "approval", "name": "Approval", "kind": "approval",
                                         "approvers": {"roles": ["admin", "supervisor"]}, "rule": "any"}]}
    ids["approval_type"] = f"matrixappr{world.suffix}"
    process = expect(await gw.put(f"/v1/processes/{ids['approval_type']}", json=world.ids_json("process_body"),
                                  headers=admin), 200, 201)
    ids["process_version"] = str(process.get("version", 1))
    ids["one"] = "1"

    # the customer's capabilities: a confirmation link, a survey link, a kb token, a chat visitor token
    await _confirmation(world)
    await _survey(world)
    world.tokens["kb"] = (await world.post("/v1/kb/customer-tokens", {"customer_id": ids["customer_id"]},
                                           key="agent"))["token"]
    world.headers["customer"] = bearer(world.tokens["kb"])
    await _chat(world, creds)

    # ticket-svc's rules
    values["trigger_body"] = {"name": "matrix trigger", "conditions": {"all": [
        {"field": "priority", "op": "changed_to", "value": "urgent"}]}, "actions": [{"type": "add_tags", "tags": ["hot"]}]}
    values["automation_body"] = {"name": "matrix automation", "conditions": {"all": [
        {"field": "status", "op": "eq", "value": "solved"}, {"field": "hours_since.solved", "op": "gte", "value": 960}]},
        "actions": [{"type": "add_tags", "tags": ["old"]}]}
    ids["trigger_id"] = (await world.post("/v1/triggers", world.ids_json("trigger_body")))["id"]
    ids["automation_id"] = (await world.post("/v1/automations", world.ids_json("automation_body")))["id"]

    # customer-svc
    ids["organization_id"] = (await world.post("/v1/organizations", {"name": f"matrix org {world.suffix}"}))["id"]
    ids["customer_attribute"] = f"m_{world.suffix}"
    await world.post("/v1/customer-attributes", {"key": ids["customer_attribute"], "label": {"en": "M"}, "type": "text"})
    ids["organization_attribute"] = f"m_{world.suffix}"
    await world.post("/v1/organization-attributes", {"key": ids["organization_attribute"], "label": {"en": "M"},
                                                     "type": "text"})
    ids["order_id"] = (await world.post(f"/v1/customers/{ids['customer_id']}/orders", {
        "external_id": f"matrix-{world.suffix}", "ordered_at": "2026-01-05T09:00:00+08:00", "currency": "CNY",
        "amount": "88.00"}))["id"]
    imported = expect(await gw.post("/v1/imports", files={"file": ("c.csv", b"email,name\nimp-m@example.com,M\n",
                                                                   "text/csv")},
                                    data={"kind": "customers"}, headers=admin), 201, 202)
    ids["import_id"] = imported["id"]
    recompute = expect(await gw.post("/v1/insights/recompute", headers=admin), 200, 201, 202)
    ids["run_id"] = recompute.get("run_id") or recompute["id"]
    values["tier_rules"] = {"rules": [{"when": {"monetary_at_least": "100000"}, "tier": "vip"}]}

    request = expect(await gw.post("/v1/privacy/requests", json={"customer_id": ids["customer_b"], "kind": "export"},
                                   headers=admin), 200, 201, 202)
    ids["request_id"] = request["id"]

    # sla-svc
    values["policy_body"] = lambda w: {"name": f"matrix policy {uuid.uuid4().hex[:6]}",
                                       "targets": {"first_response": {"minutes": 30}}}
    ids["policy_id"] = (await world.post("/v1/sla/policies", world.ids_json("policy_body")))["id"]
    ids["calendar_id"] = (await world.post("/v1/sla/calendars", {"name": f"matrix {world.suffix}",
                                                                 "timezone": "Asia/Shanghai"}))["id"]
    expect(await gw.put(f"/v1/sla/teams/{ids['team_a']}/calendar", json={"calendar_id": ids["calendar_id"]},
                        headers=admin), 200, 201)

    # notify-svc
    values["webhook_body"] = {"url": "http://127.0.0.9:9/matrix", "event_types": ["ticket.created"]}
    ids["subscription_id"] = (await world.post("/v1/webhooks", world.ids_json("webhook_body")))["id"]
    templates = expect(await gw.get("/v1/notification-templates", headers=admin), 200)["items"]
    ids["template_key"], ids["template_language"] = templates[0]["key"], templates[0]["language"]
    ids["template_language_de"] = "de"
    # rows several cells write at once exist before they do (their first write is an insert)
    expect(await gw.put(f"/v1/notification-preferences/customers/{ids['customer_id']}", json={"opted_out": False},
                        headers=admin), 200, 201)
    expect(await gw.put(f"/v1/notification-preferences/emails/{ids['customer_a_email']}", json={"opted_out": False},
                        headers=admin), 200, 201)
    expect(await gw.put(f"/v1/notification-contacts/{ids['agent_id']}", json={}, headers=admin), 200, 201)
    rules = expect(await gw.get("/v1/notification-rules", headers=admin), 200)["items"]
    ids["notification_rule"] = rules[0]["key"]

    # kb-svc: a category, a section, a draft with an attachment, a published article with one
    ids["category_id"] = (await world.post("/v1/kb/categories", {"name": f"matrix {world.suffix}", "locale": "en"}))["id"]
    ids["section_id"] = (await world.post("/v1/kb/sections", {"category_id": ids["category_id"],
                                                              "name": f"matrix {world.suffix}", "locale": "en"}))["id"]
    ids["draft_article_id"] = await world.article(publish=False)
    ids["public_article_id"] = await world.article(publish=True)
    for article, name in ((ids["draft_article_id"], "kb_attachment_id"), (ids["public_article_id"], "public_attachment_id")):
        r = await gw.post(f"/v1/kb/articles/{article}/attachments", content=PNG, params={"filename": "m.png"},
                          headers={**admin, "Content-Type": "image/png"})
        ids[name] = expect(r, 201)["id"]
    suggestion = expect(await gw.post("/v1/kb/suggestions", json={"subject": "matrix refund"}), 200, 201)
    ids["suggestion_id"] = suggestion["suggestion_id"]

    # deliveries: a webhook delivery (ticket.created to an address where nothing listens) and a
    # reply delivery (the public reply on ticket A, by e-mail to a server that is not there)
    async def webhook_delivery():
        await world.ticket(subject="matrix webhook")
        items = expect(await gw.get(f"/v1/webhooks/{ids['subscription_id']}/deliveries", headers=admin), 200)["items"]
        return items[0]["id"] if items else None

    ids["webhook_delivery_id"] = await wait_for(webhook_delivery, timeout=60, interval=0.3)

    async def reply_delivery():
        items = expect(await gw.get("/v1/deliveries", headers=admin), 200)["items"]
        return items[0]["id"] if items else None

    ids["delivery_id"] = await wait_for(reply_delivery, timeout=60, interval=0.3)
    return world


async def _confirmation(world: World) -> None:
    """A ticket whose customer-confirmation step runs, and its link's token (minted with the
    stack's key, as ticket-svc mints the one it mails)."""
    from ticket_svc.confirmations import tokens

    gw, ids = world.gw, world.ids
    ticket_type = f"matrixconf{world.suffix}"
    expect(await gw.put(f"/v1/processes/{ticket_type}", json={"steps": [
        {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation", "timeout_minutes": 600,
         "on_timeout": "close", "via": "reply_or_link"}]}, headers=world.admin), 200, 201)
    ticket = ids["process_ticket"] = await world.ticket(ticket_type=ticket_type, subject="matrix confirmation")
    await world.post(f"/v1/tickets/{ticket}/messages", {"body": "done"})
    expect(await gw.patch(f"/v1/tickets/{ticket}", json={"status": "solved"}, headers=world.admin), 200)

    async def step():
        process = expect(await gw.get(f"/v1/tickets/{ticket}/process", headers=world.admin), 200)
        return next((step["id"] for step in process.get("steps", [])
                     if step["key"] == "confirm" and step["status"] == "active"), None)

    step_id = await wait_for(step, timeout=60, interval=0.3)
    key = world.secrets["ticket_confirmation_token_key"].encode()
    world.tokens["confirmation"] = ids["confirmation_token"] = tokens.mint(
        key, ticket_id=uuid.UUID(ticket), step_id=uuid.UUID(step_id), expires=int(time.time()) + 3600)


async def _survey(world: World) -> None:
    """A CSAT survey of a solved ticket of customer A, and its link's token (minted with the
    stack's key, as customer-svc mints the one it mails)."""
    from customer_svc.surveys import tokens

    gw, ids = world.gw, world.ids
    expect(await gw.put("/v1/surveys/settings", json={"csat_enabled": True, "csat_delay_minutes": 0,
                                                      "nps_enabled": False, "nps_interval_days": 90},
                        headers=world.admin), 200)
    ticket = await world.ticket(subject="matrix survey")
    await world.post(f"/v1/tickets/{ticket}/messages", {"body": "solved"})
    expect(await gw.patch(f"/v1/tickets/{ticket}", json={"status": "solved"}, headers=world.admin), 200)

    async def survey():
        items = expect(await gw.get(f"/v1/customers/{ids['customer_id']}/surveys", headers=world.admin), 200)["items"]
        return next((item["id"] for item in items if item["ticket_id"] == ticket and item["status"] == "sent"), None)

    survey_id = await wait_for(survey, timeout=90, interval=0.3)
    key = world.secrets["customer_survey_token_key"].encode()
    world.tokens["survey"] = ids["survey_token"] = tokens.mint(key, survey_id=uuid.UUID(survey_id),
                                                               expires=int(time.time()) + 3600)


async def _chat(world: World, creds: dict[str, Any]) -> None:
    """A chat conversation of the chat channel and its visitor token."""
    chat_key = bearer(creds["channel_api_keys"]["chat"])
    conversation = f"matrix-{world.suffix}"
    expect(await world.gw.post("/v1/channels/chat/inbound", json={
        "conversation_id": conversation, "message_id": f"m-{world.suffix}", "visitor": {"name": "访客"},
        "text": "你好"}, headers=chat_key), 200, 201)
    world.ids["conversation_id"] = conversation
    minted = expect(await world.gw.post(f"/v1/channels/chat/conversations/{conversation}/visitor-token",
                                        headers=chat_key), 200, 201)
    world.tokens["visitor"] = minted["visitor_token"]
