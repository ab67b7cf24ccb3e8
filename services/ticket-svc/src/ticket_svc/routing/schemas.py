from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from helpdesk_common.text import OneLine
from helpdesk_common.validation import EMAIL_PATTERN, NOT_BLANK, StrictModel, not_null

AgentStatus = Literal["online", "away", "offline"]
Strategy = Literal["round_robin", "least_loaded", "skills", "manual"]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NOT_BLANK)]
#: team and agent display names: one line (helpdesk_common.text)
Name = OneLine(128)


class AgentIn(StrictModel):
    display_name: Name
    email: Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    status: AgentStatus = "offline"
    #: open tickets per channel; "default" applies to channels not listed
    capacity: dict[Annotated[str, StringConstraints(min_length=1, max_length=32)], Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: {"default": 10}, max_length=20)
    skills: Annotated[list[Skill], Field(max_length=50)] = Field(default_factory=list)


class AgentStatusIn(StrictModel):
    status: AgentStatus


class AgentRead(BaseModel):
    id: str
    display_name: str
    email: str | None
    status: AgentStatus
    capacity: dict[str, int]
    skills: list[str]
    team_ids: list[uuid.UUID] = Field(default_factory=list)
    updated_at: datetime
    #: False once the user is deactivated at the gateway: offline, and offered no tickets
    active: bool


AcceptTimeout = Annotated[int, Field(ge=1, le=7 * 24 * 3600)]
Skills = Annotated[list[Skill], Field(max_length=20)]
Members = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=128)]], Field(max_length=500)]


def _unique(value: list[str] | None) -> list[str] | None:
    return None if value is None else list(dict.fromkeys(value))


class TeamIn(StrictModel):
    """``POST /v1/teams``: what is left out takes its default."""

    name: Name
    strategy: Strategy = "round_robin"
    #: offer to the next agent when not accepted (or answered) within this many seconds
    accept_timeout_s: AcceptTimeout | None = None
    required_skills: Skills = Field(default_factory=list)
    members: Members = Field(default_factory=list)

    _members = field_validator("members")(_unique)


class TeamReplace(StrictModel):
    """``PUT /v1/teams/{id}``: a full replacement, so every field is required (``accept_timeout_s``
    may be null). A PUT with only a name used to take the defaults for the rest and emptied the
    team; to change some fields, PATCH."""

    name: Name
    strategy: Strategy
    accept_timeout_s: AcceptTimeout | None
    required_skills: Skills
    members: Members

    _members = field_validator("members")(_unique)


class TeamPatch(StrictModel):
    """``PATCH /v1/teams/{id}``: the fields sent change, the others stay; ``accept_timeout_s: null``
    turns re-offers off, the other fields cannot be null."""

    name: Name | None = Field(None, json_schema_extra=not_null)
    strategy: Strategy | None = Field(None, json_schema_extra=not_null)
    accept_timeout_s: AcceptTimeout | None = None
    required_skills: Skills | None = Field(None, json_schema_extra=not_null)
    members: Members | None = Field(None, json_schema_extra=not_null)

    _members = field_validator("members")(_unique)

    @field_validator("name", "strategy", "required_skills", "members", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:  # runs only for fields that were sent
        if value is None:
            raise ValueError("cannot be null (leave the field out to keep it)")
        return value


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    strategy: Strategy
    accept_timeout_s: int | None
    required_skills: list[str]
    members: list[str]
    #: the ETag's version: If-Match on PUT, PATCH and DELETE
    version: int


class RuleRead(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    definition: dict[str, Any]
