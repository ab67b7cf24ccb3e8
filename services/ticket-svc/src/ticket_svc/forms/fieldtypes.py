"""Per-type value validators of the form engine, kept in one table (``FIELD_TYPES``).

Each validator takes the field definition and a raw JSON value and either returns the
normalised value that is stored on the ticket or raises ``Invalid`` with an English message
that names the rule ("must be an integer between 1 and 10"). Validators never see ``None``
or blank values: whether "no value" is acceptable is a question of ``required`` and is
answered by ``validate``, not here.

Adding a type is one ``FIELD_TYPES`` entry: its validator, the type-specific attributes a
definition may carry and, for text-like types, the cap on ``max_length``.

Stored values stay plain JSON: decimals are strings ("12.50") so no float ever rounds them,
date-times are UTC ISO strings ending in ``Z`` (what the API renders for its own times).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

# The parser behind re.compile (public as sre_parse before 3.11, deprecated since): the only
# way to inspect a pattern's structure without writing a second regex parser.
from re import _constants as sre_constants, _parser as sre_parse

# Admin patterns are matched by the ``regex`` module (re's syntax and semantics in its VERSION0
# mode) because it can stop a match after a time limit; ``re`` cannot (it holds the GIL).
import regex

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
TEXT_MAX = 1000
LONG_TEXT_MAX = 65_536
PATTERN_MAX = 200
PATTERN_INPUT_MAX = 1000
DECIMAL_MAX_SCALE = 18
DECIMAL_MAX_INT_DIGITS = 20
#: rough upper bound on backtracking steps for one value of at most PATTERN_INPUT_MAX chars
PATTERN_COST_BUDGET = 10_000_000
#: the second bound: one match of an admin pattern against one value is stopped after this much
#: CPU time (a well-formed pattern takes microseconds; the costliest the definition check lets
#: through, ``.*foo.*bar`` on 1,000 characters, 0.3 ms). It covers what that check cannot see:
#: patterns stored before it existed, or a shape it misjudges. ``regex``'s ``timeout=`` counts
#: the process's CPU time, not wall time (measured: a match cut off at 20 ms used 20.0 ms of CPU
#: every time and 100-460 ms of wall time on a loaded machine, where a busy thread gets a sliver
#: of a core), so the limit is kept small enough that, stretched by a full machine, the cut-off
#: still lands within 100 ms of wall time (tests/security/test_patterns.py measures it with
#: every core kept busy by other processes; docs/security.md "Admin-supplied patterns").
PATTERN_MATCH_CPU_S = 0.001
CHOICES_SHOWN = 20


class Invalid(Exception):
    """A value (or a definition attribute) breaks a rule; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OptionLike(Protocol):
    value: str
    label: str


class FieldLike(Protocol):
    """What validators read from a definition (``schemas.FieldDef`` satisfies it)."""

    type: str
    max_length: int | None
    min: Any
    max: Any
    scale: int | None
    options: Sequence[Any] | None
    max_selected: int | None
    pattern: str | None


# --- shared helpers -------------------------------------------------------------------------


