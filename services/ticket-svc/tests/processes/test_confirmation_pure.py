"""The pure parts of the customer-confirmation step's customer side: the link's token (sign,
verify, expiry, tampering), the reading of a reply (Chinese and English, negations never
confirm) and the page (both languages, escaping, no script, the form's two answers)."""

from __future__ import annotations

import re
import uuid

import pytest

from ticket_svc.confirmations import page, replies, tokens

KEY = b"k" * 32
TICKET = uuid.UUID("0b0e5a8e-4f4b-4a53-9f0e-0f3c2d0f1a01")
STEP = uuid.UUID("7d1e3c55-93b0-4ad0-8a8b-64e1fd3b0c02")


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_names_the_ticket_and_the_step_until_its_expiry():
    token = tokens.mint(KEY, ticket_id=TICKET, step_id=STEP, expires=2_000)
    assert re.fullmatch(r"hcf1\.[A-Za-z0-9_-]+\.2000\.[A-Za-z0-9_-]+", token) and len(token) < 120
    assert tokens.verify(KEY, token, now=1_999.5) == tokens.ConfirmationGrant(TICKET, STEP, 2_000)
    with pytest.raises(tokens.ExpiredToken) as expired:
        tokens.verify(KEY, token, now=2_000)
    assert expired.value.grant.step_id == STEP  # an expired link still says which step it was


def _swap(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize("tamper", [
    lambda t: _swap(t, 2, "9999999999"),                                    # a later expiry
    lambda t: _swap(t, 1, tokens.capability.b64(STEP.bytes + TICKET.bytes)),  # the ids swapped
    lambda t: _swap(t, 0, "hsv1"),                                          # another kind of token
    lambda t: _swap(t, 3, tokens.capability.b64(b"x" * 32)),                # a made-up signature
    lambda t: t[:-2],                                                       # cut short
    lambda t: t + ".x",                                                     # a part too many
    lambda t: _swap(t, 1, "AAAA"),                                          # not two ids
    lambda t: _swap(t, 2, "²"),                                             # not ASCII digits
    lambda t: t + "A" * 300,                                                # far too long
    lambda t: "",
])
def test_a_tampered_token_is_invalid(tamper):
    token = tokens.mint(KEY, ticket_id=TICKET, step_id=STEP, expires=2_000)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, tamper(token), now=1_000)


def test_another_key_or_purpose_does_not_verify():
    token = tokens.mint(KEY, ticket_id=TICKET, step_id=STEP, expires=2_000)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(b"o" * 32, token, now=1_000)
    # the same key's MAC over the same payload for another purpose never passes
    other = tokens.capability.mint(KEY, prefix=tokens.PREFIX, purpose="survey-token",
                                   payload=TICKET.bytes + STEP.bytes, subject=(str(TICKET), str(STEP)), expires=2_000)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, other, now=1_000)
    # an expired forgery is invalid, not expired: the expiry is told only about genuine tokens
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(b"o" * 32, token, now=5_000)


def test_the_digest_is_not_the_token():
    token = tokens.mint(KEY, ticket_id=TICKET, step_id=STEP, expires=2_000)
    digest = tokens.digest(token)
    assert len(digest) == 32 and digest not in token and digest == tokens.digest(token)


# --- reading a reply ----------------------------------------------------------------------------

