"""Who wins when two profiles become one (pure).

The survivor is the record the supervisor chose to keep, so its values stand; the merged
customer only fills what the survivor lacks, so no agent's deliberate edit of the survivor is
undone by the merge. Tags and notes are additive by nature: both sets of tags, both texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..customers.profile import MAX_TAGS
from ..fields import NOTES_MAX

#: single-valued fields where the survivor's value wins and the merged one fills a gap
FILLED = ("name", "tier", "organization_id", "account_owner_id", "language", "time_zone")
NOTES_SEPARATOR = "\n\n---\n"


def merged_tags(survivor: list[str], merged: list[str]) -> list[str]:
    """The survivor's tags, then the merged customer's new ones, at most ``MAX_TAGS``."""
    return list(dict.fromkeys([*survivor, *merged]))[:MAX_TAGS]


def merged_notes(survivor: str | None, merged: str | None) -> str | None:
    """The merged customer's notes appended to the survivor's, cut at ``NOTES_MAX`` characters
    (the tombstone keeps the merged customer's full text)."""
    if not merged or merged == survivor:
        return survivor
    if not survivor:
        return merged[:NOTES_MAX]
    return (survivor + NOTES_SEPARATOR + merged)[:NOTES_MAX]


def merged_profile(survivor: Mapping[str, Any], merged: Mapping[str, Any]) -> dict[str, Any]:
    """The survivor's fields that change: each value it lacks taken from the merged customer, tags
    united, notes appended, attributes filled key by key (the survivor's values win)."""
    values: dict[str, Any] = {}
    for name in FILLED:
        if survivor[name] is None and merged[name] is not None:
            values[name] = merged[name]
    tags = merged_tags(list(survivor["tags"]), list(merged["tags"]))
    if tags != list(survivor["tags"]):
        values["tags"] = tags
    notes = merged_notes(survivor["notes"], merged["notes"])
    if notes != survivor["notes"]:
        values["notes"] = notes
    attributes = {**merged["attributes"], **survivor["attributes"]}
    if attributes != survivor["attributes"]:
        values["attributes"] = attributes
    return values


def lock_order(*customer_ids: Any) -> list[Any]:
    """The order every transaction that locks two customers takes their rows in, so that a merge
    A←B racing B←A waits instead of deadlocking."""
    return sorted(set(customer_ids))
