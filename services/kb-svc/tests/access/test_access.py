"""Who the caller is (kb_svc/access.py): signed identities by role, customer tokens, the public;
and ``POST /v1/kb/customer-tokens``."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier, Principal
from helpdesk_common.problems import Problem
from helpdesk_common.capability import unb64
from helpdesk_common.testing import TEST_PUBLIC_KEY, TEST_TOKEN_LIFETIME_S, identity_headers, running_app, service_env
from kb_svc.access import (InvalidCustomerToken, Viewer, mint_customer_token, may_read, require_editor,
                           require_staff, verify_customer_token, viewer)

KEY = b"k" * 40
CUSTOMER = uuid.UUID("6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f")


def request_with(headers: dict[str, str], *, key: bytes | None = KEY) -> SimpleNamespace:
    settings = SimpleNamespace(customer_token_key=SecretStr(key.decode()) if key else None)
    state = SimpleNamespace(identity_verifier=IdentityVerifier(TEST_PUBLIC_KEY, max_lifetime_s=TEST_TOKEN_LIFETIME_S),
                            settings=settings)
    return SimpleNamespace(headers={k.lower(): v for k, v in headers.items()}, app=SimpleNamespace(state=state))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("role", "kind"), [
    ("admin", "editor"), ("editor", "editor"), ("supervisor", "staff"), ("agent", "staff"),
])
async def test_users_by_role(role, kind):
    seen = await viewer(request_with(identity_headers(Principal(kind="user", id="u1", role=role))))
    assert (seen.kind, seen.user_id, seen.role) == (kind, "u1", role)
    assert seen.visibilities == ("public", "customers", "agents") and seen.sees_drafts
    assert seen.can_write is (kind == "editor")
    assert seen.ref == "user:u1"


async def test_an_unknown_role_is_refused():
    with pytest.raises(Problem) as refused:
        await viewer(request_with(identity_headers(Principal(kind="user", id="u1", role="owner"))))
    assert refused.value.status == 403


async def test_a_customer_token_makes_a_customer_beside_an_anonymous_identity_or_alone():
    token = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    visitor = identity_headers(Principal(kind="visitor", id="anonymous"))
    for headers in ({**visitor, **bearer(token)}, bearer(token)):
        seen = await viewer(request_with(headers))
        assert seen == Viewer(kind="customer", customer_id=CUSTOMER)
        assert seen.visibilities == ("public", "customers") and not seen.sees_drafts and not seen.can_write
        assert seen.ref == f"customer:{CUSTOMER}"


async def test_a_user_identity_wins_over_a_bearer_and_a_channel_reads_as_the_public():
    token = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    agent = identity_headers(Principal(kind="user", id="a1", role="agent"))
    assert (await viewer(request_with({**agent, **bearer(token)}))).kind == "staff"
    channel = await viewer(request_with(identity_headers(Principal(kind="channel", id="k1", channel="web"))))
    assert channel == Viewer(kind="public", channel="web") and channel.visibilities == ("public",)
    assert channel.ref is None


@pytest.mark.parametrize("headers", [{}, identity_headers(Principal(kind="visitor", id="anonymous"))])
async def test_no_credential_is_the_public(headers):
    seen = await viewer(request_with(headers))
    assert seen == Viewer(kind="public") and seen.visibilities == ("public",) and not seen.sees_drafts


def _forged() -> list[str]:
    good = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    prefix, payload, expires, mac = good.split(".")
    other = mint_customer_token(b"x" * 40, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    return [
        other,  # another key
        ".".join((prefix, payload, str(int(expires) + 3600), mac)),  # stretched
        ".".join((prefix, mint_customer_token(KEY, customer_id=uuid.uuid4(), expires=1).split(".")[1], expires, mac)),
        mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) - 1),  # expired
        "hcf1" + good[4:],  # another kind's prefix
        good + "x", "", "hkc1", "hkc1.....", "hkc1.AA.1.AA", "x" * 500, "hkc1.中文.1.x",
    ]


# named: the tokens hold the clock and random ids, and pytest-xdist's workers must collect the same ids
@pytest.mark.parametrize("token", _forged(), ids=["another-key", "stretched", "another-customer", "expired",
                                                  "another-prefix", "trailing-x", "empty", "prefix-only",
                                                  "empty-parts", "short-parts", "500-chars", "non-ascii"])
async def test_a_bad_customer_token_is_a_401_not_the_public(token):
    with pytest.raises(Problem) as refused:
        await viewer(request_with(bearer(token) if token else {"authorization": "Bearer "}))
    assert refused.value.status == 401 and refused.value.headers == {"WWW-Authenticate": "Bearer"}


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "hkc1.x.1.y", "Bearer"])
async def test_an_authorization_that_is_no_bearer_is_a_401(authorization):
    with pytest.raises(Problem) as refused:
        await viewer(request_with({"authorization": authorization}))
    assert refused.value.status == 401


async def test_without_a_key_a_presented_customer_token_is_a_503():
    token = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    with pytest.raises(Problem) as refused:
        await viewer(request_with(bearer(token), key=None))
    assert refused.value.status == 503
    assert (await viewer(request_with({}, key=None))).kind == "public"


async def test_a_forged_identity_is_a_401():
    with pytest.raises(Problem) as refused:
        await viewer(request_with({IDENTITY_HEADER: "not.a.jwt"}))
    assert refused.value.status == 401


@given(customer=st.uuids(), lifetime=st.integers(1, 10**8), flip=st.integers(0, 10**6))
def test_tokens_round_trip_and_a_changed_character_never_grants_more(customer, lifetime, flip):
    now = 1_800_000_000
    token = mint_customer_token(KEY, customer_id=customer, expires=now + lifetime)
    assert verify_customer_token(KEY, token, now=now) == customer
    with pytest.raises(InvalidCustomerToken):
        verify_customer_token(KEY, token, now=now + lifetime)
    i = flip % len(token)
    changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    try:
        got = verify_customer_token(KEY, changed, now=now)
    except InvalidCustomerToken:
        return
    # accepted only when the change hit the unused low bits of a base64 field's last character:
    # the same customer, expiry and MAC bytes
    old, new = token.split("."), changed.split(".")
    assert got == customer and old[2] == new[2]
    assert (unb64(old[1]), unb64(old[3])) == (unb64(new[1]), unb64(new[3]))


@pytest.mark.parametrize(("kind", "visibility", "readable"), [
    ("public", "public", True), ("public", "customers", False), ("public", "agents", False),
    ("customer", "public", True), ("customer", "customers", True), ("customer", "agents", False),
    ("staff", "agents", True), ("editor", "agents", True), ("editor", "customers", True),
    ("staff", "secret", False),
])
def test_who_reads_which_visibility(kind, visibility, readable):
    assert may_read(kind, visibility) is readable


@pytest.mark.parametrize(("who", "staff", "editor"), [
    (Viewer(kind="public"), 401, 401),
    (Viewer(kind="public", channel="web"), 401, 401),
    (Viewer(kind="customer", customer_id=CUSTOMER), 403, 403),
    (Viewer(kind="staff", user_id="a", role="agent"), None, 403),
    (Viewer(kind="staff", user_id="s", role="supervisor"), None, 403),
    (Viewer(kind="editor", user_id="e", role="editor"), None, None),
    (Viewer(kind="editor", user_id="a", role="admin"), None, None),
])
def test_require_staff_and_editor(who, staff, editor):
    for check, status in ((require_staff, staff), (require_editor, editor)):
        if status is None:
            assert check(who) is who
        else:
            with pytest.raises(Problem) as refused:
                check(who)
            assert refused.value.status == status


# --- POST /v1/kb/customer-tokens -------------------------------------------------------------

@pytest.fixture
async def keyed_api(infra, kb_db, monkeypatch):
    service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_KEY", KEY.decode())
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_MAX_TTL_MINUTES", "1440")
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


async def test_staff_mint_customer_tokens_that_kb_svc_accepts(keyed_api, headers):
    for role in ("agent", "supervisor", "admin"):
        before = int(time.time())
        made = await keyed_api.post("/v1/kb/customer-tokens", json={"customer_id": str(CUSTOMER), "ttl_minutes": 30},
                                    headers=headers[role])
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["customer_id"] == str(CUSTOMER) and body["token_type"] == "Bearer" and body["expires_in"] == 1800
        assert body["token"].startswith("hkc1.") and "expires_at" in body
        expires = int(body["token"].split(".")[2])
        assert before + 1800 <= expires <= int(time.time()) + 1800
        assert verify_customer_token(KEY, body["token"], now=time.time()) == CUSTOMER
    default = await keyed_api.post("/v1/kb/customer-tokens", json={"customer_id": str(CUSTOMER)}, headers=headers["agent"])
    assert default.status_code == 201 and default.json()["expires_in"] == 3600


@pytest.mark.parametrize(("who", "status"), [("public", 401), ("editor", 403), ("editor2", 403)])
async def test_only_staff_mint_customer_tokens(keyed_api, headers, who, status):
    answer = await keyed_api.post("/v1/kb/customer-tokens", json={"customer_id": str(CUSTOMER)}, headers=headers[who])
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_customer_cannot_mint_a_token(keyed_api):
    token = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    answer = await keyed_api.post("/v1/kb/customer-tokens", json={"customer_id": str(uuid.uuid4())},
                                  headers=bearer(token))
    assert answer.status_code == 403


@pytest.mark.parametrize("body", [
    {}, {"customer_id": "not-a-uuid"}, {"customer_id": str(CUSTOMER), "ttl_minutes": 0},
    {"customer_id": str(CUSTOMER), "ttl_minutes": 1441}, {"customer_id": str(CUSTOMER), "ttl_minutes": 43_201},
    {"customer_id": str(CUSTOMER), "ttl_minutes": 2**63},
    {"customer_id": str(CUSTOMER), "ttl_minutes": "60"}, {"customer_id": str(CUSTOMER), "extra": 1},
    {"customer_id": str(CUSTOMER), "ttl_minutes": None},
])
async def test_bad_token_requests_are_422(keyed_api, headers, body):
    answer = await keyed_api.post("/v1/kb/customer-tokens", json=body, headers=headers["agent"])
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_without_a_key_minting_is_a_503(api, headers):
    answer = await api.post("/v1/kb/customer-tokens", json={"customer_id": str(CUSTOMER)}, headers=headers["agent"])
    assert answer.status_code == 503 and answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers.get("retry-after")


async def test_each_viewer_has_a_stable_caller_key_and_never_a_credential():
    token = mint_customer_token(KEY, customer_id=CUSTOMER, expires=int(time.time()) + 60)
    cases = [
        (identity_headers(Principal(kind="user", id="u1", role="agent")), "user:u1"),
        (identity_headers(Principal(kind="channel", id="k1", channel="web")), "channel:k1"),
        ({**identity_headers(Principal(kind="visitor", id="d" * 32)), **bearer(token)}, f"customer:{CUSTOMER}"),
        (identity_headers(Principal(kind="visitor", id="anon:" + "a" * 32)), "anon:" + "a" * 32),
        ({}, None),
    ]
    for headers, caller in cases:
        assert (await viewer(request_with(headers))).caller == caller
