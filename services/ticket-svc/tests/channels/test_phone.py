"""Phone-call records (telephony JSON) -> InboundMessage: who the customer is, what the agent
reads, and which records are refused."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels.inbound import InboundMessage, InvalidPayload
from ticket_svc.channels.phone import normalise_number, parse_phone

CST = timezone(timedelta(hours=8))


def record(**over) -> bytes:
    doc = {"call_id": "call-20261123-0931-7781", "direction": "inbound", "from": "+86 138 0013 8000",
           "to": "+86 400 800 1234", "started_at": "2026-11-23T09:30:00+08:00", "status": "answered"}
    doc.update(over)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}, ensure_ascii=False).encode()


@pytest.mark.parametrize(("raw", "normalised"), [
    ("+86 138-0013 8000", "+8613800138000"),
    ("0086 138 0013 8000", "+8613800138000"),
    ("(+1) 415.555.0100", "+14155550100"),
    ("+1 (415) 555-0100", "+14155550100"),
    ("400 800 1234", "4008001234"),
    ("010-6552 9988", "01065529988"),
    ("110", "110"),
])
def test_numbers_are_normalised_to_e164_ish(raw, normalised):
    assert normalise_number(raw) == normalised


@pytest.mark.parametrize(("over", "subject", "body", "phone", "name"), [
    # an answered inbound call with a summary: the summary is the message
    ({"summary": "客户来电询问发票开具进度", "caller_name": "赵六", "duration_s": 95},
     "Phone call from +8613800138000", "客户来电询问发票开具进度", "+8613800138000", "赵六"),
    # a missed call: a generated line, and a subject that says so
    ({"status": "missed", "caller_name": "Alice Chen"},
     "Missed call from +8613800138000", "Missed inbound call from +8613800138000.", "+8613800138000", "Alice Chen"),
    # voicemail with a transcript only
    ({"status": "voicemail", "transcript": "Hi, my router keeps rebooting, please call me back."},
     "Voicemail from +8613800138000", "Hi, my router keeps rebooting, please call me back.", "+8613800138000", None),
    # an outbound call: the customer is the callee, caller_name is ours and not used
    ({"direction": "outbound", "from": "+86 400 800 1234", "to": "0086 139 1111 2222", "caller_name": "Agent Li",
      "duration_s": 42}, "Phone call to +8613911112222", "Answered outbound call to +8613911112222, 42 s.",
     "+8613911112222", None),
    # an outbound call nobody answered
    ({"direction": "outbound", "from": "4008001234", "to": "+1 415 555 0100", "status": "missed"},
     "Missed call to +14155550100", "Missed outbound call to +14155550100.", "+14155550100", None),
    # duration derived from start and end, explicit subject kept
    ({"ended_at": "2026-11-23T09:32:05+08:00", "subject": "退款咨询"},
     "退款咨询", "Answered inbound call from +8613800138000, 2 min 5 s.", "+8613800138000", None),
])
def test_call_records(over, subject, body, phone, name):
    msg = parse_phone(record(**over))
    assert isinstance(msg, InboundMessage)
    assert (msg.channel, msg.external_id, msg.conversation_key) == ("phone", "call-20261123-0931-7781", None)
    assert (msg.subject, msg.body_text, msg.sender.phone, msg.sender.name) == (subject, body, phone, name)
    assert msg.sent_at == datetime(2026, 11, 23, 9, 30, tzinfo=CST)


def test_metadata_keeps_the_call_facts():
    msg = parse_phone(record(summary="客户要求回电", transcript="……完整录音转写……", duration_s=95, agent_id="agent-12",
                             recording_url="https://pbx.example.com/rec/7781.mp3", ended_at="2026-11-23T01:31:35Z"))
    assert msg.metadata == {
        "direction": "inbound", "status": "answered", "duration_s": 95, "line": "+864008001234",
        "started_at": "2026-11-23T09:30:00+08:00", "ended_at": "2026-11-23T01:31:35+00:00",
        "recording_url": "https://pbx.example.com/rec/7781.mp3", "agent_id": "agent-12",
        "transcript": "……完整录音转写……",
    }
    assert msg.sent_at.astimezone(UTC) == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(("over", "field"), [
    ({"call_id": ...}, "call_id"),
    ({"call_id": ""}, "call_id"),
    ({"call_id": 7781}, "call_id"),
    ({"direction": "sideways"}, "direction"),
    ({"status": "busy"}, "status"),
    ({"status": ...}, "status"),
    ({"from": "anonymous"}, "from"),
    ({"from": "---"}, "from"),
    ({"to": "12"}, "to"),
    ({"from": "+86 138 0013 8000 1234 5678 9012"}, "from"),
    ({"started_at": "2026-11-23T09:30:00"}, "started_at"),
    ({"started_at": "2026-11-23"}, "started_at"),
    ({"started_at": 1763861400}, "started_at"),
    ({"started_at": ...}, "started_at"),
    ({"ended_at": "2026-11-23T09:00:00+08:00"}, "ended_at"),
    ({"duration_s": -1}, "duration_s"),
    ({"duration_s": "95"}, "duration_s"),
    ({"recording_url": "http://pbx.example.com/rec/1.mp3"}, "recording_url"),
    ({"recording_url": "https://"}, "recording_url"),
    ({"recording_url": "ftp://pbx.example.com/1.mp3"}, "recording_url"),
    ({"subject": ""}, "subject"),
    ({"caller_name": "x" * 300}, "caller_name"),
    ({"queue": "sales"}, "queue"),
])
def test_bad_records_name_the_field(over, field):
    with pytest.raises(InvalidPayload) as caught:
        parse_phone(record(**over))
    assert field in {e["field"] for e in caught.value.field_errors}


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"call"', b"null", b"\xff\xfe", b"x" * (50 * 1024 * 1024 + 1)])
def test_not_a_record(body):
    with pytest.raises(InvalidPayload):
        parse_phone(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_invalid_payload(data):
    try:
        parse_phone(data)
    except InvalidPayload:
        pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["call_id", "direction", "from", "to", "started_at", "ended_at", "duration_s",
                                        "status", "recording_url", "summary"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                                 st.lists(st.integers(), max_size=2))))
def test_arbitrary_json_objects_raise_only_invalid_payload(doc):
    try:
        parse_phone(json.dumps(doc).encode())
    except InvalidPayload:
        pass
