"""Business-time arithmetic over a :class:`BusinessCalendar`: pure functions, no I/O.

Model
-----
A calendar gives every *local date* a list of wall-clock intervals (minutes since local
midnight, half-open ``[start, end)``, ``end`` may be 24:00). Which list a date gets, in order
of precedence:

1. ``extra_working_days``  -> a working day
2. ``extra_holidays``      -> closed
3. library public holiday  -> closed
4. library make-up day     -> a working day (China's adjusted weekend working days)
5. otherwise               -> the weekday's hours

A *working day* uses its own weekday's hours, or, when that weekday has none (a Saturday
make-up day), the hours of ``makeup_weekday`` (Monday by default).

Each wall-clock boundary becomes a UTC instant: **the earliest instant at which the local
wall clock reads that time or later**. For ordinary times that is the one matching instant;
for a time repeated by a fall-back it is the first occurrence; for a time skipped by a
spring-forward it is the instant of the jump. This mapping is monotonic, so intervals never
invert or overlap after conversion, and a day's real length follows the clock: on New York's
spring-forward day 01:00-04:00 is 2 real hours, on the fall-back day it is 4 (01:00 EDT to
04:00 EST); an interval wholly inside the skipped hour is empty.

All arithmetic happens on those UTC instants with exact ``timedelta`` values (microsecond
resolution), so ``business_time_between(s, add_business_time(s, d)) == d`` holds exactly.
Results are aware datetimes in UTC.

Shared (``libs/common``) so that sla-svc's timers and ticket-svc's automations count the same
business time for the same calendar; sla-svc re-exports it as ``sla_svc.calendars``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from helpdesk_common.business_calendar import CALENDAR_24X7, MINUTES_PER_DAY, WEEKDAYS, CalendarIn, parse_hhmm

HORIZON_DAYS = 366
"""How far ahead a search for working time looks before giving up with :class:`NoWorkingTime`."""

_DAY_CACHE_LIMIT = 20_000  # local dates per calendar (~55 years); cleared wholesale beyond that
_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)

WallInterval = tuple[int, int]  # minutes since local midnight, 0 <= start < end <= 1440
UtcInterval = tuple[datetime, datetime]  # aware UTC, start < end


class NoWorkingTime(ValueError):
    """The calendar has no working time within :data:`HORIZON_DAYS` days of the instant asked about.

    Raised instead of searching forever (a calendar with no hours, or only holidays ahead).
    """


@dataclass(slots=True)
class _Cache:
    """Mutable memo inside the frozen calendar: per-year day rules and per-date UTC intervals."""

    years: dict[int, tuple[frozenset[date], frozenset[date]]] = field(default_factory=dict)
    days: dict[date, tuple[UtcInterval, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class BusinessCalendar:
    """An immutable, validated calendar; build it with :meth:`from_schema`.

    ``weekly_hours`` has seven entries, Monday first (``date.weekday()`` order). Holiday sets
    are fetched from ``holidays`` per year on first use and memoised, so a calendar can be
    kept for the life of the process and shared between requests.
    """

    timezone: ZoneInfo
    weekly_hours: tuple[tuple[WallInterval, ...], ...]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    makeup_weekday: int = 0
    name: str = ""
    _cache: _Cache = field(default_factory=_Cache, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.weekly_hours) != 7:
            raise ValueError("weekly_hours needs seven entries, Monday first")
        for intervals in self.weekly_hours:
            previous_end = 0
            for start, end in intervals:
                if not (previous_end <= start < end <= MINUTES_PER_DAY):
                    raise ValueError(f"intervals must be sorted, non-overlapping, within a day: {intervals}")
                previous_end = end
        if not 0 <= self.makeup_weekday <= 6:
            raise ValueError("makeup_weekday is 0 (Monday) .. 6 (Sunday)")
        if self.extra_holidays & self.extra_working_days:
            raise ValueError("a date cannot be both an extra holiday and an extra working day")

    @classmethod
    def from_schema(cls, data: CalendarIn) -> BusinessCalendar:
        """The arithmetic form of a validated :class:`CalendarIn`."""
        weekly = tuple(
            tuple((parse_hhmm(start), parse_hhmm(end)) for start, end in data.weekly_hours.get(day, []))
            for day in WEEKDAYS
        )
        return cls(
            timezone=ZoneInfo(data.timezone),
            weekly_hours=weekly,
            holiday_country=data.holiday_country,
            holiday_subdivision=data.holiday_subdivision,
            extra_holidays=frozenset(data.extra_holidays),
            extra_working_days=frozenset(data.extra_working_days),
            makeup_weekday=WEEKDAYS.index(data.makeup_day_hours_from),
            name=data.name,
        )


# --------------------------------------------------------------------------- day rules


@functools.lru_cache(maxsize=512)
def library_days(country: str, subdivision: str | None, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(public holidays, make-up working days) the ``holidays`` library lists for ``year``.

    Both are gathered from the library's objects for ``year`` and ``year + 1`` and filtered to
    ``year``: the library files a late-December make-up day (or an observed holiday) under the
    year whose holiday caused it. Make-up days come from ``HolidayBase.weekend_workdays``,
    which the library fills while it populates substituted days off (China, among others).
    Shared between calendars: the result depends only on the arguments.
    """
    closed: set[date] = set()
    working: set[date] = set()
    for populated in (year, year + 1):
        table = holidays.country_holidays(country, subdiv=subdivision, years=populated)
        closed.update(day for day in table if day.year == year)
        working.update(day for day in table.weekend_workdays if day.year == year)
    return frozenset(closed), frozenset(working - closed)


