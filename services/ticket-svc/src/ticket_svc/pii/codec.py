"""How ticket-svc stores a requester: which columns hold ciphertext, which hold blind indexes, and
how a stored row becomes plaintext again (no SQL here; repositories and services call it).

Stored encrypted (AES-256-GCM, ``helpdesk_common.pii_crypto``, the column name as the context):

- ``tickets.requester``: the whole requester object (name, e-mail, phone, openid, external id) as
  ``{"sealed": token}`` (``helpdesk_common.pii_store.seal_json``: one AES-GCM operation per ticket);
- ``customer_identity_projection.value_enc``: an identity customer-svc announced (the erasure
  reads it back to know what to look for);
- ``reply_routes.route``: how to answer a WeChat, WeCom or DingTalk customer (openid, external
  user id, session webhook) as ``{"sealed": token}``: the outbound reply needs it back;
- ``tickets.cc`` (other people's addresses) as ``{"sealed": token}`` (``[]`` when empty),
  ``tickets.csat_comment`` (the customer's words) as a token, and a message's personal metadata
  (an e-mail's ``to`` / ``cc`` / ``reply_to``, a call's transcript and recording link, a group
  chat's title) under ``messages.metadata.personal`` (migration 0021: no index; the erasure opens
  them to look for the person).

Looked up through keyed blind indexes (HMAC-SHA256 under ``TICKET_PII_INDEX_KEY``), all in one
context (``IDENTITY``) so that an identity of a ticket meets the same identity of the projection:

- ``tickets.requester_identity_bidx``: the requester's primary identity, as the intake looked it
  up in the projection to link a known customer (stored, and rewritten by the index key's
  rotation; no query finds tickets by it since migration 0024);
- ``tickets.requester_bidx``: every identity of the requester (``GET /v1/tickets?requester=``);
- ``customer_identity_projection.value_bidx``: the projection's key;
- ``tickets.conversation_key`` of a WeChat or WeCom ticket: ``<channel>:#<index of the sender>``
  instead of ``<channel>:<openid | userid>`` (threading compares it by equality; the index is the
  sender's identity index, the one ``requester_bidx`` holds, so the erasure finds it too).

Rows written before migration 0018 (0019 for conversation keys and reply routes) keep their
plaintext (a ``requester`` object, ``requester_identity_value``, the projection's ``value``, a
``wechat:<openid>`` key, a route object) until ``python -m ticket_svc.pii reencrypt`` has moved
them; every read here takes both forms, every write writes only the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpdesk_common.identities import EMAIL, PHONE, identities_of, normalize, primary_identity
from helpdesk_common.pii_crypto import Keyring, blind_index, looks_encrypted
from helpdesk_common.pii_store import is_sealed, load_keys, open_json, open_sealed, seal_json

REQUESTER = "tickets.requester"
PROJECTION_VALUE = "customer_identity_projection.value"
REPLY_ROUTE = "reply_routes.route"
CC = "tickets.cc"
CSAT_COMMENT = "tickets.csat_comment"
MESSAGE_METADATA = "messages.metadata"
#: a message's metadata entries that name or quote people (an e-mail's other recipients, a call's
#: transcript and recording, a DingTalk group's title): sealed together under ``PERSONAL``; the
#: rest (message type, flags, ids of our own accounts) stays readable for queries and support
PERSONAL_METADATA = ("to", "cc", "reply_to", "transcript", "recording_url", "conversation_title")
PERSONAL = "personal"
#: channels whose conversation key names a person (``<channel>:<openid | userid>``)
PERSON_CONVERSATIONS = ("wechat", "wecom")
#: what follows ``<channel>:`` in a conversation key that holds an index (no openid or userid starts so)
INDEXED = "#"


def is_indexed_conversation(key: str | None) -> bool:
    """True for a stored ``<channel>:#<index>`` key (its person part is not recoverable)."""
    channel, sep, rest = (key or "").partition(":")
    return bool(sep) and channel in PERSON_CONVERSATIONS and rest.startswith(INDEXED)
#: the blind-index context of every identity (tickets and projection alike)
IDENTITY = "ticket_svc.identity"


