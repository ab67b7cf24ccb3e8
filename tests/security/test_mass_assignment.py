"""Mass assignment: no write request may set a field the server owns.

Two layers, both generated from the services themselves so that a new endpoint is covered
without editing this file:

1. ``test_every_write_model_forbids_unknown_fields`` walks every service app's routes and every
   pydantic model its request bodies are made of (nested ones too) and requires
   ``extra="forbid"``; it also walks every JSON request body of every app's OpenAPI document
   (bodies a handler parses itself are declared there) and requires ``additionalProperties:
   false`` on every object schema with declared properties. A new write model without
   ``extra="forbid"`` fails here.
2. ``test_server_owned_fields_are_refused`` runs each service in-process on its own real
   database and sends, for every operation with a JSON request body in its OpenAPI document, a
   valid body plus each server-owned field name the operation does not declare (``id``,
   ``number``, ``version``, timestamps, ``created_by``, ``customer_id``, ``channel``, roles,
   owners ...). Each answer must be a 422 problem naming that field, and when the rest of the
   body is valid (checked offline against the route's model) the field must be the only
   body error. Every table of the service's database is fingerprinted before and after the
   sweep: nothing may change.
"""

from __future__ import annotations

import importlib
import logging
import re
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

#: every app: import name, settings prefix
APPS = ["gateway", "customer_svc", "ticket_svc", "sla_svc", "analytics_svc", "notify_svc", "kb_svc"]

#: request bodies that are not JSON objects a client composes, and why they may keep unknown keys
OPEN_BODIES = {
    # a vendor's callback: DingTalk adds keys to its payload without notice; unknown keys are
    # ignored (never stored), the known ones are checked strictly (channels/dingtalk.py)
    ("ticket_svc", "Callback"), ("ticket_svc", "_TextBody"), ("ticket_svc", "_RichItem"),
    ("ticket_svc", "_Content"), ("ticket_svc", "_At"), ("ticket_svc", "_AtUser"),
    # multipart upload: FastAPI's generated form model (the file and its kind)
    ("customer_svc", "Body_create_import_v1_imports_post"),
    # the Zendesk-compatible surface (gateway/zendesk): Zendesk ignores fields it does not know
    # (a script PUTs back a whole ticket it read); only the fields it translates are read, so
    # nothing unknown reaches a service, whose own models stay strict
    ("gateway", "TicketEnvelope"), ("gateway", "UserEnvelope"), ("gateway", "OrganizationEnvelope"),
}

#: names the server decides; sent wherever an operation does not declare them
SERVER_OWNED = ["id", "number", "version", "created_at", "updated_at", "created_by", "updated_by",
                "deleted_at", "customer_id", "channel", "role", "roles", "owner_id", "author_id",
                "tenant_id", "is_admin", "published_at", "sequence"]


def _create_app(module: str, *, configured: bool = False) -> Any:
    """The module's app; ``configured``: with settings read now (from the test's environment)."""
    settings = importlib.import_module(f"{module}.config").Settings() if configured else None
    return importlib.import_module(f"{module}.main").create_app(settings)


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)


