"""Event contracts: the CloudEvents 1.0 envelope and one discriminated union of event types.

Services never redefine these classes. Changes are additive; a breaking change is a new
``type`` published alongside the old one. Unknown types are skipped by consumers, so a
producer may start emitting a new type before every consumer knows it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SPEC_VERSION = "1.0"

TICKETS_TOPIC = "tickets.events"
CUSTOMERS_TOPIC = "customers.events"
SLA_TOPIC = "sla.events"
INSIGHTS_TOPIC = "insights.events"
USERS_TOPIC = "users.events"
DELIVERIES_TOPIC = "deliveries.events"
KB_TOPIC = "kb.events"
#: data subject requests (customer-svc asks, every service acknowledges): docs/security.md "Erasure"
PRIVACY_TOPIC = "privacy.events"
ALL_TOPICS = (TICKETS_TOPIC, CUSTOMERS_TOPIC, SLA_TOPIC, INSIGHTS_TOPIC, USERS_TOPIC, DELIVERIES_TOPIC, KB_TOPIC,
              PRIVACY_TOPIC)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class Requester(_Data):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    wechat_openid: str | None = None
    external_id: str | None = None


class Identity(_Data):
    """A normalised identity (``helpdesk_common.identities``): a kind of ``IDENTITY_KINDS`` or
    ``external:<system>``, and its key."""

    kind: str
    value: str


class TicketCreatedData(_Data):
    ticket_id: uuid.UUID
    subject: str
    status: str
    priority: str
    type: str | None = None
    channel: str | None = None
    tags: list[str] = Field(default_factory=list)
    requester: Requester
    customer_id: uuid.UUID | None = None
    created_by: str
    created_at: datetime
    number: int | None = None
    language: str | None = None
    team_id: uuid.UUID | None = None
    assignee_id: str | None = None
    #: the requester's customer tier when ticket-svc already knew it (SLA policy matching)
    customer_tier: str | None = None
    #: validated custom-field values at creation (SLA policy matching)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    #: the knowledge-base suggestion the requester saw before writing (the web form's
    #: ``kb_suggestion_id``): kb-svc counts the suggestion as not deflected
    kb_suggestion_id: uuid.UUID | None = None


class TicketRefData(_Data):
    """Facts every ticket event after creation carries, so consumers (the live stream, SLA,
    analytics) can decide visibility and routing without a lookup."""

    ticket_id: uuid.UUID
    number: int | None = None
    status: str | None = None
    priority: str | None = None
    team_id: uuid.UUID | None = None
    assignee_id: str | None = None
    actor: str | None = None
    version: int | None = None


class TicketUpdatedData(TicketRefData):
    #: field -> {"before": ..., "after": ...}
    changes: dict[str, dict[str, Any]]


class TicketStatusChangedData(TicketRefData):
    from_status: str
    to_status: str
    #: the admin-defined status shown to people, when one is set
    custom_status: str | None = None
    changed_at: datetime
    #: "deleted" (a soft delete closes the ticket) or "restored" (its restore); None for every
    #: other change. Neither is a resolution or a reopening: no survey, no customer notification,
    #: no trigger (docs/ARCHITECTURE.md "Soft deletion")
    reason: Literal["deleted", "restored"] | None = None


class TicketAssignedData(TicketRefData):
    previous_assignee_id: str | None = None
    previous_team_id: uuid.UUID | None = None
    #: "rule", "round_robin", "least_loaded", "skills", "reoffer", "manual"
    reason: str
    assigned_at: datetime


class TicketMessageAddedData(TicketRefData):
    message_id: uuid.UUID
    author_kind: Literal["customer", "agent", "system"]
    author_id: str | None = None
    public: bool
    channel: str | None = None
    #: the first public agent reply on the ticket
    first_response: bool = False
    #: a public agent reply that answers a customer message (every such reply is a response)
    response: bool = False
    created_at: datetime


class TicketStepStartedData(TicketRefData):
    """A workflow step (approval, countersign, customer confirmation, ...) began on the ticket.
    sla-svc times it when the ticket's policy has a ``step:<step>`` target."""

    step_id: uuid.UUID
    #: the step's key in the workflow definition (``approval``, ``customer_confirmation``)
    step: str
    kind: str | None = None
    #: the step's own target from the process definition (``target_minutes``); sla-svc times
    #: ``step:<step>`` against it when the ticket's policy names no target for that metric
    target_minutes: int | None = Field(default=None, ge=1)
    #: the process definition's version the ticket runs (it keeps it when admins edit the type)
    process_version: int | None = None
    started_at: datetime


class TicketStepCompletedData(TicketRefData):
    step_id: uuid.UUID
    step: str
    #: approved / rejected / confirmed / timed_out / skipped ...
    outcome: str | None = None
    completed_at: datetime


STEP_COMMENT_MAX_CHARS = 2000


class TicketApprovalRequestedData(TicketRefData):
    """An approval or countersign step asks people to decide: notify-svc tells them, the
    approval queue lists the step for them. ``approvers`` are the resolved user ids (a team or
    a role in the definition becomes its members when the step starts); for a sequential
    countersign it is the party whose turn it is, and the event is emitted again per turn."""

    step_id: uuid.UUID
    step: str
    #: the step's display name from the definition
    name: str | None = Field(default=None, max_length=128)
    kind: Literal["approval", "countersign"]
    approvers: list[str] = Field(default_factory=list, max_length=500)
    #: approval: all / any / n_of_m (with ``n``); countersign: sequential / parallel
    rule: str | None = None
    n: int | None = None
    expires_at: datetime | None = None
    requested_at: datetime


