"""Phone-call records from a telephony system (our JSON format).

``{"call_id", "direction": "inbound"|"outbound", "from", "to", "started_at", "ended_at"?,
"duration_s"?, "status": "answered"|"missed"|"voicemail", "caller_name"?, "agent_id"?,
"recording_url"? (https), "transcript"?, "summary"?, "subject"?}``. The call id dedupes; the
customer is the caller of an inbound call and the callee of an outbound one.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from helpdesk_common.validation import StrictModel

from . import _json
from .inbound import InboundMessage, Sender

Number = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=r"^\+?[0-9 ()\-.]{3,32}$")]


class CallRecord(StrictModel):
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    direction: Literal["inbound", "outbound"]
    from_: Number = Field(alias="from")
    to: Number
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    duration_s: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None
    status: Literal["answered", "missed", "voicemail"] = "answered"
    caller_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    agent_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    recording_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https://")] | None = None
    transcript: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    summary: Annotated[str, StringConstraints(max_length=65_536)] | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


def normalise_number(number: str) -> str:
    """Digits with a leading + kept: '+86 138-0013 8000' -> '+8613800138000'."""
    digits = re.sub(r"[^0-9]", "", number)
    return ("+" if number.strip().startswith("+") else "") + digits


def parse_phone(body: bytes) -> InboundMessage:
    call = _json.load(body, CallRecord)
    customer = normalise_number(call.from_ if call.direction == "inbound" else call.to)
    what = {"answered": "Phone call", "missed": "Missed call", "voicemail": "Voicemail"}[call.status]
    preposition = "from" if call.direction == "inbound" else "to"
    subject = call.subject or f"{what} {preposition} {customer}"
    duration = f" ({call.duration_s} s)" if call.duration_s is not None else ""
    text = call.summary or call.transcript or f"{what} {preposition} {customer}{duration}."
    return InboundMessage(
        channel="phone",
        external_id=call.call_id,
        sender=Sender(name=call.caller_name if call.direction == "inbound" else None, phone=customer),
        subject=subject,
        body_text=text,
        sent_at=call.started_at,
        metadata={k: v for k, v in {
            "direction": call.direction, "status": call.status, "duration_s": call.duration_s,
            "recording_url": call.recording_url, "agent_id": call.agent_id,
            "transcript": call.transcript if call.summary and call.transcript else None,
        }.items() if v is not None},
    )
