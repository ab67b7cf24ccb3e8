"""Two-factor sign-in with time-based one-time passwords (RFC 6238: 6 digits, 30-second steps,
SHA-1, what every authenticator app speaks) and one-time recovery codes.

- Enrolling (``POST /v1/users/me/totp``) stores a new secret, encrypted under
  ``GATEWAY_PII_KEYS`` (helpdesk_common.pii_crypto, context ``users.totp_secret``), and answers it
  with its ``otpauth://`` URI; nothing changes at sign-in until a code from the app confirms it
  (``POST /v1/users/me/totp/confirm``), which also answers 10 recovery codes, shown once and kept
  as SHA-256 hashes (80 random bits each: too many to guess under the sign-in limits, and no
  offline search of the table finds one).
- A code is accepted for the step it belongs to and one step either side (clock drift), and
  only for a step later than the last accepted one: the same code (or an older one) a second
  time is refused, so a code seen over a shoulder or in a proxy log is worth nothing once used.
- A recovery code stands in for a code once.

The functions here are pure (no database); service.py and the endpoints keep the state.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

import pyotp

STEP_S = 30
DIGITS = 6
#: steps either side of now still accepted (clock drift between the phone and the server)
DRIFT_STEPS = 1
RECOVERY_CODES = 10
SECRET_CONTEXT = "users.totp_secret"
_CODE = re.compile(r"\d{6}")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by hand
_RECOVERY = re.compile(r"[a-z0-9]{16}")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, RFC 4226's recommendation


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=account, issuer_name=issuer)


def step_at(at: float) -> int:
    return int(at // STEP_S)


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).at(step * STEP_S)


def is_code(text: str) -> bool:
    return bool(_CODE.fullmatch(text.strip()))


def matching_step(secret: str, code: str, *, last_step: int | None, at: float | None = None) -> int | None:
    """The step ``code`` belongs to if it is valid now and newer than ``last_step``; else None."""
    code = code.strip()
    if not _CODE.fullmatch(code):
        return None
    now = step_at(time.time() if at is None else at)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        # compare every candidate (no early exit on a match): the time taken says nothing
        if hmac.compare_digest(code_at_step(secret, step), code) and (last_step is None or step > last_step):
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes as shown to the user: ``abcd-efgh-jkmn-pqrs`` (16 characters of a 31-letter alphabet)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def normalize_recovery_code(text: str) -> str | None:
    """The code without separators or case, or None when it cannot be one."""
    raw = re.sub(r"[\s-]", "", text).lower()
    return raw if _RECOVERY.fullmatch(raw) else None


def hash_recovery_code(text: str) -> str | None:
    raw = normalize_recovery_code(text)
    return None if raw is None else hashlib.sha256(raw.encode()).hexdigest()
