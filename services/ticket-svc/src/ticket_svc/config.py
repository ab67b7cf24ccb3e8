from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKET_", extra="ignore")

    service_name: str = "ticket-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/ticket"
    # platform callback secrets: when set, signatures must verify (see intake/parsers.py)
    wechat_token: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_encoding_aes_key: SecretStr | None = None
    wecom_corp_id: SecretStr | None = None
    dingtalk_app_secret: SecretStr | None = None
    #: how often offered-but-not-accepted tickets are checked for re-offer
    reoffer_interval_s: float = 1.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
