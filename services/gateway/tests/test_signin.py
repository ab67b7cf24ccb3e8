"""Sign-in (issue 15): the password policy, signing keys with kid and rotation, the JWKS, the
guessing window, two-factor sign-in (TOTP, replay, recovery codes, admins required to enrol) and
personal API tokens. OIDC sign-in is in test_oidc.py."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.auth import policy, totp
from gateway.auth.keys import SigningKeyError, SigningKeys, new_key_spec

from .conftest import SIGNING_KEY_SPEC, new_gateway, serve, user_token
from .test_auth_hardening import PASSWORD, bearer, create_user, from_address, login

pytestmark = pytest.mark.timeout(240)


# ---- the password policy (pure) ---------------------------------------------------------------
@pytest.mark.parametrize(("password", "email", "codes"), [
    ("correct horse battery staple", "ann@example.com", []),
    ("短密码", None, ["password_too_short"]),
    ("一二三四五六七八九十百千", None, []),  # 12 Chinese characters are 12 characters
    ("x" * 11, None, ["password_too_short"]),
    ("x" * 257, None, ["password_too_long"]),
    ("qwerty123456", None, ["password_common"]),
    ("QWERTY 123456", None, ["password_common"]),  # case and spaces do not make it another password
    ("1qaz2wsx3edc", None, ["password_common"]),
    ("password", None, ["password_too_short", "password_common"]),
    ("ann.lee.support@example.com", "Ann.Lee.Support@example.com", ["password_is_email"]),
    ("ann.lee.support", "ann.lee.support@example.com", ["password_is_email"]),
    ("ann.lee.support!", "ann.lee.support@example.com", []),
])
def test_password_policy(password, email, codes):
    assert [v.code for v in policy.violations(password, email=email, min_length=12)] == codes


def test_the_common_password_list_is_bundled_and_large():
    common = policy.common_passwords()
    assert len(common) >= 10_000 and "123456" in common and "1q2w3e4r5t6y" in common


# ---- signing keys (pure) ------------------------------------------------------------------------
def test_tokens_name_their_key_and_rotation_keeps_old_tokens_valid():
    old_spec, new_spec = new_key_spec("old"), new_key_spec("new")
    before = SigningKeys.from_settings(old_spec)
    token = before.sign({"sub": "x", "exp": int(time.time()) + 60})
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "old", "typ": "JWT"}
    rotated = SigningKeys.from_settings(f"{new_spec},{old_spec}")
    assert rotated.verify(token)["sub"] == "x"  # signed before the rotation: still good
    assert jwt.get_unverified_header(rotated.sign({"sub": "y"}))["kid"] == "new"
    with pytest.raises(jwt.PyJWTError):  # the old key dropped: its tokens end
        SigningKeys.from_settings(new_spec).verify(token)
    assert [k["kid"] for k in rotated.jwks()["keys"]] == ["new", "old"]


def test_no_key_is_tried_blindly_and_no_algorithm_is_confused():
    keys = SigningKeys.from_settings(new_key_spec("a"))
    claims = {"sub": "x", "exp": int(time.time()) + 60}
    other = SigningKeys.from_settings(new_key_spec("a")).sign(claims)  # same kid, another key
    unnamed = jwt.encode(claims, "secret-" * 6, algorithm="HS256")
    public_x = keys.jwks()["keys"][0]["x"]
    hs_with_public = jwt.encode(claims, public_x, algorithm="HS256", headers={"kid": "a"})
    none_alg = jwt.encode(claims, None, algorithm="none", headers={"kid": "a"})
    for token in (other, unnamed, hs_with_public, none_alg):
        with pytest.raises(jwt.PyJWTError):
            keys.verify(token)


@pytest.mark.parametrize("spec", ["", "nokey", "a:not-base64!", "a:" + "A" * 10, "bad kid:" + "A" * 43,
                                  new_key_spec("a") + "," + new_key_spec("a")],
                         ids=["empty", "no-colon", "not-base64", "short", "bad-kid", "kid-twice"])  # keys are random
def test_bad_key_settings_are_refused(spec):
    with pytest.raises(SigningKeyError):
        SigningKeys.from_settings(spec)


# ---- over HTTP ------------------------------------------------------------------------------------
async def test_weak_passwords_are_refused_everywhere_with_a_code(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        r = await client.post("/v1/users", json={"email": email, "password": "Qwerty123456"}, headers=admin)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"] == [{"field": "body.password", "code": "password_common",
                                       "message": "This password is one of the most common ones; choose another."}]
        r = await client.post("/v1/users", json={"email": email, "password": "short"}, headers=admin)
        assert [e["code"] for e in r.json()["errors"]] == ["password_too_short"]
        r = await client.post("/v1/users", json={"email": email, "password": email}, headers=admin)
        assert [e["code"] for e in r.json()["errors"]] == ["password_is_email"]
        user = await create_user(client, admin, email=email)
        reset = await client.patch(f"/v1/users/{user['id']}", json={"password": "1q2w3e4r5t6y"}, headers=admin)
        assert reset.status_code == 422 and reset.json()["errors"][0]["code"] == "password_common"
        tokens = (await login(client, email)).json()
        own = await client.post("/v1/users/me/password", json={"current_password": PASSWORD, "new_password": email},
                                headers=bearer(tokens["access_token"]))
        assert own.status_code == 422 and own.json()["errors"][0] == {
            "field": "body.new_password", "code": "password_is_email",
            "message": "The password must not be the e-mail address or its name part."}
        assert (await login(client, email)).status_code == 200  # nothing changed


async def test_jwks_and_a_key_rotation_that_signs_nobody_out(gateway_env, monkeypatch):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        before = (await login(client, user["email"])).json()
        jwks = await client.get("/.well-known/jwks.json")
        assert jwks.status_code == 200 and "public" in jwks.headers["cache-control"]
        [key] = jwks.json()["keys"]
        assert key["kid"] == "test-1" and key["kty"] == "OKP" and set(key) == {"kty", "crv", "use", "alg", "kid", "x"}
        # anyone can check a token with the published key alone
        public = jwt.PyJWK(key).key
        claims = jwt.decode(before["access_token"], public, algorithms=["EdDSA"], audience="helpdesk-api")
        assert claims["sub"] == user["id"]

    monkeypatch.setenv("GATEWAY_SIGNING_KEYS", new_key_spec("test-2") + "," + SIGNING_KEY_SPEC)
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/v1/users/me", headers=bearer(before["access_token"]))).status_code == 200
        after = (await client.post("/v1/auth/refresh", json={"refresh_token": before["refresh_token"]})).json()
        assert jwt.get_unverified_header(after["access_token"])["kid"] == "test-2"
        assert [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]] == ["test-2", "test-1"]
        assert (await client.get("/v1/users/me", headers=bearer(after["access_token"]))).status_code == 200


async def test_the_owner_signs_in_while_a_guessing_loop_runs(gateway_env, monkeypatch):
    """The done-when: a bounded loop of wrong guesses from many addresses; the owner signs in
    from an address they used before, during the loop, at the first try. The loop gets at most
    the hourly account-wide failures, and the owner from a new address waits (documented)."""
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_MINUTE_PER_ACCOUNT", "3")
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_HOUR_PER_ACCOUNT", "8")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        owner = await create_user(client, admin)
        async with from_address(url, "127.0.5.1") as home:
            assert (await login(home, owner["email"])).status_code == 200  # the owner's usual address

            answers: list[int] = []
            stop_at = time.monotonic() + 20.0  # bounded: 20 seconds or 60 guesses

            async def guessing_loop() -> None:
                for i in range(60):
                    if time.monotonic() > stop_at:
                        return
                    async with from_address(url, f"127.0.6.{i % 40 + 1}") as attacker:
                        answers.append((await login(attacker, owner["email"], f"guess number {i}")).status_code)

            loop = asyncio.create_task(guessing_loop())
            owner_answers = []
            try:
                while len(answers) < 20 and not loop.done():  # well into the loop: the account-wide bucket is empty
                    await asyncio.sleep(0.05)
                started = time.monotonic()
                owner_answers.append((await login(home, owner["email"], "a typo in it")).status_code)
                owner_answers.append((await login(home, owner["email"])).status_code)
                owner_waited = time.monotonic() - started
                async with from_address(url, "127.0.5.2") as new_place:
                    owner_answers.append((await login(new_place, owner["email"])).status_code)
            finally:
                await loop
        assert owner_answers == [401, 200, 429], owner_answers
        assert owner_waited < 5.0
        assert len(answers) >= 20 and set(answers) <= {401, 429}
        assert answers.count(401) <= 8, answers  # the loop's guesses that reached the password check


async def test_two_factor_sign_in(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        tokens = (await login(client, user["email"])).json()
        me = bearer(tokens["access_token"])
        enrol = await client.post("/v1/users/me/totp", headers=me)
        assert enrol.status_code == 201, enrol.text
        secret = enrol.json()["secret"]
        assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/") and secret in enrol.json()["otpauth_uri"]
        # not active until confirmed
        assert (await login(client, user["email"])).status_code == 200
        wrong = await client.post("/v1/users/me/totp/confirm", json={"code": "000000"}, headers=me)
        if totp.code_at_step(secret, totp.step_at(time.time())) != "000000":
            assert wrong.status_code == 422 and wrong.json()["errors"][0]["code"] == "totp_invalid"
        step = totp.step_at(time.time())
        confirmed = await client.post("/v1/users/me/totp/confirm", json={"code": totp.code_at_step(secret, step)},
                                      headers=me)
        assert confirmed.status_code == 200, confirmed.text
        recovery = confirmed.json()["recovery_codes"]
        assert len(recovery) == 10 and len(set(recovery)) == 10

        # the secret is encrypted at rest, the recovery codes hashed
        engine = create_async_engine(_gateway_db())
        try:
            async with engine.connect() as conn:
                stored = await conn.scalar(text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user["id"]})
                hashes = (await conn.execute(text("SELECT code_hash FROM recovery_codes WHERE user_id = :id"),
                                             {"id": user["id"]})).scalars().all()
        finally:
            await engine.dispose()
        assert stored.startswith("v1.") and secret not in stored
        assert len(hashes) == 10 and not set(hashes) & {c.replace("-", "") for c in recovery}

        # sign-in needs the code now
        missing = await login(client, user["email"])
        assert missing.status_code == 401 and missing.json()["code"] == "totp_required"
        assert missing.headers["content-type"].startswith("application/problem+json")
        next_code = totp.code_at_step(secret, step + 1)
        ok = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD,
                                                       "totp_code": next_code})
        assert ok.status_code == 200, ok.text
        # the same code again, or an older one: refused (one use per step)
        for used in (next_code, totp.code_at_step(secret, step)):
            again = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD,
                                                              "totp_code": used})
            assert again.status_code == 401 and again.json()["code"] == "totp_invalid"
        # a wrong password with a right code is still just a wrong password
        bad = await client.post("/v1/auth/login", json={"email": user["email"], "password": "not the password",
                                                        "totp_code": totp.code_at_step(secret, step + 1)})
        assert bad.status_code == 401 and "code" not in bad.json()
        # a recovery code works once, in any case and with or without its dashes
        code = recovery[0]
        first = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD,
                                                          "totp_code": code.upper().replace("-", "")})
        assert first.status_code == 200
        second = await client.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD,
                                                           "totp_code": code})
        assert second.status_code == 401
        status = (await client.get("/v1/users/me/totp", headers=me)).json()
        assert status == {"enabled": True, "pending": False, "recovery_codes_left": 9}
        # enrolling again while on is refused; turning it off needs the password or a code
        assert (await client.post("/v1/users/me/totp", headers=me)).status_code == 409
        refused = await client.request("DELETE", "/v1/users/me/totp", json={"password": "wrong one"}, headers=me)
        assert refused.status_code == 403
        off = await client.request("DELETE", "/v1/users/me/totp", json={"password": PASSWORD}, headers=me)
        assert off.status_code == 204
        assert (await login(client, user["email"])).status_code == 200

        # an admin can turn it off for someone who lost the phone: their sessions end too
        secret = (await client.post("/v1/users/me/totp", headers=me)).json()["secret"]
        code = totp.code_at_step(secret, totp.step_at(time.time()) + 1)
        assert (await client.post("/v1/users/me/totp/confirm", json={"code": code}, headers=me)).status_code == 200
        assert (await login(client, user["email"])).json()["code"] == "totp_required"
        _, agent = user_token("agent")
        assert (await client.delete(f"/v1/users/{user['id']}/totp", headers=agent)).status_code == 403
        assert (await client.delete(f"/v1/users/{uuid.uuid4()}/totp", headers=admin)).status_code == 404
        assert (await client.delete(f"/v1/users/{user['id']}/totp", headers=admin)).status_code == 204
        assert (await client.get("/v1/users/me", headers=me)).status_code == 401
        assert (await login(client, user["email"])).status_code == 200


async def test_admins_must_enrol_when_required(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_REQUIRE_TOTP_FOR_ADMINS", "true")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        blocked = await client.get("/v1/users", headers=admin)
        assert blocked.status_code == 403 and blocked.json()["code"] == "totp_enrolment_required"
        assert (await client.get("/v1/users/me", headers=admin)).status_code == 200
        secret = (await client.post("/v1/users/me/totp", headers=admin)).json()["secret"]
        code = totp.code_at_step(secret, totp.step_at(time.time()))
        assert (await client.post("/v1/users/me/totp/confirm", json={"code": code}, headers=admin)).status_code == 200
        assert (await client.get("/v1/users", headers=admin)).status_code == 200
        # agents are not held
        _, agent = user_token("agent")
        assert (await client.get("/v1/users/me", headers=agent)).status_code == 200
        assert (await client.post("/v1/stream/tickets", headers=agent)).status_code == 201


async def test_personal_api_tokens(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin, role="supervisor")
        me = bearer((await login(client, user["email"])).json()["access_token"])
        created = await client.post("/v1/users/me/api-tokens", json={"name": "reporting script"}, headers=me)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert token.startswith("hdu_") and created.json()["token_prefix"] == token[:12]
        listed = (await client.get("/v1/users/me/api-tokens", headers=me)).json()
        assert [t["id"] for t in listed] == [created.json()["id"]] and token not in str(listed)
        # acts as the user with the user's current role
        as_token = bearer(token)
        assert (await client.get("/v1/users/me", headers=as_token)).json()["id"] == user["id"]
        assert (await client.get("/v1/users", headers=as_token)).status_code == 200  # supervisors list users
        # a token cannot mint tokens nor touch two-factor sign-in
        assert (await client.post("/v1/users/me/api-tokens", json={"name": "x"}, headers=as_token)).status_code == 403
        assert (await client.post("/v1/users/me/totp", headers=as_token)).status_code == 403
        # the role follows the user
        assert (await client.patch(f"/v1/users/{user['id']}", json={"role": "agent"}, headers=admin)).status_code == 200
        assert (await client.get("/v1/users", headers=as_token)).status_code == 403
        # someone else cannot revoke it; the owner can, at once
        _, other = user_token("agent")
        assert (await client.delete(f"/v1/users/me/api-tokens/{created.json()['id']}", headers=other)).status_code == 404
        assert (await client.delete(f"/v1/users/me/api-tokens/{created.json()['id']}", headers=me)).status_code == 204
        assert (await client.get("/v1/users/me", headers=as_token)).status_code == 401
        # a deactivated user's tokens stop at once
        second = (await client.post("/v1/users/me/api-tokens", json={"name": "again"}, headers=me)).json()["token"]
        assert (await client.get("/v1/users/me", headers=bearer(second))).status_code == 200
        assert (await client.delete(f"/v1/users/{user['id']}", headers=admin)).status_code == 204
        assert (await client.get("/v1/users/me", headers=bearer(second))).status_code == 401
        assert (await client.get("/v1/users/me", headers=bearer("hdu_" + "x" * 43))).status_code == 401


def basic(email: str, secret: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{secret}".encode()).decode()}


async def test_a_personal_api_token_in_zendesk_basic_form(gateway_env):
    """``Authorization: Basic base64(email/token:TOKEN)``, as zenpy and Zendesk scripts send it:
    the token's own user's e-mail (any case) or nothing; a password is never taken this way."""
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin, role="agent")
        other = await create_user(client, admin, role="agent")
        me = bearer((await login(client, user["email"])).json()["access_token"])
        created = await client.post("/v1/users/me/api-tokens", json={"name": "zendesk script"}, headers=me)
        token = created.json()["token"]
        as_basic = basic(f"{user['email'].upper()}/token", token)
        answer = await client.get("/v1/users/me", headers=as_basic)
        assert answer.status_code == 200 and answer.json()["id"] == user["id"], answer.text
        for refused in (basic(f"{other['email']}/token", token),  # someone else's e-mail
                        basic(user["email"], PASSWORD),  # a password: sign in instead
                        basic(f"{user['email']}/token", PASSWORD),
                        basic(f"{user['email']}/token", "hdu_" + "x" * 43),
                        basic("/token", token),
                        {"Authorization": "Basic %%%"}, {"Authorization": "Basic " + "\u00e9".encode().hex()}):
            r = await client.get("/v1/users/me", headers=refused)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json", (refused, r.text)
        # revoked: refused at once in the Basic form too
        assert (await client.delete(f"/v1/users/me/api-tokens/{created.json()['id']}", headers=me)).status_code == 204
        assert (await client.get("/v1/users/me", headers=as_basic)).status_code == 401


def _gateway_db() -> str:
    from .conftest import _USERS_DB

    return _USERS_DB["url"]