def _models(annotation: Any, seen: set[type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in seen:
            seen.add(annotation)
            for field in annotation.model_fields.values():
                _models(field.annotation, seen)
        return
    for arg in typing.get_args(annotation):
        _models(arg, seen)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _object_schemas(schema: Any, components: dict[str, Any], seen: set[str]) -> Iterator[tuple[str, dict]]:
    """Every object schema with declared properties reachable from ``schema`` (by structure:
    properties, items, additionalProperties, the combinators, references)."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen.add(name)
        target = components[name]
        if "properties" in target:
            yield name, target
        yield from _children(target, components, seen)
        return
    if "properties" in schema and schema.get("type") == "object":  # not a bare "required" fragment of an anyOf
        yield schema.get("title", "(inline)"), schema
    yield from _children(schema, components, seen)


def _children(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> Iterator[tuple[str, dict]]:
    for sub in (schema.get("properties") or {}).values():
        yield from _object_schemas(sub, components, seen)
    for key in ("items", "additionalProperties", "not"):
        yield from _object_schemas(schema.get(key), components, seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or []:
            yield from _object_schemas(sub, components, seen)


@pytest.fixture(scope="module", autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.WARNING)  # apps warn about unset optional keys at creation
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys services refuse to start without (personal data at rest)."""
    from helpdesk_common.pii_crypto import new_settings

    for prefix in ("CUSTOMER_", "GATEWAY_", "TICKET_"):
        for name, value in new_settings(prefix).items():
            monkeypatch.setenv(name, value)


def test_every_write_model_forbids_unknown_fields() -> None:
    open_models: list[str] = []
    open_schemas: list[str] = []
    untyped: list[str] = []
    body_routes = 0
    for module in APPS:
        app = _create_app(module)
        for route in _routes(app.routes):
            if route.body_field is None:
                continue
            body_routes += 1
            seen: set[type[BaseModel]] = set()
            annotation = route.body_field.field_info.annotation
            _models(annotation, seen)
            if not seen:
                untyped.append(f"{module} {sorted(route.methods)} {route.path}: {annotation}")
            for model in seen:
                if model.model_config.get("extra") != "forbid" and (module, model.__name__) not in OPEN_BODIES:
                    open_models.append(f"{module} {sorted(route.methods)} {route.path}: {model.__module__}.{model.__name__}")
        doc = app.openapi()
        components = doc.get("components", {}).get("schemas", {})
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                content = (operation.get("requestBody") or {}).get("content", {})
                for media_type, media in content.items():
                    if "json" not in media_type:
                        continue
                    for name, schema in _object_schemas(media.get("schema", {}), components, set()):
                        if schema.get("additionalProperties") is not False and (module, name) not in OPEN_BODIES:
                            open_schemas.append(f"{module} {method.upper()} {path}: {name}")
    assert body_routes > 60, body_routes  # the walk reached the routers
    assert not untyped, "JSON bodies without a model (a dict takes any field):\n" + "\n".join(untyped)
    assert not open_models, "write models without extra='forbid':\n" + "\n".join(sorted(set(open_models)))
    assert not open_schemas, "request schemas without additionalProperties false:\n" + "\n".join(sorted(set(open_schemas)))


# --- the wire: every JSON write operation of every service, on a real database ------------------

ADMIN = Principal(kind="user", id=str(uuid.uuid4()), role="admin", name="Security Admin")


def _channel_key(channel: str) -> Principal:
    return Principal(kind="channel", id=str(uuid.uuid4()), channel=channel)

#: path parameter values by name (anything else: a random UUID)
PATH_VALUES = {"key": "ticket.created", "language": "en", "email": "someone@example.com",
               "ticket_type": "incident", "step_key": "approve", "locale": "en", "token": "x" * 40,
               "agent_id": ADMIN.id, "user_id": ADMIN.id}

U1, U2 = str(uuid.uuid4()), str(uuid.uuid4())
#: the rules' documented examples (their schemas carry them), less the server-kept position
TRIGGER = {"name": "VIP", "conditions": {"all": [{"field": "priority", "op": "eq", "value": "urgent"}], "any": []},
           "actions": [{"type": "add_tags", "tags": ["vip-urgent"]}]}
AUTOMATION = {"name": "Close solved", "conditions": {"all": [{"field": "status", "op": "eq", "value": "solved"},
                                                             {"field": "hours_since.solved", "op": "gte", "value": 96}]},
              "actions": [{"type": "set_field", "field": "status", "value": "closed"}]}
AT = "2026-01-02T03:04:05+00:00"

#: a valid body per operation (``{}`` when the operation requires nothing); checked offline
#: against the route's own model so that a table entry that goes stale is reported, not trusted
VALID: dict[tuple[str, str], dict[str, Any]] = {
    # customer-svc
    ("POST", "/v1/customers"): {"name": "张三", "identities": [{"kind": "email", "value": "zs@example.com"}]},
    ("POST", "/v1/customers/{customer_id}/identities"): {"kind": "email", "value": "zs2@example.com"},
    ("POST", "/v1/organizations"): {"name": "Acme 公司"},
    ("POST", "/v1/customer-attributes"): {"key": "shoe_size", "label": {"en": "Shoe size"}, "type": "number"},
    ("POST", "/v1/organization-attributes"): {"key": "region", "label": {"en": "Region"}, "type": "text"},
    ("POST", "/v1/customers/{customer_id}/orders"): {"external_id": "o-1", "ordered_at": AT, "currency": "CNY",
                                                     "amount": "12.50"},
    ("POST", "/v1/orders"): {"external_id": "o-2", "ordered_at": AT, "currency": "CNY", "amount": "1.00",
                             "customer_identity": {"kind": "email", "value": "o@example.com"}},
    ("POST", "/v1/customers/{customer_id}/interactions"): {"kind": "purchase", "occurred_at": AT},
    ("POST", "/v1/customers/{customer_id}/merge"): {"source_id": U1},
    ("POST", "/v1/customer-duplicates/dismiss"): {"first_id": U1, "second_id": U2},
    ("PUT", "/v1/insights/tier-rules"): {"rules": []},
    ("PUT", "/v1/surveys/settings"): {"csat_enabled": True, "csat_delay_minutes": 10, "nps_enabled": False,
                                      "nps_interval_days": 90},
    ("POST", "/v1/privacy/requests"): {"customer_id": U1, "kind": "export"},
    # ticket-svc
    ("POST", "/v1/tickets"): {"subject": "退款申请", "requester": {"email": "r@example.com"}},
    ("PATCH", "/v1/tickets/{ticket_id}"): {"priority": "high"},
    ("POST", "/v1/tickets/{ticket_id}/assign"): {"assignee_id": None},
    ("POST", "/v1/tickets/{ticket_id}/links"): {"other_id": U1, "kind": "related"},
    ("POST", "/v1/tickets/{ticket_id}/merge"): {"target_id": U1},
    ("POST", "/v1/tickets/{ticket_id}/messages"): {"body": "您好 hello"},
    ("POST", "/v1/channels/chat/inbound"): {"conversation_id": "c-1", "message_id": "m-1",
                                            "visitor": {"name": "访客"}, "text": "在吗"},
    ("POST", "/v1/channels/phone/inbound"): {"call_id": "call-1", "direction": "inbound", "from": "+8613800000000",
                                             "to": "+8610100000000", "started_at": AT, "status": "answered"},
    ("PUT", "/v1/agents/me/status"): {"status": "online"},
    ("PUT", "/v1/agents/{agent_id}"): {"display_name": "Agent 王"},
    ("POST", "/v1/teams"): {"name": "Billing"},
    ("PUT", "/v1/teams/{team_id}"): {"name": "Billing", "strategy": "round_robin", "accept_timeout_s": None,
                                     "required_skills": [], "members": []},
    ("PATCH", "/v1/teams/{team_id}"): {"name": "Billing 2"},
    ("POST", "/v1/routing/rules"): {"name": "vip"},
    ("PUT", "/v1/routing/rules/{rule_id}"): {"name": "vip"},
    ("PUT", "/v1/processes/{ticket_type}"): {"steps": [{"key": "work", "name": "Work", "kind": "task"}]},
    ("POST", "/v1/tickets/{ticket_id}/steps/{step_key}/decisions"): {"decision": "approve"},
    ("POST", "/v1/statuses"): {"key": "waiting_vendor", "label": "等待供应商", "category": "pending"},
    ("PATCH", "/v1/statuses/{status_id}"): {"label": "Waiting"},
    ("POST", "/v1/macros"): {"name": "Thanks"},
    ("POST", "/v1/views"): {"name": "Mine", "filters": {}},
    ("POST", "/v1/triggers"): TRIGGER,
    ("PUT", "/v1/triggers/{rule_id}"): TRIGGER,
    ("PUT", "/v1/triggers/order"): {"ids": [U1]},
    ("POST", "/v1/automations"): AUTOMATION,
    ("PUT", "/v1/automations/{rule_id}"): AUTOMATION,
    ("PUT", "/v1/automations/order"): {"ids": [U1]},
    ("POST", "/v1/rules/dry-run"): {"ticket_id": U1},
    ("POST", "/v1/confirmations/{token}"): {"answer": "confirm"},
    # sla-svc
    ("POST", "/v1/sla/policies"): {"name": "Gold", "targets": {"first_response": {"minutes": 60}}},
    ("PUT", "/v1/sla/policies/{policy_id}"): {"name": "Gold", "targets": {"first_response": {"minutes": 60}}},
    ("POST", "/v1/sla/calendars"): {"name": "Shanghai", "timezone": "Asia/Shanghai"},
    ("PUT", "/v1/sla/calendars/{calendar_id}"): {"name": "Shanghai", "timezone": "Asia/Shanghai"},
    ("POST", "/v1/sla/calendars/{calendar_id}/due"): {"start": AT, "minutes": 60},
    ("PUT", "/v1/sla/teams/{team_id}/calendar"): {"calendar_id": U1},
    # notify-svc
    ("POST", "/v1/webhooks"): {"url": "https://hooks.example.com/x", "event_types": ["ticket.created"]},
    ("PATCH", "/v1/webhooks/{subscription_id}"): {"enabled": False},
    ("PUT", "/v1/notification-templates/{key}/{language}"): {"subject": "New ticket", "body_text": "Hi"},
    ("POST", "/v1/notification-templates/preview"): {"key": "ticket_received", "language": "en"},
    ("PATCH", "/v1/notification-rules/{key}"): {"enabled": False},
    ("PUT", "/v1/notification-rules/{key}/teams/{team_id}"): {"enabled": False},
    ("PUT", "/v1/notification-preferences/customers/{customer_id}"): {"opted_out": True},
    ("PUT", "/v1/notification-preferences/emails/{email}"): {"opted_out": True},
    ("PUT", "/v1/notification-contacts/{user_id}"): {},
    # kb-svc
    ("POST", "/v1/kb/categories"): {"name": "帮助", "locale": "zh-CN"},
    ("PATCH", "/v1/kb/categories/{category_id}"): {"position": 1},
    ("POST", "/v1/kb/sections"): {"category_id": U1, "name": "退款", "locale": "zh-CN"},
    ("PATCH", "/v1/kb/sections/{section_id}"): {"position": 1},
    ("POST", "/v1/kb/articles"): {"section_id": U1, "locale": "zh-CN", "title": "如何退款"},
    ("PATCH", "/v1/kb/articles/{article_id}"): {"labels": ["退款"]},
    ("PUT", "/v1/kb/articles/{article_id}/translations/{locale}"): {"title": "How to get a refund"},
    ("POST", "/v1/kb/articles/{article_id}/publish"): {"locale": "en"},
    ("POST", "/v1/kb/articles/{article_id}/unpublish"): {"locale": "en"},
    ("POST", "/v1/kb/customer-tokens"): {"customer_id": U1},
    ("POST", "/v1/kb/suggestions"): {"subject": "refund"},
    ("POST", "/v1/kb/suggestions/{suggestion_id}/views"): {"article_id": U1},
    ("POST", "/v1/kb/articles/{article_id}/links"): {"ticket_id": U1},
    ("POST", "/v1/kb/articles/{article_id}/votes"): {"helpful": True},
}

#: operations that take a credential of their own before reading the body (a capability token
#: in the path, or the channel's key for intake), and the principal they are sent as
AS_CHANNEL = {("POST", "/v1/channels/chat/inbound"): "chat", ("POST", "/v1/channels/phone/inbound"): "phone"}
#: capability-token routes: the token is checked before the body is read, so an invalid token
#: answers 404 whatever the body; their bodies are covered by the model walk above
TOKEN_ROUTES = {("POST", "/v1/surveys/{token}"), ("POST", "/v1/confirmations/{token}"),
                # DingTalk's callback ignores keys it does not know (OPEN_BODIES): nothing to refuse
                ("POST", "/v1/channels/dingtalk/inbound")}

SERVICES = {
    "customer_svc": ("CUSTOMER_", {"CUSTOMER_CONSUMERS_ENABLED": "false", "CUSTOMER_RELAY_ENABLED": "false"}),
    "ticket_svc": ("TICKET_", {"TICKET_CONSUMERS_ENABLED": "false", "TICKET_RELAY_ENABLED": "false"}),
    "sla_svc": ("SLA_", {"SLA_CONSUMERS_ENABLED": "false", "SLA_RELAY_ENABLED": "false"}),
    "notify_svc": ("NOTIFY_", {"NOTIFY_CONSUMERS_ENABLED": "false", "NOTIFY_RELAY_ENABLED": "false"}),
    "kb_svc": ("KB_", {"KB_CONSUMERS_ENABLED": "false", "KB_RELAY_ENABLED": "false"}),
}


#: objects created before the sweep, so that updates aim at a real row (read back by the
#: fingerprint): (path, body, the path parameter its id fills)
SEEDS = {
    "customer_svc": [("/v1/customers", VALID[("POST", "/v1/customers")], "customer_id"),
                     ("/v1/organizations", VALID[("POST", "/v1/organizations")], "organization_id")],
    "ticket_svc": [("/v1/tickets", VALID[("POST", "/v1/tickets")], "ticket_id"),
                   ("/v1/teams", VALID[("POST", "/v1/teams")], "team_id")],
    "sla_svc": [("/v1/sla/policies", VALID[("POST", "/v1/sla/policies")], "policy_id"),
                ("/v1/sla/calendars", VALID[("POST", "/v1/sla/calendars")], "calendar_id")],
    "notify_svc": [],
    "kb_svc": [("/v1/kb/categories", VALID[("POST", "/v1/kb/categories")], "category_id")],
}


def _body_models(app: Any) -> dict[tuple[str, str], Any]:
    """(method, path) -> a TypeAdapter of the route's body, for offline validation."""
    out = {}
    for route in _routes(app.routes):
        if route.body_field is not None:
            adapter = TypeAdapter(route.body_field.field_info.annotation)
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            for method in route.methods:
                out[(method, path)] = adapter
    return out


def _json_operations(app: Any) -> Iterator[tuple[str, str, set[str]]]:
    """(method, path, declared top-level properties) of every operation with a JSON object body."""
    doc = app.openapi()
    components = doc.get("components", {}).get("schemas", {})
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            media = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if media is None:
                continue
            schema = _resolve(media.get("schema", {}), components)
            declared: set[str] = set(schema.get("properties", {}))
            for variant in schema.get("oneOf", []) + schema.get("anyOf", []):
                declared |= set(_resolve(variant, components).get("properties", {}))
            yield method.upper(), path, declared


async def _fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row of every table of the database."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' ORDER BY 1"))).scalars().all()
            out = {}
            for table in tables:
                row = (await conn.execute(text(
                    f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
                    f'FROM "{table}" t'))).one()
                out[table] = (row[0], row[1])
            return out
    finally:
        await engine.dispose()


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


