from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

AgentStatus = Literal["online", "away", "offline"]
Strategy = Literal["round_robin", "least_loaded", "skills", "manual"]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
#: team and agent display names: one line (helpdesk_common.text)
Name = OneLine(128)


class AgentIn(StrictModel):
    display_name: Name
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
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


class TeamIn(StrictModel):
    name: Name
    strategy: Strategy = "round_robin"
    #: offer to the next agent when not accepted (or answered) within this many seconds
    accept_timeout_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] | None = None
    required_skills: Annotated[list[Skill], Field(max_length=20)] = Field(default_factory=list)
    members: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=128)]], Field(max_length=500)] = Field(
        default_factory=list)

    @field_validator("members")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    strategy: Strategy
    accept_timeout_s: int | None
    required_skills: list[str]
    members: list[str]


class RuleRead(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    definition: dict[str, Any]
