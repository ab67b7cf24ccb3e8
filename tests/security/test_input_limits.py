"""Input limits: every input a caller controls has a bound, and going past it is a 4xx problem.

* generated over every app's OpenAPI document: every ``limit`` query parameter has a maximum of
  at most 1,000, and every list in a JSON request body or a query has ``maxItems`` (free-form
  JSON values aside: their size and depth are bounded by their validators, below);
* on each service in-process with its real database: a body above ``MAX_BODY_BYTES`` is a 413
  problem before any handler runs, a JSON document nested 100,000 deep is a 4xx problem (never a
  recursion error), and ``limit`` one past the maximum is a 422 naming it;
* table tests of the documented bounds (docs/security.md, "Input"): one past each is a 422 that
  names the field, and nothing is written.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

APPS = ["gateway", "customer_svc", "ticket_svc", "sla_svc", "analytics_svc", "notify_svc", "kb_svc"]
ADMIN = Principal(kind="user", id=str(uuid.uuid4()), role="admin", name="Limits Admin")
API_KEY = Principal(kind="channel", id=str(uuid.uuid4()), channel="api")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from helpdesk_common.pii_crypto import new_settings

    for prefix in ("CUSTOMER_", "GATEWAY_", "TICKET_"):
        for name, value in new_settings(prefix).items():
            monkeypatch.setenv(name, value)
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _resolve(schema: Any, components: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _unbounded_lists(schema: Any, components: dict[str, Any], where: str, seen: frozenset[str]) -> Iterator[str]:
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen or name.startswith("JsonValue"):  # free-form JSON: bounded by its validator
            return
        seen = seen | {name}
        schema = components[name]
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if "array" in types and "maxItems" not in schema and "prefixItems" not in schema:
        yield where
    for key, sub in (schema.get("properties") or {}).items():
        yield from _unbounded_lists(sub, components, f"{where}.{key}", seen)
    for key in ("items", "additionalProperties"):
        yield from _unbounded_lists(schema.get(key), components, f"{where}[]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            yield from _unbounded_lists(sub, components, where, seen)


#: lists without maxItems, and what bounds them instead
UNBOUNDED_LISTS_ALLOWED = {
    # DingTalk's own payload (a vendor callback): bounded by the request's size and read once
    "ticket_svc POST /v1/channels/dingtalk/inbound",
    # a form field's default of a multi_select: checked against the field's options and max_selected
    "ticket_svc PUT /v1/forms/{ticket_type}",
}


def test_every_list_and_page_size_is_bounded() -> None:
    unbounded_limits, unbounded_lists = [], []
    operations = 0
    for module in APPS:
        doc = importlib.import_module(f"{module}.main").create_app().openapi()
        components = doc.get("components", {}).get("schemas", {})
        for path, methods in doc["paths"].items():
            for method, operation in methods.items():
                operations += 1
                where = f"{module} {method.upper()} {path}"
                for parameter in operation.get("parameters", []):
                    schema = _resolve(parameter.get("schema", {}), components)
                    if parameter["name"] == "limit":
                        maxima = [s.get("maximum") for s in [schema, *schema.get("anyOf", [])] if s.get("maximum")]
                        if not maxima or max(maxima) > 1000:
                            unbounded_limits.append(where)
                    for hit in _unbounded_lists(schema, components, f"{where} ?{parameter['name']}", frozenset()):
                        unbounded_lists.append(hit)
                media = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
                if media and where not in UNBOUNDED_LISTS_ALLOWED:
                    unbounded_lists += list(_unbounded_lists(media.get("schema", {}), components, where, frozenset()))
    assert operations > 200, operations
    assert not unbounded_limits, unbounded_limits
    assert not unbounded_lists, "lists without maxItems:\n" + "\n".join(sorted(set(unbounded_lists)))


# --- each service on its real database ------------------------------------------------------

SERVICES = {
    # module: (prefix, a JSON write route, a list route with limit)
    "customer_svc": ("CUSTOMER_", "/v1/customers", "/v1/customers"),
    "ticket_svc": ("TICKET_", "/v1/tickets", "/v1/tickets"),
    "sla_svc": ("SLA_", "/v1/sla/policies", "/v1/sla/policies"),
    "notify_svc": ("NOTIFY_", "/v1/webhooks", "/v1/webhooks"),
    "kb_svc": ("KB_", "/v1/kb/categories", "/v1/kb/articles"),
    "analytics_svc": ("ANALYTICS_", None, None),
}


@pytest.fixture
async def service(request: Any, infra: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = request.param
    prefix = SERVICES[module][0]
    service_env(monkeypatch, infra, prefix, infra.new_database(module))
    monkeypatch.setenv(f"{prefix}CONSUMERS_ENABLED", "false")
    monkeypatch.setenv(f"{prefix}RELAY_ENABLED", "false")
    if module == "notify_svc":
        from notify_svc.webhooks.crypto import generate_key

        monkeypatch.setenv("NOTIFY_SECRET_KEY", generate_key())
    settings = importlib.import_module(f"{module}.config").Settings()
    async with running_app(importlib.import_module(f"{module}.main").create_app(settings)) as client:
        client.module = module
        yield client


def _is_problem(response: Any, *statuses: int) -> bool:
    return response.status_code in statuses and response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("service", [m for m, (_, write, _) in SERVICES.items() if write], indirect=True)
async def test_body_size_nesting_and_page_size(service: Any) -> None:
    _, write, listing = SERVICES[service.module]
    headers = {**identity_headers(API_KEY if service.module == "ticket_svc" else ADMIN),
               "content-type": "application/json"}
    huge = b'{"name": "' + b"x" * (1_048_576 + 10) + b'"}'
    too_big = await service.post(write, content=huge, headers=headers)
    assert _is_problem(too_big, 413), too_big.text[:300]

    deep = b"[" * 100_000 + b"]" * 100_000
    nested = await service.post(write, content=b'{"name": ' + deep + b"}", headers=headers)
    assert _is_problem(nested, 400, 413, 422), nested.text[:300]
    deep_object = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    nested = await service.post(write, content=deep_object, headers=headers)
    assert _is_problem(nested, 400, 413, 422), nested.text[:300]

    page = await service.get(listing, params={"limit": 100_000}, headers=identity_headers(ADMIN))
    assert _is_problem(page, 422) and "limit" in page.text, page.text[:300]
    assert (await service.get(listing, params={"limit": 1}, headers=identity_headers(ADMIN))).status_code == 200


# --- the documented bounds, one past each -----------------------------------------------------

A = "a"
#: (service, path, valid body, field, a value one past the bound)
TICKET = {"subject": "退款", "requester": {"email": "r@example.com"}}
BOUNDS = [
    ("ticket_svc", "/v1/tickets", TICKET, "subject", A * 501),
    ("ticket_svc", "/v1/tickets", TICKET, "tags", [f"t{i}" for i in range(51)]),
    ("ticket_svc", "/v1/tickets", TICKET, "tags", ["t" * 65]),
    ("ticket_svc", "/v1/tickets", TICKET, "cc", [f"c{i}@example.com" for i in range(51)]),
    ("ticket_svc", "/v1/tickets", TICKET, "custom_fields", None),  # a value 9 objects deep: filled below
    ("ticket_svc", "/v1/tickets", TICKET, "description", A * 65_537),
    ("customer_svc", "/v1/customers", {"name": "张三"}, "identities",
     [{"kind": "email", "value": f"p{i}@example.com"} for i in range(21)]),
    ("customer_svc", "/v1/customers", {"identities": [{"kind": "email", "value": "p@example.com"}]}, "name", A * 201),
    ("customer_svc", "/v1/customers", {"identities": [{"kind": "email", "value": "p@example.com"}]}, "tags",
     [f"t{i}" for i in range(51)]),
    ("customer_svc", "/v1/customers", {"identities": [{"kind": "email", "value": "p@example.com"}]}, "attributes",
     {"blob": "x" * 20_000}),
    ("kb_svc", "/v1/kb/categories", {"locale": "zh-CN"}, "name", A * 201),
    ("sla_svc", "/v1/sla/policies", {"name": "p", "targets": {"first_response": {"minutes": 60}}}, "conditions",
     {"custom_fields": {"k": list(range(101))}}),
]


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


BOUNDS = [(s, p, b, f, _deep(10) if f == "custom_fields" else v) for s, p, b, f, v in BOUNDS]


@pytest.mark.parametrize("service", sorted({b[0] for b in BOUNDS}), indirect=True)
async def test_one_past_each_bound_is_a_422_naming_the_field(service: Any) -> None:
    headers = identity_headers(API_KEY if service.module == "ticket_svc" else ADMIN)
    checked = 0
    for module, path, body, field, value in BOUNDS:
        if module != service.module:
            continue
        answer = await service.post(path, content=orjson.dumps({**body, field: value}),
                                    headers={**headers, "content-type": "application/json"})
        assert _is_problem(answer, 422), (field, answer.status_code, answer.text[:300])
        named = [e["field"] for e in answer.json().get("errors", [])]
        assert any(field in name for name in named), (field, named)
        checked += 1
    listing = await service.get(SERVICES[service.module][2], headers=identity_headers(ADMIN))
    assert listing.status_code == 200 and listing.json()["items"] == [], "a refused write left something behind"
    assert checked