class TicketApprovalDecidedData(TicketRefData):
    """One person's decision on an approval or countersign step (``approve``, ``reject``, ``sign``).
    ``step_status`` is the step after the decision: ``pending`` while more are needed,
    ``completed`` or ``rejected`` when this decision ended it."""

    step_id: uuid.UUID
    step: str
    kind: Literal["approval", "countersign"]
    decision: Literal["approve", "reject", "sign"]
    decided_by: str
    comment: str | None = Field(default=None, max_length=STEP_COMMENT_MAX_CHARS)
    step_status: Literal["pending", "completed", "rejected", "expired"]
    decided_at: datetime


class TicketCustomerConfirmedData(TicketRefData):
    """The end of a customer-confirmation step: the customer confirmed, said it is not resolved
    (``rejected``), wrote back instead of answering (``replied``), or never answered
    (``timed_out``). ``via`` says how the answer came: ``link`` (the signed page), ``email`` or
    another channel's reply, ``timeout``, or ``agent`` (recorded on the customer's behalf)."""

    step_id: uuid.UUID
    step: str
    answer: Literal["confirmed", "rejected", "replied", "timed_out"]
    via: str = Field(max_length=32)
    customer_id: uuid.UUID | None = None
    comment: str | None = Field(default=None, max_length=STEP_COMMENT_MAX_CHARS)
    confirmed_at: datetime


class TicketConfirmationRequestedData(_Data):
    """ticket-svc asks notify-svc to ask the customer to confirm the resolution, by the channel
    they used (e-mail carries ``[#number]`` so a reply threads back; chat channels get a text)
    with the signed ``link`` to a confirm / not-resolved page. Like a survey invitation the link
    is a bearer capability until the step ends or expires: this type is notify-svc's alone, never
    offered to webhook subscribers and never logged. ``step_id`` + ``channel`` is the delivery's
    identity: one delivery per pair."""

    ticket_id: uuid.UUID
    number: int | None = None
    step_id: uuid.UUID
    step: str
    subject: str | None = Field(default=None, max_length=1000)
    language: str | None = Field(default=None, max_length=35)
    channel: str
    recipient: Requester
    route: dict[str, Any] = Field(default_factory=dict)
    link: str = Field(max_length=2000)
    expires_at: datetime
    at: datetime


class TicketNotificationRequestedData(_Data):
    """A trigger's or automation's ``notify`` action: notify-svc sends ``subject``/``body`` (already
    rendered by ticket-svc) to each entry of ``to`` (``assignee``, ``team_supervisors``,
    ``requester``, or ``user:<id>``). ``rule`` names the trigger or automation for the record;
    the event id is the dedupe key, one delivery per recipient."""

    ticket_id: uuid.UUID
    number: int | None = None
    rule: str = Field(max_length=200)
    to: list[str] = Field(min_length=1, max_length=20)
    subject: str = Field(max_length=200)
    body: str = Field(max_length=20000)
    team_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    at: datetime


class TicketWebhookRequestedData(_Data):
    """A trigger's or automation's ``call_webhook`` action: notify-svc posts ``payload`` (the
    action's own members plus the ticket's reference) to the subscription ``webhook_id``, signed
    and retried like every webhook delivery, even if the subscription's event filter would not
    select this ticket's events. The event id is the delivery's identity."""

    ticket_id: uuid.UUID
    number: int | None = None
    rule: str = Field(max_length=200)
    webhook_id: uuid.UUID
    payload: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class TicketMergedData(TicketRefData):
    target_ticket_id: uuid.UUID
    moved_messages: int


class SlaAlertData(_Data):
    ticket_id: uuid.UUID
    metric: str
    due_at: datetime
    fraction: float | None = None
    team_id: uuid.UUID | None = None
    assignee_id: str | None = None
    #: the policy whose target this is (added with the SLA engine; optional for old producers)
    policy: str | None = None
    #: when the fire point was reached (a warning's fraction of the target, or the due time)
    fire_at: datetime | None = None
    #: the timer's colour after this point (yellow after the first warning, red after the last)
    colour: Literal["green", "yellow", "red", "breached"] | None = None


class TicketCustomerLinkedData(_Data):
    ticket_id: uuid.UUID
    customer_id: uuid.UUID


class CustomerCreatedData(_Data):
    customer_id: uuid.UUID
    name: str | None = None
    identities: list[Identity]
    created_at: datetime
    #: the organisation the customer joined at creation (its e-mail domain, or the API's choice)
    organization_id: uuid.UUID | None = None


class CustomerIdentityAddedData(_Data):
    customer_id: uuid.UUID
    identity: Identity


class CustomerUpdatedData(_Data):
    """A customer's own fields changed; carries their current values, so a consumer that
    missed an earlier update still ends up right (it keeps the highest ``version``)."""

    customer_id: uuid.UUID
    version: int
    name: str | None = None
    tier: str | None = None
    #: field -> {"before": ..., "after": ...} (``notes`` -> {}: its text is not carried)
    changes: dict[str, dict[str, Any]]
    actor: str | None = None
    updated_at: datetime
    # the profile's current values (added with organisations; absent from older producers)
    organization_id: uuid.UUID | None = None
    account_owner_id: uuid.UUID | None = None
    language: str | None = None
    time_zone: str | None = None
    tags: list[str] | None = None
    attributes: dict[str, Any] | None = None


class CustomerIdentityRemovedData(_Data):
    customer_id: uuid.UUID
    identity: Identity
    actor: str | None = None


