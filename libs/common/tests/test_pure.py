"""Pure helpers: event contracts, identity normalisation, input hygiene."""

import typing
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from helpdesk_common import events
from helpdesk_common.identities import identities_of, mask, normalize, primary_identity
from helpdesk_common.identity import IdentitySigner, IdentityVerifier, Principal
from helpdesk_common.problems import Problem
from helpdesk_common.validation import StrictModel, find_nul


def test_event_round_trip_and_cloudevents_fields():
    tid, cid = uuid.uuid4(), uuid.uuid4()
    e = events.TicketCustomerLinked(source="ticket-svc", subject=str(tid),
                                    data=events.TicketCustomerLinkedData(ticket_id=tid, customer_id=cid))
    doc = e.model_dump(mode="json")
    assert doc["specversion"] == "1.0" and doc["type"] == "ticket.customer_linked"
    assert {"id", "source", "subject", "time", "datacontenttype", "schemaversion", "data"} <= set(doc)
    assert events.decode(events.encode(e)) == e
    assert events.TOPIC_BY_TYPE[e.type] == events.TICKETS_TOPIC


def test_unknown_types_are_skipped_and_garbage_rejected():
    with pytest.raises(events.UnknownEventType):
        events.decode(b'{"type": "ticket.teleported"}')
    with pytest.raises(ValueError):
        events.decode(b"[]")
    with pytest.raises(ValueError):
        events.decode(b'{"type": "ticket.customer_linked", "data": {}}')


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Li.Lei@Example.COM ", "li.lei@example.com"),
        ("phone", "+86 138-0013-8000", "+8613800138000"),
        ("phone", "0086 (138) 0013 8000", "+8613800138000"),
        ("wechat_openid", " oAbC ", "oAbC"),
        ("external_id", "CRM-1", "CRM-1"),
    ],
)
def test_normalize(kind, raw, expected):
    assert normalize(kind, raw) == expected


def test_primary_identity_priority():
    requester = {"external_id": "x", "phone": "123 456", "email": "A@B.co", "wechat_openid": "o"}
    assert primary_identity(requester) == ("email", "a@b.co")
    assert [k for k, _ in identities_of(requester)] == ["email", "phone", "wechat_openid", "external:api"]
    assert primary_identity({"name": "only"}) is None


@given(st.emails())
def test_email_normalisation_is_idempotent(email):
    once = normalize("email", email)
    assert normalize("email", once) == once