class Codec:
    """The keys of one process and what they make of each column."""

    __slots__ = ("keyring", "_index_key")

    def __init__(self, keyring: Keyring, index_key: bytes) -> None:
        self.keyring = keyring
        self._index_key = index_key

    @classmethod
    def from_settings(cls, keys: str | None, index_key: str | None) -> Codec:
        return cls(*load_keys(service="ticket-svc", prefix="TICKET_", keys=keys, index_key=index_key))

    def identity_index(self, value: str) -> str:
        """The blind index of a normalised identity (any kind: one context)."""
        return blind_index(value, key=self._index_key, context=IDENTITY)

    # --- the requester on a ticket -------------------------------------------------------------

    def requester_columns(self, requester: Mapping[str, Any]) -> dict[str, Any]:
        """What an insert stores of ``requester``: the sealed object, the primary identity's kind
        and index, every identity's index; the plaintext ``requester_identity_value`` stays NULL."""
        identity = primary_identity(dict(requester))
        return {
            # an empty requester (a task ticket-svc opens about a customer, not from them) holds nothing
            "requester": seal_json(self.keyring, dict(requester), context=REQUESTER) if requester else {},
            "requester_identity_kind": identity[0] if identity else None,
            "requester_identity_value": None,
            "requester_identity_bidx": self.identity_index(identity[1]) if identity else None,
            # only compared with the projection's plaintext rows written before 0018, never stored
            "requester_identity_plain": identity[1] if identity else None,
            "requester_bidx": list(dict.fromkeys(self.identity_index(v) for _, v in identities_of(dict(requester)))),
        }

    def requester(self, stored: Any) -> dict[str, Any]:
        """The plaintext requester of a ``tickets.requester`` value (sealed, or a legacy object)."""
        return dict(open_json(self.keyring, stored, context=REQUESTER) or {})

    def query_indexes(self, text: str) -> list[str]:
        """The indexes ``GET /v1/tickets?requester=`` matches: the text as each kind would
        normalise it (an address lower-cased, a number in E.164, an id as given)."""
        text = text.strip()
        candidates = {text, normalize(EMAIL, text)}
        phone = normalize(PHONE, text)
        if phone:
            candidates.add(phone)
        return [self.identity_index(v) for v in sorted(c for c in candidates if c)]

    # --- conversations and reply routes -------------------------------------------------------

    def conversation_key(self, key: str | None) -> str | None:
        """What a ticket stores as its conversation key: a WeChat or WeCom sender as its identity
        index, anything else (chat, DingTalk conversation ids) as it is. Idempotent: a stored key
        (a follow-up copies its predecessor's) is kept, a plaintext one from before 0019 indexed."""
        channel, sep, person = (key or "").partition(":")
        if not sep or channel not in PERSON_CONVERSATIONS or not person or person.startswith(INDEXED):
            return key
        return f"{channel}:{INDEXED}{self.identity_index(person)}"

    def delivery_id(self, external_id: str | None, conversation_key: str | None) -> str | None:
        """What ``channel_deliveries`` and ``messages.external_id`` store of a message's own id: a
        WeChat message without a MsgId is known by ``<openid>:<CreateTime>`` (WeChat's retry key),
        stored as ``#<index of the openid>:<CreateTime>``; every other id as it is. Deterministic,
        so a retried delivery still finds its first one."""
        channel, sep, person = (conversation_key or "").partition(":")
        if (external_id is None or not sep or channel not in PERSON_CONVERSATIONS or not person
                or person.startswith(INDEXED) or not external_id.startswith(person + ":")):
            return external_id
        return f"{INDEXED}{self.identity_index(person)}{external_id[len(person):]}"

    def conversation_lookup(self, key: str) -> list[str]:
        """The stored keys threading compares with: the indexed form, and the plaintext one of a
        ticket written before 0019 (a query value, never stored) until the command has moved it."""
        stored = self.conversation_key(key)
        return [stored, key] if stored != key else [key]

    def person_conversations(self, indexes: list[str]) -> list[str]:
        """Every stored conversation key of a person with these identity indexes (the erasure)."""
        return [f"{channel}:{INDEXED}{index}" for index in indexes for channel in PERSON_CONVERSATIONS]

    def seal_route(self, route: Mapping[str, Any]) -> dict[str, str]:
        return seal_json(self.keyring, dict(route), context=REPLY_ROUTE)

    def route(self, stored: Any) -> dict[str, Any] | None:
        """The plaintext of a ``reply_routes.route`` (sealed, or an object from before 0019)."""
        return None if stored is None else dict(open_json(self.keyring, stored, context=REPLY_ROUTE) or {})

    # --- other people's addresses, the customer's comment, a message's personal metadata --------

    def seal_cc(self, cc: Any) -> Any:
        """What ``tickets.cc`` stores: the list sealed, or ``[]`` when there is none."""
        return seal_json(self.keyring, [str(c) for c in cc], context=CC) if cc else []

    def cc(self, stored: Any) -> list[str]:
        """The plaintext list of a ``tickets.cc`` value (sealed, or a list written before 0021)."""
        return list(open_json(self.keyring, stored, context=CC) or [])

    def seal_comment(self, comment: str | None) -> str | None:
        return None if comment is None else self.keyring.encrypt(comment, context=CSAT_COMMENT)

    def comment(self, stored: str | None) -> str | None:
        """The plaintext of ``tickets.csat_comment`` (a token, or text written before 0021)."""
        if stored is None or not looks_encrypted(stored):
            return stored
        return self.keyring.decrypt(stored, context=CSAT_COMMENT)

    def seal_metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """What ``messages.metadata`` stores: the ``PERSONAL_METADATA`` entries that hold something
        sealed together under ``personal``, everything else as it is. Idempotent."""
        out = dict(metadata or {})
        personal = {k: out.pop(k) for k in PERSONAL_METADATA if k in out}
        if is_sealed(out.get(PERSONAL)):  # already stored form (a copy of a stored row)
            personal = {**self.metadata({PERSONAL: out[PERSONAL]}), **personal}
        out.pop(PERSONAL, None)
        personal = {k: v for k, v in personal.items() if v not in (None, "", [], {})}
        if personal:
            out[PERSONAL] = seal_json(self.keyring, personal, context=MESSAGE_METADATA)
        return out

    def metadata(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The plaintext of a ``messages.metadata`` value (sealed entries opened and put back)."""
        out = dict(stored or {})
        if is_sealed(out.get(PERSONAL)):
            out.update(open_json(self.keyring, out.pop(PERSONAL), context=MESSAGE_METADATA) or {})
        return out

    # --- the identity projection -----------------------------------------------------------------

    def seal_identity(self, value: str) -> str:
        return self.keyring.encrypt(value, context=PROJECTION_VALUE)

    def identity_value(self, row: Mapping[str, Any]) -> str:
        """The plaintext of a projection row (``value_enc``, or a legacy ``value``)."""
        token = row["value_enc"]
        return self.keyring.decrypt(token, context=PROJECTION_VALUE) if token is not None else row["value"]


_codec: Codec | None = None


def configure(keys: str | None, index_key: str | None) -> Codec:
    """Install the process's codec (app start-up, the re-encrypt command, tests)."""
    global _codec
    _codec = Codec.from_settings(keys, index_key)
    return _codec


def codec() -> Codec:
    """The process's codec; configured from the settings on first use."""
    if _codec is None:
        from ..config import get_settings

        settings = get_settings()
        return configure(settings.pii_keys_value, settings.pii_index_key_value)
    return _codec


def requester_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The plaintext requester of a tickets row (what every reader of ``row["requester"]`` uses);
    a plaintext one (written before 0018, or built in memory) needs no key."""
    stored = row["requester"]
    return dict(open_sealed(codec().keyring, stored, context=REQUESTER) or {}) if is_sealed(stored) \
        else dict(stored or {})


def cc_of(row: Mapping[str, Any]) -> list[str]:
    """The plaintext CC list of a tickets row (what every reader of ``row["cc"]`` uses)."""
    stored = row["cc"]
    return codec().cc(stored) if is_sealed(stored) else list(stored or [])


def csat_comment_of(row: Mapping[str, Any]) -> str | None:
    stored = row["csat_comment"]
    return codec().comment(stored) if stored is not None and looks_encrypted(stored) else stored


def message_metadata_of(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plaintext of a ``messages.metadata`` value; one without sealed entries needs no key."""
    return codec().metadata(stored) if stored and PERSONAL in stored else dict(stored or {})


def sealed_identities(identities: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(kind, value, value_enc, value_bidx) of each (kind, value): what the projection stores."""
    box = codec()
    return [(kind, value, box.seal_identity(value), box.identity_index(value)) for kind, value in identities]
