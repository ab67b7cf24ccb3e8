"""Time buckets for trends: an instant's hour / day / ISO week / month in a caller-named zone.

Managers read "tickets per day" in *their* day, not in UTC: a day in Shanghai starts at 16:00 UTC
the day before, and a day in New York is 23 or 25 hours long on the DST transition dates. So a
bucket is defined by the local calendar (local midnight to the next local midnight) and stored as
a half-open UTC interval ``[start, end)``, which is what the read models can filter on. Local
midnights become UTC with :func:`helpdesk_common.business_time.wall_to_utc` — the same wall-clock
arithmetic sla-svc uses — which also handles zones whose midnight is skipped by a DST jump.

Validation errors are :class:`ReportParameterError`, naming the query parameter at fault, so the
API can answer 422 with a field-level detail instead of a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk_common.business_time import wall_to_utc

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: tuple[Interval, ...] = get_args(Interval)

# The longest [from, to) range each interval accepts. They bound the answer to a few hundred
# buckets (a chart, not a data dump) and the read-model scan behind it; exports are the tool for
# more. Documented in docs/analytics-exports.md.
MAX_RANGE: dict[Interval, timedelta] = {
    "hour": timedelta(days=31),  # at most 744 (+1 on a fall-back day) hourly buckets
    "day": timedelta(days=400),  # a year plus a month, for year-over-year views of a month
    "week": timedelta(days=7 * 157),  # three years of weeks
    "month": timedelta(days=3660),  # ten years of months
}


class ReportParameterError(ValueError):
    """A query parameter the API must refuse with 422; ``parameter`` names it for the problem detail,
    ``code`` says what kind of rule it broke (``invalid`` for the value alone; ``range`` for values
    out of order with each other, ``cross_field`` for another rule across values: the codes of
    the other services' problems)."""

    def __init__(self, parameter: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket: the UTC interval ``[start, end)`` and the local start that labels it."""

    start: datetime
    end: datetime
    local_start: datetime

    @property
    def label(self) -> str:
        """The local start with its UTC offset (RFC 3339), unambiguous even for a repeated hour."""
        return self.local_start.isoformat()


def resolve_zone(name: str, *, parameter: str = "tz") -> ZoneInfo:
    """The IANA zone ``name``; an unknown or malformed name is the caller's error, not ours."""
    if not name or not isinstance(name, str):
        raise ReportParameterError(parameter, "a time zone name is required, e.g. Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # ValueError: '../x', NUL bytes
        raise ReportParameterError(parameter, f"unknown time zone {name!r}") from error


def parse_interval(name: str) -> Interval:
    """``name`` as an :data:`Interval`, or a 422-ready error listing the accepted values."""
    if name not in INTERVALS:
        raise ReportParameterError("interval", f"must be one of {', '.join(INTERVALS)}")
    return name  # type: ignore[return-value]


def _aware_utc(instant: datetime, parameter: str) -> datetime:
    """UTC reading of an instant; a naive one would silently mean server-local time, so refuse it."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ReportParameterError(parameter, "must include a UTC offset (RFC 3339)")
    return instant.astimezone(UTC)


def _first_day(day: date, interval: Interval) -> date:
    """The local date a day/week/month bucket containing ``day`` starts on (ISO weeks start Monday)."""
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _following_day(first: date, interval: Interval) -> date:
    """The first local date of the next bucket after the one starting on ``first``."""
    if interval == "day":
        return first + timedelta(days=1)
    if interval == "week":
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first UTC instant of local date ``day`` (later than 00:00 where a DST jump skips midnight)."""
    return wall_to_utc(datetime.combine(day, time()), zone)


def _offset_change(after: datetime, until: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant in ``(after, until]`` where the zone's UTC offset changes, if it does.

    Found by bisection between the two readings; callers look at spans under an hour, which
    holds at most one transition in real tz data.
    """
    offset = after.astimezone(zone).utcoffset()
    if until.astimezone(zone).utcoffset() == offset:
        return None
    low, high = after, until  # low reads the old offset, high the new one
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def _hour_bucket(utc: datetime, zone: ZoneInfo) -> Bucket:
    """The hour bucket of ``utc``: from the last local hour mark or offset change to the next one.

    In whole-hour zones an offset change falls on an hour mark and this is plain local-hour
    flooring; where an offset moves by part of an hour (Australia/Lord_Howe's 30 minutes), the
    hour around the change is cut at the change, so buckets still tile time without overlaps.
    """
    local = utc.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    mark = (utc + offset).replace(minute=0, second=0, microsecond=0) - offset  # in this offset
    start = max(mark, _offset_change(utc - timedelta(hours=1), utc, zone) or mark)
    following = mark + timedelta(hours=1)
    end = _offset_change(utc, following, zone) or following
    return Bucket(start=start, end=end, local_start=start.astimezone(zone))


def bucket_of(instant: datetime, interval: Interval, zone: ZoneInfo) -> Bucket:
    """The bucket holding ``instant``.

    Hour buckets start at local hour marks, so the repeated hour of a fall-back night is two
    buckets (same wall time, different offsets) and the skipped hour of a spring-forward night
    is none. Longer buckets run local midnight to local midnight.
    """
    utc = _aware_utc(instant, "instant")
    if interval == "hour":
        return _hour_bucket(utc, zone)
    parse_interval(interval)
    first = _first_day(utc.astimezone(zone).date(), interval)
    start = _local_midnight(first, zone)
    end = _local_midnight(_following_day(first, interval), zone)
    return Bucket(start=start, end=end, local_start=start.astimezone(zone))


def validate_range(start: datetime, end: datetime, interval: Interval) -> tuple[datetime, datetime]:
    """``[from, to)`` in UTC, refused when inverted or longer than the interval's :data:`MAX_RANGE`."""
    interval = parse_interval(interval)
    start_utc = _aware_utc(start, "from")
    end_utc = _aware_utc(end, "to")
    if start_utc > end_utc:
        raise ReportParameterError("from", "must not be after 'to'", "range")
    limit = MAX_RANGE[interval]
    if end_utc - start_utc > limit:
        raise ReportParameterError(
            "to", f"the range may span at most {limit.days} days with interval={interval}", "cross_field"
        )
    return start_utc, end_utc


def buckets_between(start: datetime, end: datetime, interval: Interval, zone: ZoneInfo) -> list[Bucket]:
    """Every bucket meeting ``[start, end)``, in order and gap-free; empty for an empty range.

    The first and last buckets may stick out of the range (a range starting at noon still
    reports that whole day's bucket): the labels stay calendar units, and the read model filters
    on the range itself.
    """
    start_utc, end_utc = validate_range(start, end, interval)
    buckets: list[Bucket] = []
    if start_utc == end_utc:
        return buckets
    bucket = bucket_of(start_utc, interval, zone)
    while bucket.start < end_utc:
        buckets.append(bucket)
        following = bucket_of(bucket.end, interval, zone)
        if following.start != bucket.end:  # buckets must tile time; never loop on a bad zone rule
            raise RuntimeError(f"{interval} buckets in {zone.key} do not tile at {bucket.end.isoformat()}")
        bucket = following
    return buckets


def _is_boundary(instant: datetime, interval: Interval, zone: ZoneInfo) -> bool:
    """Whether ``instant`` is where a bucket starts."""
    return bucket_of(instant, interval, zone).start == instant


def previous_period(
    start: datetime, end: datetime, interval: Interval, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """The period to compare ``[start, end)`` with: the one just before it, of comparable length.

    A range of whole buckets steps back the same number of *calendar* buckets, so March compares
    with February (28 days, not 31) and a 25-hour fall-back day with the 24-hour day before it.
    Any other range steps back by its own duration. Either way the result ends where the range
    begins, so the two periods never overlap nor leave a gap.
    """
    start_utc, end_utc = validate_range(start, end, interval)
    if start_utc == end_utc:
        return start_utc, end_utc
    if _is_boundary(start_utc, interval, zone) and _is_boundary(end_utc, interval, zone):
        count = len(buckets_between(start_utc, end_utc, interval, zone))
        earlier = start_utc
        for _ in range(count):
            earlier = bucket_of(earlier - timedelta(microseconds=1), interval, zone).start
        return earlier, start_utc
    return start_utc - (end_utc - start_utc), start_utc
