"""Input hygiene shared by every request model.

PostgreSQL text and jsonb reject NUL characters, so a NUL that got past validation would
surface as a 500 at insert time; rejecting it here turns it into a clear 422.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def find_nul(value: Any, path: str = "") -> str | None:
    """Path of the first string (or key) containing U+0000, or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"{path}.{key!r}" if path else repr(key)
            hit = find_nul(item, f"{path}.{key}" if path else str(key))
            if hit:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            hit = find_nul(item, f"{path}[{i}]")
            if hit:
                return hit
    return None


class StrictModel(BaseModel):
    """Request body base: unknown fields are errors, NUL characters are errors."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _reject_nul(cls, data: Any) -> Any:
        where = find_nul(data)
        if where:
            raise ValueError(f"NUL characters are not allowed (at {where})")
        return data


def fold_key(value: str) -> str:
    """Comparison form of an admin-chosen key such as a customer tier: NFKC (full-width → ASCII),
    trimmed, case-folded, so ``VIP``, ``vip`` and ``ＶＩＰ`` are one key and ``金牌`` stays ``金牌``.
    Every service that stores or matches tiers folds them with this one function."""
    return unicodedata.normalize("NFKC", value).strip().casefold()
