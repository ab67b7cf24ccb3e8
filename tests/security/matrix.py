"""The authorization matrix: for every public route, what each principal kind gets.

One ``Rule`` per route (``"METHOD /path/template"``, the templates of tests/security/routes.py).
``test_matrix.py`` fails for a route no rule names and for a rule that names no route, so a new
endpoint cannot ship without a row here.

Outcomes, per principal kind (principals.KINDS, in that order, in the profile strings):

- ``ok``  — the caller may do it: any 2xx/3xx, or one of the rule's ``tolerate`` statuses (a 4xx
  about the input, e.g. 409 for an answer given twice), each with its reason;
- ``401`` — no credential it takes (no credentials; the customer's kb token where it is not one);
- ``403`` — the caller is known but its role or kind may not use the route at all;
- ``404`` — the route is the caller's, the object is not: existence itself is private
  (another team's ticket, another channel's ticket, and everything hanging off them).

Every cell answers a problem+json for a 4xx and never a 5xx. Path parameters name side A's
objects (principals.World.ids): "agent" and "key" are the side that owns them, "agent_other" and
"key_other" prove the 404s. A cell that deletes, merges or uses up an object gets a throwaway one
of its own (``fresh``), so cells run concurrently and in any order.

Reasons for expectations that could be argued either way are written next to the rule.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .principals import KINDS, PNG, World

Prepared = dict[str, Any]


def profile(text: str) -> dict[str, str]:
    """``"ok ok ok 404 ok 404 401 401"`` → {kind: outcome} in principals.KINDS order."""
    outcomes = text.split()
    assert len(outcomes) == len(KINDS), text
    assert set(outcomes) <= {"ok", "401", "403", "404"}, text
    return dict(zip(KINDS, outcomes))


#                     admin sup agent agent_other key key_other customer anonymous
EVERYONE = profile(  "ok    ok  ok    ok          ok  ok        ok       ok")
ANY_CALLER = profile("ok    ok  ok    ok          ok  ok        401      401")
USERS = profile(     "ok    ok  ok    ok          403 403       401      401")
STAFF = profile(     "ok    ok  403   403         403 403       401      401")
ADMIN = profile(     "ok    403 403   403         403 403       401      401")
#: ticket A: staff, its team's agent, the key that created it; 404 to the other team and key
TICKET = profile(    "ok    ok  ok    404         ok  404       401      401")
#: ticket A, users only: a channel key may not use the route at all
TICKET_USERS = profile("ok  ok  ok    404         403 403       401      401")
#: ticket A, staff only (assignment by supervisors): an agent of its team is refused by role,
#: the other team's agent never learns it exists
TICKET_STAFF = profile("ok  ok  403   404         403 403       401      401")
#: a deleted ticket, staff only: it exists for nobody else, its team's agent included (404, not 403)
DELETED_STAFF = profile("ok ok  404   404         403 403       401      401")
#: one channel's intake: that channel's key only (key_other is the web channel's key)
#: admins may post any channel's payload (testing a channel's set-up)
WEB_INTAKE = profile("ok    403 403   403         403 ok        401      401")
OTHER_INTAKE = profile("ok  403 403   403         403 403       401      401")
#: the knowledge base's writes: admins (and editors, not a kind here); readers of drafts: staff
KB_EDIT = profile(   "ok    403 403   403         403 403       401      401")
#: channel keys are refused the route whatever the ticket (403 by kind: it tells nothing about
#: the ticket); agents as for TICKET
TICKET_NO_KEYS = TICKET_USERS


@dataclass
class Rule:
    route: str  # "METHOD /path/template"
    expect: dict[str, str]
    #: path parameter → World.ids key (default: the parameter's own name), or "=literal"
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None  # a body, or callable(world) -> body
    content: bytes | None = None
    content_type: str | None = None
    files: Any = None
    data: Any = None
    query: Any = None  # a dict, or callable(world) -> dict
    headers: dict[str, str] = field(default_factory=dict)
    #: async (world, kind) -> {"params": {...}, "headers": {...}} for a throwaway object per cell
    fresh: Callable[[World, str], Awaitable[Prepared]] | None = None
    #: statuses that count as "ok" for an allowed caller, each with its reason
    tolerate: dict[int, str] = field(default_factory=dict)
    #: per kind: replace the outcome (with the reason in ``note``)
    note: str = ""
    stream: bool = False  # the response is a stream: read the status only
    #: the customer's credential on this route: a key of World.tokens instead of the kb token
    customer_token: str | None = None
    #: runs after the concurrent cells, one at a time (it names every object of a kind)
    serial: bool = False
    #: the error body a 4xx must have: "problem" (RFC 9457) or "zendesk" ({"error", "description"}:
    #: the /api/v2 surface, docs/zendesk-api.md)
    envelope: str = "problem"

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.route.split(" ", 1)[1]


def override(base: dict[str, str], **kinds: str) -> dict[str, str]:
    assert kinds.keys() <= set(KINDS), kinds
    return {**base, **kinds}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _u() -> str:
    return uuid.uuid4().hex[:10]


# --- throwaway objects ------------------------------------------------------------------------

async def _fresh_ticket(world: World, kind: str) -> Prepared:
    return {"params": {"ticket_id": await world.ticket()}}


async def _fresh_deleted_ticket(world: World, kind: str) -> Prepared:
    ticket = await world.ticket()
    number = await world.ticket_number(ticket)
    expect_status = (await world.gw.delete(f"/v1/tickets/{ticket}", headers=world.admin)).status_code
    assert expect_status == 204, expect_status
    return {"params": {"ticket_id": ticket, "number": str(number)}}


async def _fresh_merge(world: World, kind: str) -> Prepared:
    source, target = await world.ticket(), await world.ticket()
    return {"params": {"ticket_id": source}, "json": {"target_id": target}}


async def _fresh_link(world: World, kind: str) -> Prepared:
    one, other = await world.ticket(), await world.ticket()
    await world.post(f"/v1/tickets/{one}/links", {"other_id": other, "kind": "related"}, status=204)
    return {"params": {"ticket_id": one, "kind": "related", "other_id": other}}


async def _fresh_approval(world: World, kind: str) -> Prepared:
    return {"params": {"ticket_id": await world.ticket(ticket_type=world.ids["approval_type"]),
                       "step_key": "approval"}}


async def _fresh_team(world: World, kind: str) -> Prepared:
    return {"params": {"team_id": await world.team()}}


async def _fresh_user(world: World, kind: str) -> Prepared:
    return {"params": {"user_id": await world.user()}}


async def _own_session(world: World, kind: str) -> Prepared:
    """The caller's own new session (a logout must not end the matrix's)."""
    if kind in world.passwords:
        return {"headers": {"Authorization": f"Bearer {await world.relogin(kind)}"}}
    return {}


async def _own_password(world: World, kind: str) -> Prepared:
    """A throwaway user of the kind's role changes its own password."""
    if kind not in world.roles:
        return {"json": {"current_password": "x" * 12, "new_password": uuid.uuid4().hex}}
    email, password, token = await world.throwaway_login(world.roles[kind])
    return {"headers": {"Authorization": f"Bearer {token}"},
            "json": {"current_password": password, "new_password": uuid.uuid4().hex + "Bb2@"}}


