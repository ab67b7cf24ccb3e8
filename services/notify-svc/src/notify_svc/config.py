from functools import lru_cache

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
    egress_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    egress_total_timeout_s: float = Field(10.0, gt=0, le=300)
    egress_max_response_bytes: int = Field(65_536, ge=1, le=16_777_216)

    # ---- webhook secrets at rest (webhooks/crypto.py) ----
    #: base64url of 32 random bytes; several, comma-separated, while rotating (the first
    #: encrypts, all decrypt). No default: without it webhook subscriptions answer 503.
    secret_key: SecretStr = SecretStr("")

    @field_validator("webhook_allow_networks")
    @classmethod
    def _allow_networks(cls, value: str) -> str:
        from .egress import parse_allow_networks

        parse_allow_networks(value)  # a typo stops the service instead of allowing nothing
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
