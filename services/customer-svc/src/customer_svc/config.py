from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from helpdesk_common.pii_store import parse_roles
from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_", extra="ignore")

    service_name: str = "customer-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/customer"

    #: import jobs (imports/): run here, one at a time per replica
    imports_enabled: bool = True
    #: the largest uploaded file (stored in the database until the job ends); requests to
    #: /v1/imports get the intake body limit (MAX_INTAKE_BODY_BYTES, 50 MiB by default) too
    import_max_bytes: int = 52_428_800
    #: rows per transaction (each commits its rows, errors and progress)
    import_batch_rows: int = 500
    #: a running job not renewed for this long (its replica stopped) is resumed by another
    import_lease_s: float = 60.0
    import_poll_interval_s: float = 2.0

    # --- surveys (surveys/; docs/customers.md, "Surveys") ---
    #: HMAC key of survey answer links (surveys/tokens.py); at least 32 characters. Without it no
    #: survey is sent (they stay scheduled until a key is configured; logged at start)
    survey_token_key: SecretStr | None = None
    #: how long an answer link works once sent
    survey_link_ttl_s: int = Field(7 * 86_400, ge=60)
    #: the public base URL the links start with (the gateway's URL as customers reach it); read
    #: without the service prefix because every service builds public links from the same one
    public_base_url: str = Field("http://127.0.0.1:8080",
                                 validation_alias=AliasChoices("PUBLIC_BASE_URL", "CUSTOMER_PUBLIC_BASE_URL"))
    surveys_enabled: bool = True
    #: surveys sent per transaction of the worker, and how often it looks for due ones
    survey_batch: int = Field(50, ge=1, le=1000)
    survey_poll_interval_s: float = 1.0

    # --- personal data at rest and its readers (pii/; docs/security.md, "Personal data at rest") ---
    #: AES-256-GCM keys, ``kid:base64key[,kid:base64key...]``, the first one encrypts; required
    pii_keys: SecretStr | None = None
    #: the HMAC key of the blind indexes (base64, 32 bytes); required. Rotated with
    #: ``python -m customer_svc.pii reindex`` while the service is stopped (pii/reindex.py)
    pii_index_key: SecretStr | None = None
    #: the key ``reindex`` moves the blind indexes to (only that command reads it)
    pii_new_index_key: SecretStr | None = None
    #: roles that see identities (e-mail, phone, openid...) unmasked on every customer
    pii_unmasked_roles: Annotated[list[str], NoDecode] = ["admin", "supervisor"]
    #: an agent also sees a customer's identities unmasked while assigned one of the customer's
    #: tickets that is not closed (ticket facts from ticket-svc's events; no call on the read path)
    pii_unmask_assignee: bool = True
    #: rows per transaction of ``python -m customer_svc.pii reencrypt``
    pii_reencrypt_batch: int = Field(500, ge=1, le=10_000)

    @property
    def pii_keys_value(self) -> str | None:
        return self.pii_keys.get_secret_value() if self.pii_keys is not None else None

    @property
    def pii_index_key_value(self) -> str | None:
        return self.pii_index_key.get_secret_value() if self.pii_index_key is not None else None

    @field_validator("pii_unmasked_roles", mode="before")
    @classmethod
    def _roles_list(cls, value: object) -> object:
        return parse_roles(value)  # ``admin,supervisor`` or a JSON list

    @field_validator("survey_token_key")
    @classmethod
    def _survey_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("CUSTOMER_SURVEY_TOKEN_KEY must be at least 32 characters")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
