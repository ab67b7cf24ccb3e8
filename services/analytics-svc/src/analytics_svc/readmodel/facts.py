"""Events to ticket facts with a natural identity, and facts to and from ``ticket_history`` rows.

A fact's key is what the fact *is* (the creation, message 42, the status change of version 7),
never the envelope id: an outbox re-publication carries a new envelope id but is the same fact,
and inserting it again must be a no-op (``ON CONFLICT DO NOTHING`` on ``(ticket_id, fact_key)``).
That is how the read model stays idempotent without the inbox, which a rebuild does not have.

Besides the metric facts of ``metrics.rules`` (which ``fold`` reads), a ticket's history holds
the facts its *dimensions* and attributions need, also order-tolerant: ``Dims`` (the creation's
and each ``ticket.updated``'s values, applied in ticket-version order), ``Linked`` (the customer),
``SlaTarget`` (the policy a target cycle ran under) and ``DeliveryFailure``.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..metrics import rules
from ..metrics.rules import Assigned, Created, Merged, Message, SlaOutcome, StatusChanged, SurveyAnswer

#: ticket.updated fields that are dimensions (``custom_fields`` gives ``brand``)
DIM_FIELDS = ("priority", "type", "tags", "custom_fields", "customer_id", "customer_tier")


@dataclass(frozen=True, slots=True)
class Dims:
    """Dimension values as of ticket version ``version`` (the creation is version 0): later
    versions win field by field whatever order they arrive in."""

    at: datetime
    version: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Linked:
    """The ticket's requester was resolved to a customer (``ticket.customer_linked``)."""

    at: datetime
    customer_id: str


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """A target started for ``metric`` under ``policy``: the policy its outcomes count under."""

    at: datetime
    metric: str
    policy: str


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """An outbound delivery about this ticket failed for good (``delivery.failed``)."""

    at: datetime
    delivery_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class SlaState:
    """One ``sla.*`` event about a target, as far as ``sla_targets`` needs it: ``at`` is the
    event's time; the fields it does not carry are None (``readmodel.targets`` folds them)."""

    at: datetime
    metric: str
    event: str
    state: str | None = None
    colour: str | None = None
    policy: str | None = None
    target_minutes: int | None = None
    started_at: datetime | None = None
    due_at: datetime | None = None


HistoryFact = rules.Fact | Dims | Linked | SlaTarget | DeliveryFailure | SlaState

KINDS: dict[str, type] = {
    "created": Created, "status": StatusChanged, "assigned": Assigned, "message": Message, "merged": Merged,
    "sla_outcome": SlaOutcome, "survey": SurveyAnswer, "dims": Dims, "linked": Linked, "sla_target": SlaTarget,
    "delivery_failure": DeliveryFailure, "sla_state": SlaState,
}
_KIND_OF: dict[type, str] = {cls: kind for kind, cls in KINDS.items()}
#: the kinds ``metrics.rules.fold`` reads
METRIC_KINDS = frozenset({"created", "status", "assigned", "message", "merged", "sla_outcome", "survey"})


def kind_of(fact: HistoryFact) -> str:
    return _KIND_OF[type(fact)]


def to_body(fact: HistoryFact) -> dict[str, Any]:
    """The JSON body stored in ``ticket_history.body``: every field, datetimes as ISO 8601 with
    their offset, so ``from_body`` gives back an equal fact."""
    return {f.name: _jsonable(getattr(fact, f.name)) for f in dataclasses.fields(fact)}


def from_body(kind: str, body: dict[str, Any]) -> HistoryFact:
    cls = KINDS[kind]
    values = dict(body)
    for name, value in body.items():
        if (name == "at" or name.endswith("_at")) and isinstance(value, str):
            values[name] = datetime.fromisoformat(value)
    return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _iso(at: datetime) -> str:
    return at.isoformat()


