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

    # live stream (GET /v1/stream): see docs/stream.md
    stream_notify_channel: str = "stream_events"
    stream_keepalive_s: float = 15.0
    stream_retry_ms: int = 3000
    stream_retention_s: float = 24 * 3600.0
    stream_prune_interval_s: float = 600.0
    stream_replay_max: int = 1000
    stream_batch_size: int = 200
    #: recent rows kept in memory per process, so live tails never query the database
    stream_ring_size: int = 2000
    #: a stream ends after this long; the client reconnects (re-authenticating) and resumes
    stream_max_duration_s: float = 3600.0
    stream_max_open: int = 10_000
    #: while the LISTEN connection is down, the process polls for new rows this often
    stream_fallback_poll_s: float = 2.0
    agent_teams_cache_ttl_s: float = 30.0
    agent_teams_timeout_s: float = 2.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