class OrganizationData(_Data):
    """An organisation's current state (customer-svc), on every ``organization.*`` event: a
    consumer keeps the highest ``version``. ``deleted`` events carry the last state."""

    organization_id: uuid.UUID
    version: int
    name: str
    domains: list[str] = Field(default_factory=list)
    tier: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    #: field -> {"before": ..., "after": ...} on updates (``notes`` -> {})
    changes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    actor: str | None = None
    at: datetime


class OrderItem(_Data):
    sku: str | None = None
    name: str | None = None
    quantity: int
    unit_price: str | None = None


class OrderData(_Data):
    """An order's current state (customer-svc) on ``order.recorded`` / ``order.updated``: a
    consumer keeps the highest ``version``. ``amount`` is a decimal string in the currency's
    minor units ("12.50", "1200" for JPY)."""

    order_id: uuid.UUID
    customer_id: uuid.UUID
    source: str
    external_id: str
    ordered_at: datetime
    amount: str
    currency: str
    status: str
    items: list[OrderItem] = Field(default_factory=list)
    version: int
    #: field -> {"before": ..., "after": ...} on updates
    changes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    actor: str | None = None


class BehaviorRecordedData(_Data):
    """A behaviour event of a customer (login, purchase, page_view, coupon, custom ...)."""

    interaction_id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    occurred_at: datetime
    external_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = None


class CustomerRequesterResolvedData(_Data):
    """customer-svc's answer to a ticket.created: which customer the requester is."""

    ticket_id: uuid.UUID
    customer_id: uuid.UUID
    created: bool


class UserData(_Data):
    """A gateway user as the other services see it: no credentials. Every user event carries the
    user's current state and ``version`` (bumped by each change), so a consumer keeps the highest
    version it saw and ignores older ones, and the latest event of a user is all a rebuild needs."""

    user_id: uuid.UUID
    version: int
    #: the user's name (at most 128 characters); None when the user has none
    display_name: str | None = None
    #: admin, supervisor, agent
    role: str
    #: False once deactivated (``DELETE /v1/users/{id}``); a deactivated user signs in nowhere
    active: bool
    actor: str | None = None
    #: the user's sign-in address (lower-cased; it cannot change). Only notify-svc uses it, to send
    #: agents their notifications (assignments, SLA warnings and breaches, escalations); other
    #: consumers must not copy it. None from gateways older than the field (additive, issue 10).
    email: str | None = None


class UserCreatedData(UserData):
    pass


class UserUpdatedData(UserData):
    #: field (``display_name``, ``role``, ``active``) -> {"before": ..., "after": ...}
    changes: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SlaAppliedData(_Data):
    ticket_id: uuid.UUID
    #: first_response, next_response, periodic_update, resolution, or ``step:<key>`` for a workflow step
    metric: str
    policy: str
    target_minutes: int
    started_at: datetime
    due_at: datetime


#: the longest survey comment an event carries (characters); customer-svc bounds its answer API
#: to the same number, so an accepted answer always fits its event (docs/security.md, "Event size")
SURVEY_COMMENT_MAX_CHARS = 2000


class CustomerMergedData(_Data):
    """Two customers became one (customer-svc, a supervisor's merge): ``merged_id`` is gone and
    everything that pointed at it (tickets, identities, orders, surveys, history) belongs to
    ``survivor_id``. Every service re-points its projections; a replay must find nothing left to
    move. ``identities`` are the ones moved, so a consumer that missed their ``identity_added``
    still ends up with the right lookup."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    identities: list[Identity] = Field(default_factory=list)
    #: who merged (``user:<id>``)
    actor: str | None = None
    at: datetime


class SurveySentData(_Data):
    """A CSAT (about one ticket) or NPS (about the relationship) survey went out to a customer."""

    survey_id: uuid.UUID
    kind: Literal["csat", "nps"]
    customer_id: uuid.UUID
    #: the ticket a CSAT survey asks about; None for NPS
    ticket_id: uuid.UUID | None = None
    #: the channel it was sent on (email, wechat, ...)
    channel: str
    at: datetime


class SurveyAnsweredData(_Data):
    """A customer answered a survey (once: customer-svc refuses a second answer, so one survey has
    at most one such event, redeliveries aside). CSAT carries ``rating`` 1-5, NPS ``score`` 0-10.

    ``comment`` is the customer's own text, carried (bounded) because ticket-svc shows it on the
    ticket beside the rating and an agent acts on it; like a message body it is personal data,
    so consumers keep it only where the ticket's readers see it and webhook subscribers to this
    type receive it (docs/security.md)."""

    survey_id: uuid.UUID
    kind: Literal["csat", "nps"]
    customer_id: uuid.UUID
    ticket_id: uuid.UUID | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    score: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, max_length=SURVEY_COMMENT_MAX_CHARS)
    at: datetime


class SurveyDeliveryRequestedData(_Data):
    """customer-svc asks notify-svc to send a survey (it owns the survey, notify-svc everything that
    leaves the system). It carries what notify-svc needs to send without calling back: the
    recipient's addressing on ``channel`` (e-mail ``to``; WeChat ``openid``; WeCom
    ``external_userid``), the language, the ticket a CSAT asks about, and the signed answer
    ``link``. The link is a bearer capability until it expires or is used, so this type is for
    notify-svc alone: it is never offered to webhook subscribers and never logged.
    ``survey_id`` + ``channel`` is the delivery's identity: one delivery per pair."""

    survey_id: uuid.UUID
    kind: Literal["csat", "nps"]
    customer_id: uuid.UUID
    ticket_id: uuid.UUID | None = None
    #: the ticket's number and subject, for the e-mail's text (CSAT)
    number: int | None = None
    subject: str | None = Field(default=None, max_length=1000)
    language: str | None = Field(default=None, max_length=35)
    channel: str
    recipient: Requester
    route: dict[str, Any] = Field(default_factory=dict)
    link: str = Field(max_length=2000)
    expires_at: datetime
    at: datetime


