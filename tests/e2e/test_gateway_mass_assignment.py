"""Mass assignment on the gateway's own write routes (sign-in, users, keys, tokens), through the
running gateway: each route's valid body plus each server-owned field it does not declare is a
422 naming the field, and the gateway's user and key tables are unchanged afterwards. The
services' routes are covered in-process by tests/security/test_mass_assignment.py, which also
requires ``extra="forbid"`` of every gateway model."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

_spec = importlib.util.spec_from_file_location(
    "security_mass_assignment", Path(__file__).resolve().parents[1] / "security" / "test_mass_assignment.py")
mass = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mass)  # type: ignore[union-attr]

PASSWORD = "Zq7!" + uuid.uuid4().hex
#: a valid body per gateway write route (checked offline against the route's model)
VALID = {
    ("POST", "/v1/auth/login"): {"email": "nobody@example.com", "password": PASSWORD},
    ("POST", "/v1/auth/refresh"): {"refresh_token": "x" * 43},
    ("POST", "/v1/auth/logout"): {},
    ("POST", "/v1/api-keys"): {"name": "key 钥匙", "channel": "web"},
    ("POST", "/v1/users"): {"email": "new@example.com", "password": PASSWORD, "role": "agent", "name": "新人"},
    ("POST", "/v1/users/me/password"): {"current_password": PASSWORD, "new_password": PASSWORD + "x"},
    ("PATCH", "/v1/users/{user_id}"): {"name": "改名"},
    ("POST", "/v1/users/me/totp/confirm"): {"code": "123456"},
    ("DELETE", "/v1/users/me/totp"): {"code": "123456", "password": PASSWORD},
    ("POST", "/v1/users/me/api-tokens"): {"name": "脚本"},
}


def _gateway_routes() -> list[tuple[str, str, object, set[str]]]:
    """(method, path, a validator of the body, the body's top-level field names)."""
    import typing

    from gateway.main import create_app
    from pydantic import BaseModel, TypeAdapter

    out = []
    for route in mass._routes(create_app().routes):
        # /api/v2 takes Zendesk's bodies, which ignore unknown fields by design (test_mass_assignment's
        # OPEN_BODIES): what it forwards goes through the services' strict models
        if route.body_field is not None and not route.path.startswith("/api/v2/"):
            annotation = route.body_field.field_info.annotation
            models = [a for a in (annotation, *typing.get_args(annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
            fields = {name for model in models for name in model.model_fields}
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            for method in route.methods:
                out.append((method, path, TypeAdapter(annotation), fields))
    return out


async def _send(gw, method, url, body, headers):
    for _ in range(20):  # the per-user request limit answers 429 with Retry-After: wait, as a client does
        answer = await gw.request(method, url, json=body, headers=headers)
        if answer.status_code != 429:
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
    return answer


async def _fingerprint(sql) -> dict[str, str]:
    tables = (await sql("gateway", "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
                                   "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND "
                                   "(table_name LIKE '%user%' OR table_name LIKE '%key%' OR table_name LIKE '%token%' "
                                   "OR table_name LIKE '%totp%')")).split(",")
    return {t: await sql("gateway", f"SELECT count(*)::text || ':' || md5(coalesce(string_agg(t::text, '|' "
                                    f"ORDER BY t::text), '')) FROM \"{t}\" t") for t in tables}


async def test_gateway_write_routes_refuse_server_owned_fields(gw, own_admin_headers, sql, monkeypatch):
    from helpdesk_common.pii_crypto import new_settings

    for name, value in {**new_settings("GATEWAY_"), **new_settings("CUSTOMER_")}.items():
        monkeypatch.setenv(name, value)  # the app is built here only to read its routes
    routes = _gateway_routes()
    assert {(m, p) for m, p, _, _ in routes} <= set(VALID), "a gateway write route without a valid body here"
    email = f"target-{uuid.uuid4().hex[:8]}@example.com"
    target = await gw.post("/v1/users", json={"email": email, "password": PASSWORD, "role": "agent", "name": "目标"},
                           headers=own_admin_headers)
    assert target.status_code == 201, target.text
    before = await _fingerprint(sql)  # the target user's row is read back through this
    assert "users" in before, before
    failures, sent = [], 0
    for method, path, adapter, fields in routes:
        body = VALID[(method, path)]
        adapter.validate_python(body)  # the table entry is itself valid
        url = path.replace("{user_id}", target.json()["id"])
        for field in mass.SERVER_OWNED:
            if field in fields:
                continue
            sent += 1
            answer = await _send(gw, method, url, {**body, field: "1"}, own_admin_headers)
            named = [e for e in answer.json().get("errors", []) if e.get("field") in (f"body.{field}", field)] \
                if answer.headers.get("content-type", "").startswith("application/problem+json") else []
            if answer.status_code != 422 or not named:
                failures.append(f"{method} {path} + {field}: {answer.status_code} {answer.text[:200]}")
    assert not failures, failures
    assert await _fingerprint(sql) == before
    print(f"gateway: {len(routes)} write routes, {sent} requests with a server-owned field, all 422")
