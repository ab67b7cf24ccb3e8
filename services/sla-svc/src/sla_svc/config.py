from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    service_name: str = "sla-svc"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/sla"
    db_raw_pool_size: int = 4

    #: fire due timers in this process (every replica may; they share the work safely)
    scheduler_enabled: bool = True
    #: timers claimed per firing transaction (one UPDATE ... RETURNING, one outbox INSERT)
    scheduler_batch_size: int = 1000
    #: longest sleep without a NOTIFY: the safety net if the listener connection is lost
    scheduler_max_idle_s: float = 2.0
    #: tickets re-targeted per transaction by the sweep after a policy or calendar edit
    recalc_batch_size: int = 200
    #: republish every team's ``sla.team_calendar_changed`` (unchanged versions) at start-up
    calendar_events_at_start: bool = True
    #: ticket-svc, asked whether an agent may read a ticket before its SLA is shown
    #: (helpdesk_common.ticket_access), and how long to wait for its answer
    ticket_url: str = "http://127.0.0.1:8082"
    ticket_timeout_s: float = 2.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