class SegmentChangedData(_Data):
    """A customer's RFM segment moved (customer-svc insights: a rescoring after new facts, or the
    nightly run). ``previous`` is None the first time a customer is ranked, ``segment`` None when
    they can no longer be (docs/customers.md, "Insights"). Keyed by the customer."""

    customer_id: uuid.UUID
    previous: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)
    r: int | None = Field(default=None, ge=1, le=5)
    f: int | None = Field(default=None, ge=1, le=5)
    m: int | None = Field(default=None, ge=1, le=5)
    at: datetime


class ChurnReason(_Data):
    """One factor of a churn-risk score and the points it contributed (they sum to the score),
    with its sentence in both languages the product speaks."""

    factor: str = Field(max_length=64)
    points: int = Field(ge=0, le=100)
    en: str = Field(max_length=500)
    zh_cn: str = Field(max_length=500)


class ChurnRiskChangedData(_Data):
    """A customer's churn-risk score changed across a threshold (customer-svc insights). An
    ``episode`` starts when the score reaches the enter threshold and ends when it falls below the
    leave threshold (docs/customers.md, "Churn risk"); ticket-svc opens one care ticket per
    episode. Keyed by the customer."""

    customer_id: uuid.UUID
    score: int = Field(ge=0, le=100)
    previous_score: int | None = Field(default=None, ge=0, le=100)
    band: Literal["low", "medium", "high"]
    episode: Literal["started", "ended", "ongoing"]
    reasons: list[ChurnReason] = Field(default_factory=list, max_length=20)
    #: the customer's account owner (a gateway user id), who gets the care ticket
    account_owner_id: uuid.UUID | None = None
    #: the customer's language (BCP 47, ``zh-CN``), for the care ticket's text
    language: str | None = Field(default=None, max_length=35)
    at: datetime

class _Envelope(BaseModel):
    """CloudEvents 1.0 structured-mode envelope."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = SPEC_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    schemaversion: str = "1"


class TicketCreated(_Envelope):
    type: Literal["ticket.created"] = "ticket.created"
    data: TicketCreatedData


class TicketCustomerLinked(_Envelope):
    type: Literal["ticket.customer_linked"] = "ticket.customer_linked"
    data: TicketCustomerLinkedData


class TicketUpdated(_Envelope):
    type: Literal["ticket.updated"] = "ticket.updated"
    data: TicketUpdatedData


class TicketStatusChanged(_Envelope):
    type: Literal["ticket.status_changed"] = "ticket.status_changed"
    data: TicketStatusChangedData


class TicketAssigned(_Envelope):
    type: Literal["ticket.assigned"] = "ticket.assigned"
    data: TicketAssignedData


class TicketMessageAdded(_Envelope):
    type: Literal["ticket.message_added"] = "ticket.message_added"
    data: TicketMessageAddedData


class TicketStepStarted(_Envelope):
    type: Literal["ticket.step_started"] = "ticket.step_started"
    data: TicketStepStartedData


class TicketStepCompleted(_Envelope):
    type: Literal["ticket.step_completed"] = "ticket.step_completed"
    data: TicketStepCompletedData


class TicketApprovalRequested(_Envelope):
    type: Literal["ticket.approval_requested"] = "ticket.approval_requested"
    data: TicketApprovalRequestedData


class TicketApprovalDecided(_Envelope):
    type: Literal["ticket.approval_decided"] = "ticket.approval_decided"
    data: TicketApprovalDecidedData


class TicketCustomerConfirmed(_Envelope):
    type: Literal["ticket.customer_confirmed"] = "ticket.customer_confirmed"
    data: TicketCustomerConfirmedData


class TicketConfirmationRequested(_Envelope):
    """Keyed by the ticket; notify-svc's alone (see the data)."""

    type: Literal["ticket.confirmation_requested"] = "ticket.confirmation_requested"
    data: TicketConfirmationRequestedData


class TicketNotificationRequested(_Envelope):
    type: Literal["ticket.notification_requested"] = "ticket.notification_requested"
    data: TicketNotificationRequestedData


class TicketWebhookRequested(_Envelope):
    """Keyed by the ticket; notify-svc's alone (it is a delivery order, not a fact to publish)."""

    type: Literal["ticket.webhook_requested"] = "ticket.webhook_requested"
    data: TicketWebhookRequestedData


class TicketMerged(_Envelope):
    type: Literal["ticket.merged"] = "ticket.merged"
    data: TicketMergedData


class SlaWarning(_Envelope):
    type: Literal["sla.warning"] = "sla.warning"
    data: SlaAlertData


class SlaBreached(_Envelope):
    type: Literal["sla.breached"] = "sla.breached"
    data: SlaAlertData


class CustomerCreated(_Envelope):
    type: Literal["customer.created"] = "customer.created"
    data: CustomerCreatedData


class CustomerIdentityAdded(_Envelope):
    type: Literal["customer.identity_added"] = "customer.identity_added"
    data: CustomerIdentityAddedData


class CustomerUpdated(_Envelope):
    type: Literal["customer.updated"] = "customer.updated"
    data: CustomerUpdatedData


