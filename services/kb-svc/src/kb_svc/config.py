from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    service_name: str = "kb-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/kb"

    # --- signed-in customers (access.py; docs/kb.md, "Who sees what") ---
    #: HMAC key of the customer tokens (``POST /v1/kb/customer-tokens``); at least 32 characters.
    #: Without it no token is minted (503) and a presented one is refused (503): readers see
    #: public articles only
    customer_token_key: SecretStr | None = None
    #: the longest a customer token may live (``ttl_minutes`` above it is a 422)
    customer_token_max_ttl_minutes: int = Field(43_200, ge=1, le=525_600)

    @field_validator("customer_token_key")
    @classmethod
    def _token_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("KB_CUSTOMER_TOKEN_KEY must be at least 32 characters")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
