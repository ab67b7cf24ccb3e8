from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from helpdesk_common.pii_store import parse_roles
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

    # --- search: time-ordered postings of searched keys (tickets/search_index.py) ---
    #: how often keys that agents' searches asked for are filled and old postings trimmed; 0
    #: turns the passes off, and then searches ask for no key (the keys already kept stay
    #: maintained by the triggers and are no longer trimmed: delete them to stop the postings)
    search_index_interval_s: float = 60.0
    #: postings kept per key: a common search finds its page among them and only reads further
    #: back (with the date index) for the tickets older than them
    search_postings_per_key: int = Field(default=1000, ge=1)
    #: at most this many keys: every intake ticket writes a posting per kept key it contains, so
    #: the cap bounds what searches can add to intake's cost
    search_index_max_keys: int = Field(default=200, ge=0)

    # --- replies (docs/channels/outbound.md, "What ticket-svc sends") ---
    #: HMAC key of the attachment capability URLs in ``ticket.reply_requested``
    #: (``/internal/attachments/{sha256}?type=&exp=&sig=``); at least 32 characters. Without
    #: it replies still go out, with their attachments listed but ``url`` null (logged at start).
    attachment_url_key: SecretStr | None = None
    #: how long such a URL works: notify-svc retries for days, and a dead delivery may be retried
    #: by hand, so a week
    attachment_url_ttl_s: int = 7 * 86_400
    #: origins a DingTalk session webhook may point to (scheme://host[:port]); anything else
    #: from a callback is dropped at intake, so a forged callback cannot make us post elsewhere
    dingtalk_webhook_origins: list[str] = ["https://oapi.dingtalk.com", "https://api.dingtalk.com"]
    #: WeChat official accounts: original id (``gh_...``, the callbacks' ToUserName) -> AppID
    #: (``wx...``, what notify-svc's credentials are keyed by)
    wechat_app_ids: dict[str, str] = {}

    # --- chat visitors (docs/channels/outbound.md, "Chat widget") ---
    #: HMAC key of visitor tokens (visitor/tokens.py); at least 32 characters. Without it chat
    #: intake answers no token and the visitor's endpoint refuses every caller (401)
    visitor_token_key: SecretStr | None = None
    #: a token's lifetime; each visitor message (and each mint) gives a fresh one
    visitor_token_ttl_s: int = 86_400
    #: long-polls parked at once in one process; past it a visitor gets 503 with Retry-After
    visitor_max_waiters: int = 1000
    #: parked long-polls re-read this often while the LISTEN connection is down (5x when up)
    visitor_poll_s: float = 2.0

    # --- customer confirmation (confirmations/; docs/workflow.md, "Customer confirmation") ---
    #: HMAC key of the confirmation links (confirmations/tokens.py); at least 32 characters.
    #: Without it no confirmation request is sent (the customer can still answer by replying,
    #: and the step's timeout still runs; logged at start)
    confirmation_token_key: SecretStr | None = None
    #: the public base URL links start with (the gateway's URL as customers reach it); read
    #: without the service prefix because every service builds public links from the same one
    public_base_url: str = Field("http://127.0.0.1:8080",
                                 validation_alias=AliasChoices("PUBLIC_BASE_URL", "TICKET_PUBLIC_BASE_URL"))

    # --- knowledge-base placeholders in macro replies (macros/kb.py; docs/kb.md) ---
    #: kb-svc, asked for reply snippets with the acting agent's identity
    kb_url: str = "http://127.0.0.1:8086"
    #: the bound of one article's snippet; past it the macro applies with the placeholder empty
    kb_timeout_s: float = Field(2.0, gt=0, le=30)

    # --- ticket exports (exports/; docs/exports.md) ---
    #: HMAC key of the incremental export's cursors; at least 32 characters. Without it each
    #: process signs with a random key of its own (logged at start): cursors then do not survive
    #: a restart or another replica (they answer 422 and the export restarts from start_time)
    export_cursor_key: SecretStr | None = None
    #: the most rows an .xlsx download holds (a workbook is built whole in memory); beyond it 422
    #: and the caller narrows the filters or takes the streamed .csv
    export_xlsx_max_rows: int = Field(50_000, ge=1, le=1_000_000)

    # --- the requester's personal data at rest (pii/; docs/security.md, "Personal data at rest") ---
    #: AES-256-GCM keys, ``kid:base64key[,kid:base64key...]``, the first one encrypts; required
    pii_keys: SecretStr | None = None
    #: the HMAC key of the blind indexes (base64, 32 bytes); required. Rotated with
    #: ``python -m ticket_svc.pii reindex`` (pii/reindex.py; docs/security.md, "Keys and rotation")
    pii_index_key: SecretStr | None = None
    #: the key ``reindex`` moves the blind indexes to (only that command reads it; the service
    #: looks up with ``pii_index_key`` alone)
    pii_new_index_key: SecretStr | None = None
    #: roles that see every ticket's requester (e-mail, phone, openid, external id) unmasked
    pii_unmasked_roles: Annotated[list[str], NoDecode] = ["admin", "supervisor"]
    #: an agent also sees the requester unmasked on a ticket assigned to them that is not closed
    pii_unmask_assignee: bool = True
    #: rows per transaction of ``python -m ticket_svc.pii reencrypt`` and ``reindex``
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
        return parse_roles(value)

    @field_validator("attachment_url_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("TICKET_ATTACHMENT_URL_KEY must be at least 32 characters")
        return value

    @field_validator("visitor_token_key", "confirmation_token_key", "export_cursor_key")
    @classmethod
    def _token_key_long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(f"TICKET_{str(info.field_name).upper()} must be at least 32 characters")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