class CustomerRequesterResolved(_Envelope):
    type: Literal["customer.requester_resolved"] = "customer.requester_resolved"
    data: CustomerRequesterResolvedData


class CustomerIdentityRemoved(_Envelope):
    type: Literal["customer.identity_removed"] = "customer.identity_removed"
    data: CustomerIdentityRemovedData


class OrganizationCreated(_Envelope):
    """Keyed by the organisation id, on ``customers.events``."""

    type: Literal["organization.created"] = "organization.created"
    data: OrganizationData


class OrganizationUpdated(_Envelope):
    type: Literal["organization.updated"] = "organization.updated"
    data: OrganizationData


class OrganizationDeleted(_Envelope):
    type: Literal["organization.deleted"] = "organization.deleted"
    data: OrganizationData


class OrderRecorded(_Envelope):
    type: Literal["order.recorded"] = "order.recorded"
    data: OrderData


class OrderUpdated(_Envelope):
    type: Literal["order.updated"] = "order.updated"
    data: OrderData


class BehaviorRecorded(_Envelope):
    type: Literal["behavior.recorded"] = "behavior.recorded"
    data: BehaviorRecordedData


class SlaApplied(_Envelope):
    type: Literal["sla.applied"] = "sla.applied"
    data: SlaAppliedData


class UserCreated(_Envelope):
    type: Literal["user.created"] = "user.created"
    data: UserCreatedData


class UserUpdated(_Envelope):
    type: Literal["user.updated"] = "user.updated"
    data: UserUpdatedData


class SlaPausedData(_Data):
    """A timer stopped counting because the ticket entered one of the policy's pause statuses."""

    ticket_id: uuid.UUID
    metric: str
    paused_at: datetime
    #: business (or calendar) seconds left on the target when it paused
    remaining_seconds: float


class SlaTeamCalendarData(_Data):
    """The business calendar a team's business-time rules count in, as sla-svc holds it, so other
    services (ticket-svc's time-based automations) compute business hours exactly as sla-svc
    does (``helpdesk_common.business_time``) without calling it. ``team_id`` null is the default
    calendar (tickets with no team, teams with no calendar of their own); ``calendar`` null means
    the team no longer has a calendar of its own (the default applies). Keyed by the team (or
    ``default``); ``version`` grows with every change so a consumer keeps the newest."""

    team_id: uuid.UUID | None = None
    calendar_id: uuid.UUID | None = None
    #: the calendar's definition (time zone, weekly hours, holidays...) in sla-svc's API shape
    calendar: dict[str, Any] | None = None
    version: int
    at: datetime


class SlaResumedData(_Data):
    """A paused timer counts again; ``due_at`` was recomputed from the remaining time."""

    ticket_id: uuid.UUID
    metric: str
    resumed_at: datetime
    due_at: datetime
    remaining_seconds: float


class SlaFulfilledData(_Data):
    """The metric was met (a response, a solve); ``breached`` says whether it was late."""

    ticket_id: uuid.UUID
    metric: str
    fulfilled_at: datetime
    due_at: datetime | None = None
    breached: bool = False


class SlaCancelledData(_Data):
    """The timer no longer applies (ticket closed or merged, solved, or the policy dropped it)."""

    ticket_id: uuid.UUID
    metric: str
    cancelled_at: datetime
    reason: str


class SlaEscalationActions(_Data):
    set_priority: str | None = None
    set_team_id: uuid.UUID | None = None
    notify: list[str] = Field(default_factory=list)


class SlaEscalationRequestedData(_Data):
    """On a breach: what the policy asks ticket-svc to do to the ticket."""

    ticket_id: uuid.UUID
    metric: str
    actions: SlaEscalationActions


class ReplyAttachment(_Data):
    """An attachment of a reply, by reference: the bytes stay in ticket-svc, and ``url`` (a path
    on ticket-svc with a capability token ticket-svc minted for this file) lets notify-svc fetch
    them when it sends. Events stay small (EVENT_MAX_BYTES) whatever the files weigh."""

    sha256: str
    filename: str
    content_type: str
    size: int
    #: null when ticket-svc has no capability key configured (TICKET_ATTACHMENT_URL_KEY): the
    #: file is named but cannot be fetched (additive change, issue 10: was required)
    url: str | None = None


class TicketReplyRequestedData(_Data):
    """A public agent message to deliver to the customer on the channel they used.

    ticket-svc owns messages and knows the customer's side of the conversation; it says here
    everything notify-svc needs to send without calling back: the recipient, the channel's own
    addressing in ``route`` (docs/channels/outbound.md: e-mail ``to``/``cc``/``from``, WeChat
    ``openid``/``app_id``, WeCom ``external_userid``/``open_kfid``, DingTalk
    ``session_webhook``/``session_webhook_expires_at``/``conversation_id``/``sender_staff_id``/
    ``robot_code``, chat ``conversation_key``), the text, and e-mail threading.
    ``message_id`` + ``channel`` is the delivery's identity: one delivery per pair."""

    ticket_id: uuid.UUID
    number: int | None = None
    message_id: uuid.UUID
    subject: str
    language: str | None = None
    #: the channel to answer on (the customer's): email, wechat, wecom, dingtalk, chat; web and
    #: phone requesters are answered by e-mail when they have an address
    channel: str
    recipient: Requester
    route: dict[str, Any] = Field(default_factory=dict)
    body_text: str
    body_html: str | None = None
    attachments: list[ReplyAttachment] = Field(default_factory=list)
    #: our Message-ID for this reply, and the customer's ids it answers
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    author_id: str | None = None
    author_name: str | None = None
    team_id: uuid.UUID | None = None
    requested_at: datetime