async def _own_account(world: World, kind: str) -> Prepared:
    """A throwaway user of the kind's role, signed in: changes to one's own account (two-factor
    sign-in, personal tokens) never touch the matrix's principals."""
    if kind not in world.roles:
        return {"json": {"password": "not a user"}}
    _email, password, token = await world.throwaway_login(world.roles[kind])
    return {"headers": {"Authorization": f"Bearer {token}"}, "json": {"password": password}}


async def _own_account_no_body(world: World, kind: str) -> Prepared:
    prepared = await _own_account(world, kind)
    prepared.pop("json", None)
    return prepared


async def _own_account_code(world: World, kind: str) -> Prepared:
    return {**await _own_account(world, kind), "json": {"code": "000000"}}


async def _own_account_named(world: World, kind: str) -> Prepared:
    return {**await _own_account(world, kind), "json": {"name": "matrix token"}}


async def _own_api_token(world: World, kind: str) -> Prepared:
    """A personal token of the caller's own (for kinds without an account: one of agent A's)."""
    owner = kind if kind in world.roles else "agent"
    r = await world.gw.post("/v1/users/me/api-tokens", json={"name": f"throwaway {_u()}"},
                            headers=world.headers[owner])
    assert r.status_code == 201, r.text
    return {"params": {"token_id": r.json()["id"]}}


async def _fresh_api_key(world: World, kind: str) -> Prepared:
    key = await world.post("/v1/api-keys", {"name": f"throwaway {_u()}", "channel": "api"})
    return {"params": {"key_id": key["id"]}}


async def _fresh_routing_rule(world: World, kind: str) -> Prepared:
    rule = await world.post("/v1/routing/rules", {"name": f"throwaway {_u()}"})
    return {"params": {"rule_id": rule["id"]}}


async def _fresh_trigger(world: World, kind: str) -> Prepared:
    rule = await world.post("/v1/triggers", world.ids_json("trigger_body"))
    return {"params": {"rule_id": rule["id"]}}


async def _fresh_automation(world: World, kind: str) -> Prepared:
    rule = await world.post("/v1/automations", world.ids_json("automation_body"))
    return {"params": {"rule_id": rule["id"]}}


async def _fresh_process(world: World, kind: str) -> Prepared:
    ticket_type = f"tw{_u()}"
    expect = await world.gw.put(f"/v1/processes/{ticket_type}", json=world.ids_json("process_body"),
                                headers=world.admin)
    assert expect.status_code in (200, 201), expect.text
    return {"params": {"ticket_type": ticket_type}}


async def _fresh_macro(world: World, kind: str) -> Prepared:
    macro = await world.post("/v1/macros", {"name": f"throwaway {_u()}", "actions": {"priority": "high"},
                                            "shared": True})
    return {"params": {"macro_id": macro["id"]}}


async def _fresh_view(world: World, kind: str) -> Prepared:
    """A view of the caller's own (a view is its owner's); for other kinds, agent A's."""
    owner = kind if kind in world.roles else "agent"
    view = await world.post("/v1/views", {"name": f"throwaway {_u()}", "filters": {"status": ["open"]}}, key=owner)
    return {"params": {"view_id": view["id"]}}


async def _fresh_identity(world: World, kind: str) -> Prepared:
    customer = await world.customer()
    value = f"tw-{_u()}@example.com"
    answer = await world.post(f"/v1/customers/{customer}/identities", {"kind": "email", "value": value})
    identities = answer.get("identities", [answer])
    identity = next(i for i in identities if i.get("value") == value)
    return {"params": {"customer_id": customer, "identity_id": identity["id"]}}


async def _fresh_merge_customers(world: World, kind: str) -> Prepared:
    return {"params": {"customer_id": await world.customer()}, "json": {"source_id": await world.customer()}}


async def _fresh_organization(world: World, kind: str) -> Prepared:
    org = await world.post("/v1/organizations", {"name": f"throwaway {_u()}"})
    return {"params": {"organization_id": org["id"]}}


async def _fresh_attribute(world: World, kind: str, *, owner: str = "customer") -> Prepared:
    key = f"tw_{_u()}"
    await world.post(f"/v1/{owner}-attributes", {"key": key, "label": {"en": "Throwaway"}, "type": "text"})
    return {"params": {"key": key}}


async def _fresh_org_attribute(world: World, kind: str) -> Prepared:
    return await _fresh_attribute(world, kind, owner="organization")


async def _fresh_policy(world: World, kind: str) -> Prepared:
    policy = await world.post("/v1/sla/policies", world.ids_json("policy_body"))
    return {"params": {"policy_id": policy["id"]}}


async def _fresh_team_calendar(world: World, kind: str) -> Prepared:
    team = await world.team()
    r = await world.gw.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": world.ids["calendar_id"]},
                           headers=world.admin)
    assert r.status_code in (200, 201), r.text
    return {"params": {"team_id": team}}


async def _fresh_webhook(world: World, kind: str) -> Prepared:
    hook = await world.post("/v1/webhooks", world.ids_json("webhook_body"))
    return {"params": {"subscription_id": hook["id"]}}


#: one language per kind: the template cells run at once and must not race on one template
_TEMPLATE_LANGUAGES = dict(zip(KINDS, ["fr", "es", "it", "ja", "ko", "ru", "pt", "nl"]))


async def _fresh_template(world: World, kind: str) -> Prepared:
    language = _TEMPLATE_LANGUAGES[kind]
    key = world.ids["template_key"]
    r = await world.gw.put(f"/v1/notification-templates/{key}/{language}",
                           json={"subject": "matrix", "body_text": "matrix"}, headers=world.admin)
    assert r.status_code in (200, 201), r.text
    return {"params": {"key": key, "language": language}}


async def _fresh_rule_team(world: World, kind: str) -> Prepared:
    team = await world.team()
    r = await world.gw.put(f"/v1/notification-rules/{world.ids['notification_rule']}/teams/{team}",
                           json={"enabled": False}, headers=world.admin)
    assert r.status_code in (200, 201), r.text
    return {"params": {"key": world.ids["notification_rule"], "team_id": team}}


async def _fresh_kb_category(world: World, kind: str) -> Prepared:
    category = await world.post("/v1/kb/categories", {"name": f"throwaway {_u()}", "locale": "en"})
    return {"params": {"category_id": category["id"]}}


async def _fresh_kb_section(world: World, kind: str) -> Prepared:
    section = await world.post("/v1/kb/sections", {"category_id": world.ids["category_id"],
                                                   "name": f"throwaway {_u()}", "locale": "en"})
    return {"params": {"section_id": section["id"]}}


async def _fresh_article(world: World, kind: str) -> Prepared:
    return {"params": {"article_id": await world.article(publish=False)}}


async def _fresh_published_article(world: World, kind: str) -> Prepared:
    return {"params": {"article_id": await world.article(publish=True)}}


async def _fresh_translation(world: World, kind: str) -> Prepared:
    prepared = await _fresh_article_etag(world, kind)
    article = prepared["params"]["article_id"]
    r = await world.gw.put(f"/v1/kb/articles/{article}/translations/zh-CN", json={"title": "矩阵", "body_html": "正文"},
                           headers={**world.admin, **prepared["extra_headers"]})
    assert r.status_code in (200, 201), r.text
    return {"params": {"article_id": article, "locale": "zh-CN"}, "extra_headers": {"If-Match": r.headers["etag"]}}


