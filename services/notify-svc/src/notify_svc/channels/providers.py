"""The chat-provider adapters (WeChat, WeCom, DingTalk) built from the service's settings.

One function so that whoever wires the delivery engine gets all three with one shared transport
(one connection pool, one place to swap in the egress client) instead of repeating the settings.
"""

from __future__ import annotations

from typing import Any

from .base import Adapter
from .dingtalk import DingTalkAdapter
from .http import HttpClient, client_from_settings
from .wechat import WeChatAdapter
from .wecom import WeComAdapter


def chat_adapters(settings: Any, *, http: HttpClient | None = None) -> dict[str, Adapter]:
    """``{"wechat": ..., "wecom": ..., "dingtalk": ...}``. The adapters share ``http`` (default:
    the aiohttp transport with the ``NOTIFY_CHANNEL_HTTP_*`` limits); closing any closes it, and
    closing it twice is harmless. An adapter whose credentials are not configured still answers:
    ``permanent`` with a reason naming the missing setting."""
    shared = http or client_from_settings(settings)
    return {
        "wechat": WeChatAdapter.from_settings(settings, http=shared),
        "wecom": WeComAdapter.from_settings(settings, http=shared),
        "dingtalk": DingTalkAdapter.from_settings(settings, http=shared),
    }