class DeliveryStatusData(_Data):
    """What happened to one outbound delivery (notify-svc), for whoever shows it: ticket-svc keeps
    ``delivery_status`` on the message, analytics counts outcomes.

    ``status``: ``queued`` (accepted, or a transient failure with another attempt planned:
    ``next_attempt_at``), ``sent``, ``failed`` (a permanent error, or retries exhausted: dead,
    retryable by hand), ``undeliverable`` (the recipient cannot be reached on this channel, with
    ``reason``: no address, WeChat's 48-hour window...)."""

    delivery_id: uuid.UUID
    kind: Literal["reply", "notification", "webhook"]
    channel: str
    status: Literal["queued", "sent", "failed", "undeliverable"]
    attempts: int
    ticket_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    at: datetime


class WebhookDisabledData(_Data):
    """A webhook subscription stopped receiving events (notify-svc, docs/webhooks.md).

    ``cause``: ``failing`` (no successful delivery for 5 days since ``failing_since``), ``gone``
    (the receiver answered 410 Gone), ``admin`` (disabled through the API). Only the URL's host
    is carried, never the URL: its path or query may hold the receiver's token."""

    subscription_id: uuid.UUID
    url_host: str
    cause: Literal["failing", "gone", "admin"]
    reason: str
    failing_since: datetime | None = None
    at: datetime


class TicketReplyRequested(_Envelope):
    type: Literal["ticket.reply_requested"] = "ticket.reply_requested"
    data: TicketReplyRequestedData


class DeliverySucceeded(_Envelope):
    type: Literal["delivery.succeeded"] = "delivery.succeeded"
    data: DeliveryStatusData


class DeliveryDeferred(_Envelope):
    """A transient failure: another attempt is planned (``next_attempt_at``)."""

    type: Literal["delivery.deferred"] = "delivery.deferred"
    data: DeliveryStatusData


class DeliveryFailed(_Envelope):
    """Final until retried by hand: ``status`` is ``failed`` or ``undeliverable``."""

    type: Literal["delivery.failed"] = "delivery.failed"
    data: DeliveryStatusData


class WebhookDisabled(_Envelope):
    """Keyed by the subscription id, on notify-svc's topic (``deliveries.events``)."""

    type: Literal["webhook.disabled"] = "webhook.disabled"
    data: WebhookDisabledData


class SlaTeamCalendarChanged(_Envelope):
    type: Literal["sla.team_calendar_changed"] = "sla.team_calendar_changed"
    data: SlaTeamCalendarData


class SlaPaused(_Envelope):
    type: Literal["sla.paused"] = "sla.paused"
    data: SlaPausedData


class SlaResumed(_Envelope):
    type: Literal["sla.resumed"] = "sla.resumed"
    data: SlaResumedData


class SlaFulfilled(_Envelope):
    type: Literal["sla.fulfilled"] = "sla.fulfilled"
    data: SlaFulfilledData


class SlaCancelled(_Envelope):
    type: Literal["sla.cancelled"] = "sla.cancelled"
    data: SlaCancelledData


class SlaEscalationRequested(_Envelope):
    type: Literal["sla.escalation_requested"] = "sla.escalation_requested"
    data: SlaEscalationRequestedData


class CustomerMerged(_Envelope):
    """Keyed by the survivor, on ``customers.events``."""

    type: Literal["customer.merged"] = "customer.merged"
    data: CustomerMergedData


class SurveySent(_Envelope):
    """Keyed by the survey id, on ``customers.events`` (customer-svc owns surveys)."""

    type: Literal["survey.sent"] = "survey.sent"
    data: SurveySentData


class SurveyAnswered(_Envelope):
    type: Literal["survey.answered"] = "survey.answered"
    data: SurveyAnsweredData


class SurveyDeliveryRequested(_Envelope):
    """Keyed by the survey id, on ``customers.events``; notify-svc's alone (see the data)."""

    type: Literal["survey.delivery_requested"] = "survey.delivery_requested"
    data: SurveyDeliveryRequestedData


class CustomerSegmentChanged(_Envelope):
    """Keyed by the customer, on ``customers.events`` (the segment is a customer attribute)."""

    type: Literal["customer.segment_changed"] = "customer.segment_changed"
    data: SegmentChangedData


class InsightChurnRiskChanged(_Envelope):
    """Keyed by the customer, on ``insights.events``."""

    type: Literal["insight.churn_risk_changed"] = "insight.churn_risk_changed"
    data: ChurnRiskChangedData

#: bounds of the knowledge base's event fields (kb-svc validates the same bounds on input)
KB_TITLE_MAX_CHARS = 500
KB_LOCALE_MAX_CHARS = 35
KB_LABEL_MAX_CHARS = 100
KB_LABELS_MAX = 50
KB_ACTOR_MAX_CHARS = 200
KB_CHANNEL_MAX_CHARS = 32
KB_SUGGESTED_MAX = 5

KbVisibility = Literal["public", "customers", "agents"]
KbLocale = Annotated[str, Field(min_length=1, max_length=KB_LOCALE_MAX_CHARS)]
KbActor = Annotated[str, Field(min_length=1, max_length=KB_ACTOR_MAX_CHARS)]
KbLabel = Annotated[str, Field(min_length=1, max_length=KB_LABEL_MAX_CHARS)]