async def _fresh_kb_attachment(world: World, kind: str) -> Prepared:
    article = await world.article(publish=False)
    r = await world.gw.post(f"/v1/kb/articles/{article}/attachments", content=PNG,
                            headers={**world.admin, "Content-Type": "image/png"},
                            params={"filename": "tw.png"})
    assert r.status_code == 201, r.text
    return {"params": {"article_id": article, "attachment_id": r.json()["id"]}}


async def _fresh_kb_link(world: World, kind: str) -> Prepared:
    article = await world.article(publish=True)
    await world.post(f"/v1/kb/articles/{article}/links", {"ticket_id": world.ids["ticket_id"]})
    return {"params": {"article_id": article, "ticket_id": world.ids["ticket_id"]}}


def _current_order(path: str):
    async def fresh(world: World, kind: str) -> Prepared:
        r = await world.gw.get(path, headers=world.admin)
        assert r.status_code == 200, r.text
        return {"json": {"ids": [item["id"] for item in r.json()["items"]]}}

    return fresh


async def _fresh_article_etag(world: World, kind: str) -> Prepared:
    article = await world.article(publish=False)
    r = await world.gw.get(f"/v1/kb/articles/{article}", headers=world.admin)
    assert r.status_code == 200, r.text
    return {"params": {"article_id": article}, "extra_headers": {"If-Match": r.headers["etag"]}}


async def _fresh_translation_etag(world: World, kind: str) -> Prepared:
    prepared = await _fresh_article_etag(world, kind)
    prepared["params"]["locale"] = "en"
    return prepared


async def _fresh_status(world: World, kind: str) -> Prepared:
    status = await world.post("/v1/statuses", {"key": f"tw_{_u()}", "label": "Throwaway", "category": "open"})
    return {"params": {"status_id": status["id"]}}


