"""The business calendar as a validated document, with all the validation the arithmetic relies on.

Shared by sla-svc (which owns calendars and their API) and every service that projects them
(ticket-svc's time-based automations, fed by ``sla.team_calendar_changed``), so that a
calendar means the same working time everywhere. The arithmetic in
:mod:`helpdesk_common.business_time` trusts its input (sorted,
non-overlapping intervals inside one day, a known zone, a known holiday country), so every
one of those promises is checked here and reported as a 422 with the offending path, rather
than surfacing later as a wrong due date.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import date
from typing import Annotated, Literal

import holidays
from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.validation import NOT_BLANK, StrictModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order

MINUTES_PER_DAY = 24 * 60
MAX_INTERVALS_PER_DAY = 24
MAX_EXTRA_DATES = 1000

_HHMM = re.compile(r"(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))")  # fullmatch: "$" would let a final newline in
#: the same rule for the API document (ECMA-262)
HHMM_PATTERN = r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)]
HHMM = Annotated[str, Field(json_schema_extra={"pattern": HHMM_PATTERN})]
Interval = tuple[HHMM, HHMM]


def parse_hhmm(text: str) -> int:
    """Minutes since local midnight of a wall-clock "HH:MM" (00:00..24:00); ValueError otherwise.

    "24:00" is allowed (as an interval end) so a shift can run to midnight without the
    off-by-one "23:59" workaround that would lose the last minute of every day.
    """
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a wall-clock time HH:MM between 00:00 and 24:00")
    hours, minutes = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return int(hours) * 60 + int(minutes)


def format_hhmm(minutes: int) -> str:
    """Inverse of :func:`parse_hhmm`."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class IntervalOrderError(ValueError):
    """Intervals out of order or overlapping: a rule across values, which no schema states."""


def cross_field(message: str) -> PydanticCustomError:
    """A 422 error with code ``cross_field``: a rule across several values (the API document
    cannot state it; tests/e2e/schemathesis_hooks.py accepts exactly these)."""
    return PydanticCustomError("cross_field", message)


def normalize_day(day: str, intervals: list[Interval]) -> list[Interval]:
    """The day's intervals sorted by start; refuses bad times, empty/inverted and overlapping ones.

    Touching intervals (12:00 end, 12:00 start) are fine: they share no minute.
    """
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        raise ValueError(f"weekly_hours.{day}: at most {MAX_INTERVALS_PER_DAY} intervals per day")
    parsed: list[tuple[int, int]] = []
    for i, (start_text, end_text) in enumerate(intervals):
        try:
            start, end = parse_hhmm(start_text), parse_hhmm(end_text)
        except ValueError as exc:
            raise ValueError(f"weekly_hours.{day}[{i}]: {exc}") from None
        if start >= end:
            raise IntervalOrderError(f"weekly_hours.{day}[{i}]: start {start_text} must be before end {end_text}"
                             " (an overnight shift is two intervals: 22:00-24:00 and 00:00-06:00 of the next day)")
        parsed.append((start, end))
    parsed.sort()
    for (s1, e1), (s2, e2) in zip(parsed, parsed[1:]):
        if s2 < e1:
            raise IntervalOrderError(f"weekly_hours.{day}: intervals {format_hhmm(s1)}-{format_hhmm(e1)}"
                             f" and {format_hhmm(s2)}-{format_hhmm(e2)} overlap")
    return [(format_hhmm(s), format_hhmm(e)) for s, e in parsed]


@functools.cache
def _known_zones() -> frozenset[str]:
    """IANA keys of the installed tz database (scanned once: it walks the filesystem)."""
    return frozenset(zoneinfo.available_timezones())


def check_timezone(key: str) -> str:
    """The key itself if it names an IANA zone; ValueError otherwise.

    Membership in ``available_timezones()`` rather than a bare ``ZoneInfo(key)`` so that
    file-system oddities ("posixrules", directories) are refused too.
    """
    if key not in _known_zones():
        raise ValueError(f"unknown time zone {key!r}: use an IANA name such as 'Asia/Shanghai'")
    zoneinfo.ZoneInfo(key)
    return key


def check_holiday_region(country: str, subdivision: str | None) -> None:
    """ValueError unless the ``holidays`` library knows the country (and subdivision)."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"holiday_country {country!r} is not supported by the holidays library"
                         " (use an ISO 3166-1 alpha-2 code such as 'CN', 'US', 'DE'; put a region in"
                         " holiday_subdivision)")
    if subdivision is None:
        return
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        known = ", ".join(supported[country]) or "none"
        raise ValueError(f"holiday_subdivision {subdivision!r} is not known for {country}"
                         f" (known: {known})") from None


class CalendarIn(StrictModel):
    """A business calendar as created through ``POST /v1/sla/calendars``.

    Days missing from ``weekly_hours`` (or with an empty list) have no working time.
    ``extra_working_days`` are make-up working days; one falling on a weekday without hours
    uses the hours of ``makeup_day_hours_from``.
    """

    name: Name
    timezone: Annotated[str, Field(json_schema_extra=lambda schema: schema.update(enum=sorted(_known_zones())))]
    weekly_hours: dict[Weekday, Annotated[list[Interval], Field(json_schema_extra={"maxItems": MAX_INTERVALS_PER_DAY})]] = (
        Field(default_factory=dict))
    holiday_country: Annotated[str, Field(json_schema_extra=lambda schema: schema.update(
        enum=sorted(holidays.list_supported_countries())))] | None = None
    holiday_subdivision: str | None = None
    extra_holidays: list[date] = Field(default_factory=list, max_length=MAX_EXTRA_DATES)
    extra_working_days: list[date] = Field(default_factory=list, max_length=MAX_EXTRA_DATES)
    makeup_day_hours_from: Weekday = "mon"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("weekly_hours")
    @classmethod
    def _hours(cls, value: dict[Weekday, list[Interval]]) -> dict[Weekday, list[Interval]]:
        try:
            return {day: normalize_day(day, value[day]) for day in WEEKDAYS if day in value}
        except IntervalOrderError as exc:
            raise PydanticCustomError("range", str(exc)) from None

    @field_validator("extra_holidays", "extra_working_days")
    @classmethod
    def _dates(cls, value: list[date]) -> list[date]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> CalendarIn:
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise cross_field("holiday_subdivision needs holiday_country")
        if self.holiday_country is not None:
            try:
                check_holiday_region(self.holiday_country, self.holiday_subdivision)
            except ValueError as exc:
                raise cross_field(str(exc)) from None
        both = sorted(set(self.extra_holidays) & set(self.extra_working_days))
        if both:
            raise cross_field("dates both in extra_holidays and extra_working_days: "
                              + ", ".join(d.isoformat() for d in both))
        fallback = self.weekly_hours.get(self.makeup_day_hours_from)
        hourless = [d for d in self.extra_working_days if not self.weekly_hours.get(WEEKDAYS[d.weekday()])]
        if hourless and not fallback:
            raise cross_field(f"extra working day {hourless[0].isoformat()} has no hours: its weekday has none"
                             f" and neither has makeup_day_hours_from={self.makeup_day_hours_from!r}")
        return self


CALENDAR_24X7 = CalendarIn(
    name="24x7",
    timezone="UTC",
    weekly_hours={day: [("00:00", "24:00")] for day in WEEKDAYS},
)
"""Every instant is working time: business arithmetic equals plain ``timedelta`` arithmetic."""