class KbArticlePublishedData(_Data):
    """One translation of a knowledge-base article went live (kb-svc): customers of its
    ``visibility`` now read ``title`` at ``version`` (the translation's published version number,
    1 at the first publish). A re-publish of the same translation is a new event with a higher
    version; consumers keep the highest. The body is not carried (readers fetch it from kb-svc)."""

    article_id: uuid.UUID
    locale: KbLocale
    version: int = Field(ge=1)
    title: str = Field(max_length=KB_TITLE_MAX_CHARS)
    #: ``public`` (anyone), ``customers`` (signed-in customers), ``agents`` (staff only)
    visibility: KbVisibility
    labels: list[KbLabel] = Field(default_factory=list, max_length=KB_LABELS_MAX)
    section_id: uuid.UUID
    category_id: uuid.UUID
    #: the user who published (their user id)
    published_by: KbActor
    at: datetime


class KbArticleUnpublishedData(_Data):
    """One translation stopped being readable (unpublished, or its article archived: kb-svc
    sends one per translation that was published)."""

    article_id: uuid.UUID
    locale: KbLocale
    at: datetime
    #: the user who unpublished (their user id)
    by: KbActor


class KbArticleFeedbackData(_Data):
    """A reader voted on a translation (helpful or not). A viewer votes once per article; a
    changed vote is a new event with the new ``helpful``. The comment's text stays in kb-svc
    (personal data): only whether there was one is carried."""

    article_id: uuid.UUID
    locale: KbLocale
    helpful: bool
    has_comment: bool = False
    #: who voted: ``public`` (anonymous), ``customer`` (a customer token), ``staff``, ``editor``
    viewer_kind: Literal["public", "customer", "staff", "editor"]
    at: datetime


class KbSuggestionOutcomeData(_Data):
    """What came of a set of suggested articles (kb-svc's deflection): ``deflected`` when the
    caller saw the suggestions and no ticket followed within the deflection window, not deflected
    when a ticket followed (``ticket_id``). ``article_ids`` were suggested (at most 5, in rank
    order), ``viewed_article_ids`` opened from the suggestion. One outcome per suggestion id
    (a later correction is a new event for the same suggestion: consumers keep the last)."""

    suggestion_id: uuid.UUID
    deflected: bool
    article_ids: list[uuid.UUID] = Field(default_factory=list, max_length=KB_SUGGESTED_MAX)
    viewed_article_ids: list[uuid.UUID] = Field(default_factory=list, max_length=KB_SUGGESTED_MAX)
    ticket_id: uuid.UUID | None = None
    #: where the suggestion was shown: ``web`` (the new-ticket form), ``agent`` (while answering), ...
    channel: str = Field(min_length=1, max_length=KB_CHANNEL_MAX_CHARS)
    at: datetime


class KbArticlePublished(_Envelope):
    """Keyed by the article id, on ``kb.events`` (kb-svc owns the knowledge base)."""

    type: Literal["kb.article_published"] = "kb.article_published"
    data: KbArticlePublishedData


class KbArticleUnpublished(_Envelope):
    """Keyed by the article id, on ``kb.events``."""

    type: Literal["kb.article_unpublished"] = "kb.article_unpublished"
    data: KbArticleUnpublishedData


class KbArticleFeedback(_Envelope):
    """Keyed by the article id, on ``kb.events``."""

    type: Literal["kb.article_feedback"] = "kb.article_feedback"
    data: KbArticleFeedbackData


class KbSuggestionOutcome(_Envelope):
    """Keyed by the suggestion id, on ``kb.events``; analytics counts the self-service rate."""

    type: Literal["kb.suggestion_outcome"] = "kb.suggestion_outcome"
    data: KbSuggestionOutcomeData


class ErasureRequestedData(_Data):
    """customer-svc asks every service to anonymise what it holds on one customer (a data subject's
    erasure request, docs/security.md "Erasure"). ``identities`` are blind indexes only
    (``kind`` + HMAC hex, the same index customer-svc keeps), never the values: the event log is
    what erasure must clean, so the request must not add to it. A service that needs the values
    to find free text mentioning the person reads them from its own rows of that customer."""

    request_id: uuid.UUID
    customer_id: uuid.UUID
    identities: list[Identity] = Field(default_factory=list, max_length=200)
    requested_at: datetime


class ErasureCompletedData(_Data):
    """One service finished anonymising (or had nothing): ``service`` is its name."""

    request_id: uuid.UUID
    customer_id: uuid.UUID | None = None
    service: str = Field(max_length=64)
    at: datetime


class CustomerRestrictedData(_Data):
    """Processing of the customer's data is stopped (``restricted``: an erasure was asked, or a
    request is suspended: PIPL Art. 47) or allowed again. notify-svc holds every delivery about
    the customer's tickets while it is restricted."""

    customer_id: uuid.UUID
    restricted: bool
    at: datetime


class CustomerRestricted(_Envelope):
    """Keyed by the customer id, on ``customers.events``."""

    type: Literal["customer.restricted"] = "customer.restricted"
    data: CustomerRestrictedData


class PrivacyErasureRequested(_Envelope):
    """Keyed by the customer id, on ``privacy.events``; every service consumes it."""

    type: Literal["privacy.erasure_requested"] = "privacy.erasure_requested"
    data: ErasureRequestedData


class PrivacyErasureCompleted(_Envelope):
    """Keyed by the request id, on ``privacy.events``; customer-svc counts the acknowledgements."""

    type: Literal["privacy.erasure_completed"] = "privacy.erasure_completed"
    data: ErasureCompletedData


