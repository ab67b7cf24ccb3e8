"""Identity kinds and their keys (pure): what a channel's requester and what an agent's input
become, and that both agree where both accept a value."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_svc.customers.service import identity_candidates
from customer_svc.identities.rules import email_domain, strict_key
from helpdesk_common.identities import (InvalidIdentity, identities_of, is_kind, normalize, normalize_phone,
                                        primary_identity, requester_identity)


@pytest.mark.parametrize(("raw", "key"), [
    ("13800138000", "+8613800138000"),  # national, read in the default region (CN)
    ("+86 138-0013-8000", "+8613800138000"),
    ("0086 (138) 0013 8000", "+8613800138000"),  # CN's international prefix
    ("(010) 6552 9988", "+861065529988"),  # a Beijing landline with its trunk prefix
    ("+1 (650) 253-0000", "+16502530000"),
    ("+44 20 7946 0958", "+442079460958"),
    ("1", "1"),  # not a possible number: the digits stay the key, nothing is lost
    ("ext. 12", "ext12"),
])
def test_phone_keys_are_e164_in_the_default_region(raw, key):
    assert normalize("phone", raw, region="CN") == key


def test_the_region_decides_national_numbers():
    assert normalize_phone("(650) 253-0000", "US") == "+16502530000"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize(("field", "raw", "pair"), [
    ("email", "  Zhang.Wei@Example.COM ", ("email", "zhang.wei@example.com")),
    ("wechat_openid", " oX_123 ", ("wechat_openid", "oX_123")),  # case kept: platform ids are case-sensitive
    ("external_id", "dingtalk:staff-5", ("dingtalk_userid", "staff-5")),
    ("external_id", "wecom:wmABC", ("wecom_external_userid", "wmABC")),
    ("external_id", "chat:visitor-9", ("external:chat", "visitor-9")),
    ("external_id", "shopify:1001", ("external:shopify", "1001")),
    ("external_id", "CRM-42", ("external:api", "CRM-42")),  # no system named
    ("external_id", "Big CRM:42", ("external:api", "Big CRM:42")),  # not a system name
    ("external_id", "crm:", ("external:api", "crm:")),
    ("external_id", "   ", None),
])
def test_requester_fields_map_to_kinds(field, raw, pair):
    assert requester_identity(field, raw) == pair


def test_requester_identities_in_priority_order():
    requester = {"external_id": "dingtalk:u1", "phone": "138 0013 8000", "email": "A@B.co", "wechat_openid": "o"}
    assert identities_of(requester) == [("email", "a@b.co"), ("phone", "+8613800138000"), ("wechat_openid", "o"),
                                        ("dingtalk_userid", "u1")]
    assert primary_identity({"external_id": "wecom:w1"}) == ("wecom_external_userid", "w1")


@pytest.mark.parametrize(("kind", "ok"), [
    ("email", True), ("phone", True), ("wechat_openid", True), ("wechat_unionid", True),
    ("wecom_external_userid", True), ("dingtalk_userid", True), ("external:crm", True), ("external:shop.cn", True),
    ("external_id", False), ("external:", False), ("external:CRM", False), ("fax", False), ("", False),
])
def test_kinds(kind, ok):
    assert is_kind(kind) is ok


@pytest.mark.parametrize(("kind", "value", "key"), [
    ("email", " Li.Lei@Example.com ", "li.lei@example.com"),
    ("phone", "138 0013 8000", "+8613800138000"),
    ("wechat_unionid", "o6_bmasdasdsad6_2sgVt7hMZOPfL", "o6_bmasdasdsad6_2sgVt7hMZOPfL"),
    ("wecom_external_userid", "wmXXXX-1_a", "wmXXXX-1_a"),
    ("dingtalk_userid", "manager4321", "manager4321"),
    ("external:erp", " 客户-0001 ", "客户-0001"),
])
def test_strict_keys(kind, value, key):
    assert strict_key(kind, value) == key


@pytest.mark.parametrize(("kind", "value"), [
    ("email", "not-an-address"), ("email", "a@b"), ("email", "a b@example.com"),
    ("phone", "call me"), ("phone", "1"), ("wechat_openid", "o X"), ("wechat_unionid", "o" * 129),
    ("dingtalk_userid", "has space"), ("external:erp", "a\x01b"), ("external:erp", "x" * 256), ("fax", "1"),
])
def test_strict_keys_refuse_what_is_not_one(kind, value):
    with pytest.raises(InvalidIdentity):
        strict_key(kind, value)


@given(st.sampled_from(["13800138000", "+8613800138000", "0086 138 0013 8000", "+1 650 253 0000"]))
def test_strict_and_lenient_agree_where_both_accept(raw):
    assert strict_key("phone", raw) == normalize("phone", raw)


@given(st.text(max_size=40))
def test_phone_keys_are_stable(raw):
    """A key read again is the same key: the projection and customer-svc never drift apart."""
    once = normalize("phone", raw)
    assert normalize("phone", once) == once


def test_identity_candidates_cover_every_kind():
    assert identity_candidates(" Li.Lei@Example.com ") == ["Li.Lei@Example.com", "li.lei@example.com"]
    assert identity_candidates("138 0013 8000") == ["138 0013 8000", "+8613800138000"]
    assert identity_candidates("oX_123") == ["oX_123", "ox_123"]


def test_email_domain():
    assert email_domain([("phone", "+1"), ("email", "a@corp.example")]) == "corp.example"
    assert email_domain([("phone", "+1")]) is None
