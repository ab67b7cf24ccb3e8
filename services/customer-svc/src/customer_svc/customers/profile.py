"""Profile values as stored (pure): language tags, time zones, tags.

Each function takes what a client sent (already shape-checked by the schema's pattern) and
returns the one spelling the service stores and filters by, so that ``zh-cn`` and ``zh_CN`` are
one language and ``VIP 客户`` and ``ｖｉｐ　客户`` one tag.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable

#: a practical subset of BCP 47 (RFC 5646): language, optional script, optional region,
#: variants; ``_`` is read as ``-`` (Java and POSIX locales: ``zh_CN``)
LANGUAGE_PATTERN = (r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?"
                    r"(?:[-_](?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$")
MAX_TAGS = 50
TAG_MAX_LENGTH = 64
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})  # files in the tz database, not places
_SPACES = re.compile(r"\s+")


def canonical_language(tag: str) -> str:
    """``zh-hans-cn`` → ``zh-Hans-CN``: language lower case, script title case, region upper
    case (RFC 5646 §2.1.1), variants lower case."""
    parts = tag.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


@functools.cache
def zone_names() -> list[str]:
    """IANA zone names the service takes (the tz database is scanned once), sorted: the API
    document lists them."""
    return sorted((zoneinfo.available_timezones() - _NOT_ZONES) | {"UTC"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zone_names())


def check_time_zone(name: str) -> str:
    """The name itself when it is an IANA zone; ValueError otherwise (paths, typos, 'localtime')."""
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Shanghai'")
    return name


def normalise_tag(tag: str) -> str:
    """NFKC, case-folded, trimmed, inner whitespace as ``_`` (a tag is one token, as in Zendesk)."""
    return _SPACES.sub("_", unicodedata.normalize("NFKC", tag).casefold().strip())


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Distinct normalised tags in the order first given; blanks dropped."""
    return list(dict.fromkeys(t for t in (normalise_tag(tag) for tag in tags) if t))


def apply_tags(current: list[str], *, replace: list[str] | None, add: Iterable[str] = (),
               remove: Iterable[str] = ()) -> list[str]:
    """The tags after a PATCH: ``tags`` replaces, then ``add_tags`` appends, then ``remove_tags``
    drops (all normalised). ValueError beyond ``MAX_TAGS``."""
    result = normalise_tags(replace) if replace is not None else list(current)
    result = list(dict.fromkeys([*result, *normalise_tags(add)]))
    dropped = set(normalise_tags(remove))
    result = [t for t in result if t not in dropped]
    if len(result) > MAX_TAGS:
        raise ValueError(f"a customer has at most {MAX_TAGS} tags ({len(result)} after this change)")
    return result
