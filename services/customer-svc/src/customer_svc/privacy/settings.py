"""Settings of data subject requests (``CUSTOMER_PRIVACY_*``), apart from the service's own
class so that the package owns them."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .rules import DEFAULT_SERVICES


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_PRIVACY_", extra="ignore")

    #: the services that must acknowledge an erasure before it is complete (comma-separated)
    services: Annotated[list[str], NoDecode] = list(DEFAULT_SERVICES)
    #: how an erasure reaches the event log: ``delete-records`` (Kafka: once every consumer group
    #: has committed past the erasure, records below are deleted; retried until the broker does),
    #: ``retention`` (the topics' KAFKA_TOPIC_RETENTION_MS bound only), or ``auto`` (delete-records;
    #: a broker that cannot (the embedded tansu) leaves the request at ``retention-only``, logged)
    log_purge: Literal["delete-records", "retention", "auto"] = "auto"
    #: a pending erasure waits this long before it starts (time to suspend it); 0 = next tick
    erase_grace_s: float = Field(0.0, ge=0)
    worker_enabled: bool = True
    poll_interval_s: float = Field(1.0, gt=0)
    #: other services' export endpoints: ``name=url,name=url``
    export_urls: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    export_timeout_s: float = Field(10.0, gt=0)
    #: how long an assembled bundle is kept for download
    bundle_ttl_s: int = Field(86_400, ge=60)

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("export_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        if isinstance(value, str):
            out = {}
            for part in value.split(","):
                if part.strip():
                    name, _, url = part.partition("=")
                    out[name.strip()] = url.strip()
            return out
        return value


@lru_cache
def get_privacy_settings() -> PrivacySettings:
    return PrivacySettings()
