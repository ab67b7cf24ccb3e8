from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    service_name: str = "kb-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/kb"


@lru_cache
def get_settings() -> Settings:
    return Settings()
