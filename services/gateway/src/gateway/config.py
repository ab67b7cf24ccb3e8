from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/gateway"
    jwt_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("GATEWAY_JWT_SECRET"))
    jwt_issuer: str = "helpdesk-local"
    access_token_ttl_s: int = 3600

    ticket_url: str = "http://127.0.0.1:8082"
    customer_url: str = "http://127.0.0.1:8081"
    sla_url: str = "http://127.0.0.1:8083"
    analytics_url: str = "http://127.0.0.1:8084"
    upstream_timeout_s: float = 10.0
    upstream_max_connections: int = 200

    api_key_cache_ttl_s: float = 30.0
    # per principal token bucket; 0 disables (e.g. for benchmarks)
    rate_limit_rps: float = 500.0
    rate_limit_burst: int = 1000
    login_attempts_per_minute: int = 10


@lru_cache
def get_settings() -> Settings:
    return Settings()
