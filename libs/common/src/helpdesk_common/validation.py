"""Input hygiene shared by every request model and query parameter.

PostgreSQL refuses some values Python and JSON accept: U+0000 in text and jsonb, lone
surrogates (JSON ``"\\ud800"`` parses to a str that cannot be encoded as UTF-8, so asyncpg and
orjson refuse it too), NaN and Infinity in jsonb (Python's JSON parser accepts them, JSON does
not), integers beyond the column's width, datetimes that overflow once converted to UTC. Any of
these that got past validation would surface as a 500 at insert or query time; refusing them
here turns each into a clear 422 naming the field. The database error handlers in
``problems.py`` are only the safety net behind these checks.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: the ranges of PostgreSQL ``integer`` and ``bigint``: bound every int that reaches such a column
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: an int that fits an ``integer`` column (positions, counts, versions)
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
#: an int that fits a ``bigint`` column (bigserial ids, cursors made of them)
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

NUL_MESSAGE = "NUL characters are not allowed"
SURROGATE_MESSAGE = "lone surrogates (an unpaired \\ud800-\\udfff escape) are not valid Unicode"
NON_FINITE_MESSAGE = "NaN and Infinity are not JSON numbers"


def text_problem(value: str) -> str | None:
    """Why PostgreSQL (and UTF-8) would refuse ``value``, or None.

    ASCII strings, most of what arrives, cost one ``isascii`` beyond the NUL scan; only
    non-ASCII ones are encoded, the cheapest exact test for a lone surrogate."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def find_invalid(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(where, why)`` of the first string or key PostgreSQL would refuse (NUL, lone
    surrogate) or the first non-finite float, walking dicts and lists; None when all is well."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path or "body", problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "body", NON_FINITE_MESSAGE)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (problem := text_problem(key)):
                return (path or "body", f"{problem} (in a key)")
            hit = find_invalid(item, f"{path}.{key}" if path else str(key))
            if hit:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            hit = find_invalid(item, f"{path}[{i}]")
            if hit:
                return hit
    return None


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
    """Request body base: unknown fields are errors; so are NUL characters, lone surrogates
    and NaN/Infinity anywhere in the document (free-form ``dict[str, Any]`` values included,
    which pydantic passes through unchecked)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _reject_unstorable(cls, data: Any) -> Any:
        hit = find_invalid(data)
        if hit:
            where, why = hit
            raise ValueError(f"{why} (at {where})")
        return data


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


def _fits_int64(value: str) -> str:
    if int(value) > INT64_MAX:
        raise ValueError(f"must be at most {INT64_MAX}")
    return value


#: a non-negative bigint written in decimal, e.g. a keyset cursor made of a bigserial id: the
#: pattern alone let 20-digit values through to asyncpg, which refused them with a 500
Int64Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,19}$"), AfterValidator(_fits_int64)]


#: a query or path parameter that reaches SQL: NUL refused at the parameter, with its name
#: (the URL middleware refuses it earlier for every route; this keeps the schema honest)
SafeStr = Annotated[str, AfterValidator(_no_nul)]


def _in_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return value
    if value.tzinfo is None:  # read as UTC, the services' zone, not the process's local zone
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # 9999-12-31T23:00-14:00 is past year 9999 in UTC
        raise ValueError("the date is out of range once converted to UTC") from exc


#: a datetime parameter converted to UTC at validation (one without an offset is read as UTC):
#: asyncpg converts to UTC when it sends the value, and one that overflows there (year 1 or
#: 9999 with an offset) was a 500
UtcDatetime = Annotated[datetime, AfterValidator(_in_utc)]
#: the same for parameters that must carry an offset (RFC 3339)
AwareUtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


def fold_key(value: str) -> str:
    """Comparison form of an admin-chosen key such as a customer tier: NFKC (full-width → ASCII),
    trimmed, case-folded, so ``VIP``, ``vip`` and ``ＶＩＰ`` are one key and ``金牌`` stays ``金牌``.
    Every service that stores or matches tiers folds them with this one function."""
    return unicodedata.normalize("NFKC", value).strip().casefold()
