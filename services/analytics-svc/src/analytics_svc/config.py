from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    service_name: str = "analytics-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/analytics"
    # ticket-svc answers which teams a caller belongs to (access.py: the reports' role scoping)
    ticket_url: str = "http://127.0.0.1:8082"
    team_cache_ttl_s: float = 30.0
    ticket_timeout_s: float = 3.0
    #: the least time between the starts of two fold batches: under a steady stream of events
    #: the fold takes bigger batches and pays its per-batch work (the rollups, the folded rows,
    #: the inbox) once for all of them; a lone event after a quiet spell is folded at once.
    #: Bounded by the boards' freshness goal (2 s, docs/metrics.md)
    fold_min_batch_interval_ms: int = Field(200, ge=0, le=1000)


@lru_cache
def get_settings() -> Settings:
    return Settings()
