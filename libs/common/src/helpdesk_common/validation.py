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
import re
import types
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


Check = Callable[[Any], bool]
_DATES = (datetime, date, time, timedelta, AwareDatetime, NaiveDatetime)


def _is_int(value: Any) -> bool:
    """A JSON integer: ``1`` or ``1.0`` (JSON Schema's ``integer`` is any number without a
    fraction), never ``true`` or ``"1"``."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def json_kind_check(annotation: Any) -> tuple[Check, str] | None:
    """For a field type, a test of the JSON value it may be given, and what that is, where
    pydantic's lax mode would convert across JSON types: ``true`` → 1, ``1`` → True, ``1.0`` → 1,
    ``"1"`` → 1, a number → a datetime. The document says ``integer``, ``boolean``,
    ``date-time``, so the server takes exactly that. None: no such conversion to guard."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return json_kind_check(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [json_kind_check(member) for member in get_args(annotation)]
        if any(member is None for member in members):
            return None
        checks = [member[0] for member in members if member]
        return (lambda value: any(check(value) for check in checks)), " or ".join(m[1] for m in members if m)
    if annotation is type(None):
        return (lambda value: value is None), "null"
    if annotation is bool:
        return (lambda value: isinstance(value, bool)), "a boolean"
    if annotation is int:
        return _is_int, "an integer"
    if annotation is float:
        return (lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)), "a number"
    if isinstance(annotation, type) and issubclass(annotation, _DATES):
        return (lambda value: isinstance(value, str)), "a string"
    if origin in (list, set, frozenset):
        item = json_kind_check(get_args(annotation)[0]) if get_args(annotation) else None
        if item is None:
            return None
        return (lambda value: not isinstance(value, list) or all(item[0](v) for v in value)), f"a list, each item {item[1]}"
    if origin is dict and len(get_args(annotation)) == 2:
        member = json_kind_check(get_args(annotation)[1])
        if member is None:
            return None
        return (lambda value: not isinstance(value, dict) or all(member[0](v) for v in value.values())), (
            f"an object, each value {member[1]}")
    return None


class StrictModel(BaseModel):
    """Request body base: unknown fields are errors; so are NUL characters, lone surrogates
    and NaN/Infinity anywhere in the document (free-form ``dict[str, Any]`` values included,
    which pydantic passes through unchecked), and a JSON value of another type than the field's
    where pydantic would convert it (``json_kind_check``)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _reject_unstorable(cls, data: Any) -> Any:
        hit = find_invalid(data)
        if hit:
            where, why = hit
            raise ValueError(f"{why} (at {where})")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _json_kind(cls, value: Any, info: ValidationInfo) -> Any:
        key = (cls, info.field_name)
        check = _KIND_CHECKS.get(key, _UNSET)
        if check is _UNSET:
            field = cls.model_fields.get(info.field_name or "")
            check = _KIND_CHECKS[key] = json_kind_check(field.annotation) if field is not None else None
        if check is not None and not check[0](value):
            raise ValueError(f"must be {check[1]}")
        return value


_UNSET: Any = object()
_KIND_CHECKS: dict[tuple[type, str | None], tuple[Check, str] | None] = {}


#: whitespace as Python strips it (str.isspace), a superset of what pydantic strips (Unicode
#: White_Space); spelled out because ``\s`` means three different sets in Python, in pydantic's
#: Rust regex and in ECMA-262 (the API document's dialect), and one pattern is both the check
#: and what the document states
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: one character that is not whitespace (a fragment of larger patterns)
NOT_BLANK_CHAR = f"[^{WHITESPACE}]"
#: text that is not empty once stripped, without U+0000 (which no text the API takes may hold):
#: anchored and naming U+0000 so that the API document needs no second pattern for the NUL rule
#: beside it (openapi.pattern_excludes_nul; generators pay dearly for two patterns on one string)
NOT_BLANK = f"^[^\\x00]*[^{WHITESPACE}\\x00][^\\x00]*$"
_EMAIL_PARTS = f"[^@{WHITESPACE}\\x00]+@[^@{WHITESPACE}\\x00]+\\.[^@{WHITESPACE}\\x00]+"  # (U+0000: see NOT_BLANK)
#: an e-mail address, with the whitespace around it that stripping removes
EMAIL_PATTERN = f"^[{WHITESPACE}]*{_EMAIL_PARTS}[{WHITESPACE}]*$"
#: an e-mail address as it stands, in a path (not ``\\s``: U+0085 is whitespace to pydantic's
#: regex and not to ECMA-262's, and schemathesis found the API refusing what its document allowed)
BARE_EMAIL_PATTERN = f"^{_EMAIL_PARTS}$"


def not_null(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a field that may be left out but not sent as null (a PATCH field
    whose absence means "unchanged"): the document drops the ``null`` the ``| None`` put there."""
    branches = [branch for branch in schema.get("anyOf", []) if branch.get("type") != "null"]
    if "anyOf" in schema and len(branches) == 1:
        del schema["anyOf"]
        schema.update({**branches[0], **schema})
    elif "anyOf" in schema:
        schema["anyOf"] = branches
    if schema.get("default", 0) is None:
        del schema["default"]


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


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """pydantic reads a number, or a query string that is one (``?after=0.5``), as seconds
    since 1970; the document says ``date-time`` (RFC 3339), so that is what is taken."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-11-29T12:00:00Z")
    return value


#: a datetime parameter converted to UTC at validation (one without an offset is read as UTC):
#: asyncpg converts to UTC when it sends the value, and one that overflows there (year 1 or
#: 9999 with an offset) was a 500
UtcDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]
#: the same for parameters that must carry an offset (RFC 3339)
AwareUtcDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]


def fold_key(value: str) -> str:
    """Comparison form of an admin-chosen key such as a customer tier: NFKC (full-width → ASCII),
    trimmed, case-folded, so ``VIP``, ``vip`` and ``ＶＩＰ`` are one key and ``金牌`` stays ``金牌``.
    Every service that stores or matches tiers folds them with this one function."""
    return unicodedata.normalize("NFKC", value).strip().casefold()