def test_mask_hides_most_of_the_value():
    assert mask("email", "lilei@example.com") == "l***@example.com"
    assert mask("phone", "+8613812345678") == "+86 138****5678"
    assert mask("phone", "+14155550123") == "+1 415****0123"
    assert mask("phone", "+85221234567") == "+852 21****67"  # 8 national digits: two at each end
    assert mask("phone", "13800138000") == "13*******00"  # a legacy key without a country code
    assert mask("wechat_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == "oU" + "*" * 24 + "6o"
    assert mask("email", "@example.com") == "***@example.com"
    assert mask("external:crm", "abc") == "***"
    # an international form that does not parse is masked like any other value, every time (cached)
    assert mask("phone", "+0012345678") == mask("phone", "+0012345678") == "+0*******78"


class Body(StrictModel):
    name: str
    extra: dict = {}


def test_strict_model_rejects_unknown_fields_and_nul_anywhere():
    with pytest.raises(ValidationError):
        Body(name="a", other=1)
    with pytest.raises(ValidationError):
        Body(name="a\x00")
    with pytest.raises(ValidationError):
        Body(name="a", extra={"k": ["ok", "bad\x00"]})
    assert find_nul({"a": [{"b\x00": 1}]}) is not None
    assert Body(name="好").name == "好"


def test_identity_token_round_trip_and_tamper():
    from helpdesk_common.identity import generate_keypair

    private, public = generate_keypair()
    signer, verifier = IdentitySigner(private), IdentityVerifier(public)
    p = Principal(kind="channel", id="k1", channel="wecom")
    token = signer.token_for(p)
    assert signer.token_for(p) == token  # cached per principal
    assert verifier.verify(token) == p
    with pytest.raises(Problem):
        IdentityVerifier(generate_keypair()[1]).verify(token)  # another gateway's key
    with pytest.raises(Problem):
        verifier.verify(token[:-2] + "xx")


def _forged(claims: dict, key: object, algorithm: str = "EdDSA") -> str:
    import jwt

    return jwt.encode(claims, key, algorithm=algorithm)


def test_identity_tokens_need_the_issuer_a_short_lifetime_and_the_private_key():
    """A 10-year exp, a missing or foreign issuer, an HMAC token made with any string (the
    old shared-secret scheme: every service could mint), a public-key-as-HMAC-secret
    confusion: each refused."""
    import time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from helpdesk_common.identity import AUDIENCE, ISSUER, _unb64, generate_keypair

    private, public = generate_keypair()
    verifier = IdentityVerifier(public)
    key = Ed25519PrivateKey.from_private_bytes(_unb64(private))
    now = int(time.time())
    good = {"sub": "u1", "knd": "user", "rol": "admin", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    assert verifier.verify(_forged(good, key)).role == "admin"
    for bad in (
        {**good, "exp": now + 10 * 365 * 86400},  # ten years
        {**good, "iat": now - 3600, "exp": now + 300},  # an hour-long lifetime
        {k: v for k, v in good.items() if k != "iss"},
        {**good, "iss": "customer-svc"},
        {k: v for k, v in good.items() if k != "iat"},
        {**good, "exp": now - 60},
        {**good, "knd": "robot"},
    ):
        with pytest.raises(Problem):
            verifier.verify(_forged(bad, key))
    with pytest.raises(Problem):
        verifier.verify(_forged(good, "any shared secret", "HS256"))
    with pytest.raises(Problem):
        verifier.verify(_forged(good, public, "HS256"))
    with pytest.raises(RuntimeError):
        IdentityVerifier("")
    with pytest.raises(RuntimeError):
        IdentitySigner("not a key")


def test_identity_token_lifetime_follows_the_signer():
    """The gateway's tokens live five minutes; the test helper's a day, so module-level
    headers survive a slow suite (test services raise their cap to match)."""
    import jwt

    from helpdesk_common.identity import AUDIENCE, IDENTITY_HEADER, TOKEN_TTL_S, generate_keypair
    from helpdesk_common.testing import identity_headers

    p = Principal(kind="user", id="u", role="agent")

    def lifetime(token: str) -> int:
        claims = jwt.decode(token, options={"verify_signature": False}, audience=AUDIENCE)
        return claims["exp"] - claims["iat"]

    assert lifetime(IdentitySigner(generate_keypair()[0]).token_for(p)) == TOKEN_TTL_S == 300
    assert lifetime(identity_headers(p)[IDENTITY_HEADER]) == 24 * 3600


def test_consumer_skips_types_it_does_not_handle_by_header_without_parsing_the_body():
    from types import SimpleNamespace

    from helpdesk_common import events
    from helpdesk_common.consumer import ConsumerRunner

    runner = ConsumerRunner(name="c", topics=["t"], handlers={"ticket.customer_linked": None}, engine=None,
                            inbox=None, settings=None)

    def record(value: bytes, headers):
        return SimpleNamespace(value=value, headers=headers)

    tid = uuid.uuid4()
    linked = events.TicketCustomerLinked(source="t", subject=str(tid), data=events.TicketCustomerLinkedData(
        ticket_id=tid, customer_id=uuid.uuid4()))
    skipped = runner._decode(record(b"{not json", [("ce_type", b"ticket.updated")]))
    assert (skipped.ignored_type, skipped.event, skipped.error) == ("ticket.updated", None, None)
    handled = runner._decode(record(events.encode(linked), [("ce_type", b"ticket.customer_linked")]))
    assert handled.event == linked and handled.ignored_type is None
    # a handled type, or a record without the header, is parsed: a broken body is poison (DLQ)
    assert runner._decode(record(b"{not json", [("ce_type", b"ticket.customer_linked")])).error is not None
    assert runner._decode(record(b"{not json", [])).error is not None
    assert runner._decode(record(events.encode(linked), None)).event == linked


def _issue_11_events():
    """One of each issue-11 contract ticket-svc consumes, with its expected topic."""
    from datetime import UTC, datetime

    now, cid, sid, tid = datetime.now(UTC), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    return [
        (events.CustomerMerged(source="customer-svc", subject=str(cid), data=events.CustomerMergedData(
            survivor_id=cid, merged_id=uuid.uuid4(), identities=[{"kind": "email", "value": "a@b.co"}],
            actor="user:1", at=now)), events.CUSTOMERS_TOPIC),
        (events.SurveySent(source="customer-svc", subject=str(sid), data=events.SurveySentData(
            survey_id=sid, kind="csat", customer_id=cid, ticket_id=tid, channel="email", at=now)),
         events.CUSTOMERS_TOPIC),
        (events.SurveyAnswered(source="customer-svc", subject=str(sid), data=events.SurveyAnsweredData(
            survey_id=sid, kind="csat", customer_id=cid, ticket_id=tid, rating=1, comment="太慢了", at=now)),
         events.CUSTOMERS_TOPIC),
        (events.InsightChurnRiskChanged(source="customer-svc", subject=str(cid), data=events.ChurnRiskChangedData(
            customer_id=cid, score=72, previous_score=55, band="high", episode="started",
            reasons=[{"factor": "order_overdue", "points": 72, "en": "No order for 200 days", "zh_cn": "已200天未下单"}],
            account_owner_id=uuid.uuid4(), language="zh-CN", at=now)), events.INSIGHTS_TOPIC),
        (events.CustomerSegmentChanged(source="customer-svc", subject=str(cid), data=events.SegmentChangedData(
            customer_id=cid, previous="important_value", segment="important_retention", r=2, f=5, m=5, at=now)),
         events.CUSTOMERS_TOPIC),
    ]


@pytest.mark.parametrize(("event", "topic"), _issue_11_events(), ids=lambda v: getattr(v, "type", v))
def test_issue_11_contracts_round_trip_on_their_topics(event, topic):
    assert events.decode(events.encode(event)) == event
    assert events.TOPIC_BY_TYPE[event.type] == topic and event.type in events.KNOWN_TYPES


@pytest.mark.parametrize("data", [
    {"rating": 6}, {"rating": 0}, {"score": 11}, {"score": -1},
    {"comment": "x" * (events.SURVEY_COMMENT_MAX_CHARS + 1)},
])
def test_survey_answers_are_bounded(data):
    base = {"survey_id": uuid.uuid4(), "kind": "csat", "customer_id": uuid.uuid4(), "at": "2026-11-30T00:00:00Z"}
    with pytest.raises(ValidationError):
        events.SurveyAnsweredData(**base, **data)
    events.SurveyAnsweredData(**base, comment="x" * events.SURVEY_COMMENT_MAX_CHARS)


def _issue_14_events():
    """One of each knowledge-base contract (kb-svc publishes them on ``kb.events``)."""
    from datetime import UTC, datetime

    now, aid, sid = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
    return [
        events.KbArticlePublished(source="kb-svc", subject=str(aid), data=events.KbArticlePublishedData(
            article_id=aid, locale="zh-CN", version=1, title="如何申请退款", visibility="public",
            labels=["退款", "billing"], section_id=uuid.uuid4(), category_id=uuid.uuid4(), published_by="7", at=now)),
        events.KbArticleUnpublished(source="kb-svc", subject=str(aid), data=events.KbArticleUnpublishedData(
            article_id=aid, locale="en", at=now, by="7")),
        events.KbArticleFeedback(source="kb-svc", subject=str(aid), data=events.KbArticleFeedbackData(
            article_id=aid, locale="en", helpful=False, has_comment=True, viewer_kind="customer", at=now)),
        events.KbSuggestionOutcome(source="kb-svc", subject=str(sid), data=events.KbSuggestionOutcomeData(
            suggestion_id=sid, deflected=True, article_ids=[aid, uuid.uuid4()], viewed_article_ids=[aid],
            ticket_id=None, channel="web", at=now)),
    ]


@pytest.mark.parametrize("event", _issue_14_events(), ids=lambda v: v.type)
def test_issue_14_contracts_round_trip_on_the_kb_topic(event):
    assert events.decode(events.encode(event)) == event
    assert events.TOPIC_BY_TYPE[event.type] == events.KB_TOPIC and event.type in events.KNOWN_TYPES


def test_every_event_type_has_a_listed_topic_and_a_union_member():
    union_types = {m.model_fields["type"].default for m in typing.get_args(typing.get_args(events.Event)[0])}
    assert union_types == set(events.TOPIC_BY_TYPE)
    assert set(events.TOPIC_BY_TYPE.values()) == set(events.ALL_TOPICS)


@pytest.mark.parametrize(("model", "data"), [
    (events.KbArticlePublishedData, {"visibility": "everyone"}),
    (events.KbArticlePublishedData, {"version": 0}),
    (events.KbArticlePublishedData, {"title": "x" * (events.KB_TITLE_MAX_CHARS + 1)}),
    (events.KbArticlePublishedData, {"labels": ["x"] * (events.KB_LABELS_MAX + 1)}),
    (events.KbArticlePublishedData, {"labels": ["x" * (events.KB_LABEL_MAX_CHARS + 1)]}),
    (events.KbArticlePublishedData, {"locale": ""}),
    (events.KbSuggestionOutcomeData, {"article_ids": [uuid.uuid4() for _ in range(events.KB_SUGGESTED_MAX + 1)]}),
    (events.KbSuggestionOutcomeData, {"channel": ""}),
    (events.KbArticleFeedbackData, {"viewer_kind": "robot"}),
])
def test_kb_event_data_is_bounded(model, data):
    aid = uuid.uuid4()
    base = {
        events.KbArticlePublishedData: {"article_id": aid, "locale": "en", "version": 1, "title": "Refund policy",
                                        "visibility": "public", "section_id": aid, "category_id": aid,
                                        "published_by": "1", "at": "2026-11-30T00:00:00Z"},
        events.KbSuggestionOutcomeData: {"suggestion_id": aid, "deflected": False, "channel": "web",
                                         "at": "2026-11-30T00:00:00Z"},
        events.KbArticleFeedbackData: {"article_id": aid, "locale": "en", "helpful": True, "viewer_kind": "public",
                                       "at": "2026-11-30T00:00:00Z"},
    }[model]
    model(**base)
    with pytest.raises(ValidationError):
        model(**{**base, **data})


@pytest.mark.parametrize(("role", "allowed"), [
    ("admin", True), ("supervisor", True), ("agent", True), ("editor", False), ("owner", False), (None, False),
])
async def test_ticketing_services_take_agent_roles_only(role, allowed):
    """Every service but kb-svc reads the caller through ``current_principal``: an editor (who
    writes the knowledge base only) or an unknown role is refused there even with a genuine
    identity, so a route the gateway forwarded by mistake still gives nothing away."""
    from types import SimpleNamespace

    from helpdesk_common.identity import IDENTITY_HEADER, current_principal, generate_keypair

    private, public = generate_keypair()
    token = IdentitySigner(private).token_for(Principal(kind="user", id="u1", role=role))
    request = SimpleNamespace(headers={IDENTITY_HEADER: token},
                              app=SimpleNamespace(state=SimpleNamespace(identity_verifier=IdentityVerifier(public))))
    if allowed:
        assert (await current_principal(request)).role == role
    else:
        with pytest.raises(Problem) as refused:
            await current_principal(request)
        assert refused.value.status == 403
