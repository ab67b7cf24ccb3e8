"""Platform signatures at the intake edge: configured secrets must verify, WeCom bodies decrypt."""

import time

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.channels import dingtalk, wechat

from .test_channel_intake import dingtalk as ding_payload
from .test_channel_intake import wecom as wecom_payload
from .test_channel_intake import wechat as wechat_payload

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def signed_client_env(monkeypatch):
    monkeypatch.setenv("TICKET_WECHAT_TOKEN", "wx-token")
    monkeypatch.setenv("TICKET_WECOM_TOKEN", "wc-token")
    monkeypatch.setenv("TICKET_WECOM_ENCODING_AES_KEY", AES_KEY)
    monkeypatch.setenv("TICKET_WECOM_CORP_ID", "ww_corp")
    monkeypatch.setenv("TICKET_DINGTALK_APP_SECRET", "ding-secret")


def key(kind):
    return identity_headers(Principal(kind="channel", id=f"{kind}-key", channel=kind))


async def test_signed_callbacks(signed_client_env, client):
    ts, nonce = "1763861400", "n0nce"
    body = wechat_payload("7001")
    good = wechat.wechat_signature("wx-token", ts, nonce)
    ok = await client.post(f"/v1/channels/wechat/inbound?timestamp={ts}&nonce={nonce}&signature={good}",
                           content=body, headers={**key("wechat"), "Content-Type": "application/xml"})
    assert ok.status_code == 201, ok.text
    bad = await client.post(f"/v1/channels/wechat/inbound?timestamp={ts}&nonce={nonce}&signature={'0' * 40}",
                            content=wechat_payload("7002"), headers={**key("wechat"), "Content-Type": "application/xml"})
    assert bad.status_code == 422

    encrypted = wechat.encrypt_wechat_message(AES_KEY, wecom_payload("8001"), receiver_id="ww_corp")
    envelope = f"<xml><ToUserName>ww_corp</ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    sig = wechat.wecom_signature("wc-token", ts, nonce, encrypted)
    ok = await client.post(f"/v1/channels/wecom/inbound?timestamp={ts}&nonce={nonce}&msg_signature={sig}",
                           content=envelope, headers={**key("wecom"), "Content-Type": "application/xml"})
    assert ok.status_code == 201, ok.text
    forged = await client.post(f"/v1/channels/wecom/inbound?timestamp={ts}&nonce={nonce}&msg_signature={'0' * 40}",
                               content=envelope, headers={**key("wecom"), "Content-Type": "application/xml"})
    assert forged.status_code == 422

    now_ms = str(int(time.time() * 1000))
    signed = await client.post("/v1/channels/dingtalk/inbound", content=ding_payload("d-1"), headers={
        **key("dingtalk"), "Content-Type": "application/json", "timestamp": now_ms,
        "sign": dingtalk.dingtalk_sign("ding-secret", now_ms)})
    assert signed.status_code == 201, signed.text
    unsigned = await client.post("/v1/channels/dingtalk/inbound", content=ding_payload("d-2"),
                                 headers={**key("dingtalk"), "Content-Type": "application/json"})
    assert unsigned.status_code == 422
