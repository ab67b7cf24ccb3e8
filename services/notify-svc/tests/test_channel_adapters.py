"""The WeChat, WeCom and DingTalk adapters against local fake servers (tests/fakes.py), and their
pure pieces (error-code classification, text splitting) as tables.

Nothing here leaves 127.0.0.0/8: every adapter's transport is wrapped in ``LoopbackOnly``, which
fails the test before a request to any other host is made. Each test has its own time bound.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_svc.channels import dingtalk as dt
from notify_svc.channels import wechat as wx
from notify_svc.channels import wecom as wc
from notify_svc.channels._common import classify_http_status
from notify_svc.channels.base import OutboundMessage, SendResult
from notify_svc.channels.http import AiohttpClient, HttpResponse, encode_json
from notify_svc.channels.text import split_text, truncation_note, utf8_len
from notify_svc.channels.tokens import TokenCache


def _load_fakes():
    name = "notify_svc_test_fakes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fakes.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fakes = _load_fakes()
pytestmark = pytest.mark.timeout(120)  # a hang guard: property tests of 300 examples take 30 s and more on a loaded 2-core runner

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
CHINESE = "您好，您的工单已处理：打印机已修好。如有问题请直接回复。"


class LoopbackOnly:
    """The real transport, refusing any URL whose host is not 127.0.0.1."""

    def __init__(self) -> None:
        self.inner = AiohttpClient(timeout_s=5.0, connect_timeout_s=2.0)

    async def request(self, method, url, *, json=None, headers=None):
        host = urlsplit(url).hostname
        assert host == "127.0.0.1", f"a test tried to reach {host}"
        return await self.inner.request(method, url, json=json, headers=headers)

    async def close(self) -> None:
        await self.inner.close()


def message(channel: str, route: dict, text: str = CHINESE, *, language: str = "zh-CN", delivery_id=None):
    return OutboundMessage(
        delivery_id=delivery_id or uuid.uuid4(),
        channel=channel,
        route=route,
        body_text=text,
        language=language,
    )


@pytest.fixture
async def adapters():
    made = []
    yield made
    for adapter in made:
        await adapter.close()


@pytest.fixture
async def wechat_fake():
    async with fakes.FakeWeChat() as fake:
        yield fake


@pytest.fixture
async def wecom_fake():
    async with fakes.FakeWeCom() as fake:
        yield fake


@pytest.fixture
async def dingtalk_fake():
    async with fakes.FakeDingTalk(staff_ids=("staff-5", "staff-6")) as fake:
        yield fake


@pytest.fixture
def wechat(wechat_fake, adapters):
    adapter = wx.WeChatAdapter(
        api_base=wechat_fake.base_url, accounts=wechat_fake.accounts, http=LoopbackOnly(), now=lambda: NOW
    )
    adapters.append(adapter)
    return adapter


@pytest.fixture
def wecom(wecom_fake, adapters):
    adapter = wc.WeComAdapter(
        api_base=wecom_fake.base_url,
        corp_id=wecom_fake.corp_id,
        corp_secret=wecom_fake.corp_secret,
        default_open_kfid=wecom_fake.open_kfid,
        http=LoopbackOnly(),
    )
    adapters.append(adapter)
    return adapter


@pytest.fixture
def dingtalk(dingtalk_fake, adapters):
    adapter = dt.DingTalkAdapter(
        api_base=dingtalk_fake.base_url,
        oapi_base=dingtalk_fake.base_url,
        app_key=dingtalk_fake.app_key,
        app_secret=dingtalk_fake.app_secret,
        robot_code=dingtalk_fake.robot_code,
        http=LoopbackOnly(),
    )
    adapters.append(adapter)
    return adapter


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- pure: tables


@pytest.mark.parametrize(
    ("errcode", "outcome", "reason_part"),
    [
        (0, "sent", None),
        (-1, "transient", "busy"),
        (45009, "transient", "quota"),
        (45011, "transient", "frequent"),
        (45015, "undeliverable", "48-hour"),
        (45047, "undeliverable", "limit of customer-service messages"),
        (43004, "undeliverable", "no longer follows"),
        (40003, "permanent", "openid"),
        (45002, "permanent", "too long"),
        (48001, "permanent", "not authorized"),
        (42001, "transient", "access token"),
        (61234, "permanent", "WeChat error 61234: boom"),
    ],
)
def test_wechat_errcode_table(errcode, outcome, reason_part):
    result = wx.classify_send_errcode(errcode, "boom", now=NOW)
    assert result.outcome == outcome
    assert result.code == str(errcode)
    if reason_part:
        assert reason_part in result.reason


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), 3600.0),  # 23:00 in Beijing
        (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), 86400.0),  # midnight: the next one
        (datetime(2026, 11, 30, 15, 59, 30, tzinfo=UTC), 60.0),  # at least a minute
        (datetime(2026, 11, 30, 2, 0, tzinfo=UTC), 50400.0),
    ],
)
def test_wechat_quota_resets_at_beijing_midnight(now, seconds):
    assert wx.seconds_until_quota_reset(now) == seconds


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (HttpResponse(200, {"access_token": "t", "expires_in": 7200}), "token"),
        (HttpResponse(200, {"errcode": 40125, "errmsg": "invalid appsecret"}), "permanent"),
        (HttpResponse(200, {"errcode": 40013, "errmsg": "invalid appid"}), "permanent"),
        (HttpResponse(200, {"errcode": 40164, "errmsg": "invalid ip"}), "permanent"),
        (HttpResponse(200, {"errcode": -1, "errmsg": "system error"}), "transient"),
        (HttpResponse(502, None), "transient"),
    ],
)
def test_wechat_token_answer_table(answer, outcome):
    result = wx.classify_token_answer(answer, now=NOW)
    assert (result[0] == "t") if outcome == "token" else (result.outcome == outcome)


@pytest.mark.parametrize(
    ("errcode", "outcome"),
    [
        (0, "sent"),
        (-1, "transient"),
        (45009, "transient"),
        (45033, "transient"),
        (95018, "undeliverable"),
        (95016, "undeliverable"),
        (95013, "undeliverable"),
        (45015, "undeliverable"),
        (95000, "permanent"),
        (95004, "permanent"),
        (40096, "permanent"),
        (12345, "permanent"),
    ],
)
def test_wecom_errcode_table(errcode, outcome):
    assert wc.classify_send_errcode(errcode, "x").outcome == outcome


def test_wecom_msgid_is_stable_per_part_and_fits():
    delivery = uuid.uuid4()
    ids = [wc.part_msgid(delivery, i) for i in range(4)]
    assert ids[0] == delivery.hex
    assert ids == [wc.part_msgid(delivery, i) for i in range(4)]
    assert len(set(ids)) == 4 and all(len(i) == 32 and i.isalnum() for i in ids)


ORIGIN = "https://oapi.dingtalk.com"


@pytest.mark.parametrize(
    ("url", "expires_at", "usable"),
    [
        (f"{ORIGIN}/robot/sendBySession?session=a", 2_000_000, True),
        (f"{ORIGIN}/robot/sendBySession?session=a", "2000000", True),
        (f"{ORIGIN}/robot/sendBySession?session=a", None, True),  # no expiry said: try it
        (f"{ORIGIN}/robot/sendBySession?session=a", 1_000_000, False),  # expired
        (f"{ORIGIN}/robot/sendBySession?session=a", 1_005_000, False),  # within the margin
        (f"{ORIGIN}/robot/sendBySession?session=a", True, False),
        (f"{ORIGIN}/robot/sendBySession?session=a", "soon", False),
        ("https://evil.example/robot/sendBySession?session=a", 2_000_000, False),
        ("http://oapi.dingtalk.com/robot/sendBySession?session=a", 2_000_000, False),
        ("https://oapi.dingtalk.com:8443/robot/sendBySession", 2_000_000, False),
        ("https://user@oapi.dingtalk.com/robot/sendBySession", 2_000_000, False),
        ("", 2_000_000, False),
        (None, 2_000_000, False),
        (42, 2_000_000, False),
    ],
)
def test_dingtalk_webhook_usable_table(url, expires_at, usable):
    assert dt.webhook_usable(url, expires_at, now_ms=1_000_000, allowed_origin=ORIGIN) is usable


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        (HttpResponse(429, None), "transient", "429"),
        (HttpResponse(403, {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "qps"}), "transient", "Forbidden.AccessDenied.QpsLimitForApi"),
        (HttpResponse(400, {"code": "Throttling.Api", "message": "x"}), "transient", "Throttling.Api"),
        (HttpResponse(500, {"code": "ServiceUnavailable", "message": "x"}), "transient", "500"),
        (HttpResponse(503, None), "transient", "503"),
        (HttpResponse(400, {"code": "bot.stopped", "message": "机器人已停用"}), "permanent", "bot.stopped"),
        (HttpResponse(400, {"code": "invalidParameter.robotCode.notExsit", "message": "x"}), "permanent", "invalidParameter.robotCode.notExsit"),
        (HttpResponse(404, None), "permanent", "404"),
    ],
)
def test_dingtalk_api_error_table(response, outcome, code):
    result = dt.classify_api_error(response)
    assert (result.outcome, result.code) == (outcome, code)


@pytest.mark.parametrize(
    ("response", "rejected"),
    [
        (HttpResponse(401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}), True),
        (HttpResponse(400, {"code": "invalidParameter.token.invalid"}), True),
        (HttpResponse(401, None), True),
        (HttpResponse(400, {"code": "bot.stopped"}), False),
        (HttpResponse(200, {"processQueryKey": "k"}), False),
    ],
)
def test_dingtalk_token_rejection_table(response, rejected):
    assert dt.token_rejected(response) is rejected


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        ({"processQueryKey": "k", "invalidStaffIdList": [], "flowControlledStaffIdList": []}, "sent"),
        ({"processQueryKey": "k", "invalidStaffIdList": ["s1"]}, "undeliverable"),
        ({"processQueryKey": "k", "flowControlledStaffIdList": ["s1"]}, "transient"),
    ],
)
def test_dingtalk_batch_send_table(data, outcome):
    assert dt.classify_batch_send(HttpResponse(200, data), "s1").outcome == outcome


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        ({"errcode": 0, "errmsg": "ok"}, "sent"),
        ({"errcode": 130101, "errmsg": "send too fast"}, "transient"),
        ({"errcode": 90018, "errmsg": "limit"}, "transient"),
        ({"errcode": 300001, "errmsg": "session expired"}, "permanent"),
    ],
)
def test_dingtalk_webhook_answer_table(data, outcome):
    assert dt.classify_webhook_answer(HttpResponse(200, data)).outcome == outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(500, "transient"), (502, "transient"), (408, "transient"), (429, "transient"), (200, "transient"), (400, "permanent"), (403, "permanent")],
)
def test_http_status_table(status, outcome):
    assert classify_http_status(status, "X").outcome == outcome


NOTE = truncation_note("zh-CN")


@pytest.mark.parametrize(
    ("text", "max_bytes", "max_parts", "expected"),
    [
        ("", 100, 3, []),
        ("   \n ", 100, 3, []),
        ("hello", 100, 3, ["hello"]),
        ("a" * 100, 100, 3, ["a" * 100]),
        ("第一句。第二句。", 15, 3, ["第一句。", "第二句。"]),  # 12 bytes per sentence, cut after 。
        ("line one\nline two", 12, 3, ["line one", "line two"]),
        ("word " * 10, 12, 5, ["word word", "word word", "word word", "word word", "word word"]),
    ],
)
def test_split_table(text, max_bytes, max_parts, expected):
    assert split_text(text, max_bytes=max_bytes, max_parts=max_parts, note="…") == expected


def test_split_truncates_with_a_note_in_the_reply_language():
    parts = split_text("很长的回复。" * 200, max_bytes=120, max_parts=2, note=NOTE)
    assert len(parts) == 2
    assert parts[-1].endswith(NOTE) and utf8_len(parts[-1]) <= 120
    assert truncation_note("en").startswith("…") and "too long" in truncation_note("en-GB")
    assert truncation_note(None) == truncation_note("fr")


def test_split_never_cuts_a_character():
    parts = split_text("😀" * 100, max_bytes=10, max_parts=100, note="…")
    assert parts == ["😀😀"] * 50


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab 。，\n中文字😀é"), max_size=400),
    max_bytes=st.integers(min_value=utf8_len(NOTE) + 4, max_value=200),
    max_parts=st.integers(min_value=1, max_value=6),
)
def test_split_laws(text, max_bytes, max_parts):
    parts = split_text(text, max_bytes=max_bytes, max_parts=max_parts, note=NOTE)
    assert len(parts) <= max_parts
    assert all(part and utf8_len(part) <= max_bytes for part in parts)
    if not parts:
        assert not text.strip()
    elif not parts[-1].endswith(NOTE):
        # nothing lost but whitespace at the cuts
        squeeze = lambda s: "".join(s.split())  # noqa: E731
        assert squeeze("".join(parts)) == squeeze(text)


async def test_token_cache_refreshes_before_expiry_and_once_for_concurrent_callers():
    clock = [1000.0]
    issued = []

    forced = []

    async def fetch(refused):
        await asyncio.sleep(0.01)
        forced.append(refused)
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], 7200

    cache = TokenCache(fetch, clock=lambda: clock[0])
    assert set(await asyncio.gather(*(cache.get() for _ in range(20)))) == {"t1"}
    clock[0] += 7200 - 301
    assert await cache.get() == "t1"
    clock[0] += 2  # inside the 300 s margin
    assert await cache.get() == "t2"
    cache.invalidate("t1")  # a stale token's rejection does not drop the fresh one
    assert await cache.get() == "t2"
    cache.invalidate("t2")
    assert await cache.get() == "t3"
    assert forced == [None, None, "t2"]  # only the fetch after a refusal names the refused token


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(7200, 7200.0), (60.5, 60.5), (10**9, 86400.0), (0, 7200.0), (-5, 7200.0), (float("nan"), 7200.0),
     (float("inf"), 7200.0), (True, 7200.0), ("7200", 7200.0), (None, 7200.0)],
)
def test_token_lifetime_table(value, seconds):
    from notify_svc.channels.tokens import lifetime_s

    assert lifetime_s(value) == seconds


@pytest.mark.parametrize(
    "data",
    [{"invalidStaffIdList": 5}, {"invalidStaffIdList": "xs1x"}, {"flowControlledStaffIdList": {"s1": 1}},
     {"processQueryKey": {"a": 1}}, {}],
)
def test_dingtalk_batch_send_odd_lists_are_not_matches(data):
    result = dt.classify_batch_send(HttpResponse(200, data), "s1")
    assert result.outcome == "sent" and result.provider_id is None


def test_bodies_keep_chinese_unescaped():
    body = encode_json({"text": {"content": CHINESE}})
    assert CHINESE.encode("utf-8") in body and b"\\u" not in body


# --------------------------------------------------------------------------- WeChat


async def test_wechat_one_token_for_many_sends_and_chinese_arrives_intact(wechat, wechat_fake):
    results = [await wechat.send(message("wechat", {"openid": "o-1"})) for _ in range(3)]
    results += await asyncio.gather(*(wechat.send(message("wechat", {"openid": f"o-{i}"})) for i in range(10)))
    assert [r.outcome for r in results] == ["sent"] * 13
    assert wechat_fake.token_requests == 1
    assert len(wechat_fake.messages) == 13 and wechat_fake.messages[0]["content"] == CHINESE
    sent = wechat_fake.requests_to("/cgi-bin/message/custom/send")[0]
    assert CHINESE.encode("utf-8") in sent.body and b"\\u" not in sent.body
    assert sent.json == {"touser": "o-1", "msgtype": "text", "text": {"content": CHINESE}}
    assert sent.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("how", ["expired-42001", "invalid-40001", "invalid-40014"])
async def test_wechat_refreshes_the_token_once_and_retries(wechat, wechat_fake, how):
    assert (await wechat.send(message("wechat", {"openid": "o-1"}))).outcome == "sent"
    if how == "expired-42001":
        wechat_fake.expire_tokens()
    else:
        wechat_fake.script("/cgi-bin/message/custom/send", fakes.errcode(int(how[-5:]), "invalid credential"))
    result = await wechat.send(message("wechat", {"openid": "o-1"}))
    assert result.outcome == "sent"
    assert wechat_fake.token_requests == 2
    tokens = [r.query["access_token"] for r in wechat_fake.requests_to("/cgi-bin/message/custom/send")]
    assert len(tokens) == 3 and tokens[0] == tokens[1] != tokens[2]
    assert len(wechat_fake.messages) == 2


async def test_wechat_token_refused_after_refresh_is_transient(wechat, wechat_fake):
    wechat_fake.script("/cgi-bin/message/custom/send", fakes.errcode(42001), fakes.errcode(42001))
    result = await wechat.send(message("wechat", {"openid": "o-1"}))
    assert result.outcome == "transient" and "freshly fetched" in result.reason
    assert wechat_fake.token_requests == 2  # refreshed once, not in a loop


async def test_wechat_outside_48_hour_window_is_undeliverable_without_retry(wechat, wechat_fake):
    wechat_fake.outside_window.add("o-quiet")
    result = await wechat.send(message("wechat", {"openid": "o-quiet"}))
    assert result.outcome == "undeliverable" and result.code == "45015"
    assert "48-hour" in result.reason
    assert len(wechat_fake.requests_to("/cgi-bin/message/custom/send")) == 1


async def test_wechat_500_three_times_then_200(wechat, wechat_fake):
    wechat_fake.script("/cgi-bin/message/custom/send", *[fakes.http_error(500)] * 3)
    delivery = uuid.uuid4()
    outcomes = [(await wechat.send(message("wechat", {"openid": "o-1"}, delivery_id=delivery))).outcome for _ in range(4)]
    assert outcomes == ["transient", "transient", "transient", "sent"]
    assert len(wechat_fake.messages) == 1
    assert wechat_fake.token_requests == 1


@pytest.mark.parametrize(
    ("answer", "outcome", "min_retry_after"),
    [
        (fakes.errcode(45009, "reach max api daily quota limit"), "transient", 3600),
        (fakes.errcode(-1, "system error"), "transient", 1),
        (fakes.errcode(45047, "out of response count limit"), "undeliverable", None),
        (fakes.errcode(48001, "api unauthorized"), "permanent", None),
        (fakes.Scripted(429, text="slow down"), "transient", 60),
    ],
)
async def test_wechat_scripted_answers(wechat, wechat_fake, answer, outcome, min_retry_after):
    wechat_fake.script("/cgi-bin/message/custom/send", answer)
    result = await wechat.send(message("wechat", {"openid": "o-1"}))
    assert result.outcome == outcome
    if min_retry_after:
        assert result.retry_after >= min_retry_after
    assert wechat_fake.messages == []


@pytest.mark.parametrize("route", [{}, {"openid": ""}, {"openid": None}, {"app_id": "wx-test-app"}])
async def test_wechat_missing_openid_is_undeliverable(wechat, wechat_fake, route):
    result = await wechat.send(message("wechat", route))
    assert result.outcome == "undeliverable" and "no WeChat openid" in result.reason
    assert wechat_fake.requests == []


async def test_wechat_unknown_account_and_bad_secret_are_permanent(wechat_fake, adapters):
    bad = wx.WeChatAdapter(api_base=wechat_fake.base_url, accounts={"wx-test-app": "wrong"}, http=LoopbackOnly())
    adapters.append(bad)
    result = await bad.send(message("wechat", {"openid": "o-1"}))
    assert result.outcome == "permanent" and result.code == "40125"
    other = await bad.send(message("wechat", {"openid": "o-1", "app_id": "wx-elsewhere"}))
    assert other.outcome == "permanent" and "wx-elsewhere" in other.reason


async def test_wechat_route_app_id_picks_the_account(adapters):
    accounts = {"wx-a": "secret-a", "wx-b": "secret-b"}
    async with fakes.FakeWeChat(accounts=accounts) as fake:
        adapter = wx.WeChatAdapter(api_base=fake.base_url, accounts=accounts, http=LoopbackOnly())
        adapters.append(adapter)
        assert (await adapter.send(message("wechat", {"openid": "o-1", "app_id": "wx-b"}))).outcome == "sent"
        # two accounts and no default: a route must say which
        assert (await adapter.send(message("wechat", {"openid": "o-1"}))).outcome == "permanent"
        assert [m["app_id"] for m in fake.messages] == ["wx-b"]


async def test_wechat_long_reply_is_split_and_a_retry_does_not_repeat_parts(wechat, wechat_fake):
    text = "\n".join(f"第{i}段：" + "内容" * 100 for i in range(6))  # about 3.6 KB
    delivery = uuid.uuid4()
    custom_send = "/cgi-bin/message/custom/send"
    wechat_fake.script(custom_send, fakes.Scripted(200, {"errcode": 0, "errmsg": "ok"}), fakes.http_error(503))
    first = await wechat.send(message("wechat", {"openid": "o-1"}, text, delivery_id=delivery))
    assert first.outcome == "transient" and first.reason.startswith("part 2 of 2")
    second = await wechat.send(message("wechat", {"openid": "o-1"}, text, delivery_id=delivery))
    assert second.outcome == "sent"
    bodies = [r.json["text"]["content"] for r in wechat_fake.requests_to(custom_send)]
    assert len(bodies) == 3 and bodies[1] == bodies[2]  # part 1 went once, part 2 was retried
    assert all(utf8_len(b) <= 2048 for b in bodies)
    assert "".join(bodies[0] + bodies[2]).replace("\n", "") == text.replace("\n", "")


async def test_wechat_stable_token_is_shared_and_forced_only_after_a_refusal(wechat_fake, adapters):
    replicas = [
        wx.WeChatAdapter(api_base=wechat_fake.base_url, accounts=wechat_fake.accounts, http=LoopbackOnly(), use_stable_token=True)
        for _ in range(2)
    ]
    adapters.extend(replicas)
    for replica in replicas:
        assert (await replica.send(message("wechat", {"openid": "o-1"}))).outcome == "sent"
    stable = wechat_fake.requests_to("/cgi-bin/stable_token")
    assert [r.json["force_refresh"] for r in stable] == [False, False]
    used = [r.query["access_token"] for r in wechat_fake.requests_to("/cgi-bin/message/custom/send")]
    assert used[0] == used[1]  # the replicas share one token instead of revoking each other's
    wechat_fake.script("/cgi-bin/message/custom/send", fakes.errcode(40001, "invalid credential"))
    assert (await replicas[0].send(message("wechat", {"openid": "o-1"}))).outcome == "sent"
    stable = wechat_fake.requests_to("/cgi-bin/stable_token")
    # asked normally first; the same (refused) token came back, so forced
    assert [r.json["force_refresh"] for r in stable] == [False, False, False, True]
    assert wechat_fake.requests_to("/cgi-bin/token") == []
    # the other replica's token was revoked by the forced refresh: it picks up the new one
    # without forcing again (no ping-pong of forced refreshes between replicas)
    assert (await replicas[1].send(message("wechat", {"openid": "o-1"}))).outcome == "sent"
    stable = wechat_fake.requests_to("/cgi-bin/stable_token")
    assert [r.json["force_refresh"] for r in stable] == [False, False, False, True, False]
    used = [r.query["access_token"] for r in wechat_fake.requests_to("/cgi-bin/message/custom/send")]
    assert used[-1] == used[-3] != used[0]
    assert len(wechat_fake.messages) == 4


async def test_wechat_unreachable_provider_is_transient(adapters):
    adapter = wx.WeChatAdapter(
        api_base=f"http://127.0.0.1:{free_port()}", accounts={"wx": "s"}, http=LoopbackOnly()
    )
    adapters.append(adapter)
    result = await adapter.send(message("wechat", {"openid": "o-1"}))
    assert result.outcome == "transient" and result.code == "transport"
    assert "secret" not in result.reason and "access_token" not in result.reason


# --------------------------------------------------------------------------- WeCom


async def test_wecom_sends_with_one_token_and_a_stable_msgid(wecom, wecom_fake):
    delivery = uuid.uuid4()
    first = await wecom.send(message("wecom", {"external_userid": "wm-1"}, delivery_id=delivery))
    assert first == SendResult("sent", code="0", provider_id=delivery.hex)
    for _ in range(3):
        assert (await wecom.send(message("wecom", {"external_userid": "wm-1", "open_kfid": "wk-test-kf"}))).outcome == "sent"
    assert wecom_fake.token_requests == 1
    sent = wecom_fake.requests_to("/cgi-bin/kf/send_msg")[0]
    assert sent.json == {
        "touser": "wm-1",
        "open_kfid": "wk-test-kf",
        "msgid": delivery.hex,
        "msgtype": "text",
        "text": {"content": CHINESE},
    }
    assert CHINESE.encode("utf-8") in sent.body
    assert wecom_fake.messages[0]["content"] == CHINESE


async def test_wecom_refreshes_an_expired_token(wecom, wecom_fake):
    assert (await wecom.send(message("wecom", {"external_userid": "wm-1"}))).outcome == "sent"
    wecom_fake.expire_tokens()
    assert (await wecom.send(message("wecom", {"external_userid": "wm-1"}))).outcome == "sent"
    assert wecom_fake.token_requests == 2 and len(wecom_fake.messages) == 2


@pytest.mark.parametrize("errcode", [95018, 95016, 95013])
async def test_wecom_session_state_is_undeliverable(wecom, wecom_fake, errcode):
    wecom_fake.session_errors["wm-gone"] = errcode
    result = await wecom.send(message("wecom", {"external_userid": "wm-gone"}))
    assert result.outcome == "undeliverable" and result.code == str(errcode)
    assert len(wecom_fake.requests_to("/cgi-bin/kf/send_msg")) == 1


async def test_wecom_500_three_times_then_200(wecom, wecom_fake):
    wecom_fake.script("/cgi-bin/kf/send_msg", *[fakes.http_error(500)] * 3)
    delivery = uuid.uuid4()
    outcomes = [(await wecom.send(message("wecom", {"external_userid": "wm-1"}, delivery_id=delivery))).outcome for _ in range(4)]
    assert outcomes == ["transient"] * 3 + ["sent"]
    assert [m["msgid"] for m in wecom_fake.messages] == [delivery.hex]


async def test_wecom_missing_route_fields(wecom_fake, adapters):
    adapter = wc.WeComAdapter(
        api_base=wecom_fake.base_url, corp_id=wecom_fake.corp_id, corp_secret=wecom_fake.corp_secret, http=LoopbackOnly()
    )
    adapters.append(adapter)
    no_user = await adapter.send(message("wecom", {"open_kfid": "wk-test-kf"}))
    assert no_user.outcome == "undeliverable" and "external_userid" in no_user.reason
    no_kf = await adapter.send(message("wecom", {"external_userid": "wm-1"}))
    assert no_kf.outcome == "undeliverable" and "open_kfid" in no_kf.reason
    assert wecom_fake.requests == []
    unknown_kf = await adapter.send(message("wecom", {"external_userid": "wm-1", "open_kfid": "wk-other"}))
    assert unknown_kf.outcome == "permanent" and unknown_kf.code == "95000"


async def test_wecom_bad_secret_is_permanent(wecom_fake, adapters):
    adapter = wc.WeComAdapter(
        api_base=wecom_fake.base_url, corp_id=wecom_fake.corp_id, corp_secret="nope",
        default_open_kfid=wecom_fake.open_kfid, http=LoopbackOnly(),
    )
    adapters.append(adapter)
    result = await adapter.send(message("wecom", {"external_userid": "wm-1"}))
    assert result.outcome == "permanent" and result.code == "40001"
    assert wecom_fake.requests_to("/cgi-bin/kf/send_msg") == []


# --------------------------------------------------------------------------- DingTalk


async def test_dingtalk_valid_session_webhook_needs_no_token(dingtalk, dingtalk_fake):
    url, expires_at = dingtalk_fake.new_session()
    route = {"session_webhook": url, "session_webhook_expires_at": expires_at, "sender_staff_id": "staff-5"}
    result = await dingtalk.send(message("dingtalk", route))
    assert result.outcome == "sent"
    assert dingtalk_fake.token_requests == 0
    assert dingtalk_fake.messages == [{"via": "webhook", "session": url.rsplit("=", 1)[1], "content": CHINESE}]
    sent = dingtalk_fake.requests_to("/robot/sendBySession")[0]
    assert sent.json == {"msgtype": "text", "text": {"content": CHINESE}}
    assert CHINESE.encode("utf-8") in sent.body


async def test_dingtalk_expired_webhook_falls_back_to_the_robot_api(dingtalk, dingtalk_fake):
    url, _ = dingtalk_fake.new_session()
    route = {
        "session_webhook": url,
        "session_webhook_expires_at": 1_700_000_000_000,  # long past
        "sender_staff_id": "staff-5",
        "robot_code": dingtalk_fake.robot_code,
    }
    for _ in range(3):
        result = await dingtalk.send(message("dingtalk", route))
        assert result.outcome == "sent" and result.provider_id
    assert dingtalk_fake.requests_to("/robot/sendBySession") == []
    assert dingtalk_fake.token_requests == 1
    batch = dingtalk_fake.requests_to("/v1.0/robot/oToMessages/batchSend")[0]
    assert batch.headers["x-acs-dingtalk-access-token"].startswith("ding-")
    assert batch.json["userIds"] == ["staff-5"] and batch.json["robotCode"] == dingtalk_fake.robot_code
    assert batch.json["msgKey"] == "sampleText"
    assert CHINESE.encode("utf-8") in batch.body and b"\\u" not in batch.body
    assert [m["via"] for m in dingtalk_fake.messages] == ["api"] * 3
    assert dingtalk_fake.messages[0]["content"] == CHINESE


async def test_dingtalk_refused_webhook_falls_back_to_the_robot_api(dingtalk, dingtalk_fake):
    url = f"{dingtalk_fake.base_url}/robot/sendBySession?session=unknown"
    route = {"session_webhook": url, "session_webhook_expires_at": 4_102_444_800_000, "sender_staff_id": "staff-6"}
    result = await dingtalk.send(message("dingtalk", route))
    assert result.outcome == "sent"
    assert len(dingtalk_fake.requests_to("/robot/sendBySession")) == 1
    assert dingtalk_fake.messages == [{"via": "api", "staff_id": "staff-6", "content": CHINESE}]


async def test_dingtalk_refused_webhook_without_staff_id_is_undeliverable(dingtalk, dingtalk_fake):
    url = f"{dingtalk_fake.base_url}/robot/sendBySession?session=unknown"
    result = await dingtalk.send(message("dingtalk", {"session_webhook": url, "session_webhook_expires_at": 4_102_444_800_000}))
    assert result.outcome == "undeliverable" and result.code == "300001"


async def test_dingtalk_webhook_on_another_origin_is_never_posted_to(dingtalk, dingtalk_fake):
    async with fakes.FakeDingTalk() as elsewhere:
        url, expires_at = elsewhere.new_session()
        route = {"session_webhook": url, "session_webhook_expires_at": expires_at, "sender_staff_id": "staff-5"}
        result = await dingtalk.send(message("dingtalk", route))
        assert result.outcome == "sent"
        assert elsewhere.requests == []
    assert [m["via"] for m in dingtalk_fake.messages] == ["api"]


@pytest.mark.parametrize(
    "route",
    [
        {},
        {"sender_staff_id": ""},
        {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x", "session_webhook_expires_at": 1},
        {"conversation_id": "cid-1"},
    ],
)
async def test_dingtalk_no_staff_id_and_no_valid_webhook_is_undeliverable(dingtalk, dingtalk_fake, route):
    result = await dingtalk.send(message("dingtalk", route))
    assert result.outcome == "undeliverable" and "no valid DingTalk session webhook" in result.reason
    assert dingtalk_fake.requests == []


async def test_dingtalk_refreshes_an_invalid_token(dingtalk, dingtalk_fake):
    route = {"sender_staff_id": "staff-5"}
    assert (await dingtalk.send(message("dingtalk", route))).outcome == "sent"
    dingtalk_fake.expire_tokens()
    assert (await dingtalk.send(message("dingtalk", route))).outcome == "sent"
    assert dingtalk_fake.token_requests == 2 and len(dingtalk_fake.messages) == 2


async def test_dingtalk_500_three_times_then_200(dingtalk, dingtalk_fake):
    dingtalk_fake.script("/v1.0/robot/oToMessages/batchSend", *[fakes.http_error(500)] * 3)
    delivery = uuid.uuid4()
    outcomes = [(await dingtalk.send(message("dingtalk", {"sender_staff_id": "staff-5"}, delivery_id=delivery))).outcome for _ in range(4)]
    assert outcomes == ["transient"] * 3 + ["sent"]
    assert len(dingtalk_fake.messages) == 1


async def test_dingtalk_rate_limits_and_unknown_staff(dingtalk, dingtalk_fake):
    dingtalk_fake.script(
        "/v1.0/robot/oToMessages/batchSend",
        fakes.Scripted(403, {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "请求被流控"}),
    )
    limited = await dingtalk.send(message("dingtalk", {"sender_staff_id": "staff-5"}))
    assert limited.outcome == "transient" and limited.retry_after == 60
    url, expires_at = dingtalk_fake.new_session()
    dingtalk_fake.script("/robot/sendBySession", fakes.errcode(130101, "send too fast, exceed 20 times per minute"))
    webhook_limited = await dingtalk.send(
        message("dingtalk", {"session_webhook": url, "session_webhook_expires_at": expires_at, "sender_staff_id": "staff-5"})
    )
    assert webhook_limited.outcome == "transient" and webhook_limited.code == "130101"
    dingtalk_fake.flow_controlled.add("staff-6")
    assert (await dingtalk.send(message("dingtalk", {"sender_staff_id": "staff-6"}))).outcome == "transient"
    unknown = await dingtalk.send(message("dingtalk", {"sender_staff_id": "staff-404"}))
    assert unknown.outcome == "undeliverable"
    assert dingtalk_fake.messages == []


async def test_dingtalk_bad_credentials_are_permanent(dingtalk_fake, adapters):
    adapter = dt.DingTalkAdapter(
        api_base=dingtalk_fake.base_url, oapi_base=dingtalk_fake.base_url, app_key=dingtalk_fake.app_key,
        app_secret="wrong", robot_code=dingtalk_fake.robot_code, http=LoopbackOnly(),
    )
    adapters.append(adapter)
    result = await adapter.send(message("dingtalk", {"sender_staff_id": "staff-5"}))
    assert result.outcome == "permanent" and result.code == "invalidClientIdOrSecret"


def test_adapters_build_from_settings():
    from types import SimpleNamespace

    from pydantic import SecretStr

    settings = SimpleNamespace(
        wechat_api_base="http://127.0.0.1:1", wechat_app_id="wx-1", wechat_app_secret=SecretStr("s1"),
        wechat_app_secrets={"wx-2": SecretStr("s2")}, wechat_text_max_bytes=2048, wechat_stable_token=True,
        wecom_api_base="http://127.0.0.1:1", wecom_corp_id="ww", wecom_corp_secret=SecretStr("s"),
        wecom_open_kfid="wk", wecom_text_max_bytes=2048, wecom_agent_id="1000002",
        wecom_agent_secret=SecretStr("as"), wecom_agent_msgtype="text",
        dingtalk_api_base="http://127.0.0.1:1", dingtalk_oapi_base="http://127.0.0.1:2",
        dingtalk_app_key="k", dingtalk_app_secret=SecretStr("s"), dingtalk_robot_code="",
        dingtalk_text_max_bytes=4000, dingtalk_agent_id="3000001", channel_http_timeout_s=3.0,
    )
    wechat = wx.WeChatAdapter.from_settings(settings)
    assert wechat._accounts == {"wx-1": "s1", "wx-2": "s2"} and wechat._default_app_id == "wx-1"
    assert wechat._use_stable_token is True
    wecom = wc.WeComAdapter.from_settings(settings)
    assert wecom._default_open_kfid == "wk"
    assert (wecom._agent_id, wecom._agent_secret, wecom._agent_msgtype) == (1000002, "as", "text")
    dingtalk = dt.DingTalkAdapter.from_settings(settings)
    assert dingtalk._robot_code == "k"  # the app key by default
    assert dingtalk._agent_id == 3000001


# --------------------------------------------------------------------------- the default transport


@pytest.fixture
async def odd_server():
    """A loopback server with the answers a provider should never give."""
    from aiohttp import web

    async def redirect(_request):
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    async def huge(_request):
        return web.Response(body=b"{" + b" " * 200_000 + b"}", content_type="application/json")

    async def streamed(request):
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(40):
            await response.write(b" " * 8192)
        await response.write_eof()
        return response

    async def slow(_request):
        await asyncio.sleep(1)
        return web.json_response({"errcode": 0})

    async def html(_request):
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/huge", huge)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/slow", slow)
    app.router.add_get("/html", html)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_default_transport_follows_no_redirect_and_bounds_reads(odd_server):
    from notify_svc.channels.http import TransportError

    client = AiohttpClient(timeout_s=1.0, connect_timeout_s=1.0, max_response_bytes=100_000)
    try:
        redirected = await client.request("GET", f"{odd_server}/redirect")
        assert redirected.status == 302 and redirected.data is None
        with pytest.raises(TransportError, match="larger than"):
            await client.request("GET", f"{odd_server}/huge")
        with pytest.raises(TransportError, match="larger than"):
            await client.request("GET", f"{odd_server}/streamed")  # no Content-Length
        impatient = AiohttpClient(timeout_s=0.3, connect_timeout_s=0.3)
        try:
            with pytest.raises(TransportError, match="timed out") as raised:
                await impatient.request("GET", f"{odd_server}/slow?access_token=secret-token")
            assert "secret-token" not in str(raised.value)
        finally:
            await impatient.close()
        status, data = await client.request("GET", f"{odd_server}/html")
        assert (status, data) == (502, None)
    finally:
        await client.close()


async def test_chat_adapters_from_the_environment(monkeypatch, wechat_fake, dingtalk_fake):
    """The NOTIFY_* settings reach the adapters (JSON map of WeChat accounts included)."""
    from notify_svc.channels.providers import chat_adapters
    from notify_svc.config import Settings

    monkeypatch.setenv("NOTIFY_WECHAT_API_BASE", wechat_fake.base_url)
    monkeypatch.setenv("NOTIFY_WECHAT_APP_SECRETS", '{"wx-test-app": "wx-test-secret"}')
    monkeypatch.setenv("NOTIFY_DINGTALK_API_BASE", dingtalk_fake.base_url)
    monkeypatch.setenv("NOTIFY_DINGTALK_OAPI_BASE", dingtalk_fake.base_url)
    monkeypatch.setenv("NOTIFY_DINGTALK_APP_KEY", dingtalk_fake.app_key)
    monkeypatch.setenv("NOTIFY_DINGTALK_APP_SECRET", dingtalk_fake.app_secret)
    monkeypatch.setenv("NOTIFY_DINGTALK_ROBOT_CODE", dingtalk_fake.robot_code)
    monkeypatch.setenv("NOTIFY_CHANNEL_HTTP_TIMEOUT_S", "5")
    settings = Settings()
    built = chat_adapters(settings, http=LoopbackOnly())
    try:
        assert set(built) == {"wechat", "wecom", "dingtalk"}
        assert all(adapter.channel == name for name, adapter in built.items())
        assert (await built["wechat"].send(message("wechat", {"openid": "o-1"}))).outcome == "sent"
        assert (await built["dingtalk"].send(message("dingtalk", {"sender_staff_id": "staff-5"}))).outcome == "sent"
        unconfigured = await built["wecom"].send(message("wecom", {"external_userid": "wm-1", "open_kfid": "kf"}))
        assert unconfigured.outcome == "permanent" and "NOTIFY_WECOM_CORP_ID" in unconfigured.reason
    finally:
        for adapter in built.values():
            await adapter.close()


def test_a_fake_can_serve_from_its_own_thread():
    """For end-to-end tests where notify-svc is another process and the test is not async."""
    import urllib.request

    fake = fakes.FakeWeChat()
    base_url = fake.start_in_thread()
    try:
        assert base_url.startswith("http://127.0.0.1:")
        query = f"grant_type=client_credential&appid={fake.app_id}&secret={fake.secret}"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an env proxy
        with direct.open(f"{base_url}/cgi-bin/token?{query}", timeout=5) as answer:
            assert b"access_token" in answer.read()
        assert fake.token_requests == 1
    finally:
        fake.stop_thread()


# --------------------------------------------------------------------------- never raises


class ScriptedClient:
    """A transport answering from a list (no network), for the property below."""

    def __init__(self, answers):
        self.answers = list(answers)

    async def request(self, method, url, *, json=None, headers=None):
        if not self.answers:
            return HttpResponse(200, {"errcode": 0, "access_token": "t", "accessToken": "t"})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self):
        pass


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True), st.text(max_size=8),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
_keys = st.sampled_from(
    ["errcode", "errmsg", "access_token", "expires_in", "msgid", "accessToken", "expireIn", "code",
     "message", "processQueryKey", "invalidStaffIdList", "flowControlledStaffIdList", "invaliduser",
     "unlicenseduser", "task_id", "sub_code", "sub_msg"]
)
_answers = st.one_of(
    st.builds(
        HttpResponse,
        st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503]),
        st.one_of(_values, st.dictionaries(_keys, _values, max_size=5)),
    ),
    st.builds(lambda: __import__("notify_svc.channels.http", fromlist=["TransportError"]).TransportError("boom")),
)


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(_answers, max_size=6),
    channel=st.sampled_from(["wechat", "wecom", "dingtalk", "wecom-member", "dingtalk-member"]),
    stable=st.booleans(),
    token_first=st.booleans(),
)
def test_no_provider_answer_makes_an_adapter_raise(answers, channel, stable, token_first):
    if token_first:  # get past the token endpoint to the send call's odd answers
        answers = [HttpResponse(200, {"errcode": 0, "access_token": "t", "accessToken": "t"}), *answers]
    client = ScriptedClient(answers)
    if channel == "wechat":
        adapter = wx.WeChatAdapter(api_base="http://127.0.0.1:9", accounts={"wx": "s"}, http=client, use_stable_token=stable)
        route = {"openid": "o-1"}
    elif channel == "wecom":
        adapter = wc.WeComAdapter(api_base="http://127.0.0.1:9", corp_id="c", corp_secret="s", default_open_kfid="k", http=client)
        route = {"external_userid": "wm-1"}
    elif channel == "wecom-member":  # an agent's notification: application message
        adapter = wc.WeComAdapter(api_base="http://127.0.0.1:9", corp_id="c", corp_secret="", agent_id="1000002",
                                  agent_secret="as", agent_msgtype="markdown" if stable else "text", http=client)
        route = {"userid": "LiNa"}
    elif channel == "dingtalk-member":  # an agent's notification: work notification
        adapter = dt.DingTalkAdapter(api_base="http://127.0.0.1:9", oapi_base="http://127.0.0.1:9", app_key="k",
                                     app_secret="s", agent_id="3000001", http=client)
        route = {"userid": "staff-5"}
    else:
        adapter = dt.DingTalkAdapter(api_base="http://127.0.0.1:9", oapi_base="http://127.0.0.1:9", app_key="k", app_secret="s", http=client)
        route = {"sender_staff_id": "s1", "session_webhook": "http://127.0.0.1:9/robot/sendBySession?session=x"} if stable else {"sender_staff_id": "s1"}
    result = asyncio.run(adapter.send(message(channel.split("-")[0], route, "短" * 1000)))
    assert isinstance(result, SendResult)
    assert result.outcome in ("sent", "transient", "permanent", "undeliverable")
    assert result.outcome == "sent" or result.reason
