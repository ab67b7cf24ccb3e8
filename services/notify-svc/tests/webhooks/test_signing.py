"""Our signatures, checked by the Standard Webhooks reference library (PyPI ``standardwebhooks``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notify_svc.webhooks import signing

pytestmark = pytest.mark.timeout(60)

BODY = '{"specversion":"1.0","type":"ticket.created","data":{"subject":"打印机坏了"}}'.encode()


def test_a_signed_body_verifies_with_the_reference_library() -> None:
    secret = signing.generate_secret()
    headers = signing.webhook_headers([secret], msg_id="msg_2Kq", body=BODY)
    assert Webhook(secret).verify(BODY, headers) == {"specversion": "1.0", "type": "ticket.created",
                                                     "data": {"subject": "打印机坏了"}}
    assert signing.verify(secret, headers=headers, body=BODY)


def test_a_tampered_body_fails() -> None:
    secret = signing.generate_secret()
    headers = signing.webhook_headers([secret], msg_id="msg_1", body=BODY)
    tampered = BODY.replace(b"ticket.created", b"ticket.deleted")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    assert not signing.verify(secret, headers=headers, body=tampered)


@pytest.mark.parametrize("field", ["webhook-id", "webhook-timestamp"])
def test_a_changed_id_or_timestamp_fails(field: str) -> None:
    secret = signing.generate_secret()
    headers = signing.webhook_headers([secret], msg_id="msg_1", body=BODY, timestamp=int(time.time()) - 10)
    headers[field] = "msg_2" if field == "webhook-id" else str(int(time.time()))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


def test_a_timestamp_older_than_five_minutes_fails() -> None:
    secret = signing.generate_secret()
    old = signing.webhook_headers([secret], msg_id="msg_1", body=BODY, timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, old)
    assert not signing.verify(secret, headers=old, body=BODY)
    recent = signing.webhook_headers([secret], msg_id="msg_1", body=BODY, timestamp=int(time.time()) - 240)
    Webhook(secret).verify(BODY, recent)


def test_another_secret_fails() -> None:
    headers = signing.webhook_headers([signing.generate_secret()], msg_id="msg_1", body=BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(BODY, headers)


def test_during_rotation_both_secrets_verify() -> None:
    new, old = signing.generate_secret(), signing.generate_secret()
    headers = signing.webhook_headers([new, old], msg_id="msg_1", body=BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    assert signing.verify(old, headers=headers, body=BODY)


def test_the_signature_is_exactly_the_specified_hmac() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = base64.b64encode(hmac.new(key, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}",
                                        hashlib.sha256).digest()).decode()
    assert signing.sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330,
                        body=b'{"test": 2432232314}') == "v1," + expected


def test_the_specification_example() -> None:
    """The example of the Standard Webhooks specification (its secret, id, timestamp, body)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = signing.sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330,
                             body=b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_generated_secrets() -> None:
    one, two = signing.generate_secret(), signing.generate_secret()
    assert one != two and one.startswith("whsec_")
    assert len(signing.secret_key(one)) == 32


@pytest.mark.parametrize("secret", ["", "whsec_", "abc", "whsec_!!!", "whsec_" + base64.b64encode(b"x" * 10).decode()])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        signing.secret_key(secret)


@pytest.mark.parametrize("msg_id", ["a b", "a,b", "a\nb"])
def test_ids_that_would_break_the_headers_are_refused(msg_id: str) -> None:
    with pytest.raises(ValueError):
        signing.webhook_headers([signing.generate_secret()], msg_id=msg_id, body=b"{}")


@settings(max_examples=50, deadline=None)
@given(body=st.text(max_size=300), msg_id=st.from_regex(r"msg_[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_any_body_verifies(body: str, msg_id: str) -> None:
    secret = signing.generate_secret()
    data = body.encode()
    headers = signing.webhook_headers([secret], msg_id=msg_id, body=data)
    Webhook(secret).verify(data, headers, json_parse=False)
