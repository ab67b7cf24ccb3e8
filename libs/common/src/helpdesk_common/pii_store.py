"""What every service that keeps personal data encrypted shares (``pii_crypto`` is the primitives).

customer-svc (customers and their identities) and ticket-svc (the requester of each ticket) store
personal data the same way, so the parts that are not about their own columns live here:

- ``load_keys``: the keyring and index key from ``<SVC>_PII_KEYS`` / ``<SVC>_PII_INDEX_KEY``, or a
  ``PiiKeyError`` naming the missing setting (the service does not start without them; the
  message never holds a key);
- ``MaskPolicy``: who sees identities unmasked (a role in ``<SVC>_PII_UNMASKED_ROLES``, or a user
  working the customer's open ticket when ``<SVC>_PII_UNMASK_ASSIGNEE``), the one rule both
  services apply (docs/security.md, "Masking by role");
- ``seal_json`` / ``open_json``: a JSON value stored as ``{"sealed": token}`` in a ``jsonb`` column
  (a whole object under one AES-GCM operation: one per row on the write path), read back from
  either that form or the plaintext one written before the service encrypted it;
- ``walk`` and ``cli``: the re-encrypt command's batch loop (one transaction per batch, by
  primary key, until a batch comes back short) and its entry point, each service supplying the
  steps that know its tables.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .identity import Principal
from .pii_crypto import Keyring, PiiKeyError, looks_encrypted, parse_index_key

SEALED = "sealed"


def load_keys(*, service: str, prefix: str, keys: str | None, index_key: str | None) -> tuple[Keyring, bytes]:
    """(keyring, index key) of ``<prefix>PII_KEYS`` / ``<prefix>PII_INDEX_KEY``; refuses to go on without them."""
    hint = f"python -m helpdesk_common.pii_crypto {prefix.rstrip('_').lower()} prints a pair"
    if not keys:
        raise PiiKeyError(f"{prefix}PII_KEYS is not set: {service} keeps personal data encrypted and does not "
                          f"start without its keys ({hint})")
    if not index_key:
        raise PiiKeyError(f"{prefix}PII_INDEX_KEY is not set ({hint})")
    return (Keyring.from_settings(keys, setting=f"{prefix}PII_KEYS"),
            parse_index_key(index_key, setting=f"{prefix}PII_INDEX_KEY"))


def parse_roles(value: Any) -> Any:
    """``<SVC>_PII_UNMASKED_ROLES`` as ``admin,supervisor``, a JSON list or a list (a settings validator)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return orjson.loads(text)
        return [role.strip() for role in text.split(",") if role.strip()]
    return value


@dataclass(frozen=True)
class MaskPolicy:
    """Who sees personal identities unmasked: a listed role always; another user (an agent) when
    it works an open ticket of the person (``assignee_sees``); nobody else."""

    unmasked_roles: frozenset[str] = frozenset({"admin", "supervisor"})
    assignee_sees: bool = True

    @classmethod
    def of(cls, unmasked_roles: Iterable[str], assignee_sees: bool) -> MaskPolicy:
        return cls(frozenset(unmasked_roles), assignee_sees)

    def by_role(self, principal: Principal) -> bool:
        return principal.is_user and principal.role in self.unmasked_roles

    def asks_tickets(self, principal: Principal) -> bool:
        """True when the caller's tickets decide (a user without a listed role, the rule on)."""
        return principal.is_user and self.assignee_sees and not self.by_role(principal)


def seal_json(keyring: Keyring, value: Any, *, context: str) -> dict[str, str]:
    """``{"sealed": token}``: ``value`` as JSON, encrypted (one AES-GCM operation)."""
    return {SEALED: keyring.encrypt(orjson.dumps(value).decode(), context=context)}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str) \
        and looks_encrypted(value[SEALED])


def open_json(keyring: Keyring, stored: Any, *, context: str) -> Any:
    """The value of a ``seal_json`` form; anything else is a plaintext row written before the
    service encrypted (returned as it is)."""
    if is_sealed(stored):
        return open_sealed(keyring, stored, context=context)
    return stored


def open_sealed(keyring: Keyring, stored: Mapping[str, str], *, context: str) -> Any:
    """The value of a ``seal_json`` form the caller has seen ``is_sealed`` (a page of tickets
    checks each requester once, not twice); a token that is not one raises ``PiiDecryptError``."""
    return orjson.loads(keyring.decrypt(stored[SEALED], context=context))


def sealed_kid(stored: Any) -> str | None:
    """The key id of a sealed value (None for plaintext)."""
    return stored[SEALED].split(".")[1] if is_sealed(stored) else None


#: one batch of a re-encrypt step: (rows done, last primary key) from the key after which to start
Step = Callable[[Any, Any], Awaitable[tuple[int, Any]]]


async def walk(conn: Any, steps: Iterable[tuple[str, Step]], *, batch: int) -> tuple[dict[str, int], int]:
    """Run each named step batch after batch (each step commits its own transaction) until one
    comes back shorter than ``batch``; (rows per step, batches)."""
    done: dict[str, int] = {}
    batches = 0
    for name, step in steps:
        done[name] = 0
        after: Any = None
        while True:
            count, after = await step(conn, after)
            if count:
                batches += 1
                done[name] += count
            if count < batch:
                break
    return done, batches


def cli(argv: list[str], *, module: str, run: Callable[[], Awaitable[dict[str, Any]]]) -> int:
    """``python -m <module> reencrypt``: run, print the report as JSON, exit 1 while rows are left
    (``report["remaining"]``), 2 on a usage error."""
    if argv != ["reencrypt"]:
        print(f"usage: python -m {module} reencrypt", file=sys.stderr)
        return 2
    report = asyncio.run(run())
    print(orjson.dumps(report).decode())
    return 0 if not any(report.get("remaining", {}).values()) else 1
