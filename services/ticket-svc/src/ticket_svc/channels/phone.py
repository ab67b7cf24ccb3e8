"""Phone-call records from a telephony system (our JSON format).

``{"call_id", "direction": "inbound"|"outbound", "from", "to", "started_at", "ended_at"?,
"duration_s"?, "status": "answered"|"missed"|"voicemail", "caller_name"?, "agent_id"?,
"recording_url"? (https), "transcript"?, "summary"?, "subject"?}``.

The call id dedupes (a PBX that re-sends its call-detail record after a timeout changes
nothing). The customer is the caller of an inbound call and the callee of an outbound one; their
number becomes the requester's phone identity, normalised so that the same person typed as
``+86 138-0013 8000`` on a web form and reported as ``008613800138000`` by the PBX is one
identity. Every call opens its own ticket (calls have no conversation to thread onto).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.validation import NOT_BLANK, WHITESPACE, StrictModel

from . import _json
from .inbound import InboundMessage, InvalidPayload, Sender

#: RFC 3339 date-time with an offset; pydantic alone would also take Unix numbers and
#: ``2026-11-23 09:30`` style strings, which a telephony system sending "our format" must not.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

Model = TypeVar("Model", bound=BaseModel)

_NUMBER_CHARS = re.compile(r"\(?\+?[0-9 ()\-./]+")
MIN_DIGITS = 3  # short codes such as 110 / 911 are numbers too
MAX_DIGITS = 20  # E.164 allows 15; extensions and national prefixes push real records past it
#: what check_number takes, for the API document (ECMA-262)
PHONE_PATTERN = f"^[{WHITESPACE}]*\\(?\\+?(?:[ ()\\-./]*[0-9]){{{MIN_DIGITS},{MAX_DIGITS}}}[ ()\\-./]*[{WHITESPACE}]*$"
HTTPS_PATTERN = r"^https://(?:[^\s/?#@]*@)?[^\s/?#:@\[\]]+"


def normalise_number(number: str) -> str:
    """Digits only, with ``+`` for international numbers: ``'+86 138-0013 8000'`` ->
    ``'+8613800138000'``, ``'0086 138 0013 8000'`` -> ``'+8613800138000'``.

    The international prefix ``00`` (used in China and Europe) is read as ``+`` so that the
    same customer gets the same identity whichever way the number was written. National
    numbers (``400 800 1234``) stay digits only: without a country we cannot add one.
    """
    stripped = number.strip()
    digits = re.sub(r"[^0-9]", "", stripped)
    if stripped.lstrip("( ").startswith("+"):  # "+86 ...", also "(+86) ..."
        return "+" + digits
    if digits.startswith("00") and len(digits) > 4:
        return "+" + digits[2:]
    return digits


def check_number(value: str) -> str:
    """Raise ``ValueError`` unless ``value`` looks like a phone number; used by every channel
    that accepts one so that all of them refuse the same garbage."""
    stripped = value.strip()
    if not _NUMBER_CHARS.fullmatch(stripped):
        raise ValueError("is not a phone number (digits, spaces, + ( ) - . / only)")
    count = sum(c.isdigit() for c in stripped)
    if not MIN_DIGITS <= count <= MAX_DIGITS:
        raise ValueError(f"must have {MIN_DIGITS} to {MAX_DIGITS} digits")
    return stripped


def load(body: bytes, model: type[Model]) -> Model:
    """``_json.load`` with pydantic's "Value error, " prefix taken off our own messages: the
    field errors are shown to whoever wired up the integration."""
    try:
        return _json.load(body, model)
    except InvalidPayload as exc:
        for error in exc.field_errors:
            error["message"] = error["message"].removeprefix("Value error, ")
        raise


def check_rfc3339(value: Any) -> Any:
    """Before-validator for timestamps: only RFC 3339 strings (``None`` passes to the type)."""
    if value is not None and (not isinstance(value, str) or not RFC3339.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T09:30:00+08:00")
    return value


class CallRecord(StrictModel):
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)]
    direction: Literal["inbound", "outbound"]
    from_: str = Field(alias="from", max_length=64, json_schema_extra={"pattern": PHONE_PATTERN})
    to: str = Field(max_length=64, json_schema_extra={"pattern": PHONE_PATTERN})
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    duration_s: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None  # 60.0 is 60; true is refused
    status: Literal["answered", "missed", "voicemail"]
    caller_name: Annotated[str, StringConstraints(max_length=256, strip_whitespace=True)] | None = None
    agent_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    recording_url: Annotated[str, StringConstraints(max_length=2048), Field(json_schema_extra={"pattern": HTTPS_PATTERN})] | None = None
    transcript: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    summary: Annotated[str, StringConstraints(max_length=65_536)] | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True, pattern=NOT_BLANK)] | None = None

    _numbers = field_validator("from_", "to")(check_number)
    _times = field_validator("started_at", "ended_at", mode="before")(check_rfc3339)

    @field_validator("recording_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        """Agents' browsers open the recording: plain http would leak the call audio."""
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("ended_at")
    @classmethod
    def _ended_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started = info.data.get("started_at")
        if value is not None and started is not None and value < started:
            raise PydanticCustomError("cross_field", "is before started_at")
        return value


def _duration(call: CallRecord) -> int | None:
    """The reported duration, else the span from start to end (some PBXs send only times)."""
    if call.duration_s is not None:
        return call.duration_s
    if call.ended_at is not None:
        return int((call.ended_at - call.started_at).total_seconds())
    return None


def _format_duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _generated_text(call: CallRecord, number: str, duration: int | None) -> str:
    """The line an agent sees when the PBX sent neither summary nor transcript."""
    way = "from" if call.direction == "inbound" else "to"
    if call.status == "missed":
        return f"Missed {call.direction} call {way} {number}."
    if call.status == "voicemail":
        line = f"Voicemail {way} {number}"
    else:
        line = f"Answered {call.direction} call {way} {number}"
    return line + (f", {_format_duration(duration)}." if duration is not None else ".")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_phone(body: bytes) -> InboundMessage:
    """One call record -> one customer message (a new ticket at intake)."""
    call = load(body, CallRecord)
    customer = normalise_number(call.from_ if call.direction == "inbound" else call.to)
    line = normalise_number(call.to if call.direction == "inbound" else call.from_)
    if not customer:
        raise InvalidPayload("The customer's number is empty.", field_errors=[
            {"field": "from" if call.direction == "inbound" else "to", "message": "has no digits"}])
    duration = _duration(call)
    what = {"answered": "Phone call", "missed": "Missed call", "voicemail": "Voicemail"}[call.status]
    way = "from" if call.direction == "inbound" else "to"
    metadata = {
        "direction": call.direction, "status": call.status, "duration_s": duration, "line": line,
        "started_at": _iso(call.started_at), "ended_at": _iso(call.ended_at),
        "recording_url": call.recording_url, "agent_id": call.agent_id,
        # the summary is the message; keep the full transcript beside it
        "transcript": call.transcript if call.summary and call.transcript else None,
    }
    return InboundMessage(
        channel="phone",
        external_id=call.call_id,
        # an outbound record's caller_name is our agent's name, not the customer's
        sender=Sender(name=(call.caller_name or None) if call.direction == "inbound" else None, phone=customer),
        subject=call.subject or f"{what} {way} {customer}",
        body_text=(call.summary or "").strip() or (call.transcript or "").strip()
        or _generated_text(call, customer, duration),
        sent_at=call.started_at,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )
