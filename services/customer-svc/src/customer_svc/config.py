from functools import lru_cache

from pydantic_settings import SettingsConfigDict

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