@pytest.mark.parametrize("module", sorted(SERVICES))
async def test_server_owned_fields_are_refused(module: str, infra: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix, env = SERVICES[module]
    url = infra.new_database(module)
    service_env(monkeypatch, infra, prefix, url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if module == "notify_svc":
        from notify_svc.webhooks.crypto import generate_key

        monkeypatch.setenv("NOTIFY_SECRET_KEY", generate_key())
    app = _create_app(module, configured=True)
    models = _body_models(app)
    operations = [op for op in _json_operations(app) if (op[0], op[1]) not in TOKEN_ROUTES]
    assert operations, module

    stale: list[str] = []
    failures: list[str] = []
    sent = 0
    values = dict(PATH_VALUES)
    async with running_app(app) as client:
        for path, body, name in SEEDS[module]:
            created = await client.post(path, json=body, headers=identity_headers(ADMIN))
            assert created.status_code == 201, created.text
            values[name] = created.json()["id"]
        before = await _fingerprint(url)
        for method, path, declared in operations:
            base = VALID.get((method, path), {})
            adapter = models.get((method, path))
            base_valid = False
            if adapter is not None:
                try:
                    adapter.validate_python(orjson.loads(orjson.dumps(base)))
                    base_valid = True
                except ValidationError as exc:
                    stale.append(f"{method} {path}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
            channel = AS_CHANNEL.get((method, path))
            principal = _channel_key(channel) if channel else ADMIN
            for field in SERVER_OWNED:
                if field in declared:
                    continue
                sent += 1
                body = {**base, field: "1" if field != "id" else str(uuid.uuid4())}
                response = await client.request(method, _fill(path, values), content=orjson.dumps(body),
                                                headers={**identity_headers(principal),
                                                         "content-type": "application/json"})
                where = f"{method} {path} + {field}: {response.status_code} {response.text[:300]}"
                if response.status_code != 422 or not response.headers["content-type"].startswith(
                        "application/problem+json"):
                    failures.append(where)
                    continue
                # FastAPI names body fields "body.<name>"; intake routes parse their payload
                # themselves and name them as the payload does
                errors = [e for e in response.json().get("errors", [])
                          if not e["field"].startswith(("path.", "query.", "header."))]
                named = [e for e in errors if e["field"] in (f"body.{field}", field) and e["code"] == "extra_forbidden"]
                if not named or (base_valid and len(errors) != 1):
                    failures.append(where)
    after = await _fingerprint(url)
    assert not stale, "valid-body table entries the service refuses:\n" + "\n".join(stale)
    assert not failures, f"{len(failures)} of {sent} requests were not refused for the field alone:\n" + \
        "\n".join(failures[:40])
    changed = {t: (before.get(t), after[t]) for t in after if before.get(t) != after[t]}
    assert not changed, f"refused requests changed tables: {changed}"
    print(f"{module}: {len(operations)} JSON operations, {sent} requests with a server-owned field, all 422")