def _year_rules(cal: BusinessCalendar, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(closed dates, working dates) of ``year`` after applying the precedence in the module doc."""
    cached = cal._cache.years.get(year)
    if cached is not None:
        return cached
    lib_closed, lib_working = (
        library_days(cal.holiday_country, cal.holiday_subdivision, year)
        if cal.holiday_country else (frozenset(), frozenset())
    )
    extra_open = frozenset(d for d in cal.extra_working_days if d.year == year)
    extra_closed = frozenset(d for d in cal.extra_holidays if d.year == year)
    closed = (lib_closed | extra_closed) - extra_open
    working = extra_open | (lib_working - closed)
    cal._cache.years[year] = (closed, working)
    return closed, working


def wall_intervals(cal: BusinessCalendar, day: date) -> tuple[WallInterval, ...]:
    """The local wall-clock working intervals of ``day`` (empty on a day off)."""
    closed, working = _year_rules(cal, day.year)
    own = cal.weekly_hours[day.weekday()]
    if day in working:
        return own or cal.weekly_hours[cal.makeup_weekday]
    if day in closed:
        return ()
    return own


# --------------------------------------------------------------------------- wall clock -> UTC


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall-clock reading of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def wall_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant at which the wall clock in ``zone`` reads ``naive`` or later.

    ``fold=0`` already gives the first occurrence of a repeated (fall-back) time. A skipped
    (spring-forward) time has no instant; the first one reading later is the jump itself,
    found by bisection between the two offsets' readings (rare: only on transition days, and
    the per-day cache keeps it to once per date).
    """
    candidate = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(candidate, zone) == naive:
        return candidate
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the jump: reads earlier
    high = candidate  # after the jump: reads later
    if not (low < high and _wall(low, zone) < naive <= _wall(high, zone)):
        return candidate  # not a plain gap (should not happen with real tz data)
    while high - low > _EPSILON:
        middle = low + (high - low) // 2
        if _wall(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high


def day_intervals(cal: BusinessCalendar, day: date) -> tuple[UtcInterval, ...]:
    """The working intervals of local date ``day`` as sorted, disjoint UTC instants (memoised)."""
    cache = cal._cache.days
    cached = cache.get(day)
    if cached is not None:
        return cached
    midnight = datetime.combine(day, time())
    result: list[UtcInterval] = []
    for start, end in wall_intervals(cal, day):
        begin = wall_to_utc(midnight + timedelta(minutes=start), cal.timezone)
        finish = wall_to_utc(midnight + timedelta(minutes=end), cal.timezone)
        if begin < finish:  # an interval inside a skipped hour has no real time
            result.append((begin, finish))
    if len(cache) >= _DAY_CACHE_LIMIT:
        cache.clear()
    cache[day] = intervals = tuple(result)
    return intervals


# --------------------------------------------------------------------------- scanning


def to_utc(instant: datetime) -> datetime:
    """``instant`` in UTC; refuses naive datetimes, which would silently mean server-local time."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant!r} must be timezone-aware")
    return instant.astimezone(UTC)


def _local_date(cal: BusinessCalendar, instant: datetime) -> date:
    return instant.astimezone(cal.timezone).date()


def _intervals_from(cal: BusinessCalendar, instant: datetime, until: datetime | None = None) -> Iterator[UtcInterval]:
    """Working intervals ending after ``instant`` (UTC), in time order.

    Scanning starts one local day early because after a fall-back across midnight an instant
    can read as the previous date while already belonging to the next one. Without ``until``
    the scan raises :class:`NoWorkingTime` after :data:`HORIZON_DAYS` days without any
    working time; with it the scan just stops past ``until``.
    """
    day = _local_date(cal, instant) - _ONE_DAY
    last = None if until is None else _local_date(cal, until) + _ONE_DAY
    idle_days = 0
    while last is None or day <= last:
        found = False
        for begin, finish in day_intervals(cal, day):
            if finish > instant:
                found = True
                yield begin, finish
        idle_days = 0 if found else idle_days + 1
        if until is None and idle_days > HORIZON_DAYS + 1:
            raise NoWorkingTime(
                f"calendar {cal.name or '(unnamed)'!r} has no working time in the {HORIZON_DAYS} days"
                f" after {instant.isoformat()}")
        day += _ONE_DAY


# --------------------------------------------------------------------------- public API


def is_working_time(cal: BusinessCalendar, instant: datetime) -> bool:
    """Whether ``instant`` lies inside a working interval (start included, end excluded)."""
    moment = to_utc(instant)
    local = _local_date(cal, moment)
    return any(
        begin <= moment < finish
        for day in (local - _ONE_DAY, local, local + _ONE_DAY)
        for begin, finish in day_intervals(cal, day)
    )


def next_working_instant(cal: BusinessCalendar, instant: datetime) -> datetime:
    """``instant`` itself (in UTC) if it is working time, else the start of the next working interval.

    Raises :class:`NoWorkingTime` if there is none within :data:`HORIZON_DAYS` days.
    """
    moment = to_utc(instant)
    for begin, _finish in _intervals_from(cal, moment):
        return max(begin, moment)
    raise AssertionError("unreachable: _intervals_from raises instead of ending")  # pragma: no cover


def add_business_time(cal: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The earliest instant (UTC) by which ``amount`` of working time has elapsed since ``start``.

    Counting begins at :func:`next_working_instant`. A zero amount therefore gives ``start``
    when it is working time and the next opening otherwise (a timer started at night is due
    at the opening, not in the past). When the amount runs out exactly at the end of an
    interval the result is that end (e.g. 18:00), not the next opening: the last counted
    minute is the one just before the result. Days are consumed whole, one interval at a
    time, so the cost grows with the number of days spanned, not with ``amount``'s minutes.
    """
    if amount < timedelta(0):
        raise ValueError("amount of business time must not be negative")
    moment = to_utc(start)
    remaining = amount
    for begin, finish in _intervals_from(cal, moment):
        counted_from = max(begin, moment)
        available = finish - counted_from
        if remaining <= available:
            return counted_from + remaining
        remaining -= available
    raise AssertionError("unreachable: _intervals_from raises instead of ending")  # pragma: no cover


def add_business_minutes(cal: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """:func:`add_business_time` for a whole number of minutes (how SLA targets are stated)."""
    return add_business_time(cal, start, timedelta(minutes=minutes))


def business_time_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Working time inside ``[start, end)``, exact; negated when ``end`` is before ``start``.

    Antisymmetric rather than an error so "time left until due" can go negative once a
    deadline has passed. Never raises :class:`NoWorkingTime`: no working time is just zero.
    """
    low, high = to_utc(start), to_utc(end)
    if high < low:
        return -business_time_between(cal, high, low)
    total = timedelta(0)
    for begin, finish in _intervals_from(cal, low, until=high):
        if begin >= high:
            break
        total += min(finish, high) - max(begin, low)
    return total


def business_seconds_between(cal: BusinessCalendar, start: datetime, end: datetime) -> int:
    """:func:`business_time_between` in whole seconds (floored; sub-second inputs are rare)."""
    return business_time_between(cal, start, end) // timedelta(seconds=1)


ALWAYS_OPEN = BusinessCalendar.from_schema(CALENDAR_24X7)
"""The 24x7 calendar: every instant is working time."""
