from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    service_name: str = "kb-svc"
    #: ticket-svc, asked whether an agent may read a ticket before its article links are shown
    #: or changed (helpdesk_common.ticket_access), and how long to wait for its answer
    ticket_url: str = "http://127.0.0.1:8082"
    ticket_timeout_s: float = 2.0
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/kb"

    # --- signed-in customers (access.py; docs/kb.md, "Who sees what") ---
    #: HMAC key of the customer tokens (``POST /v1/kb/customer-tokens``); at least 32 characters.
    #: Without it no token is minted (503) and a presented one is refused (503): readers see
    #: public articles only
    customer_token_key: SecretStr | None = None
    #: the longest a customer token may live (``ttl_minutes`` above it is a 422); at most the API's
    #: own bound, 30 days (customer_tokens.MAX_TTL_MINUTES), which a deployment may only lower
    customer_token_max_ttl_minutes: int = Field(43_200, ge=1, le=43_200)

    # --- suggestions and deflection (deflection/; docs/kb.md, "Suggestions and deflection") ---
    #: a suggestion no ticket followed within this many minutes is decided: deflected when a
    #: suggested article was opened, abandoned otherwise (fractions allowed: tests use seconds)
    deflection_window_minutes: float = Field(60.0, ge=0, le=43_200)
    #: how often the sweep decides the suggestions whose window closed
    deflection_sweep_interval_s: float = Field(30.0, gt=0, le=3600)
    #: per client address (the gateway's forwarded one): suggestions a second and burst, for
    #: callers without a user login (staff are limited by the gateway per user)
    suggestions_rate_per_second: float = Field(1.0, gt=0)
    suggestions_burst: int = Field(20, ge=1)
    #: decided suggestions (and their views) older than this many days are deleted by the sweep;
    #: the long-term deflection figures live in analytics-svc, which keeps its own counts
    suggestions_retention_days: float = Field(400.0, gt=0, le=3650)

    # --- feedback (feedback/; docs/kb.md, "Feedback") ---
    #: an article is flagged for review when the share of "not helpful" votes passes this ...
    review_negative_share: float = Field(0.3, ge=0, le=1)
    #: ... over at least this many votes
    review_min_votes: int = Field(10, ge=1)

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
