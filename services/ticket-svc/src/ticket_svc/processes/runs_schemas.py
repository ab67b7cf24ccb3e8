"""Requests and answers of the running-process API: decisions, a ticket's process, the approvals queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from helpdesk_common.events import STEP_COMMENT_MAX_CHARS
from helpdesk_common.validation import SafeStr, StrictModel

DECISION_EXAMPLE = {"decision": "approve", "comment": "金额核对无误 / amount checked"}


class DecisionIn(StrictModel):
    """One decision on the ticket's current step. ``approve`` / ``reject`` on an approval,
    ``sign`` / ``reject`` on a countersign, ``complete`` on a task, ``confirm`` / ``reject`` on a
    customer confirmation (an agent recording the customer's answer)."""

    model_config = ConfigDict(json_schema_extra={"examples": [DECISION_EXAMPLE]})

    decision: Literal["approve", "reject", "sign", "complete", "confirm"]
    comment: Annotated[SafeStr, Field(min_length=1, max_length=STEP_COMMENT_MAX_CHARS)] | None = None


class DecisionRead(BaseModel):
    actor: str
    decision: str
    at: datetime
    #: countersign: the index of the party the signature was for
    party: int | None = None
    comment: str | None = None
    #: api, agent (on the customer's behalf), link, email, solve, timeout
    via: str | None = None


class StepRead(BaseModel):
    """One run of a step: ``status`` pending (a confirmation waiting for the ticket to be solved),
    active, completed, rejected, expired, skipped or cancelled; ``outcome`` as in
    ``ticket.step_completed``. ``approvers`` / ``parties`` are the user ids resolved when it
    started; ``waiting_for`` who may decide now and has not."""

    id: uuid.UUID
    key: str
    kind: Literal["approval", "countersign", "customer_confirmation", "task"]
    name: str
    position: int
    status: Literal["pending", "active", "completed", "rejected", "expired", "skipped", "cancelled"]
    outcome: str | None
    approvers: list[str]
    parties: list[list[str]]
    waiting_for: list[str]
    decisions: list[DecisionRead]
    target_minutes: int | None
    deadline: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    settings: dict[str, Any]


class CurrentStep(BaseModel):
    key: str
    kind: str
    status: str


class ProcessRunRead(BaseModel):
    """``GET /v1/tickets/{id}/process``: the ticket's newest process and every run of its steps,
    in the order they were reached (a step run again after ``return_to`` appears twice)."""

    id: uuid.UUID
    ticket_id: uuid.UUID
    ticket_type: str
    version: int
    #: running, finished (every step done or skipped), closed (it closed the ticket), reopened,
    #: cancelled (the ticket was closed or merged by hand)
    state: Literal["running", "finished", "closed", "reopened", "cancelled"]
    #: a rejection said continue_flagged
    flagged: bool
    current_step: CurrentStep | None
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    steps: list[StepRead]


class ApprovalTicket(BaseModel):
    id: uuid.UUID
    number: int
    subject: str
    status: str
    priority: str


class ApprovalItem(StepRead):
    """A step in someone's approvals queue, with the ticket it is on."""

    ticket: ApprovalTicket
    process_version: int


class ApprovalPage(BaseModel):
    items: list[ApprovalItem]
    next_cursor: str | None
