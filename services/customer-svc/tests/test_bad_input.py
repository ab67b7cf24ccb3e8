"""Bad input on customer-svc's API: a 4xx problem+json each time, never a 500 (issue 9, "Medium 5").

NUL in every list filter (PostgreSQL text refuses it), forged cursors whose date overflows once
converted to UTC, lone surrogates and NaN in a PATCH body.
"""

import base64
import uuid

import orjson
import pytest
from sqlalchemy import text

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))


def cursor(created_at: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, str(uuid.uuid4())])).decode().rstrip("=")


def _raw(body: str) -> dict:
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


#: (id, method, url, request kwargs, expected status, what the answer names); {customer} is a seeded one
CASES = [
    ("list-email-nul", "GET", "/v1/customers?email=a%00@example.com", {}, 422, "query.email"),
    ("list-phone-nul", "GET", "/v1/customers?phone=%00", {}, 422, "query.phone"),
    ("list-tier-nul", "GET", "/v1/customers?tier=vip%00", {}, 422, "query.tier"),
    ("list-cursor-nul", "GET", "/v1/customers?cursor=%00", {}, 422, "query.cursor"),
    ("list-cursor-overflows-utc", "GET", f"/v1/customers?cursor={cursor('9999-12-31T23:00:00-14:00')}", {}, 400,
     "invalid-cursor"),
    ("list-cursor-underflows-utc", "GET", f"/v1/customers?cursor={cursor('0001-01-01T00:00:00+14:00')}", {}, 400,
     "invalid-cursor"),
    ("read-path-nul", "GET", "/v1/customers/%00", {}, 422, "path"),
    ("patch-name-lone-surrogate", "PATCH", "/v1/customers/{customer}", _raw('{"name": "a\\ud800"}'), 422, "name"),
    ("patch-tier-lone-surrogate", "PATCH", "/v1/customers/{customer}", _raw('{"tier": "\\udfffvip"}'), 422, "tier"),
    ("patch-name-nan", "PATCH", "/v1/customers/{customer}", _raw('{"name": NaN}'), 422, "name"),
    ("patch-tier-nul", "PATCH", "/v1/customers/{customer}", {"json": {"tier": "v\x00"}}, 422, "tier"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "expected", "named"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_bad_input_is_a_4xx_problem(api, raw, db, method, url, kwargs, expected, named):
    async with raw.transaction():
        customer_id, _ = await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester={"email": "c@example.cn"})
    kwargs = dict(kwargs)
    headers = {**SUPERVISOR, **kwargs.pop("headers", {})}
    r = await api.request(method, url.format(customer=customer_id), headers=headers, **kwargs)
    assert r.status_code == expected, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == expected and named in r.text, r.text
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT version FROM customers")) == 1, "bad input changed the customer"
