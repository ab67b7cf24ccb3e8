from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from helpdesk_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/gateway"
    #: the raw pool serves the stream's consumer (one transaction at a time) and the stream
    #: hub's tail read (one at a time); the relay has a connection of its own
    db_raw_pool_size: int = 2
    #: Ed25519 keys user tokens are signed with, ``kid:base64url-key[,kid:key...]``, the first
    #: current (auth/keys.py: rotation; ``python -m gateway.auth.keys`` prints one)
    signing_keys: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("GATEWAY_SIGNING_KEYS"))
    jwt_issuer: str = "helpdesk-local"
    #: short-lived access tokens; a session's refresh token (rotated on use) gets new ones
    access_token_ttl_s: int = 900
    #: a session (login) ends this long after it started, refreshed or not
    session_ttl_s: int = 14 * 24 * 3600

    #: the shortest password accepted for a user (auth/policy.py: also not a common password nor the e-mail)
    password_min_length: int = Field(12, ge=8, le=128)

    # argon2id cost, OWASP's password storage guidance (m=19 MiB, t=2, p=1): a verification
    # costs ~19 MiB for ~20 ms; hashes made with other parameters are upgraded at the next login
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    #: argon2 computations running at once (each holds argon2_memory_kib): the memory bound
    password_hash_concurrency: int = 1
    #: logins queued for a slot before the gateway answers 503 at once
    password_hash_max_waiting: int = 16
    password_hash_wait_s: float = 2.0

    ticket_url: str = "http://127.0.0.1:8082"
    customer_url: str = "http://127.0.0.1:8081"
    sla_url: str = "http://127.0.0.1:8083"
    analytics_url: str = "http://127.0.0.1:8084"
    notify_url: str = "http://127.0.0.1:8085"
    kb_url: str = "http://127.0.0.1:8086"

    @field_validator("ticket_url", "customer_url", "sla_url", "analytics_url", "notify_url", "kb_url")
    @classmethod
    def _replicas(cls, value: str) -> str:
        """One base URL, or several comma-separated (a service's replicas: requests go to each in
        turn, proxy/upstreams.py); refused at start when one is not an http(s) URL."""
        from .proxy.upstreams import parse_urls

        return ",".join(parse_urls(value))
    upstream_timeout_s: float = 10.0
    #: creating or changing a user waits this long for ticket-svc to apply it to the agent
    #: profile; then the answer says "pending" and the user event applies it (gateway/auth/users.py)
    user_provision_timeout_s: float = 3.0
    upstream_max_connections: int = 200

    api_key_cache_ttl_s: float = 30.0
    # GATEWAY_TRUSTED_PROXIES (whose X-Forwarded-For is believed) and GATEWAY_METRICS_*: ServiceSettings
    # per principal token buckets (requests per second, burst); rate 0 disables all request
    # limits (benchmarks). Users are people clicking; channel keys are bridges posting traffic.
    rate_limit_rps: float = 20.0
    rate_limit_burst: int = 200
    channel_rate_limit_rps: float = 200.0
    channel_rate_limit_burst: int = 1000
    #: the chat visitor's long-poll (proxy/visitor.py): per visitor token (a widget polls in a
    #: loop, each answer at once when a message is there) and per client address (many visitors
    #: share an office's or a carrier's NAT address)
    visitor_rate_limit_rps: float = 2.0
    visitor_rate_limit_burst: int = 30
    visitor_address_rate_limit_rps: float = 50.0
    visitor_address_rate_limit_burst: int = 500
    #: visitors' requests in flight to ticket-svc (mostly parked long-polls), on a connection pool
    #: of their own; past it a visitor gets 503 with Retry-After
    visitor_max_connections: int = 1000
    #: the public survey link (proxy/survey.py), per client address: a customer opens the page and
    #: posts one answer; an office behind one NAT address answers a handful at a time
    survey_address_rate_limit_rps: float = 1.0
    survey_address_rate_limit_burst: int = 30
    #: the customer-confirmation link (proxy/confirmation.py), per client address: the same shape
    #: of traffic as a survey's (a page, one answer)
    confirmation_address_rate_limit_rps: float = 1.0
    confirmation_address_rate_limit_burst: int = 30
    #: the knowledge base's public routes (proxy/kb.py) for anonymous readers and customer tokens,
    #: per client address: a reader opens pages and searches as they type; an office or a carrier
    #: NAT puts many readers behind one address
    kb_public_address_rate_limit_rps: float = 10.0
    kb_public_address_rate_limit_burst: int = 100
    #: requests with a wrong, unknown or expired credential, per client address
    auth_failures_per_minute_per_address: int = 120
    #: failed sign-ins (successful ones never count) per client address, and per account from one
    #: address (so guesses from elsewhere never use up the owner's: docs/security.md, "Sign-in")
    login_failures_per_minute_per_address: int = 30
    login_failures_per_minute_per_account: int = 10
    #: failed sign-ins per account from all addresses together, per hour: what a distributed
    #: guessing loop gets; an address the account signed in from within login_known_address_days
    #: is not held by it (the owner still gets in)
    login_failures_per_hour_per_account: int = 60
    login_known_address_days: int = 30

    #: keys for secrets at rest (TOTP secrets), ``kid:base64key[,kid:key]`` (helpdesk_common.pii_crypto);
    #: empty: nobody can enrol in two-factor sign-in
    pii_keys: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("GATEWAY_PII_KEYS"))
    #: the issuer name authenticator apps show next to the account
    totp_issuer: str = "Help desk"
    #: an admin without two-factor sign-in may only enrol (403 totp_enrolment_required elsewhere)
    require_totp_for_admins: bool = False
    #: external OIDC providers (auth/oidc.py), JSON: {"<name>": {"issuer", "client_id",
    #: "client_secret", "scopes"?, "subjects"?: {"<sub>": "<e-mail of our user>"}}}; empty: none
    oidc_providers: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("GATEWAY_OIDC_PROVIDERS"))
    #: the gateway's public address, for the OIDC redirect URI (empty: the address the request came to)
    public_url: str = ""
    #: an OIDC sign-in must come back from the provider within this long
    oidc_login_ttl_s: int = 600
    oidc_timeout_s: float = 5.0
    #: live per-user API tokens one user may hold
    user_api_tokens_max: int = Field(20, ge=1)

    #: browser origins allowed to call the API (CORS), comma-separated; empty: none
    cors_origins: str = ""
    #: the composed API document (/openapi.json) and its Swagger UI (/docs): API_DOCS_ENABLED, shared
    #: with the services (whose documents the gateway composes); GATEWAY_DOCS_ENABLED still wins
    api_docs_enabled: bool = Field(False, validation_alias=AliasChoices("GATEWAY_DOCS_ENABLED", "API_DOCS_ENABLED"))

    # live stream (GET /v1/stream): see docs/stream.md
    #: a stream ticket (POST /v1/stream/tickets) opens a stream within this long; browsers'
    #: EventSource cannot send Authorization, so it carries the ticket in the URL instead
    stream_ticket_ttl_s: int = 60
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
    #: the live board (``event: kpis`` frames, stream/kpis.py): fetched from analytics-svc at most
    #: this often per scope and process, and never sent twice within it on one connection;
    #: below 1 s is refused (the issue's "at most once a second")
    stream_kpis_interval_s: float = Field(1.0, ge=1.0)
    stream_kpis_timeout_s: float = Field(2.0, gt=0)
    #: roles whose streams carry the board, comma-separated (agents read GET /v1/analytics/kpis)
    stream_kpis_roles: str = "admin,supervisor"


@lru_cache
def get_settings() -> Settings:
    return Settings()
