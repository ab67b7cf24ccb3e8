"""Optimistic concurrency: one rule for every versioned resource of every service.

Like Zendesk's API, ``If-Match`` is optional: a client that does not send it gets last-write-wins
(integrations that never read before they write keep working). When it is sent, it is honoured
everywhere: every read and every write of a versioned resource answers ``ETag: W/"<version>"``,
and a write whose ``If-Match`` names no current version is refused with 412 problem+json
``version-conflict`` carrying ``current_version``, before anything changes. The comparison is made
on the row the write has locked (or in the write's own ``WHERE version = …``), so two clients
holding the same ETag cannot both win.

Accepted forms: ``W/"7"``, ``"7"``, ``7``, a comma-separated list of them (any one may match) and
``*`` (any current version: no precondition). An entry that is not a version matches nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from .problems import Problem

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=200,
           description='Optional. The ETag (W/"<version>") this change is based on; 412 when the resource '
                       "has changed since. Without it, the last write wins."),
]


def etag(version: int) -> str:
    """The ETag of a resource at ``version`` (weak: it names a version, not bytes)."""
    return f'W/"{version}"'


def etag_header(version: int) -> dict[str, str]:
    return {"ETag": etag(version)}


def wanted_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions ``If-Match`` names; None when there is no precondition (absent or ``*``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    wanted = set()
    for tag in if_match.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if value.isdigit() and len(value) <= 10:
            wanted.add(int(value))
    return frozenset(wanted)


def conflict(current: int, what: str = "resource") -> Problem:
    return Problem(412, "version-conflict", "Precondition failed",
                   f"The {what} changed: its version is {current}; reload and retry.", current_version=current)


def check_version(current: int, if_match: str | None, *, what: str = "resource") -> None:
    """Raise the 412 unless ``If-Match`` is absent, ``*`` or names ``current``."""
    wanted = wanted_versions(if_match)
    if wanted is not None and current not in wanted:
        raise conflict(current, what)