def is_blank(value: Any) -> bool:
    """``None``, a whitespace-only string or an empty list: "no value" (web forms send "")."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return not value
    return False


def _string(value: Any, message: str = "must be a string") -> str:
    """The value as a str PostgreSQL jsonb can store (no NUL, no lone surrogates)."""
    if not isinstance(value, str):
        raise Invalid(message)
    if "\x00" in value:
        raise Invalid("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("must be valid Unicode text") from None
    return value


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def option_values(field: FieldLike) -> list[str]:
    return [o.value for o in field.options or ()]


def choices(field: FieldLike) -> str:
    """The options for a message, cut after CHOICES_SHOWN so a 500-option list stays readable."""
    values = [_short(v) for v in option_values(field)]
    shown = ", ".join(values[:CHOICES_SHOWN])
    return shown + (", …" if len(values) > CHOICES_SHOWN else "")


def _range_phrase(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f" between {low} and {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def _check_length(text: str, limit: int) -> str:
    if len(text) > limit:
        raise Invalid(f"must be at most {limit} characters")
    return text


# --- text -----------------------------------------------------------------------------------


def validate_text(field: FieldLike, value: Any) -> str:
    """Single-line-ish text; surrounding whitespace is noise from form inputs, so it is stripped."""
    return _check_length(_string(value).strip(), field.max_length or TEXT_MAX)


def validate_long_text(field: FieldLike, value: Any) -> str:
    """Kept verbatim: leading spaces and blank lines can be meaningful (pasted logs, Markdown)."""
    return _check_length(_string(value), field.max_length or LONG_TEXT_MAX)


# --- numbers --------------------------------------------------------------------------------


def validate_integer(field: FieldLike, value: Any) -> int:
    """JSON integers only: ``true`` is not 1 and ``3.0`` is not 3, so typos surface early.

    Bounds default to int64 so every stored value fits a bigint wherever it is copied to.
    """
    low = field.min if field.min is not None else INT64_MIN
    high = field.max if field.max is not None else INT64_MAX
    ranged = field.min is not None or field.max is not None
    message = "must be an integer" + _range_phrase(field.min, field.max)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(message)
    if not low <= value <= high:
        raise Invalid(message if ranged else f"must be an integer between {INT64_MIN} and {INT64_MAX}")
    return value


_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_WIDE = Context(prec=DECIMAL_MAX_INT_DIGITS + DECIMAL_MAX_SCALE + 4)
DECIMAL_MESSAGE = 'must be a decimal number, e.g. "12.50"'


def parse_decimal(value: Any, max_scale: int = DECIMAL_MAX_SCALE) -> Decimal:
    """A finite Decimal of bounded size from a string, int or finite float.

    Strings are the lossless form; numbers are accepted because clients send them, floats
    through their shortest repr (0.1 -> "0.1"). No exponents, NaN or Infinity: they are
    either not amounts or a way to make "1e999999999" expand into a gigabyte string.
    """
    if isinstance(value, bool):
        raise Invalid(DECIMAL_MESSAGE)
    if isinstance(value, int):
        if value.bit_length() > 80:  # beyond any allowed number, and cheap to check
            raise Invalid(f"must have at most {DECIMAL_MAX_INT_DIGITS} digits before the decimal point")
        number = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid(DECIMAL_MESSAGE)
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 64 or not _DECIMAL_TEXT.fullmatch(text):
            raise Invalid(DECIMAL_MESSAGE)
        number = Decimal(text)
    else:
        raise Invalid(DECIMAL_MESSAGE)
    if number == 0:
        return abs(number)  # no "-0.00"
    if number.adjusted() >= DECIMAL_MAX_INT_DIGITS:
        raise Invalid(f"must have at most {DECIMAL_MAX_INT_DIGITS} digits before the decimal point")
    exponent = number.normalize(_WIDE).as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > max_scale:
        raise Invalid(f"must have at most {max_scale} decimal places")
    return number


def format_decimal(number: Decimal, scale: int | None) -> str:
    """Plain notation; with a scale, exactly that many places so equal amounts compare equal."""
    if scale is not None:
        number = number.quantize(Decimal(1).scaleb(-scale), context=_WIDE)
    return format(number, "f")


def validate_decimal(field: FieldLike, value: Any) -> str:
    scale = field.scale if field.scale is not None else DECIMAL_MAX_SCALE
    number = parse_decimal(value, scale)
    low = Decimal(field.min) if field.min is not None else None
    high = Decimal(field.max) if field.max is not None else None
    if (low is not None and number < low) or (high is not None and number > high):
        raise Invalid("must be a decimal number" + _range_phrase(field.min, field.max))
    return format_decimal(number, field.scale)


# --- dates ----------------------------------------------------------------------------------

DATE_MESSAGE = "must be a date in YYYY-MM-DD form"
DATETIME_MESSAGE = "must be a date-time in RFC 3339 form with a UTC offset, e.g. 2024-05-01T09:30:00+08:00"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def validate_date(field: FieldLike, value: Any) -> str:
    """Calendar dates only (2024-02-30 is refused); the strict shape rules out "20240501"."""
    text = _string(value, DATE_MESSAGE).strip()
    if not _DATE.fullmatch(text):
        raise Invalid(DATE_MESSAGE)
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise Invalid(DATE_MESSAGE) from None


def validate_datetime(field: FieldLike, value: Any) -> str:
    """RFC 3339 with a mandatory offset (a local time without one is ambiguous), stored in UTC.

    Fractions beyond microseconds are truncated; leap second 60 is refused, as Python and
    PostgreSQL cannot represent it.
    """
    text = _string(value, DATETIME_MESSAGE).strip()
    match = _DATETIME.fullmatch(text)
    if not match:
        raise Invalid(DATETIME_MESSAGE)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:
            tz = timezone.utc
        else:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
        utc = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise Invalid(DATETIME_MESSAGE) from None
    return utc.replace(tzinfo=None).isoformat() + "Z"


# --- choices --------------------------------------------------------------------------------


def validate_single_select(field: FieldLike, value: Any) -> str:
    message = f"must be one of: {choices(field)}"
    if not isinstance(value, str) or value.strip() not in option_values(field):
        raise Invalid(message)
    return value.strip()


def validate_multi_select(field: FieldLike, value: Any) -> list[str]:
    """A list of distinct option values in the order given."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"must be a list of option values: {choices(field)}")
    picked = [v.strip() for v in value]
    allowed = set(option_values(field))
    if any(v not in allowed for v in picked):
        raise Invalid(f"must only contain: {choices(field)}")
    if len(set(picked)) != len(picked):
        raise Invalid("must not contain the same value twice")
    if field.max_selected is not None and len(picked) > field.max_selected:
        raise Invalid(f"must have at most {field.max_selected} values selected")
    return picked


