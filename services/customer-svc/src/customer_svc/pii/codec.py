"""How customer-svc stores personal data: which columns hold ciphertext, which hold blind indexes,
and how a row read from the database becomes plaintext again (no SQL here; the repositories call it).

Stored encrypted (AES-256-GCM, ``helpdesk_common.pii_crypto``, the column name as the context):

- ``customer_identities.value_enc``: the normalised identity (e-mail, phone, openid, ...);
- ``customers.name_enc`` and ``customers.notes_enc``;
- ``surveys.comment_enc``: what the customer wrote with a survey answer (migration 0010);
- ``customer_merges.identities[].value_enc``: the identities a merge moved (the merge audit).

Looked up through keyed blind indexes (HMAC-SHA256 under ``CUSTOMER_PII_INDEX_KEY``):

- ``customer_identities.value_bidx``: the identity's key; unique per kind, one context for every
  kind so that the same value under two kinds (an openid that is also a unionid) still meets;
- ``customer_identities.phone_key`` / ``email_local``: the last ``PHONE_DIGITS`` digits of a phone
  number and the local part of an e-mail address (duplicate suggestions);
- ``customers.name_key``: the folded name (duplicates: same name in one organisation);
- ``customers.search``: the name's search terms (``customers/search.py``'s lexemes, and the
  prefixes of its words so that ``zha`` still finds Zhang), each one HMAC'd and cut to 16 hex
  characters, as a ``tsvector`` of opaque terms.

Rows written before migration 0008 keep their plaintext (``value``, ``name``, ``notes`` and a
plaintext ``search``) until ``python -m customer_svc.pii reencrypt`` has moved them; every read
here takes both forms, every write writes only the encrypted one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from helpdesk_common.identities import EMAIL, PHONE
from helpdesk_common.pii_crypto import Keyring, blind_index
from helpdesk_common.pii_store import load_keys

from ..customers import search
from ..duplicates.rules import PHONE_DIGITS, PHONE_MIN_DIGITS

IDENTITY = "customer_identities.value"
PHONE_KEY = "customer_identities.phone_key"
EMAIL_LOCAL = "customer_identities.email_local"
NAME = "customers.name"
NOTES = "customers.notes"
NAME_KEY = "customers.name_key"
SEARCH = "customers.search"
MERGE_IDENTITY = "customer_merges.identities"
SURVEY_COMMENT = "surveys.comment"
#: hex characters of a search term's HMAC kept in the tsvector (64 bits: no collisions that matter
#: among one base's names, and a short lexeme)
TERM_HEX = 16
#: a word's prefixes indexed for prefix search, at most this long (``zha`` finds ``zhang``)
PREFIX_MAX = 16
_NON_DIGIT = re.compile(r"[^0-9]")


class Codec:
    """The keys of one process and what they make of each column."""

    __slots__ = ("keyring", "_index_key")

    def __init__(self, keyring: Keyring, index_key: bytes) -> None:
        self.keyring = keyring
        self._index_key = index_key

    @classmethod
    def from_settings(cls, keys: str | None, index_key: str | None) -> Codec:
        return cls(*load_keys(service="customer-svc", prefix="CUSTOMER_", keys=keys, index_key=index_key))

    def index(self, value: str, context: str) -> str:
        return blind_index(value, key=self._index_key, context=context)

    # --- identities -----------------------------------------------------------------------------

    def identity_index(self, value: str) -> str:
        """The blind index of a normalised identity (any kind: one context)."""
        return self.index(value, IDENTITY)

    def identity_columns(self, kind: str, value: str) -> tuple[str, str, str | None, str | None]:
        """(value_enc, value_bidx, phone_key, email_local) of a normalised identity."""
        phone_key = email_local = None
        if kind == PHONE:
            digits = _NON_DIGIT.sub("", value)[-PHONE_DIGITS:]
            if len(digits) >= PHONE_MIN_DIGITS:
                phone_key = self.index(digits, PHONE_KEY)
        elif kind == EMAIL and "@" in value:
            email_local = self.index(value.partition("@")[0], EMAIL_LOCAL)
        return (self.keyring.encrypt(value, context=IDENTITY), self.identity_index(value), phone_key, email_local)

    def identity_value(self, row: Mapping[str, Any]) -> str:
        """The plaintext of an identity row (``value_enc``, or a legacy ``value``)."""
        token = row["value_enc"]
        return self.keyring.decrypt(token, context=IDENTITY) if token is not None else row["value"]

    def identity(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out["value"] = self.identity_value(row)
        out.pop("value_enc", None)
        return out

    def seal_merge_identity(self, value: str) -> str:
        return self.keyring.encrypt(value, context=MERGE_IDENTITY)

    def open_merge_identity(self, token: str) -> str:
        return self.keyring.decrypt(token, context=MERGE_IDENTITY)

    # --- the profile ----------------------------------------------------------------------------

    def seal_name(self, name: str | None) -> str | None:
        return self.keyring.encrypt_optional(name, context=NAME)

    def seal_notes(self, notes: str | None) -> str | None:
        return self.keyring.encrypt_optional(notes, context=NOTES)

    def name_key(self, name: str | None) -> str | None:
        """The duplicate key of a name: NFKC, trimmed, lower-cased (as migration 0007's
        ``lower(normalize(btrim(name), NFKC))``), None for a blank one."""
        if name is None:
            return None
        folded = search.fold(name.strip())
        return self.index(folded, NAME_KEY) if folded else None

    def customer(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A customers row with ``name`` and ``notes`` in plaintext (either stored form)."""
        out = dict(row)
        token = out.pop("name_enc", None)
        if token is not None:
            out["name"] = self.keyring.decrypt(token, context=NAME)
        if "notes" in out or "notes_enc" in out:
            token = out.pop("notes_enc", None)
            if token is not None:
                out["notes"] = self.keyring.decrypt(token, context=NOTES)
        return out

    def customer_optional(self, row: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if row is None else self.customer(row)

    # --- survey answers -------------------------------------------------------------------------

    def seal_comment(self, comment: str | None) -> str | None:
        return self.keyring.encrypt_optional(comment, context=SURVEY_COMMENT)

    def comment_of(self, comment: str | None, comment_enc: str | None) -> str | None:
        """A survey's comment from either stored form (``comment_enc``, or a plaintext ``comment``
        answered before migration 0010)."""
        return self.keyring.decrypt(comment_enc, context=SURVEY_COMMENT) if comment_enc is not None else comment

    def survey(self, row: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A surveys row with ``comment`` in plaintext and no ``comment_enc``."""
        if row is None:
            return None
        out = dict(row)
        out["comment"] = self.comment_of(out.get("comment"), out.pop("comment_enc", None))
        return out

    # --- name search ----------------------------------------------------------------------------

    def _term(self, lexeme: str) -> str:
        return self.index(lexeme, SEARCH)[:TERM_HEX]

    def search_terms(self, name: str | None) -> list[str]:
        """The opaque terms of a name: each lexeme ``search.lexemes`` gives, and ``p:`` + each
        prefix (1 to ``PREFIX_MAX`` characters) of its words."""
        if not name:
            return []
        terms = dict.fromkeys(self._term(lexeme) for lexeme in search.lexemes(name))
        for word in search.words(name):
            for end in range(1, min(len(word), PREFIX_MAX) + 1):
                terms.setdefault(self._term("p:" + word[:end]), None)
        return list(terms)

    def search_document(self, name: str | None) -> str:
        """The ``tsvector`` literal of a name's opaque terms (cast with ``$n::text::tsvector``)."""
        return " ".join(self.search_terms(name))

    def search_query(self, query: str) -> str | None:
        """A ``tsquery`` literal over the opaque terms: every term of ``query`` (its last word as a
        prefix, unless it is a number), as ``search.tsquery`` asks of plaintext lexemes."""
        parts = search.query_parts(query)
        if not parts:
            return None
        terms = []
        for text, prefix in parts:
            terms.append(self._term("p:" + text[:PREFIX_MAX]) if prefix else self._term(text))
        return " & ".join(dict.fromkeys(terms))


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
