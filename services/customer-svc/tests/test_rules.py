"""Pure rules of customer-svc: no database."""

import uuid
from datetime import UTC, datetime

import pytest

from customer_svc.customers.service import can_see_pii, identity_filters, pick_existing, to_read
from helpdesk_common.identity import Principal


def test_pick_existing_prefers_the_highest_priority_identity():
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = [("email", "x@y.z"), ("phone", "+1")]
    assert pick_existing(ids, {("phone", "+1"): b, ("email", "x@y.z"): a}) == a
    assert pick_existing(ids, {("phone", "+1"): b}) == b
    assert pick_existing(ids, {}) is None


@pytest.mark.parametrize(
    ("principal", "sees"),
    [
        (Principal(kind="user", id="1", role="admin"), True),
        (Principal(kind="user", id="1", role="supervisor"), True),
        (Principal(kind="user", id="1", role="agent"), True),
        (Principal(kind="user", id="1", role="viewer"), False),
        (Principal(kind="user", id="1"), False),
        (Principal(kind="channel", id="k", role="admin", channel="api"), False),
    ],
)
def test_can_see_pii(principal, sees):
    assert can_see_pii(principal) is sees


def test_to_read_masks_only_when_asked():
    row = {"id": uuid.uuid4(), "name": "n", "tier": "vip", "organization_id": None, "account_owner_id": None,
           "language": None, "time_zone": None, "tags": [], "notes": None, "attributes": {},
           "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC), "version": 1}
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = [{"id": a, "kind": "email", "value": "zhang.wei@example.com"},
           {"id": b, "kind": "phone", "value": "+8613900000000"}]
    assert to_read(row, ids, unmasked=True)["identities"] == [
        {"id": a, "kind": "email", "value": "zhang.wei@example.com"},
        {"id": b, "kind": "phone", "value": "+8613900000000"},
    ]
    masked = [i["value"] for i in to_read(row, ids, unmasked=False)["identities"]]
    assert masked == ["z***@example.com", "+8" + "*" * 10 + "00"]


def test_identity_filters_normalise_like_resolution():
    assert identity_filters(email=" Zhang.Wei@Example.COM ", phone="+86 (139) 0000-0000") == [
        ("email", "zhang.wei@example.com"),
        ("phone", "+8613900000000"),
    ]
    assert identity_filters(email=None, phone="0086 139 0000 0000") == [("phone", "+8613900000000")]
    assert identity_filters(email=None, phone=None) == []