CONFIRMATIONS = [
    "确认，谢谢", "确认", "已解决", "已解决！", "好了", "好的，已经解决了，感谢！", "没问题", "没问题了，谢谢您",
    "问题解决了，非常感谢", "可以了", "搞定了", "正常了，辛苦了", "可以关闭了", "嗯嗯，好了", "ＯＫ，谢谢",
    "yes", "Yes!", "YES!!!", "Yep, thanks", "confirmed", "Confirmed, thank you!", "resolved", "It's resolved now.",
    "Thanks it works", "It works now, thank you so much!", "fixed, thanks", "all good", "no problem, thanks",
    "The problem is fixed, you can close the ticket.", "OK 谢谢", "👍", "Sorted, cheers",
    # opening with a confirmation and going on without a hedge
    "确认，已经收到退款了", "是的，已经收到了", "Yes, please close it", "works for me", "Thanks, yes it is fixed",
    # the greeting line is passed over, the answer is the next line
    "Hi,\nyes fixed thanks", "Dear Support Team,\n\nConfirmed, thank you!", "王先生您好，\n已经好了",
    "您好！\n确认已解决",
    # quotes the parser left (inline) are not the answer
    "> Is your request resolved?\nyes",
]
REPLIES = [
    # negations and doubt
    "not resolved", "Not fixed yet", "still broken", "It doesn’t work", "it doesn't work", "no", "Nope",
    "yes but it still crashes", "No, it is not resolved", "it was fixed but broke again", "never mind, still failing",
    "还没解决", "没有解决", "不行", "还是不行", "问题依旧", "好了吗？", "是不是已经好了", "并没有好", "未解决",
    "确认了，但是还有一个问题", "仍然报错",
    # questions and anything beyond a plain answer
    "resolved?", "Yes, and one more question: how do I export?", "Can you call me tomorrow",
    "I have another issue with my invoice", "请问什么时候发货", "收到",
    # a confirmation that goes on with a request, a hedge or a "later"
    "yes please call me", "ok I will try later", "好的，我试试", "Yes, and one more thing", "可以，明天再看看",
    "好了，顺便问一下发票", "mostly fixed",
    # a statement without a confirming phrase, however positive (read narrowly on purpose)
    "I got the refund, thanks", "已收到退款，谢谢",
    # courtesy alone is not a confirmation
    "thanks", "Thank you!", "谢谢", "感谢",
    # nothing said
    "", "   \n  ", "> quoted only",
    # an answer line far longer than an answer
    "yes " * 80,
    # a greeting line that is really a complaint is read, not passed over
    "Hey it's still broken,\nyes",
]


@pytest.mark.parametrize("text", CONFIRMATIONS)
def test_a_plain_confirmation_confirms(text):
    assert replies.read(text) == "confirm"


@pytest.mark.parametrize("text", REPLIES)
def test_anything_else_is_a_reply(text):
    assert replies.read(text) == "reply"


def test_only_the_first_line_that_says_something_counts():
    assert replies.read("Yes, it works.\n\nBy the way, still broken on my phone?") == "confirm"
    assert replies.read("still broken\nyes") == "reply"
    assert replies.answer_line("\n\n  Hello,\n> old\n  ＹＥＳ  \n") == "yes"


# --- the page ------------------------------------------------------------------------------------


def test_the_form_in_english_and_chinese():
    en = page.form(page.View(language="en", number=42, subject="Refund <b>please</b>"))
    assert '<html lang="en">' in en and "Request #42: Refund &lt;b&gt;please&lt;/b&gt;" in en
    assert '<form method="post"' in en and "<script" not in en and "action=" not in en
    assert 'name="answer" value="confirm"' in en and 'name="answer" value="reject"' in en
    assert 'name="comment"' in en and '<meta name="robots" content="noindex,nofollow">' in en
    zh = page.form(page.View(language="zh-CN", number=42, subject="退款"))
    assert '<html lang="zh-CN">' in zh and "您的问题解决了吗？" in zh and "工单 #42：退款" in zh
    assert "是的，已解决" in zh and "没有，还未解决" in zh


def test_the_style_is_the_one_the_policy_allows():
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(page.STYLE.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.SECURITY_HEADERS["Content-Security-Policy"]
    assert f"<style>{page.STYLE}</style>" in page.form(page.View(language="en", number=1, subject="s"))
    assert page.SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page.SECURITY_HEADERS["X-Robots-Tag"]


def test_messages_and_an_error_on_the_form():
    assert "already been answered" in page.message("en", "answered")
    assert "已经确认过了" in page.message("zh-CN", "answered")
    assert "工单 #7：x" in page.message("zh-CN", "confirmed", number=7, subject="x")
    form = page.form(page.View(language="en", number=1, subject="s", error=page.words("en")["choose"],
                               comment="<still>"))
    assert 'role="alert"' in form and "&lt;still&gt;</textarea>" in form
    assert page.words("fr") == page.words("en")
