"""Pure rules of data subject requests: states, transitions, acknowledgements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("export", "erase")
STATES = ("pending", "in_progress", "suspended", "completed")
OPEN_STATES = ("pending", "in_progress", "suspended")

#: the services that hold personal data and must acknowledge an erasure (CUSTOMER_PRIVACY_SERVICES)
DEFAULT_SERVICES = ("customer-svc", "ticket-svc", "notify-svc", "kb-svc", "analytics-svc", "sla-svc", "gateway")

#: (kind, action) -> the states it may start from, and the state it leads to. An erasure can be
#: suspended only while pending: once ``privacy.erasure_requested`` is out, every service erases
#: and nothing can call it back. Resuming returns to pending, so the worker starts it as new.
TRANSITIONS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("erase", "suspend"): (("pending",), "suspended"),
    ("erase", "resume"): (("suspended",), "pending"),
    ("export", "suspend"): (("pending", "in_progress"), "suspended"),
    ("export", "resume"): (("suspended",), "pending"),
}


class TransitionRefused(ValueError):
    pass


def transition(*, kind: str, state: str, action: str) -> str:
    """The state after ``action`` (``suspend``, ``resume``), or TransitionRefused."""
    sources, target = TRANSITIONS[(kind, action)]
    if state not in sources:
        raise TransitionRefused(f"a {state} {kind} request cannot be {action}d")
    return target


def restricts(*, kind: str, state: str) -> bool:
    """Whether the customer's data is restricted (PIPL Art. 47: stored, not processed): from the
    moment erasure is asked until it is done, and while any request is suspended."""
    return state == "suspended" or (kind == "erase" and state in OPEN_STATES)


def initial_services(services: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {name: {"state": "pending"} for name in services}


def acknowledge(services: Mapping[str, Any], *, service: str, at: str) -> dict[str, Any]:
    """The services map with ``service`` acknowledged (the first acknowledgement's time stays;
    a service not expected is recorded too, so that the request shows what happened)."""
    out = {name: dict(value) for name, value in services.items()}
    current = out.get(service) or {}
    if current.get("state") != "completed":
        out[service] = {"state": "completed", "at": at}
    return out


def all_acknowledged(services: Mapping[str, Any], expected: Iterable[str]) -> bool:
    return all((services.get(name) or {}).get("state") == "completed" for name in expected)


def next_state_after_ack(*, state: str, services: Mapping[str, Any], expected: Iterable[str]) -> str:
    """An erasure in progress completes when every expected service acknowledged; a suspended
    one stays suspended (its acknowledgements are kept and count at resume)."""
    if state == "in_progress" and all_acknowledged(services, expected):
        return "completed"
    return state
