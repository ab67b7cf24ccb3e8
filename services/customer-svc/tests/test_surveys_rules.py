"""Survey pure parts: tokens (tamper, expiry, other key), when a status change asks for a survey,
how a customer is reached, and the page (escaped, no script, field names the e2e test uses)."""

import re
import uuid

import pytest

from customer_svc.surveys import page, rules, tokens

KEY = b"k" * 32
SID = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")


def test_a_token_verifies_until_it_expires():
    token = tokens.mint(KEY, survey_id=SID, expires=2_000)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token) and len(token) < tokens.MAX_TOKEN_LENGTH
    assert tokens.verify(KEY, token, now=1_999) == tokens.SurveyGrant(SID, 2_000)
    with pytest.raises(tokens.ExpiredToken) as expired:
        tokens.verify(KEY, token, now=2_000)
    assert expired.value.grant.survey_id == SID


def _replace(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize("tamper", [
    lambda t: _replace(t, 2, "9999999999"),  # a later expiry
    lambda t: _replace(t, 1, tokens._b64(uuid.uuid4().bytes)),  # another survey
    lambda t: _replace(t, 3, tokens._b64(b"\0" * 32)),  # another signature
    lambda t: _replace(t, 0, "hvt1"),  # another purpose
    lambda t: t[:-2],  # cut short
    lambda t: t + ".x",
    lambda t: _replace(t, 2, "²"),
    lambda t: _replace(t, 1, "!!"),
    lambda t: "",
    lambda t: "settings",
    lambda t: t + "A" * 300,
    lambda t: t.replace("hsv1", "hsv1\u00e9"),
])
def test_a_tampered_token_is_invalid(tamper):
    token = tokens.mint(KEY, survey_id=SID, expires=2_000)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, tamper(token), now=1_000)


def test_a_token_of_another_key_is_invalid_even_expired():
    """The signature is checked before the expiry: a forged token never learns it is 'expired'."""
    token = tokens.mint(b"x" * 32, survey_id=SID, expires=10)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, token, now=1_000)


@pytest.mark.parametrize("from_status, to_status, asks", [
    ("open", "solved", True),
    ("pending", "solved", True),
    ("open", "closed", True),  # closed without ever being solved
    ("new", "closed", True),
    ("solved", "closed", False),  # the same resolution closing itself
    ("solved", "open", False),
    ("open", "pending", False),
    ("closed", "closed", False),
])
def test_which_status_changes_ask_for_a_survey(from_status, to_status, asks):
    assert rules.triggers_survey(from_status, to_status) is asks


def test_how_a_customer_is_reached():
    assert rules.delivery_for([]) is None
    assert rules.delivery_for([("phone", "+8613800138000"), ("external:erp", "C1")]) is None
    email = rules.delivery_for([("wechat_openid", "o1"), ("email", "a@example.com"), ("email", "b@example.com")],
                               preferred="wechat")
    assert (email.channel, email.recipient) == ("email", {"email": "a@example.com"})
    wechat = rules.delivery_for([("wecom_external_userid", "wm1"), ("wechat_openid", "o1")])
    assert (wechat.channel, wechat.recipient, wechat.route) == ("wechat", {"wechat_openid": "o1"}, {"openid": "o1"})
    wecom = rules.delivery_for([("wecom_external_userid", "wm1"), ("wechat_openid", "o1")], preferred="wecom")
    assert (wecom.channel, wecom.route) == ("wecom", {"external_userid": "wm1"})


@pytest.mark.parametrize("language, expected", [("zh-CN", "zh-CN"), ("zh-TW", "zh-CN"), ("ZH", "zh-CN"),
                                                ("en-GB", "en"), (None, "en"), ("fr", "en")])
def test_page_language(language, expected):
    assert rules.page_language(language) == expected


def test_the_csat_page_escapes_the_subject_and_needs_no_script():
    html = page.form(page.FormView(kind="csat", language="zh-CN", number=42,
                                   subject='<script>alert(1)</script> 打印机"坏了"'))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "工单 #42" in html and "您对本次服务满意吗" in html
    assert html.count('name="rating"') == 5 and 'name="comment"' in html and '<form method="post"' in html
    assert "http" not in html.replace('"http-equiv"', "")  # nothing loaded from anywhere
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    import base64
    import hashlib
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.SECURITY_HEADERS["Content-Security-Policy"]


def test_the_nps_page_offers_0_to_10_in_english():
    html = page.form(page.FormView(kind="nps", language="en"))
    assert [int(v) for v in re.findall(r'name="score" value="(\d+)"', html)] == list(range(11))
    assert 'lang="en"' in html and "recommend" in html


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(survey_id=st.uuids(), expires=st.integers(min_value=1, max_value=10**11), position=st.integers(min_value=0),
       replacement=st.sampled_from("AQgw_-.0129xyz"))
def test_any_changed_character_breaks_the_token(survey_id, expires, position, replacement):
    """Law: a minted token verifies to what it was minted for; changing any one character never
    yields a grant (base64's unused low bits aside, which decode to the same bytes and grant the same)."""
    token = tokens.mint(KEY, survey_id=survey_id, expires=expires)
    assert tokens.verify(KEY, token, now=expires - 1) == tokens.SurveyGrant(survey_id, expires)
    index = position % len(token)
    changed = token[:index] + replacement + token[index + 1:]
    if changed == token:
        return
    try:
        grant = tokens.verify(KEY, changed, now=0)
    except tokens.InvalidToken:
        return
    assert grant == tokens.SurveyGrant(survey_id, expires)  # only a non-canonical spelling of the same bytes
