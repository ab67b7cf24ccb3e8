from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from helpdesk_common.validation import EMAIL_PATTERN, NOT_BLANK, StrictModel, not_null


#: a new password: the rules past its bounds (at least GATEWAY_PASSWORD_MIN_LENGTH characters, not a
#: common password, not the e-mail) are checked by auth/policy.py, each a 422 with its own code
NewPassword = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginRequest(StrictModel):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    #: the authenticator app's 6-digit code, or a recovery code, for users with two-factor sign-in
    totp_code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    #: exchange at POST /v1/auth/refresh for new tokens; each refresh token works once
    refresh_token: str


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LogoutRequest(StrictModel):
    #: end every session of the caller, not only this one
    all_sessions: bool = False


class PasswordChange(StrictModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: NewPassword


class ApiKeyCreate(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=NOT_BLANK)]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")]


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str


#: ``editor``: writes the knowledge base (/v1/kb) and nothing else
UserRole = Literal["admin", "supervisor", "agent", "editor"]


class UserCreate(StrictModel):
    email: Annotated[str, StringConstraints(max_length=254, strip_whitespace=True, to_lower=True,
                                            pattern=EMAIL_PATTERN)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)] | None = None
    role: UserRole = "agent"
    password: NewPassword


class UserPatch(StrictModel):
    """At least one field; a field may be left out, not sent as null."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)] | None = Field(
        None, json_schema_extra=not_null)
    role: UserRole | None = Field(None, json_schema_extra=not_null)
    active: bool | None = Field(None, json_schema_extra=not_null)
    password: NewPassword | None = Field(
        None, json_schema_extra=not_null)


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str | None
    role: UserRole
    active: bool
    created_at: datetime


class UserWritten(UserRead):
    #: "ready": ticket-svc has applied the creation (or the change of name, role or state) to the
    #: user's agent profile already; "pending": ticket-svc did not answer in time and the user's
    #: event will apply it; null: nothing to apply (a password reset) or no profile (an editor)
    agent_profile: Literal["ready", "pending"] | None = None
