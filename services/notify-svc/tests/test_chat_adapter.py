"""The chat adapter: available to the visitor when the reply names its conversation."""

import uuid

import pytest

from notify_svc.channels.base import OutboundMessage
from notify_svc.channels.chat import ChatAdapter


def message(route) -> OutboundMessage:
    return OutboundMessage(delivery_id=uuid.uuid4(), channel="chat", route=route, body_text="您好")


@pytest.mark.parametrize(("route", "outcome"), [
    ({"conversation_key": "chat:c-20261123-0042"}, "sent"),
    ({}, "undeliverable"),
    ({"conversation_key": None}, "undeliverable"),
    ({"conversation_key": ""}, "undeliverable"),
    ({"conversation_key": "chat:"}, "undeliverable"),
    ({"conversation_key": "wechat:oABC"}, "undeliverable"),
    ({"conversation_key": 42}, "undeliverable"),
])
async def test_outcomes(route, outcome):
    result = await ChatAdapter().send(message(route))
    assert result.outcome == outcome
    assert (result.reason is None) == (outcome == "sent")


def test_registered_with_the_other_adapters():
    from notify_svc.config import Settings
    from notify_svc.main import build_adapters

    adapters = build_adapters(Settings())
    assert isinstance(adapters["chat"], ChatAdapter) and adapters["chat"].channel == "chat"