def _order(world: World) -> dict[str, Any]:
    return {"external_id": f"matrix-{_u()}", "ordered_at": _now(), "currency": "CNY", "amount": "12.50"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CSV = b"email,name\nimport-matrix@example.com,Import Matrix\n"


#: /api/v2: the help desk's users only (keys 403 by kind; the kb customer token is no credential here)
ZD_USERS = override(USERS)
#: a Zendesk path that is not an endpoint: 404 InvalidEndpoint to its users, 403 to keys
ZD_UNKNOWN = profile("404   404 404   404         403 403       401      401")


def _zd(route: str, expect: dict[str, str], **kwargs: Any) -> Rule:
    return Rule(route, expect, envelope="zendesk", **kwargs)


async def _fresh_zd_ticket(world: World, kind: str) -> Prepared:
    return {"params": {"number": str(await world.ticket_number(await world.ticket()))}}


ZENDESK_RULES: list[Rule] = [
    # --- the Zendesk-compatible surface (gateway/zendesk; each call is the services' own, as the caller)
    _zd("POST /api/v2/tickets.json", ZD_USERS, json=lambda w: {"ticket": {
        "subject": "matrix zendesk", "comment": {"body": "x"}, "requester": {"email": w.ids["customer_a_email"]}}}),
    _zd("POST /api/v2/tickets", ZD_USERS, json=lambda w: {"ticket": {
        "subject": "matrix zendesk", "comment": {"body": "x"}, "requester": {"email": w.ids["customer_a_email"]}}}),
    _zd("GET /api/v2/tickets.json", ZD_USERS, note="scoped like GET /v1/tickets"),
    _zd("GET /api/v2/tickets/show_many.json", ZD_USERS, query=lambda w: {"ids": w.ids["ticket_number"]},
        note="those the caller may see: the other team's agent gets an empty list"),
    _zd("GET /api/v2/tickets/{number}.json", TICKET_USERS, params={"number": "ticket_number"}),
    _zd("PUT /api/v2/tickets/{number}.json", TICKET_USERS, fresh=_fresh_zd_ticket,
        json={"ticket": {"priority": "high"}}),
    _zd("GET /api/v2/tickets/{number}/comments.json", TICKET_USERS, params={"number": "ticket_number"}),
    _zd("DELETE /api/v2/tickets/{number}.json", TICKET_STAFF, fresh=_fresh_zd_ticket,
        note="as DELETE /v1/tickets/{ticket_id}: a soft delete, admins and supervisors"),
    _zd("GET /api/v2/deleted_tickets.json", STAFF),
    _zd("PUT /api/v2/deleted_tickets/{number}/restore.json", STAFF, fresh=_fresh_deleted_ticket,
        note="the deleted tickets' list is staff's: an agent is refused by role whichever the ticket"),
    _zd("GET /api/v2/groups.json", ZD_USERS),
    _zd("GET /api/v2/ticket_fields.json", ZD_USERS),
    _zd("GET /api/v2/users/me.json", ZD_USERS),
    _zd("GET /api/v2/users/search.json", ZD_USERS, query=lambda w: {"query": w.ids["customer_a_email"]}),
    _zd("GET /api/v2/users/{user_id}.json", ZD_USERS, params={"user_id": "zendesk_customer_id"}),
    _zd("PUT /api/v2/users/{user_id}.json", ZD_USERS, params={"user_id": "zendesk_customer_id"},
        json={"user": {"name": "矩阵 Customer A"}}, note="agents change a customer's name, as on PATCH /v1/customers"),
    _zd("GET /api/v2/users/{user_id}/identities.json", ZD_USERS, params={"user_id": "zendesk_customer_id"}),
    _zd("POST /api/v2/users.json", STAFF, json=lambda w: {"user": {"name": "matrix", "email": f"zd-{_u()}@example.com"}}),
    _zd("POST /api/v2/organizations.json", STAFF, json=lambda w: {"organization": {"name": f"matrix zd {_u()}"}}),
    _zd("GET /api/v2/organizations.json", ZD_USERS),
    _zd("GET /api/v2/organizations/{organization_id}.json", ZD_USERS,
        params={"organization_id": "zendesk_organization_id"}),
    _zd("GET /api/v2/search.json", ZD_USERS, query={"query": "type:ticket status<solved"}),
    _zd("GET /api/v2/incremental/tickets/cursor.json", ZD_USERS, query={"start_time": "946684800", "per_page": "10"},
        note="as GET /v1/export/tickets: agents export what their list shows"),
    *[_zd(f"{method} /api/v2/{{rest}}", ZD_UNKNOWN, params={"rest": "=macros.json"}, json={} if method != "GET" else None,
          note="not an endpoint of the surface: Zendesk's InvalidEndpoint, to its users only")
      for method in ("GET", "POST", "PUT", "PATCH", "DELETE")],
]


RULES: list[Rule] = [
    # --- the gateway's own routes ------------------------------------------------------------
    Rule("GET /healthz", EVERYONE, note="a liveness probe: says nothing but 'alive'"),
    Rule("GET /readyz", EVERYONE, note="readiness: the gateway's database reachable, nothing more",
         tolerate={503: "not ready: the database check timed out under the matrix's own load (a probe's "
                        "designed answer, a problem naming the failing check)"}),
    Rule("GET /docs", EVERYONE, note="on when API_DOCS_ENABLED (the dev stack's default); the document "
                                     "describes routes, never data"),
    Rule("GET /openapi.json", EVERYONE),
    Rule("POST /v1/auth/login", EVERYONE, json={"email": "nobody@example.com", "password": "wrong password"},
         tolerate={401: "the wrong password: sign-in is the one route whose 401 is about the input"}),
    Rule("POST /v1/auth/refresh", EVERYONE, json={"refresh_token": "not-a-refresh-token"},
         tolerate={401: "an unknown refresh token: the route takes no other credential"}),
    Rule("POST /v1/auth/logout", USERS, json={}, fresh=_own_session,
         note="ends a user session; a channel key has none (403, it is not a user)"),
    Rule("POST /v1/api-keys", ADMIN, json={"name": "matrix key", "channel": "api"}),
    Rule("GET /v1/api-keys", ADMIN),
    Rule("DELETE /v1/api-keys/{key_id}", ADMIN, fresh=_fresh_api_key),
    Rule("POST /v1/users", ADMIN, json=lambda w: {"email": f"matrix-new-{_u()}@example.com",
                                                  "password": uuid.uuid4().hex, "role": "agent"}),
    Rule("GET /v1/users", STAFF, note="the sign-in accounts (e-mail, role, state); agents find colleagues in "
                                      "GET /v1/agents"),
    Rule("GET /v1/users/me", override(USERS, key="403", key_other="403")),
    Rule("POST /v1/users/me/password", override(USERS, key="403", key_other="403"), fresh=_own_password),
    Rule("PATCH /v1/users/{user_id}", ADMIN, json={"name": "Renamed"}, fresh=_fresh_user),
    Rule("DELETE /v1/users/{user_id}", ADMIN, fresh=_fresh_user),
    Rule("DELETE /v1/users/{user_id}/totp", ADMIN, fresh=_fresh_user,
         note="an admin turns off a user's two-factor sign-in (a lost phone); it ends that user's sessions, "
              "so each cell names a throwaway user"),
    Rule("GET /.well-known/jwks.json", EVERYONE, note="public keys only: whoever verifies user tokens reads them"),
    # sign-in through an external OIDC provider: public by nature (the browser arrives without a
    # token); the matrix stack configures no provider, so every caller is told the provider is unknown
    Rule("GET /v1/auth/oidc/{provider}/start", EVERYONE, params={"provider": "=matrix"},
         tolerate={404: "no OIDC provider named 'matrix' is configured on the matrix stack"}),
    Rule("GET /v1/auth/oidc/{provider}/callback", EVERYONE, params={"provider": "=matrix"},
         tolerate={404: "no such provider", 400: "no sign-in was started", 401: "no sign-in was started",
                   422: "no state or code"}),
    Rule("POST /v1/auth/oidc/{provider}/callback", EVERYONE, params={"provider": "=matrix"}, json={},
         tolerate={404: "no such provider", 400: "no sign-in was started", 401: "no sign-in was started",
                   422: "no state or code"}),
    Rule("GET /v1/users/me/totp", USERS),
    Rule("POST /v1/users/me/totp", USERS, fresh=_own_account_no_body,
         note="a throwaway user of the kind's role enrols (an enrolment is the caller's own)"),
    Rule("POST /v1/users/me/totp/confirm", USERS, fresh=_own_account_code,
         tolerate={400: "no enrolment to confirm, or a wrong code: about the input",
                   409: "no enrolment to confirm", 422: "a wrong code"}),
    Rule("DELETE /v1/users/me/totp", USERS, fresh=_own_account,
         tolerate={409: "two-factor sign-in is not on for the throwaway user"},
         note="turned off with the throwaway user's password"),
    Rule("POST /v1/users/me/api-tokens", USERS, fresh=_own_account_named),
    Rule("GET /v1/users/me/api-tokens", USERS),
    Rule("DELETE /v1/users/me/api-tokens/{token_id}", USERS, fresh=_own_api_token,
         note="each user revokes a token of their own"),
    Rule("GET /v1/stream", USERS, stream=True),
    Rule("POST /v1/stream/tickets", USERS),

    # --- tickets (ticket-svc; docs/security.md "Tickets: who may read and change what") ------
    Rule("POST /v1/tickets", ANY_CALLER, json=lambda w: {"subject": "matrix new", "requester": {
        "email": w.ids["customer_a_email"]}}),
    Rule("GET /v1/tickets", ANY_CALLER, note="lists are scoped, never refused (test_ticket_access.py proves the scope)"),
    Rule("GET /v1/tickets/{ticket_id}", TICKET),
    Rule("PATCH /v1/tickets/{ticket_id}", override(TICKET, key="403", key_other="403"), json={"priority": "high"},
         note="a channel key changes no field: 403 by kind, whatever the ticket"),
    Rule("DELETE /v1/tickets/{ticket_id}", TICKET_STAFF, fresh=_fresh_ticket,
         note="a soft delete: admins and supervisors; an agent of the ticket's team is refused by role, the "
              "other team's agent never learns it exists"),
    Rule("POST /v1/tickets/{ticket_id}/restore", DELETED_STAFF, fresh=_fresh_deleted_ticket),
    Rule("GET /v1/tickets/deleted", STAFF, note="the deleted tickets' list: the ones who delete"),
    Rule("GET /v1/tickets/{ticket_id}/audit", TICKET_NO_KEYS, note="the audit is staff's: keys read public messages"),
    Rule("GET /v1/tickets/pii-access", ADMIN, note="the audit of unmasked requester reads and exports"),
    Rule("GET /v1/tickets/{ticket_id}/pii-access", ADMIN,
         note="admins see every ticket: no object check beyond the role (ids only in the rows)"),
    Rule("POST /v1/tickets/{ticket_id}/assign", override(TICKET_STAFF, agent_other="403"),
         json=lambda w: {"team_id": w.ids["team_a"]},
         note="the supervisors' route: agents are refused by role before any ticket is looked up (the same "
              "403 for every id, so it tells nothing)"),
    Rule("POST /v1/tickets/{ticket_id}/accept", TICKET_USERS, fresh=_fresh_ticket,
         tolerate={409: "nothing offered to this caller to accept"}),
    Rule("GET /v1/tickets/{ticket_id}/links", TICKET_NO_KEYS),
    Rule("POST /v1/tickets/{ticket_id}/links", TICKET_USERS, fresh=_fresh_ticket,
         json=lambda w: {"other_id": w.ids["ticket_c"], "kind": "related"}),
    Rule("DELETE /v1/tickets/{ticket_id}/links/{kind}/{other_id}", TICKET_USERS, fresh=_fresh_link),
    Rule("POST /v1/tickets/{ticket_id}/merge", TICKET_USERS, fresh=_fresh_merge),
    Rule("POST /v1/tickets/{ticket_id}/messages", TICKET, json={"body": "matrix reply"}),
    Rule("GET /v1/tickets/{ticket_id}/messages", TICKET),
    Rule("GET /v1/tickets/{ticket_id}/attachments/{attachment_id}", TICKET,
         note="a file of a public reply: the key that created the ticket downloads it (a bridge shows its "
              "customer the replies, files included); another channel's key gets 404; a file of an internal "
              "note is 404 to every key (ticket-svc, tests/tickets/test_conversation.py)"),
    Rule("GET /v1/tickets/{ticket_id}/process", TICKET_USERS, params={"ticket_id": "process_ticket"}),
    Rule("POST /v1/tickets/{ticket_id}/steps/{step_key}/decisions", TICKET_USERS, fresh=_fresh_approval,
         json={"decision": "approve"}, tolerate={403: "not an approver (403 not-an-approver): the ticket was "
                                                      "readable, the step is not theirs"},
         note="the approvers are the admin and supervisor roles; the team's agent reads the ticket and is told "
              "they are no approver, the other team's agent gets 404"),
    Rule("GET /v1/tickets/{ticket_id}/macros/{macro_id}/preview", TICKET_USERS),
    Rule("POST /v1/tickets/{ticket_id}/macros/{macro_id}", TICKET_USERS, fresh=_fresh_ticket,
         params={"macro_id": "macro_id"}),
    Rule("GET /v1/tickets/{ticket_id}/rule-runs", TICKET_USERS),

    # --- intake by channel --------------------------------------------------------------------
    Rule("POST /v1/channels/email/inbound", OTHER_INTAKE, content=b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
         content_type="message/rfc822"),
    Rule("POST /v1/channels/web/inbound", WEB_INTAKE, data={"subject": "matrix web form",
                                                            "email": "web-matrix@example.com", "description": "hi"}),
    Rule("POST /v1/channels/chat/inbound", OTHER_INTAKE, json=lambda w: {
        "conversation_id": f"c-{_u()}", "message_id": f"m-{_u()}", "visitor": {"name": "v"}, "text": "hi"}),
    Rule("POST /v1/channels/wechat/inbound", OTHER_INTAKE, content=b"<xml></xml>", content_type="application/xml",
         tolerate={422: "an empty callback: the admin reached the parser"}),
    Rule("POST /v1/channels/wecom/inbound", OTHER_INTAKE, content=b"<xml></xml>", content_type="application/xml",
         tolerate={422: "an empty envelope: the admin reached the parser"}),
    Rule("POST /v1/channels/dingtalk/inbound", OTHER_INTAKE, json=lambda w: {
        "msgtype": "text", "msgId": _u(), "conversationId": _u(), "text": {"content": "hi"}}),
    Rule("POST /v1/channels/phone/inbound", OTHER_INTAKE, json=lambda w: {
        "call_id": _u(), "direction": "inbound", "from": "+8613800138000", "to": "+8610000000", "started_at": _now(),
        "status": "answered"}),
    Rule("POST /v1/channels/chat/conversations/{conversation_id}/visitor-token", override(ADMIN),
         note="the chat channel's key and admins mint one; key A is the api channel's"),
    Rule("GET /v1/chat/conversations/{conversation_id}/messages", override(
        EVERYONE, admin="401", supervisor="401", agent="401", agent_other="401", key="401", key_other="401",
        anonymous="401"),
         customer_token="visitor",
         note="takes only a visitor token: the customer holds the conversation's; every other credential is "
              "a token ticket-svc refuses (401)"),
    Rule("GET /v1/confirmations/{token}", EVERYONE, params={"token": "confirmation_token"},
         note="the capability is the link: whoever holds it (the customer's mail) opens it; the "
              "Authorization header is not read"),
    Rule("POST /v1/confirmations/{token}", EVERYONE, params={"token": "confirmation_token"},
         json={"answer": "confirm"}, tolerate={409: "answered already by an earlier cell (single use)"},
         serial=True, note="after every concurrent cell: the GET cells must find the step still open (an "
                           "answer racing them turned one into the 409 page)"),

    # --- agents, teams, routing ---------------------------------------------------------------
    Rule("GET /v1/agents", USERS),
    Rule("GET /v1/agents/me", USERS),
    Rule("PUT /v1/agents/me/status", USERS, json={"status": "online"}),
    Rule("GET /v1/agents/{agent_id}", USERS),
    Rule("PUT /v1/agents/{agent_id}", STAFF, json={"display_name": "matrix agent", "status": "online"}),
    Rule("GET /v1/teams", USERS),
    Rule("POST /v1/teams", STAFF, json=lambda w: {"name": f"matrix {_u()}", "strategy": "manual", "members": []}),
    Rule("GET /v1/teams/{team_id}", USERS, params={"team_id": "team_a"}),
    Rule("PUT /v1/teams/{team_id}", STAFF, fresh=_fresh_team, json=lambda w: {
        "name": f"matrix {_u()}", "strategy": "manual", "accept_timeout_s": None, "required_skills": [],
        "members": []}),
    Rule("PATCH /v1/teams/{team_id}", STAFF, fresh=_fresh_team, json={"strategy": "round_robin"}),
    Rule("DELETE /v1/teams/{team_id}", STAFF, fresh=_fresh_team),
    Rule("GET /v1/routing/rules", USERS),
    Rule("POST /v1/routing/rules", STAFF, json=lambda w: {"name": f"matrix {_u()}"}),
    Rule("PUT /v1/routing/rules/{rule_id}", STAFF, fresh=_fresh_routing_rule, json={"name": "matrix renamed"}),
    Rule("DELETE /v1/routing/rules/{rule_id}", STAFF, fresh=_fresh_routing_rule),

    # --- forms, processes, approvals, statuses, rules, macros, views --------------------------
    Rule("GET /v1/forms", USERS),
    Rule("PUT /v1/forms/{ticket_type}", ADMIN, params={"ticket_type": "form_type"}, json={"fields": []}),
    Rule("GET /v1/forms/{ticket_type}", USERS, params={"ticket_type": "form_type"}),
    Rule("GET /v1/forms/{ticket_type}/versions/{version}", USERS, params={"ticket_type": "form_type",
                                                                          "version": "form_version"}),
    Rule("GET /v1/processes", USERS),
    Rule("PUT /v1/processes/{ticket_type}", ADMIN, fresh=_fresh_process, json=lambda w: w.ids_json("process_body")),
    Rule("GET /v1/processes/{ticket_type}", USERS, params={"ticket_type": "approval_type"}),
    Rule("GET /v1/processes/{ticket_type}/versions/{version}", USERS, params={"ticket_type": "approval_type",
                                                                              "version": "process_version"}),
    Rule("DELETE /v1/processes/{ticket_type}", ADMIN, fresh=_fresh_process),
    Rule("GET /v1/approvals", USERS),
    Rule("GET /v1/statuses", USERS),
    Rule("POST /v1/statuses", ADMIN, json=lambda w: {"key": f"m_{_u()}", "label": "Matrix", "category": "open"}),
    Rule("PATCH /v1/statuses/{status_id}", ADMIN, fresh=_fresh_status, json={"label": "Renamed"}),
    Rule("GET /v1/triggers", USERS, note="agents read the rules that act on their tickets; only admins write"),
    Rule("POST /v1/triggers", ADMIN, json=lambda w: w.ids_json("trigger_body")),
    Rule("PUT /v1/triggers/order", ADMIN, fresh=_current_order("/v1/triggers"), serial=True),
    Rule("GET /v1/triggers/{rule_id}", USERS, params={"rule_id": "trigger_id"}),
    Rule("PUT /v1/triggers/{rule_id}", ADMIN, fresh=_fresh_trigger, json=lambda w: w.ids_json("trigger_body")),
    Rule("DELETE /v1/triggers/{rule_id}", ADMIN, fresh=_fresh_trigger),
    Rule("GET /v1/automations", USERS),
    Rule("POST /v1/automations", ADMIN, json=lambda w: w.ids_json("automation_body")),
    Rule("PUT /v1/automations/order", ADMIN, fresh=_current_order("/v1/automations"), serial=True),
    Rule("GET /v1/automations/{rule_id}", USERS, params={"rule_id": "automation_id"}),
    Rule("PUT /v1/automations/{rule_id}", ADMIN, fresh=_fresh_automation,
         json=lambda w: w.ids_json("automation_body")),
    Rule("DELETE /v1/automations/{rule_id}", ADMIN, fresh=_fresh_automation),
    Rule("POST /v1/rules/dry-run", TICKET_USERS, json=lambda w: {"ticket_id": w.ids["ticket_id"]},
         note="the ticket in the body is object-checked like a path's"),
    Rule("POST /v1/macros", USERS, json=lambda w: {"name": f"matrix {_u()}", "actions": {"priority": "low"}}),
    Rule("GET /v1/macros", USERS),
    Rule("DELETE /v1/macros/{macro_id}", override(USERS, agent="403", agent_other="403"), fresh=_fresh_macro,
         note="a shared macro (the admin's): only staff remove it"),
    Rule("POST /v1/views", USERS, json=lambda w: {"name": f"matrix {_u()}", "filters": {"status": ["open"]}}),
    Rule("GET /v1/views", USERS),
    Rule("DELETE /v1/views/{view_id}", USERS, fresh=_fresh_view, note="each user deletes a view of their own"),

    # --- exports ------------------------------------------------------------------------------
    Rule("GET /v1/export/tickets", USERS, query={"start_time": "2000-01-01T00:00:00Z"},
         note="agents export what their list shows (policy.list_scope), staff everything"),
    Rule("GET /v1/export/tickets.csv", USERS, stream=True),
    Rule("GET /v1/export/tickets.xlsx", USERS, stream=True),

    # --- customers (customer-svc) ------------------------------------------------------------
    Rule("GET /v1/customers", USERS),
    Rule("POST /v1/customers", STAFF, json=lambda w: {"identities": [{"kind": "email",
                                                                      "value": f"matrix-{_u()}@example.com"}]}),
    Rule("GET /v1/customers/{customer_id}", USERS,
         note="customers are shared by every team (as Zendesk's end users are): an agent of another team may "
              "serve the same customer tomorrow; what an agent sees of their identities is masked by role "
              "(docs/security.md, 'Personal data at rest'); channel keys never read customers"),
    Rule("PATCH /v1/customers/{customer_id}", STAFF, json={"language": "zh-CN"}),
    Rule("GET /v1/customers/{customer_id}/360", USERS, note="as the customer (above)"),
    Rule("GET /v1/customers/{customer_id}/timeline", USERS),
    Rule("POST /v1/customers/{customer_id}/identities", STAFF,
         json=lambda w: {"kind": "email", "value": f"matrix-{_u()}@example.com"}),
    Rule("DELETE /v1/customers/{customer_id}/identities/{identity_id}", STAFF, fresh=_fresh_identity),
    Rule("GET /v1/organizations", USERS),
    Rule("POST /v1/organizations", STAFF, json=lambda w: {"name": f"matrix org {_u()}"}),
    Rule("GET /v1/organizations/{organization_id}", USERS),
    Rule("PATCH /v1/organizations/{organization_id}", STAFF, json={"tier": "gold"}),
    Rule("DELETE /v1/organizations/{organization_id}", STAFF, fresh=_fresh_organization),
    Rule("GET /v1/customer-attributes", USERS),
    Rule("POST /v1/customer-attributes", ADMIN, json=lambda w: {"key": f"m_{_u()}", "label": {"en": "M"},
                                                                 "type": "text"}),
    Rule("GET /v1/customer-attributes/{key}", USERS, params={"key": "customer_attribute"}),
    Rule("PATCH /v1/customer-attributes/{key}", ADMIN, fresh=_fresh_attribute, json={"label": {"en": "Renamed"}}),
    Rule("DELETE /v1/customer-attributes/{key}", ADMIN, fresh=_fresh_attribute),
    Rule("GET /v1/organization-attributes", USERS),
    Rule("POST /v1/organization-attributes", ADMIN, json=lambda w: {"key": f"m_{_u()}", "label": {"en": "M"},
                                                                     "type": "text"}),
    Rule("GET /v1/organization-attributes/{key}", USERS, params={"key": "organization_attribute"}),
    Rule("PATCH /v1/organization-attributes/{key}", ADMIN, fresh=_fresh_org_attribute,
         json={"label": {"en": "Renamed"}}),
    Rule("DELETE /v1/organization-attributes/{key}", ADMIN, fresh=_fresh_org_attribute),
    Rule("POST /v1/customers/{customer_id}/orders", STAFF, json=_order),
    Rule("POST /v1/orders", STAFF, json=lambda w: {**_order(w), "customer_id": w.ids["customer_id"]}),
    Rule("GET /v1/orders/{order_id}", USERS),
    Rule("GET /v1/customers/{customer_id}/orders", USERS),
    Rule("POST /v1/customers/{customer_id}/interactions", STAFF, json=lambda w: {
        "kind": "page_view", "occurred_at": _now()}),
    Rule("GET /v1/customers/{customer_id}/interactions", USERS),
    Rule("POST /v1/imports", STAFF, files={"file": ("customers.csv", CSV, "text/csv")}, data={"kind": "customers"}),
    Rule("GET /v1/imports/{import_id}", STAFF),
    Rule("GET /v1/imports/{import_id}/errors.csv", STAFF, stream=True),
    Rule("POST /v1/customers/{customer_id}/merge", STAFF, fresh=_fresh_merge_customers),
    Rule("POST /v1/customers/{customer_id}/identities/{identity_id}/unmerge", STAFF, fresh=_fresh_identity, json={},
         tolerate={409: "the identity was never merged in: the route was reached"}),
    Rule("GET /v1/customers/{customer_id}/duplicates", STAFF),
    Rule("GET /v1/customer-duplicates", STAFF),
    Rule("POST /v1/customer-duplicates/dismiss", STAFF, json=lambda w: {"first_id": w.ids["customer_id"],
                                                                        "second_id": w.ids["customer_b"]}),
    Rule("GET /v1/customers/{customer_id}/insights", USERS),
    Rule("GET /v1/customers/pii-access", ADMIN, note="the audit of unmasked reads and exports"),
    Rule("GET /v1/customers/{customer_id}/pii-access", ADMIN),
    # data subject requests: admins only; the matrix files exports (an erasure would erase)
    Rule("POST /v1/privacy/requests", ADMIN, json=lambda w: {"customer_id": w.ids["customer_b"], "kind": "export"}),
    Rule("GET /v1/privacy/requests", ADMIN),
    Rule("GET /v1/privacy/requests/{request_id}", ADMIN),
    Rule("GET /v1/privacy/requests/{request_id}/bundle", ADMIN, tolerate={409: "the export is not complete yet"}),
    Rule("POST /v1/privacy/requests/{request_id}/suspend", ADMIN, json={"reason": "matrix"},
         tolerate={409: "not in a state to suspend (done already)"}),
    Rule("POST /v1/privacy/requests/{request_id}/resume", ADMIN, tolerate={409: "not suspended"}),
    Rule("GET /v1/insights/segments", USERS),
    Rule("GET /v1/insights/churn", USERS),
    Rule("GET /v1/insights/tier-rules", USERS),
    Rule("PUT /v1/insights/tier-rules", ADMIN, json=lambda w: w.ids_json("tier_rules")),
    Rule("POST /v1/insights/recompute", ADMIN, tolerate={409: "a recompute is already running"}),
    Rule("GET /v1/insights/recompute/{run_id}", STAFF),
    Rule("GET /v1/surveys/settings", STAFF),
    Rule("PUT /v1/surveys/settings", ADMIN, json={"csat_enabled": True, "csat_delay_minutes": 0,
                                                  "nps_enabled": False, "nps_interval_days": 90}),
    Rule("GET /v1/surveys", STAFF),
    Rule("GET /v1/customers/{customer_id}/surveys", USERS),
    Rule("GET /v1/surveys/{token}", EVERYONE, params={"token": "survey_token"},
         tolerate={409: "answered already by the POST cell: the page says so"},
         note="the capability is the link (see confirmations)"),
    Rule("POST /v1/surveys/{token}", EVERYONE, params={"token": "survey_token"}, json={"rating": 5},
         tolerate={409: "answered already by an earlier cell (single use)"}),

    # --- SLA ------------------------------------------------------------------------------------
    Rule("GET /v1/sla/tickets/{ticket_id}", TICKET_USERS),
    Rule("GET /v1/sla/tickets/{ticket_id}/timers", TICKET_USERS),
    Rule("GET /v1/sla/compliance", USERS, query={"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}),
    Rule("GET /v1/sla/policies/default", USERS),
    Rule("GET /v1/sla/policies", USERS),
    Rule("POST /v1/sla/policies", ADMIN, json=lambda w: w.ids_json("policy_body")),
    Rule("GET /v1/sla/policies/{policy_id}", USERS),
    Rule("PUT /v1/sla/policies/{policy_id}", ADMIN, fresh=_fresh_policy, json=lambda w: w.ids_json("policy_body")),
    Rule("DELETE /v1/sla/policies/{policy_id}", ADMIN, fresh=_fresh_policy),
    Rule("POST /v1/sla/calendars", ADMIN, json=lambda w: {"name": f"matrix {_u()}", "timezone": "Asia/Shanghai"}),
    Rule("GET /v1/sla/calendars", USERS),
    Rule("GET /v1/sla/calendars/{calendar_id}", USERS),
    Rule("PUT /v1/sla/calendars/{calendar_id}", ADMIN, json={"name": "matrix calendar", "timezone": "Asia/Shanghai"}),
    Rule("POST /v1/sla/calendars/{calendar_id}/due", USERS, json={"start": "2026-01-05T09:00:00+08:00",
                                                                  "minutes": 60},
         tolerate={422: "the matrix's calendar has no working hours: the due time was computed and refused"}),
    Rule("PUT /v1/sla/teams/{team_id}/calendar", ADMIN, fresh=_fresh_team,
         json=lambda w: {"calendar_id": w.ids["calendar_id"]}),
    Rule("GET /v1/sla/teams/{team_id}/calendar", USERS, params={"team_id": "team_a"}),
    Rule("DELETE /v1/sla/teams/{team_id}/calendar", ADMIN, fresh=_fresh_team_calendar),

    # --- analytics ------------------------------------------------------------------------------
    Rule("GET /v1/analytics/kpis", USERS),
    Rule("GET /v1/analytics/steps", USERS),
    Rule("GET /v1/analytics/trends", USERS, query={"metric": "tickets_created"}),
    Rule("GET /v1/analytics/breakdown", USERS, query={"by": "team", "metric": "tickets_created"},
         note="by team: each caller sees the teams of their scope (by channel is admins' only)"),
    Rule("GET /v1/analytics/leaderboard", USERS, query={"metric": "tickets_created"}),
    Rule("GET /v1/analytics/sla", USERS),
    Rule("GET /v1/analytics/at-risk", USERS),

    # --- notify-svc -----------------------------------------------------------------------------
    Rule("POST /v1/webhooks", ADMIN, json=lambda w: w.ids_json("webhook_body")),
    Rule("GET /v1/webhooks", ADMIN),
    Rule("GET /v1/webhooks/{subscription_id}", ADMIN),
    Rule("PATCH /v1/webhooks/{subscription_id}", ADMIN, json={"description": "matrix"}),
    Rule("DELETE /v1/webhooks/{subscription_id}", ADMIN, fresh=_fresh_webhook),
    Rule("POST /v1/webhooks/{subscription_id}/rotate-secret", ADMIN, fresh=_fresh_webhook),
    Rule("GET /v1/webhooks/{subscription_id}/deliveries", ADMIN),
    Rule("GET /v1/webhooks/{subscription_id}/deliveries/{delivery_id}", ADMIN,
         params={"delivery_id": "webhook_delivery_id"}),
    Rule("POST /v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay", ADMIN,
         params={"delivery_id": "webhook_delivery_id"}, tolerate={409: "the delivery is still being retried"}),
    Rule("GET /v1/notification-templates", USERS, note="templates hold no personal data; agents see what "
                                                        "customers are told"),
    Rule("GET /v1/notification-templates/{key}/{language}", USERS, params={"key": "template_key",
                                                                           "language": "template_language"}),
    Rule("PUT /v1/notification-templates/{key}/{language}", ADMIN, params={"key": "template_key",
                                                                           "language": "template_language_de"},
         json={"subject": "Matrix", "body_text": "Matrix"}),
    Rule("DELETE /v1/notification-templates/{key}/{language}", ADMIN, fresh=_fresh_template),
    Rule("POST /v1/notification-templates/preview", USERS, json=lambda w: {"key": w.ids["template_key"],
                                                                            "language": "en"}),
    Rule("GET /v1/notification-rules", USERS),
    Rule("GET /v1/notification-rules/{key}", USERS, params={"key": "notification_rule"}),
    Rule("PATCH /v1/notification-rules/{key}", ADMIN, params={"key": "notification_rule"}, json={"enabled": True}),
    Rule("PUT /v1/notification-rules/{key}/teams/{team_id}", ADMIN, fresh=_fresh_team,
         params={"key": "notification_rule"}, json={"enabled": True}),
    Rule("DELETE /v1/notification-rules/{key}/teams/{team_id}", ADMIN, fresh=_fresh_rule_team),
    Rule("GET /v1/notification-preferences/customers/{customer_id}", USERS),
    Rule("PUT /v1/notification-preferences/customers/{customer_id}", USERS, json={"opted_out": False}),
    Rule("GET /v1/notification-preferences/emails/{email}", USERS, params={"email": "customer_a_email"}),
    Rule("PUT /v1/notification-preferences/emails/{email}", USERS, params={"email": "customer_a_email"},
         json={"opted_out": False}),
    Rule("GET /v1/notification-contacts/{user_id}", override(ADMIN, agent="ok"), params={"user_id": "agent_id"},
         note="a user's own contact details, or an admin's"),
    Rule("PUT /v1/notification-contacts/{user_id}", override(ADMIN, agent="ok"), params={"user_id": "agent_id"},
         json={}),
    Rule("GET /v1/notification-log", STAFF, query=lambda w: {"ticket_id": w.ids["ticket_id"]},
         note="what was sent about one ticket, to whom: staff's"),
    Rule("GET /v1/deliveries", STAFF),
    Rule("GET /v1/deliveries/{delivery_id}", STAFF),
    Rule("POST /v1/deliveries/{delivery_id}/retry", STAFF, tolerate={409: "not in a state to retry"}),

    # --- knowledge base (kb-svc; docs/kb.md) --------------------------------------------------
    Rule("POST /v1/kb/categories", KB_EDIT, json=lambda w: {"name": f"matrix {_u()}", "locale": "en"}),
    Rule("GET /v1/kb/categories", USERS),
    Rule("GET /v1/kb/categories/{category_id}", USERS),
    Rule("PATCH /v1/kb/categories/{category_id}", KB_EDIT, json={"name": "matrix category"}),
    Rule("DELETE /v1/kb/categories/{category_id}", KB_EDIT, fresh=_fresh_kb_category),
    Rule("POST /v1/kb/sections", KB_EDIT, json=lambda w: {"category_id": w.ids["category_id"],
                                                          "name": f"matrix {_u()}", "locale": "en"}),
    Rule("GET /v1/kb/sections", USERS),
    Rule("GET /v1/kb/sections/{section_id}", USERS),
    Rule("PATCH /v1/kb/sections/{section_id}", KB_EDIT, json={"name": "matrix section"}),
    Rule("DELETE /v1/kb/sections/{section_id}", KB_EDIT, fresh=_fresh_kb_section),
    Rule("POST /v1/kb/articles", KB_EDIT, json=lambda w: {"section_id": w.ids["section_id"], "locale": "en",
                                                          "title": f"matrix {_u()}"}),
    Rule("GET /v1/kb/articles", USERS),
    Rule("GET /v1/kb/articles/{article_id}", USERS, params={"article_id": "draft_article_id"},
         note="a draft: staff read it, no customer or key does"),
    Rule("PATCH /v1/kb/articles/{article_id}", KB_EDIT, fresh=_fresh_article_etag, json={"visibility": "public"}),
    Rule("PUT /v1/kb/articles/{article_id}/translations/{locale}", KB_EDIT, fresh=_fresh_translation_etag,
         json={"title": "Matrix draft", "body_html": "<p>x</p>"}),
    Rule("DELETE /v1/kb/articles/{article_id}/translations/{locale}", KB_EDIT, fresh=_fresh_translation),
    Rule("POST /v1/kb/articles/{article_id}/publish", KB_EDIT, fresh=_fresh_article, json={"locale": "en"}),
    Rule("POST /v1/kb/articles/{article_id}/unpublish", KB_EDIT, fresh=_fresh_published_article,
         json={"locale": "en"}),
    Rule("POST /v1/kb/articles/{article_id}/archive", KB_EDIT, fresh=_fresh_article),
    Rule("POST /v1/kb/articles/{article_id}/restore", KB_EDIT, fresh=_fresh_article,
         tolerate={409: "not archived: the route was reached"}),
    Rule("GET /v1/kb/articles/{article_id}/versions", USERS, params={"article_id": "draft_article_id"}),
    Rule("GET /v1/kb/articles/{article_id}/versions/{number}", USERS, params={"article_id": "draft_article_id",
                                                                              "number": "one"}),
    Rule("POST /v1/kb/articles/{article_id}/versions/{number}/revert", KB_EDIT, fresh=_fresh_article_etag,
         params={"number": "one"}, tolerate={409: "reverting to the current version"}),
    Rule("POST /v1/kb/articles/{article_id}/attachments", KB_EDIT, params={"article_id": "draft_article_id"},
         content=PNG, content_type="image/png", query={"filename": "m.png"}),
    Rule("GET /v1/kb/articles/{article_id}/attachments", USERS, params={"article_id": "draft_article_id"}),
    Rule("GET /v1/kb/articles/{article_id}/attachments/{attachment_id}", USERS,
         params={"article_id": "draft_article_id", "attachment_id": "kb_attachment_id"}),
    Rule("DELETE /v1/kb/articles/{article_id}/attachments/{attachment_id}", KB_EDIT, fresh=_fresh_kb_attachment),
    Rule("GET /v1/kb/public/articles/{article_id}", EVERYONE, params={"article_id": "public_article_id"}),
    Rule("GET /v1/kb/public/categories", EVERYONE),
    Rule("GET /v1/kb/public/categories/{category_id}/sections", EVERYONE),
    Rule("GET /v1/kb/public/sections/{section_id}/articles", EVERYONE),
    Rule("GET /v1/kb/public/articles/{article_id}/attachments/{attachment_id}", EVERYONE,
         params={"article_id": "public_article_id", "attachment_id": "public_attachment_id"}),
    Rule("POST /v1/kb/customer-tokens", USERS, json=lambda w: {"customer_id": w.ids["customer_id"]},
         note="staff sign a customer in to the help center (an agent's link); keys and editors do not"),
    Rule("GET /v1/kb/search", EVERYONE, query={"q": "matrix"}),
    Rule("POST /v1/kb/suggestions", EVERYONE, json={"subject": "matrix refund"}),
    Rule("POST /v1/kb/suggestions/{suggestion_id}/views", EVERYONE,
         json=lambda w: {"article_id": w.ids["public_article_id"]}),
    Rule("GET /v1/kb/deflection", USERS),
    Rule("POST /v1/kb/articles/{article_id}/links", TICKET_USERS, params={"article_id": "public_article_id"},
         json=lambda w: {"ticket_id": w.ids["ticket_id"]}),
    Rule("DELETE /v1/kb/articles/{article_id}/links/{ticket_id}", TICKET_USERS, fresh=_fresh_kb_link),
    Rule("GET /v1/kb/links", TICKET_USERS, query=lambda w: {"ticket_id": w.ids["ticket_id"]}),
    Rule("GET /v1/kb/articles/{article_id}/reply-snippet", USERS, params={"article_id": "public_article_id"}),
    Rule("POST /v1/kb/articles/{article_id}/votes", EVERYONE, params={"article_id": "public_article_id"},
         json={"helpful": True}, headers={"X-KB-Voter": "matrix-voter-0000000001"}),
    Rule("GET /v1/kb/articles/{article_id}/feedback", USERS, params={"article_id": "public_article_id"}),
    Rule("GET /v1/kb/review-queue", KB_EDIT),
    *ZENDESK_RULES,
]

#: service routes the gateway must not forward: never reached through the gateway (404, or the
#: gateway's own 401/403 where another service's prefix holds the path)
UNREACHABLE = {kind: "no" for kind in KINDS}
