"""The pure rules of a merge and of duplicate suggestions: who wins field by field (table), the
laws a merged profile keeps whatever the two profiles are (hypothesis), the lock order, and how
reasons combine into one confidence."""

import uuid
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_svc.customers.profile import MAX_TAGS
from customer_svc.duplicates.rules import REASONS, combined, ordered_pair, strongest
from customer_svc.fields import NOTES_MAX
from customer_svc.merges.rules import FILLED, NOTES_SEPARATOR, lock_order, merged_notes, merged_profile

BLANK = {"name": None, "tier": None, "organization_id": None, "account_owner_id": None, "language": None,
         "time_zone": None, "tags": [], "notes": None, "attributes": {}}


def profile(**values):
    return {**BLANK, **values}


@pytest.mark.parametrize(("survivor", "merged", "expected"), [
    (profile(), profile(), {}),
    (profile(name="张三"), profile(name="Zhang San"), {}),
    (profile(), profile(name="Zhang San", tier="gold"), {"name": "Zhang San", "tier": "gold"}),
    (profile(tier="vip"), profile(tier="gold", language="zh-CN"), {"language": "zh-CN"}),
    (profile(tags=["vip"]), profile(tags=["new", "vip"]), {"tags": ["vip", "new"]}),
    (profile(tags=["vip"]), profile(tags=["vip"]), {}),
    (profile(notes="A"), profile(notes="B"), {"notes": "A" + NOTES_SEPARATOR + "B"}),
    (profile(notes="A"), profile(notes="A"), {}),
    (profile(), profile(notes="B"), {"notes": "B"}),
    (profile(notes="A"), profile(), {}),
    (profile(attributes={"plan": "pro"}), profile(attributes={"plan": "basic", "seats": 5}),
     {"attributes": {"plan": "pro", "seats": 5}}),
])
def test_who_wins(survivor, merged, expected):
    assert merged_profile(survivor, merged) == expected


def test_long_notes_are_cut_at_the_limit():
    assert len(merged_notes("甲" * NOTES_MAX, "乙" * 10)) == NOTES_MAX
    assert merged_notes("甲" * NOTES_MAX, "乙").startswith("甲" * NOTES_MAX)


_value = st.none() | st.text(min_size=1, max_size=5)
_tags = st.lists(st.sampled_from(["vip", "new", "重要", "b2b"] + [f"t{i}" for i in range(60)]), unique=True,
                 max_size=50)
_profiles = st.fixed_dictionaries({
    **{name: _value for name in FILLED},
    "tags": _tags,
    "notes": st.none() | st.text(max_size=30),
    "attributes": st.dictionaries(st.sampled_from(["plan", "seats", "行业"]), st.integers(0, 3), max_size=3),
})


@given(_profiles, _profiles)
def test_merged_profile_laws(survivor, merged):
    values = merged_profile(survivor, merged)
    result = {**survivor, **values}
    for name in FILLED:  # a value the survivor has is never replaced; a gap is filled when it can be
        assert result[name] == (survivor[name] if survivor[name] is not None else merged[name])
    assert result["tags"][:len(survivor["tags"])] == survivor["tags"]  # the survivor's first, in order
    assert set(result["tags"]) <= set(survivor["tags"]) | set(merged["tags"])
    assert len(result["tags"]) == min(MAX_TAGS, len(set(survivor["tags"]) | set(merged["tags"])))
    assert result["attributes"] == {**merged["attributes"], **survivor["attributes"]}
    if survivor["notes"]:
        assert result["notes"].startswith(survivor["notes"][:NOTES_MAX])
    assert result["notes"] is None or len(result["notes"]) <= max(NOTES_MAX, len(survivor["notes"] or ""))
    assert merged_profile(result, merged).keys() <= {"notes"}  # merging the same again adds nothing but notes
    assert all(survivor[name] != value for name, value in values.items())  # only real changes are written


@given(st.uuids(), st.uuids())
def test_two_merges_of_one_pair_lock_in_the_same_order(a, b):
    assert lock_order(a, b) == lock_order(b, a) == sorted({a, b})
    first, second = ordered_pair(a, b)
    assert (first, second) == ordered_pair(b, a) and first <= second


def test_confidence_of_reasons():
    assert combined(["same_phone"]) == 0.9
    assert combined(["same_phone", "same_phone"]) == 0.9
    assert combined(["same_email_local_part_and_name", "same_name_and_organization"]) == 0.9
    assert strongest(["same_name_and_organization", "same_phone"]) == "same_phone"
    for size in range(1, len(REASONS) + 1):  # more reasons never lower the confidence, never reach 1
        for some in combinations(REASONS, size):
            assert max(float(REASONS[r]) for r in some) <= combined(some) < 1
            for extra in set(REASONS) - set(some):
                assert combined([*some, extra]) >= combined(some)


def test_uuid_order_is_the_database_order():
    """PostgreSQL compares uuids byte by byte; Python compares them as 128-bit integers: the same
    order, so the pair stored (first_id < second_id) and the lock order agree with the database."""
    ids = [uuid.uuid4() for _ in range(200)]
    assert sorted(ids) == sorted(ids, key=lambda u: u.bytes)