Event = Annotated[
    Union[
        TicketCreated,
        TicketCustomerLinked,
        TicketUpdated,
        TicketStatusChanged,
        TicketAssigned,
        TicketMessageAdded,
        TicketMerged,
        TicketStepStarted,
        TicketStepCompleted,
        TicketApprovalRequested,
        TicketApprovalDecided,
        TicketCustomerConfirmed,
        TicketConfirmationRequested,
        TicketNotificationRequested,
        TicketWebhookRequested,
        CustomerCreated,
        CustomerIdentityAdded,
        CustomerUpdated,
        CustomerRequesterResolved,
        CustomerIdentityRemoved,
        OrganizationCreated,
        OrganizationUpdated,
        OrganizationDeleted,
        OrderRecorded,
        OrderUpdated,
        BehaviorRecorded,
        SlaApplied,
        SlaWarning,
        SlaBreached,
        SlaPaused,
        SlaTeamCalendarChanged,
        SlaResumed,
        SlaFulfilled,
        SlaCancelled,
        SlaEscalationRequested,
        UserCreated,
        UserUpdated,
        TicketReplyRequested,
        DeliverySucceeded,
        DeliveryDeferred,
        DeliveryFailed,
        WebhookDisabled,
        CustomerMerged,
        SurveySent,
        SurveyAnswered,
        SurveyDeliveryRequested,
        InsightChurnRiskChanged,
        CustomerSegmentChanged,
        KbArticlePublished,
        KbArticleUnpublished,
        KbArticleFeedback,
        KbSuggestionOutcome,
        PrivacyErasureRequested,
        PrivacyErasureCompleted,
        CustomerRestricted,
    ],
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

#: Which topic each event type is published on (the owning aggregate's family).
TOPIC_BY_TYPE: dict[str, str] = {
    "ticket.created": TICKETS_TOPIC,
    "ticket.customer_linked": TICKETS_TOPIC,
    "ticket.updated": TICKETS_TOPIC,
    "ticket.status_changed": TICKETS_TOPIC,
    "ticket.assigned": TICKETS_TOPIC,
    "ticket.message_added": TICKETS_TOPIC,
    "ticket.merged": TICKETS_TOPIC,
    "ticket.step_started": TICKETS_TOPIC,
    "ticket.step_completed": TICKETS_TOPIC,
    "ticket.approval_requested": TICKETS_TOPIC,
    "ticket.approval_decided": TICKETS_TOPIC,
    "ticket.customer_confirmed": TICKETS_TOPIC,
    "ticket.confirmation_requested": TICKETS_TOPIC,
    "ticket.notification_requested": TICKETS_TOPIC,
    "ticket.webhook_requested": TICKETS_TOPIC,
    "ticket.reply_requested": TICKETS_TOPIC,
    "delivery.succeeded": DELIVERIES_TOPIC,
    "delivery.deferred": DELIVERIES_TOPIC,
    "delivery.failed": DELIVERIES_TOPIC,
    "webhook.disabled": DELIVERIES_TOPIC,
    "customer.created": CUSTOMERS_TOPIC,
    "customer.identity_added": CUSTOMERS_TOPIC,
    "customer.updated": CUSTOMERS_TOPIC,
    "customer.requester_resolved": CUSTOMERS_TOPIC,
    "customer.identity_removed": CUSTOMERS_TOPIC,
    "organization.created": CUSTOMERS_TOPIC,
    "organization.updated": CUSTOMERS_TOPIC,
    "organization.deleted": CUSTOMERS_TOPIC,
    "order.recorded": CUSTOMERS_TOPIC,
    "order.updated": CUSTOMERS_TOPIC,
    "behavior.recorded": CUSTOMERS_TOPIC,
    "sla.applied": SLA_TOPIC,
    "sla.warning": SLA_TOPIC,
    "sla.breached": SLA_TOPIC,
    "sla.paused": SLA_TOPIC,
    "sla.team_calendar_changed": SLA_TOPIC,
    "sla.resumed": SLA_TOPIC,
    "sla.fulfilled": SLA_TOPIC,
    "sla.cancelled": SLA_TOPIC,
    "sla.escalation_requested": SLA_TOPIC,
    "user.created": USERS_TOPIC,
    "user.updated": USERS_TOPIC,
    "customer.merged": CUSTOMERS_TOPIC,
    "survey.sent": CUSTOMERS_TOPIC,
    "survey.answered": CUSTOMERS_TOPIC,
    "survey.delivery_requested": CUSTOMERS_TOPIC,
    "insight.churn_risk_changed": INSIGHTS_TOPIC,
    "customer.segment_changed": CUSTOMERS_TOPIC,
    "kb.article_published": KB_TOPIC,
    "kb.article_unpublished": KB_TOPIC,
    "kb.article_feedback": KB_TOPIC,
    "kb.suggestion_outcome": KB_TOPIC,
    "privacy.erasure_requested": PRIVACY_TOPIC,
    "privacy.erasure_completed": PRIVACY_TOPIC,
    "customer.restricted": CUSTOMERS_TOPIC,
}
KNOWN_TYPES = frozenset(TOPIC_BY_TYPE)


class UnknownEventType(Exception):
    """The record carries a type this build does not know; consumers skip it."""


def encode(event: BaseModel) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


def decode(raw: bytes) -> Any:
    """Parse a record value into its typed event; raises UnknownEventType or ValueError."""
    doc = orjson.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("event is not a JSON object")
    if doc.get("type") not in KNOWN_TYPES:
        raise UnknownEventType(str(doc.get("type")))
    return EVENT_ADAPTER.validate_python(doc)
