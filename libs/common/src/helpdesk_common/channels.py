"""Facts about intake channels that the gateway and ticket-svc must agree on."""

from __future__ import annotations

#: the channel kinds ticket-svc takes at POST /v1/channels/<kind>/inbound
CHANNEL_KINDS = frozenset({"email", "web", "chat", "wechat", "wecom", "dingtalk", "phone"})

#: request headers a channel's platform signs with, forwarded by the gateway to ticket-svc
#: (WeChat and WeCom sign in the query string, which is forwarded whole)
CHANNEL_SIGNATURE_HEADERS: dict[str, tuple[str, ...]] = {
    "dingtalk": ("timestamp", "sign"),
}
