"""Pure rules of the customer model: attribute types and values, profile values, name search
lexemes, organisation domains, who may change what. No database."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_svc.attributes.service import Definition
from customer_svc.attributes.types import Invalid, parse_filter, validate_value
from customer_svc.attributes.validate import AttributeErrors, values_for_create, values_for_update
from customer_svc.customers import profile, search
from customer_svc.customers.service import changes_of, forbidden_fields
from customer_svc.organizations.domains import domain_key, is_public, joinable
from helpdesk_common.identity import Principal


def definition(kind: str, *, required: bool = False, scale: int | None = None, options=None) -> Definition:
    return Definition(key="k", type=kind, required=required, unique=False, scale=scale,
                      options=[{"value": o} for o in options] if options else None)


@pytest.mark.parametrize(("kind", "value", "stored"), [
    ("text", "  企业客户 ", "企业客户"),
    ("number", 42, 42),
    ("number", -(2**63), -(2**63)),
    ("decimal", "12.50", "12.5"),
    ("decimal", 12.5, "12.5"),
    ("decimal", "100", "100"),
    ("decimal", "-0.00", "0"),
    ("boolean", False, False),
    ("date", "2026-02-28", "2026-02-28"),
    ("select", " retail ", "retail"),
    ("multiselect", ["vip", "retail"], ["vip", "retail"]),
])
def test_values_are_stored_in_one_form(kind, value, stored):
    assert validate_value(definition(kind, options=["retail", "vip"]), value) == stored


def test_decimal_scale_rounds_to_it():
    assert validate_value(definition("decimal", scale=2), "12.5") == "12.50"
    with pytest.raises(Invalid, match="at most 2 decimal places"):
        validate_value(definition("decimal", scale=2), "12.555")


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("text", 5, "must be a string"),
    ("text", "x" * 1001, "at most 1000"),
    ("number", 1.5, "integer"),
    ("number", True, "integer"),
    ("number", 2**63, "integer"),
    ("decimal", "1e5", "decimal"),
    ("decimal", "1" * 21, "at most 20 digits"),
    ("boolean", "true", "true or false"),
    ("date", "2026-02-30", "YYYY-MM-DD"),
    ("date", "20260201", "YYYY-MM-DD"),
    ("select", "gold", "one of: retail, vip"),
    ("multiselect", ["vip", "vip"], "same value twice"),
    ("multiselect", "vip", "list"),
    ("multiselect", ["gold"], "only contain"),
])
def test_bad_values_say_which_rule(kind, value, message):
    with pytest.raises(Invalid, match=message):
        validate_value(definition(kind, options=["retail", "vip"]), value)


def test_filters_parse_like_values():
    assert parse_filter(definition("number"), "12") == 12
    assert parse_filter(definition("boolean"), "true") is True
    assert parse_filter(definition("decimal"), "12.50") == "12.5"
    assert parse_filter(definition("multiselect", options=["a"]), "a") == ["a"]
    assert parse_filter(definition("date"), "2026-01-31") == "2026-01-31"
    for kind, text in (("number", "twelve"), ("boolean", "yes"), ("date", "tomorrow"), ("decimal", "1,5")):
        with pytest.raises(Invalid):
            parse_filter(definition(kind), text)


DEFS = {
    "industry": Definition("industry", "select", True, False, None, [{"value": "retail"}, {"value": "it"}]),
    "employees": Definition("employees", "number", False, False, None, None),
    "channels": Definition("channels", "multiselect", False, False, None, [{"value": "web"}, {"value": "app"}]),
}


def test_create_names_every_failing_key():
    with pytest.raises(AttributeErrors) as caught:
        values_for_create(DEFS, {"employees": "many", "colour": "red"})
    assert sorted((e["field"], e["code"]) for e in caught.value.errors) == [
        ("body.attributes.colour", "unknown"), ("body.attributes.employees", "invalid"),
        ("body.attributes.industry", "required")]
    assert values_for_create(DEFS, {"industry": "it", "employees": None, "channels": []}) == {"industry": "it"}


def test_update_changes_only_what_it_names():
    current = {"industry": "retail", "channels": ["web", "retired"]}
    # the value read back is accepted as is, even with an option removed since
    assert values_for_update(DEFS, current, {"channels": ["web", "retired"]}) == current
    # dropping one element keeps the retired one acceptable; adding an unknown one is not
    assert values_for_update(DEFS, current, {"channels": ["retired"]})["channels"] == ["retired"]
    with pytest.raises(AttributeErrors):
        values_for_update(DEFS, current, {"channels": ["web", "fax"]})
    # a required one cannot be cleared; others can
    with pytest.raises(AttributeErrors) as caught:
        values_for_update(DEFS, current, {"industry": None})
    assert caught.value.errors[0]["field"] == "body.attributes.industry"
    assert values_for_update(DEFS, {**current, "employees": 3}, {"employees": None}) == current
    # required keys the patch does not touch are not enforced (customers made from tickets lack them)
    assert values_for_update(DEFS, {}, {"employees": 5}) == {"employees": 5}


def test_attributes_are_bounded():
    big = {f"k{i}": Definition(f"k{i}", "text", False, False, None, None) for i in range(20)}
    with pytest.raises(AttributeErrors, match="at most 16384 bytes"):
        values_for_create(big, {key: "字" * 1000 for key in big})


@pytest.mark.parametrize(("tag", "language"), [
    ("zh-cn", "zh-CN"), ("zh_CN", "zh-CN"), ("EN", "en"), ("zh-hans-cn", "zh-Hans-CN"), ("es-419", "es-419"),
    ("de-CH-1996", "de-CH-1996"),
])
def test_language_tags_in_canonical_case(tag, language):
    assert profile.canonical_language(tag) == language


def test_time_zones_are_iana_names():
    assert profile.check_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("localtime", "Asia/Nowhere", "../etc/passwd", "CST"):
        with pytest.raises(ValueError):
            profile.check_time_zone(bad)
    assert "Asia/Shanghai" in profile.zone_names() and "localtime" not in profile.zone_names()


def test_tags_normalised_distinct_bounded():
    assert profile.normalise_tags(["VIP", " ｖｉｐ ", "重要 客户", "", "Key  Account"]) == ["vip", "重要_客户", "key_account"]
    assert profile.apply_tags(["a", "b"], replace=None, add=["C", "a"], remove=["b"]) == ["a", "c"]
    assert profile.apply_tags(["a"], replace=["x"], add=(), remove=()) == ["x"]
    with pytest.raises(ValueError, match="at most 50"):
        profile.apply_tags([f"t{i}" for i in range(50)], replace=None, add=["one more"])


@given(st.lists(st.text(max_size=20), max_size=30))
def test_tag_normalisation_is_idempotent(tags):
    once = profile.normalise_tags(tags)
    assert profile.normalise_tags(once) == once


def test_name_lexemes_and_queries():
    assert search.lexemes("欧阳娜娜") == ["欧", "阳", "娜", "欧阳", "阳娜", "娜娜"]
    assert search.lexemes("Zhang Wei 张伟") == ["张", "伟", "张伟", "zhang", "wei"]
    assert search.lexemes("ＪＯＨＮ") == ["john"]  # full-width, as Chinese input methods type it
    assert search.tsquery("张伟") == "'张伟'"
    assert search.tsquery("娜") == "'娜'"
    assert search.tsquery("欧阳娜") == "'欧阳' & '阳娜'"
    assert search.tsquery("john sm") == "'john' & 'sm':*"
    assert search.tsquery("O'Brien") == "'o' & 'brien':*"
    assert search.tsquery("--") is None
    assert search.document(None) == ""


@given(st.text(max_size=60))
def test_every_name_matches_itself(name):
    """Every term a query of the whole name asks for is a lexeme of the name (the last word as a
    prefix of one), so a customer is always found by their own name."""
    query = search.tsquery(name)
    if query is None:
        return
    found = set(search.lexemes(name))
    for term in query.split(" & ")[: search.MAX_TERMS]:
        prefix = term.endswith(":*")
        text = term.removesuffix(":*")[1:-1].replace("''", "'").replace("\\\\", "\\")
        assert text in found or (prefix and any(lexeme.startswith(text) for lexeme in found)), (term, found)


def test_domains():
    assert domain_key(" Example.COM. ") == "example.com"
    assert domain_key("ＥＸＡＭＰＬＥ.cn") == "example.cn"
    assert is_public("QQ.com") and is_public("163.com") and is_public("gmail.com") and is_public("outlook.com")
    assert joinable("corp.example") == "corp.example"
    assert joinable("Gmail.com") is None and joinable(None) is None


@pytest.mark.parametrize(("role", "sent", "denied"), [
    ("agent", {"name", "notes"}, []),
    ("agent", {"name", "tier", "tags"}, ["tags", "tier"]),
    ("supervisor", {"tier", "organization_id", "attributes"}, []),
    ("admin", {"account_owner_id"}, []),
])
def test_who_changes_what(role, sent, denied):
    assert forbidden_fields(sent, Principal(kind="user", id="u", role=role)) == denied


def test_events_say_that_notes_changed_not_what_they_say():
    before = {"notes": "secret", "tags": ["a"], "tier": None}
    org = uuid.uuid4()
    assert changes_of(before, {"notes": "new", "tags": ["a", "b"], "search": "'x'", "tier": "vip"}) == {
        "notes": {}, "tags": {"before": ["a"], "after": ["a", "b"]}, "tier": {"before": None, "after": "vip"}}
    assert changes_of({"organization_id": None}, {"organization_id": org}) == {
        "organization_id": {"before": None, "after": org}}
