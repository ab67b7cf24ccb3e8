from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/notify"

    # ---- outbound HTTP (egress.py, docs/webhooks.md "SSRF") ----
    #: CIDRs that outbound requests may reach although the policy refuses them (private
    #: deployments, tests); empty: only globally routable addresses. The issue's name
    #: ``WEBHOOK_ALLOW_NETWORKS`` is read too.
    webhook_allow_networks: str = Field("", validation_alias=AliasChoices(
        "NOTIFY_WEBHOOK_ALLOW_NETWORKS", "WEBHOOK_ALLOW_NETWORKS"))
    #: webhooks reach only literal addresses inside ``webhook_allow_networks`` (no DNS lookup, no
    #: public address): closed test stacks and private deployments that must never call out
    egress_allowlist_only: bool = False
    #: DNS servers that outbound requests resolve names through, comma-separated ``ip``,
    #: ``ip:port`` or ``[ipv6]:port``; empty: the system resolver. Either way every answer is
    #: checked against the policy before connecting (internal zones, closed networks, tests).
    egress_nameservers: str = ""
    egress_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    egress_total_timeout_s: float = Field(10.0, gt=0, le=300)
    egress_max_response_bytes: int = Field(65_536, ge=1, le=16_777_216)

    # ---- webhook secrets at rest (webhooks/crypto.py) ----
    #: base64url of 32 random bytes; several, comma-separated, while rotating (the first
    #: encrypts, all decrypt). No default: without it webhook subscriptions answer 503.
    secret_key: SecretStr = SecretStr("")

    # ---- notifications (notifications/, docs/notifications.md) ----
    #: the template language when the customer's has no template, and for agents' notifications
    notification_default_language: str = Field("en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
    #: the customer portal's address, offered to templates as ``portal_url`` (empty: none)
    notification_portal_url: str = ""
    #: the agents' app; templates get ``ticket.url`` = ``<this>/tickets/<id>`` in agents' messages
    notification_agent_url: str = ""
    #: how agents get a trigger's or an automation's ``notify`` message (there is no rule per
    #: trigger to say it): ``email``, ``wecom`` or ``dingtalk``, falling back to e-mail for an
    #: agent without an id on that chat channel, as rules' ``agent_channel`` does
    notification_requested_agent_channel: Literal["email", "wecom", "dingtalk"] = "email"

    # ---- chat channel adapters (channels/wechat.py, wecom.py, dingtalk.py;
    # docs/channels/outbound.md). Base URLs are settings so tests point them at local fakes.
    channel_http_timeout_s: float = Field(10.0, gt=0, le=120)
    channel_http_connect_timeout_s: float = Field(5.0, gt=0, le=60)
    channel_http_max_response_bytes: int = Field(1_048_576, ge=1024, le=16_777_216)
    #: WeChat Official Account: one account (app id + secret), and/or several as a JSON object
    #: ``{"<app id>": "<secret>"}`` picked by the route's ``app_id``
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr = SecretStr("")
    wechat_app_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    wechat_text_max_bytes: int = Field(2048, ge=64, le=65_536)
    #: ``POST /cgi-bin/stable_token`` instead of ``/cgi-bin/token``: one token shared by every
    #: caller of the account (several replicas stop invalidating each other's tokens)
    wechat_stable_token: bool = False
    #: WeCom customer contact (微信客服): the corp id, the secret of the 微信客服 application,
    #: and the customer-service account used when a route names none
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_corp_id: str = ""
    wecom_corp_secret: SecretStr = SecretStr("")
    wecom_open_kfid: str = ""
    wecom_text_max_bytes: int = Field(2048, ge=64, le=65_536)
    #: WeCom application messages to employees (agents' notifications): the self-built
    #: application's AgentId and its own secret (not the 微信客服 one), and ``markdown`` or ``text``
    #: (members reading WeCom in WeChat see no markdown)
    wecom_agent_id: str = Field("", pattern=r"^[0-9]{0,18}$")
    wecom_agent_secret: SecretStr = SecretStr("")
    wecom_agent_msgtype: str = Field("markdown", pattern=r"^(markdown|text)$")
    #: DingTalk: the v1.0 API (tokens, robot one-to-one messages) and the origin session
    #: webhooks must have (a route's ``session_webhook`` elsewhere is not used)
    dingtalk_api_base: str = "https://api.dingtalk.com"
    dingtalk_oapi_base: str = "https://oapi.dingtalk.com"
    dingtalk_app_key: str = ""
    dingtalk_app_secret: SecretStr = SecretStr("")
    #: the robot's code; empty: the app key (an enterprise-internal robot's default)
    dingtalk_robot_code: str = ""
    dingtalk_text_max_bytes: int = Field(4000, ge=64, le=65_536)
    #: the internal app's AgentId: agents' notifications go out as its work notifications (工作通知)
    dingtalk_agent_id: str = Field("", pattern=r"^[0-9]{0,18}$")

    # ---- e-mail (channels/email.py, docs/channels/outbound.md "E-mail") ----
    #: ``smtp://user:pass@host:587?starttls=true``, ``smtps://`` for implicit TLS; the issue's
    #: ``SMTP_URL`` is read too. Empty: e-mail deliveries fail as permanent, naming the setting.
    smtp_url: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("NOTIFY_SMTP_URL", "SMTP_URL"))
    smtp_timeout_s: float = Field(30.0, gt=0, le=300)
    #: the From of replies when the customer wrote to none of ``support_addresses``
    support_address: str = "support@localhost"
    #: comma-separated addresses we answer from when the customer wrote to one of them
    support_addresses: str = ""
    #: the display name of From (empty: the bare address)
    support_name: str = ""
    #: where attachment URLs of ``ticket.reply_requested`` are fetched (ticket-svc)
    ticket_url: str = "http://127.0.0.1:8082"
    attachment_max_bytes: int = Field(26_214_400, ge=1024, le=104_857_600)

    # ---- the delivery dispatcher (deliveries/dispatcher.py) ----
    dispatcher_enabled: bool = True
    #: rows claimed and sent at once by one replica
    dispatcher_concurrency: int = Field(16, ge=1, le=512)
    #: a claim lasts this long; a replica that dies mid-send lets it expire and another resends
    dispatcher_lease_s: float = Field(120.0, ge=5, le=3600)
    #: the poll when nothing woke the dispatcher (a row queued by another replica, a due retry)
    dispatcher_poll_interval_s: float = Field(0.5, gt=0, le=60)
    #: sends in flight per destination (one SMTP server, one WeChat app, one webhook host)
    destination_concurrency: int = Field(4, ge=1, le=256)
    #: token bucket per destination: sustained sends per second, and the burst
    destination_rate_per_s: float = Field(20.0, gt=0, le=10_000)
    destination_burst: int = Field(40, ge=1, le=100_000)
    #: replies and notifications: attempts, and full-jitter exponential backoff (base * 4^n, capped)
    reply_max_attempts: int = Field(8, ge=1, le=50)
    reply_backoff_base_s: float = Field(60.0, gt=0, le=3600)
    reply_backoff_cap_s: float = Field(21_600.0, gt=0, le=86_400)
    #: how often the webhook consumer re-reads which event types have subscribers
    webhook_types_refresh_s: float = Field(2.0, gt=0, le=300)

    @field_validator("webhook_allow_networks")
    @classmethod
    def _allow_networks(cls, value: str) -> str:
        from .egress import parse_allow_networks

        parse_allow_networks(value)  # a typo stops the service instead of allowing nothing
        return value

    @field_validator("egress_nameservers")
    @classmethod
    def _nameservers(cls, value: str) -> str:
        from .egress import parse_nameservers

        parse_nameservers(value)  # a typo stops the service instead of asking the system resolver
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        from .webhooks.crypto import parse_keys

        parse_keys(value.get_secret_value())  # a malformed key stops the service at start-up
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
