from functools import lru_cache

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