def validate_checkbox(field: FieldLike, value: Any) -> bool:
    """``true``/``false`` only: "yes", 1 or "false" are too easy to misread."""
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


# --- contact details ------------------------------------------------------------------------

EMAIL_MESSAGE = "must be an e-mail address"
_EMAIL_LOCAL = re.compile(r"[^\s@\"(),:;<>\[\\\]]{1,64}")
_DOMAIN_LABEL = re.compile(r"[^\W_](?:[\w-]{0,61}[^\W_])?")


def validate_email(field: FieldLike, value: Any) -> str:
    """A practical address check (not full RFC 5322): one @, a dotted domain, Unicode allowed.

    The domain is lower-cased because it is case-insensitive; the local part is kept as typed.
    """
    text = _string(value, EMAIL_MESSAGE).strip()
    if len(text) > 254 or text.count("@") != 1:
        raise Invalid(EMAIL_MESSAGE)
    local, domain = text.split("@")
    labels = domain.split(".")
    if (
        not _EMAIL_LOCAL.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
    ):
        raise Invalid(EMAIL_MESSAGE)
    return f"{local}@{domain.lower()}"


PHONE_MESSAGE = "must be a phone number of 5 to 15 digits, e.g. +86 138 0013 8000"
_PHONE_SHAPE = re.compile(r"\+?[0-9 ()\-.]{1,40}")


def validate_phone(field: FieldLike, value: Any) -> str:
    """E.164-ish: separators are dropped, so "+86 138-0013-8000" is stored as "+8613800138000".

    A leading + needs a country code (first digit not 0) and at least 7 digits; numbers
    without one are kept as local digits, as callers in one country often type them.
    """
    text = _string(value, PHONE_MESSAGE).strip()
    if not _PHONE_SHAPE.fullmatch(text):
        raise Invalid(PHONE_MESSAGE)
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+")
    if not 5 <= len(digits) <= 15 or (international and (len(digits) < 7 or digits[0] == "0")):
        raise Invalid(PHONE_MESSAGE)
    return ("+" if international else "") + digits


URL_MESSAGE = "must be an http or https URL"


def validate_url(field: FieldLike, value: Any) -> str:
    """http(s) with a host only: javascript:, data: or file: links must never reach an agent."""
    text = _string(value, URL_MESSAGE).strip()
    if len(text) > 2048 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise Invalid(URL_MESSAGE)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Invalid(URL_MESSAGE) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid(URL_MESSAGE)
    return text


# --- admin patterns -------------------------------------------------------------------------

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
_REFERENCES = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS}


def _pattern_cost(items: Any, inside_repeat: bool) -> int:
    """Upper bound on backtracking for a parsed pattern, or Invalid for exponential shapes.

    Python's ``re`` has no match timeout and does not release the GIL, so the engine refuses
    at definition time what could stall a worker at match time:
    * a variable repetition inside a repetition (``(a+)+``, ``(a?){30}``) and an alternation
      inside one (``(ab|a)*``): exponential in the input length; fixed counts such as
      ``(\\d{3}-)+`` are fine;
    * back-references: exponential and rarely needed in a field format;
    * sequences whose repetitions multiply beyond PATTERN_COST_BUDGET for an input of
      PATTERN_INPUT_MAX characters (``.*.*.*x`` is cubic): each repetition counts as its
      maximum (an unbounded one as the input limit) plus one. In practice: at most two
      unbounded repetitions, or bounded ones such as ``{1,50}``.
    Alternatives of single characters (``a|b``) are char classes after parsing and are fine.
    """
    cost = 1
    for op, av in items:
        if op in _REFERENCES:
            raise Invalid("pattern must not use back-references")
        if op in _REPEATS:
            low, high, sub = av
            if inside_repeat and low != high:
                raise Invalid("pattern must not nest repetitions, e.g. (a+)+")
            width = PATTERN_INPUT_MAX if high == sre_constants.MAXREPEAT else min(high, PATTERN_INPUT_MAX)
            cost *= (width + 1) * _pattern_cost(sub, inside_repeat or high > 1)
        elif op is sre_constants.BRANCH:
            if inside_repeat:
                raise Invalid("pattern must not repeat an alternation, e.g. (ab|a)*")
            cost *= sum(_pattern_cost(branch, inside_repeat) for branch in av[1])
        elif op is sre_constants.SUBPATTERN:
            cost *= _pattern_cost(av[-1], inside_repeat)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            cost *= _pattern_cost(av[1], inside_repeat)
        elif op is sre_constants.ATOMIC_GROUP:
            cost *= _pattern_cost(av, inside_repeat)
        if cost > PATTERN_COST_BUDGET:
            raise Invalid(
                "pattern is too expensive to match: use at most two unbounded repetitions "
                "(+, *) or bounded ones such as {1,50}"
            )
    return cost


