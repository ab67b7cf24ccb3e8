"""The ticket state machine, as plain functions over status categories.

Statuses are six categories; admin-defined custom statuses each map to one of them, so every
rule here speaks categories. The rules follow what Zendesk users expect:

- ``new`` is only the starting point: nothing moves back to it;
- ``open``, ``pending`` and ``on_hold`` move freely among themselves and to ``solved``;
- ``solved`` reopens (agent or customer reply) or is ``closed``;
- ``closed`` is final: a later customer message opens a linked follow-up ticket instead.

A change that keeps the category but switches the custom status is a legal change (one event);
a request for the status the ticket already has is no change at all (no event).
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = ("new", "open", "pending", "on_hold", "solved", "closed")
#: where agent work is still owed: counted in an agent's load and in the open backlog
ACTIVE = frozenset({"new", "open", "pending", "on_hold"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "on_hold", "solved"}),
    "open": frozenset({"pending", "on_hold", "solved"}),
    "pending": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending", "solved"}),
    "solved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}


@dataclass(frozen=True, slots=True)
class StatusState:
    category: str
    custom_status: str | None = None  # the custom status key, if one is set


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (closed is final)"
        super().__init__(f"A {current} ticket cannot become {target}; allowed: {allowed}.")
        self.current = current
        self.target = target


def is_legal(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def decide(current: StatusState, target: StatusState) -> StatusState | None:
    """The new state, or None when the request changes nothing; raises IllegalTransition."""
    if target.category not in TRANSITIONS:
        raise IllegalTransition(current.category, target.category)
    if target == current:
        return None
    if target.category == current.category:
        if current.category == "closed":
            raise IllegalTransition(current.category, target.category)
        return target
    if not is_legal(current.category, target.category):
        raise IllegalTransition(current.category, target.category)
    return target


def after_customer_message(current: str) -> str | None:
    """A customer writing again means the ball is back with the agents.

    Returns the category to move to, None to stay, or ``"follow_up"`` for a closed ticket
    (the message must open a linked follow-up ticket instead).
    """
    if current == "closed":
        return "follow_up"
    if current in ("pending", "on_hold", "solved"):
        return "open"
    return None


def after_agent_reply(current: str) -> str | None:
    """An agent's public reply takes a new ticket into work."""
    return "open" if current == "new" else None


@dataclass(frozen=True, slots=True)
class ReplyKind:
    first_response: bool
    response: bool


def classify_agent_reply(*, public: bool, first_response_done: bool, awaiting_agent: bool) -> ReplyKind:
    """Which SLA / analytics facts an agent message establishes.

    The first public agent reply is the first response; every public agent reply that answers
    a customer message (the ticket was awaiting an agent) is a response. Internal notes are
    neither: the customer does not see them.
    """
    if not public:
        return ReplyKind(first_response=False, response=False)
    return ReplyKind(first_response=not first_response_done, response=awaiting_agent or not first_response_done)