def ticket_facts(event: Any) -> list[tuple[str, HistoryFact]]:
    """``(fact_key, fact)`` pairs one contract event adds to its ticket's history ([] if none)."""
    kind = getattr(event, "type", "")
    data = getattr(event, "data", None)
    metric_facts = rules.facts_from_event(event)
    match kind:
        case "ticket.created":
            brand = data.custom_fields.get("brand") if isinstance(data.custom_fields, dict) else None
            dims = Dims(at=data.created_at, version=0, values=_jsonable({
                "number": data.number, "channel": data.channel, "type": data.type, "priority": data.priority,
                "tags": list(data.tags), "brand": _brand(brand), "customer_id": data.customer_id,
                "customer_tier": data.customer_tier,
            }))
            return [("created", metric_facts[0]), ("dims:0", dims)]
        case "ticket.updated":
            values: dict[str, Any] = {}
            for name in DIM_FIELDS:
                change = data.changes.get(name)
                if change is None:
                    continue
                after = change.get("after")
                if name == "custom_fields":
                    before = change.get("before") if isinstance(change.get("before"), dict) else {}
                    after_fields = after if isinstance(after, dict) else {}
                    if before.get("brand") != after_fields.get("brand"):
                        values["brand"] = _brand(after_fields.get("brand"))
                else:
                    values[name] = _jsonable(after)
            if not values:
                return []
            version = data.version if data.version is not None else 0
            key = f"dims:{version}" if data.version is not None else f"dims:{_iso(event.time)}:{sorted(values)}"
            return [(key, Dims(at=event.time, version=version, values=values))]
        case "ticket.status_changed":
            fact = metric_facts[0]
            key = f"status:{data.version}" if data.version is not None else f"status:{_iso(fact.at)}:{fact.to_status}"
            return [(key, fact)]
        case "ticket.assigned":
            fact = metric_facts[0]
            return [(f"assign:{_iso(fact.at)}:{fact.assignee_id}:{fact.team_id}", fact)]
        case "ticket.message_added":
            return [(f"msg:{data.message_id}", metric_facts[0])]
        case "ticket.merged":
            return [("merged", metric_facts[0])]
        case "ticket.customer_linked":
            return [(f"link:{data.customer_id}", Linked(at=event.time, customer_id=str(data.customer_id)))]
        case "sla.applied":
            return [(f"target:{data.metric}:{_iso(data.started_at)}:{data.policy}",
                     SlaTarget(at=data.started_at, metric=data.metric, policy=data.policy)), sla_state(event)]
        case "sla.fulfilled" | "sla.breached":
            fact = metric_facts[0]
            verb = "breached" if kind == "sla.breached" else "fulfilled"
            return [(f"sla:{fact.metric}:{verb}:{_iso(fact.at)}", fact), sla_state(event)]
        case "sla.warning" | "sla.paused" | "sla.resumed" | "sla.cancelled":
            return [sla_state(event)]
        case "survey.answered" if metric_facts:
            return [(f"survey:{data.survey_id}", metric_facts[0])]
        case "delivery.failed" if data.ticket_id is not None:
            return [(f"delivery:{data.delivery_id}",
                     DeliveryFailure(at=data.at, delivery_id=str(data.delivery_id), channel=data.channel))]
    return []


def _brand(value: Any) -> str | None:
    """A brand is a short label; anything else (a list, an object) is no brand value."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def sla_state(event: Any) -> tuple[str, SlaState]:
    """The ``sla_targets`` view of an ``sla.*`` event, keyed by metric, event type and time."""
    data = event.data
    verb = event.type.removeprefix("sla.")
    values: dict[str, Any] = {}
    match verb:
        case "applied":
            values = dict(state="running", colour="green", policy=data.policy, target_minutes=data.target_minutes,
                          started_at=data.started_at, due_at=data.due_at)
        case "warning":
            values = dict(colour=data.colour or "yellow", policy=data.policy, due_at=data.due_at)
        case "breached":
            values = dict(colour="breached", policy=data.policy, due_at=data.due_at)
        case "paused":
            values = dict(state="paused")
        case "resumed":
            values = dict(state="running", due_at=data.due_at)
        case "fulfilled":
            values = dict(state="fulfilled", due_at=data.due_at)
        case "cancelled":
            values = dict(state="cancelled")
    return (f"slastate:{data.metric}:{verb}:{_iso(event.time)}",
            SlaState(at=event.time, metric=data.metric, event=verb, **values))
