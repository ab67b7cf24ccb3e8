"""OIDC sign-in against an issuer this test session runs: a small OpenID provider on 127.0.0.1
(discovery document, JWKS, an authorize endpoint that redirects back with a code at once, a
token endpoint checking the client secret and PKCE and issuing an RS256 ID token)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from gateway.auth import oidc

from .conftest import new_gateway, serve, user_token
from .test_auth_hardening import bearer, create_user

pytestmark = pytest.mark.timeout(240)

CLIENT_ID = "helpdesk-gateway"
CLIENT_SECRET = "issuer-test-secret-" + uuid.uuid4().hex


@dataclass
class Issuer:
    url: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = "issuer-key-1"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: claims to change in the next ID tokens (None: leave the claim out)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: sign with a key the JWKS does not publish (under the published kid)
    forge: bool = False
    #: the identity the next authorization is for
    email: str = ""


def issuer_app(state: Issuer) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict:
        return {"issuer": state.url, "authorization_endpoint": state.url + "/authorize",
                "token_endpoint": state.url + "/token", "jwks_uri": state.url + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    @app.get("/jwks")
    async def jwks() -> dict:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(state.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": state.kid, "use": "sig", "alg": "RS256"}]}

    @app.get("/authorize")
    async def authorize(request: Request) -> Any:
        q = request.query_params
        if (q.get("client_id") != CLIENT_ID or q.get("response_type") != "code"
                or q.get("code_challenge_method") != "S256" or "openid" not in q.get("scope", "").split()):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        state.codes[code] = {"nonce": q.get("nonce"), "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                             "email": state.email, "used": False}
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}), status_code=302)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        grant = state.codes.get(str(form.get("code")))
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if (grant is None or grant["used"] or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["challenge"]):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        grant["used"] = True
        now = int(time.time())
        claims = {"iss": state.url, "aud": CLIENT_ID, "sub": "sub-" + grant["email"], "email": grant["email"],
                  "email_verified": True, "nonce": grant["nonce"], "iat": now, "exp": now + 300}
        for name, value in state.overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if state.forge else state.key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": state.kid})
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})

    return app


@pytest.fixture
async def issuer():
    state = Issuer()
    async with serve(issuer_app(state), lifespan="off") as (url, _):
        state.url = url
        yield state


@pytest.fixture
def oidc_env(gateway_env, issuer, monkeypatch):
    monkeypatch.setenv("GATEWAY_OIDC_PROVIDERS", json.dumps(
        {"corp": {"issuer": issuer.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}))
    return issuer


async def _sign_in(client: httpx.AsyncClient, issuer: Issuer) -> tuple[httpx.Response, str]:
    """Start → the provider's authorize → back to the callback; (the callback's answer, its URL)."""
    start = await client.get("/v1/auth/oidc/corp/start")
    assert start.status_code == 302, start.text
    to_provider = start.headers["location"]
    query = parse_qs(urlsplit(to_provider).query)
    assert to_provider.startswith(issuer.url + "/authorize?") and query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    async with httpx.AsyncClient(timeout=30) as browser:
        back = await browser.get(to_provider)
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    assert callback.startswith(str(client.base_url) + "/v1/auth/oidc/corp/callback?")
    return await client.get(callback), callback


async def test_oidc_sign_in_and_what_it_refuses(oidc_env):
    issuer = oidc_env
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin, role="supervisor")
        issuer.email = user["email"].upper()  # providers may spell it otherwise

        answer, callback = await _sign_in(client, issuer)
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        me = await client.get("/v1/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200 and me.json()["id"] == user["id"]
        assert (await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 200

        # the same state (and code) again: refused
        replay = await client.get(callback)
        assert replay.status_code == 401 and replay.json()["code"] == "oidc_state_invalid"
        made_up = await client.get("/v1/auth/oidc/corp/callback?code=x&state=" + secrets.token_urlsafe(32))
        assert made_up.status_code == 401 and made_up.json()["code"] == "oidc_state_invalid"

        cases = [
            ({"iss": "http://127.0.0.1:9/another-issuer"}, False, 401, "oidc_wrong_issuer"),
            ({"aud": "someone-else"}, False, 401, "oidc_wrong_audience"),
            ({"azp": "someone-else"}, False, 401, "oidc_wrong_audience"),
            ({}, True, 401, "oidc_bad_signature"),
            ({"nonce": None}, False, 401, "oidc_nonce_mismatch"),
            ({"nonce": "another-sign-in"}, False, 401, "oidc_nonce_mismatch"),
            ({"exp": int(time.time()) - 600}, False, 401, "oidc_token_invalid"),
            ({"email_verified": False}, False, 403, "oidc_email_unverified"),
            ({"email_verified": None}, False, 403, "oidc_email_unverified"),
        ]
        for overrides, forge, status, code in cases:
            issuer.overrides, issuer.forge = overrides, forge
            refused, _ = await _sign_in(client, issuer)
            assert (refused.status_code, refused.json().get("code")) == (status, code), (overrides, forge, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
        issuer.overrides, issuer.forge = {}, False

        # nobody we know, and no account is made
        issuer.email = "stranger@example.com"
        stranger, _ = await _sign_in(client, issuer)
        assert stranger.status_code == 403 and stranger.json()["code"] == "oidc_no_account"
        # a deactivated user is refused too
        assert (await client.delete(f"/v1/users/{user['id']}", headers=admin)).status_code == 204
        issuer.email = user["email"]
        gone, _ = await _sign_in(client, issuer)
        assert gone.status_code == 403 and gone.json()["code"] == "oidc_no_account"

        assert (await client.get("/v1/auth/oidc/nobody/start")).status_code == 404


async def test_a_configured_subject_mapping_and_the_post_callback(gateway_env, issuer, monkeypatch):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
    monkeypatch.setenv("GATEWAY_OIDC_PROVIDERS", json.dumps({"corp": {
        "issuer": issuer.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "subjects": {"sub-wx-7781": user["email"]}}}))
    issuer.email = "wx-7781"  # the provider's subject is sub-wx-7781; its e-mail is no address of ours
    issuer.overrides = {"email_verified": False}  # the mapping does not depend on the e-mail
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        start = await client.get("/v1/auth/oidc/corp/start")
        async with httpx.AsyncClient(timeout=30) as browser:
            back = await browser.get(start.headers["location"])
        params = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
        answer = await client.post("/v1/auth/oidc/corp/callback", json=params)  # an SPA posting what it caught
        assert answer.status_code == 200, answer.text
        me = await client.get("/v1/users/me", headers=bearer(answer.json()["access_token"]))
        assert me.json()["id"] == user["id"]


@pytest.mark.parametrize(("claims", "code"), [
    ({"email": "a@example.com", "email_verified": True}, None),
    ({"email": "a@example.com", "email_verified": "true"}, "oidc_email_unverified"),  # a string is no boolean
    ({"email": "a@example.com"}, "oidc_email_unverified"),
    ({}, "oidc_no_email"),
])
def test_account_email(claims, code):
    provider = oidc.Provider(name="p", issuer="https://idp", client_id="c", client_secret="s")
    if code is None:
        assert oidc.account_email({"sub": "1", **claims}, provider) == "a@example.com"
    else:
        with pytest.raises(Exception) as info:
            oidc.account_email({"sub": "1", **claims}, provider)
        assert info.value.extensions["code"] == code


async def test_a_provider_key_rotation_is_followed(oidc_env):
    """The key set is cached; an ID token naming a kid not in it fetches the set again once."""
    issuer = oidc_env
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        issuer.email = user["email"]
        assert (await _sign_in(client, issuer))[0].status_code == 200
        issuer.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer.kid = "issuer-key-2"
        rotated, _ = await _sign_in(client, issuer)
        assert rotated.status_code == 200, rotated.text