def check_pattern(pattern: str) -> None:
    """Raise Invalid unless an admin pattern compiles, is short and cannot backtrack badly."""
    if len(pattern) > PATTERN_MAX:
        raise Invalid(f"pattern must be at most {PATTERN_MAX} characters")
    try:
        parsed = sre_parse.parse(pattern)
        compiled(pattern)
    except (re.error, regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise Invalid(f"pattern does not compile: {exc}") from None
    _pattern_cost(parsed, inside_repeat=False)


@lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """The pattern for ``regex`` with ``re``'s rules (VERSION0); ``check_pattern`` has already
    parsed it with ``re``'s own parser, so only ``re`` syntax gets here."""
    return regex.compile(pattern, regex.VERSION0)


def pattern_matches(pattern: str, text: str, *, cpu_s: float = PATTERN_MATCH_CPU_S) -> bool:
    """Whether ``text`` matches ``pattern`` as a whole; Invalid when the engine stops the match
    at its limit (the value is refused: a value the engine cannot decide on quickly is not
    accepted). The match runs on the calling thread: a worker thread waited on with a wall-clock
    deadline was measured slower under load (the waiter queues for the GIL and for a core behind
    the matches it gave up on) and could refuse a cheap value when only the scheduler was late."""
    try:
        return compiled(pattern).fullmatch(text, timeout=cpu_s) is not None
    except TimeoutError:
        raise Invalid(f"could not be checked against the pattern {pattern} in time") from None


def validate_pattern(field: FieldLike, value: Any) -> str:
    """Text that matches the admin's pattern as a whole (``fullmatch``: no anchors needed)."""
    text = _check_length(_string(value).strip(), min(field.max_length or PATTERN_INPUT_MAX, PATTERN_INPUT_MAX))
    if not field.pattern or not pattern_matches(field.pattern, text):
        raise Invalid(f"must match the pattern {field.pattern}")
    return text


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """How one field type validates values and which definition attributes it takes."""

    validate: Callable[[FieldLike, Any], Any]
    attributes: frozenset[str] = frozenset()
    #: upper limit (and default) of ``max_length`` for the types that take one
    max_length_cap: int | None = None


def _type(validate: Callable[[FieldLike, Any], Any], *attributes: str, max_length_cap: int | None = None) -> FieldType:
    return FieldType(validate, frozenset(attributes), max_length_cap)


FIELD_TYPES: dict[str, FieldType] = {
    "text": _type(validate_text, "max_length", max_length_cap=TEXT_MAX),
    "long_text": _type(validate_long_text, "max_length", max_length_cap=LONG_TEXT_MAX),
    "integer": _type(validate_integer, "min", "max"),
    "decimal": _type(validate_decimal, "min", "max", "scale"),
    "date": _type(validate_date),
    "datetime": _type(validate_datetime),
    "single_select": _type(validate_single_select, "options"),
    "multi_select": _type(validate_multi_select, "options", "max_selected"),
    "checkbox": _type(validate_checkbox),
    "email": _type(validate_email),
    "phone": _type(validate_phone),
    "url": _type(validate_url),
    "pattern": _type(validate_pattern, "pattern", "max_length", max_length_cap=PATTERN_INPUT_MAX),
}

#: every type-specific attribute of a definition (each must be unset on types that lack it)
TYPE_SPECIFIC_ATTRIBUTES: frozenset[str] = frozenset().union(*(t.attributes for t in FIELD_TYPES.values()))


def validate_value(field: FieldLike, value: Any) -> Any:
    """The normalised non-blank value, or Invalid."""
    return FIELD_TYPES[field.type].validate(field, value)
