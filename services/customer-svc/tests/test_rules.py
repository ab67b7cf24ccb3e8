"""Pure rules of customer-svc: no database."""

import uuid
from datetime import UTC, datetime

import pytest

from customer_svc.customers.service import identity_filters, pick_existing, to_read
from customer_svc.pii.access import Policy, fields_of, render
from helpdesk_common.identity import Principal


def test_pick_existing_prefers_the_highest_priority_identity():
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = [("email", "x@y.z"), ("phone", "+1")]
    assert pick_existing(ids, {("phone", "+1"): b, ("email", "x@y.z"): a}) == a
    assert pick_existing(ids, {("phone", "+1"): b}) == b
    assert pick_existing(ids, {}) is None


AGENT = Principal(kind="user", id="1", role="agent")


@pytest.mark.parametrize(
    ("principal", "roles", "assignee_sees", "by_role", "asks_tickets"),
    [
        (Principal(kind="user", id="1", role="admin"), {"admin", "supervisor"}, True, True, False),
        (Principal(kind="user", id="1", role="supervisor"), {"admin", "supervisor"}, True, True, False),
        (AGENT, {"admin", "supervisor"}, True, False, True),
        (AGENT, {"admin", "supervisor"}, False, False, False),
        (AGENT, {"admin", "supervisor", "agent"}, True, True, False),
        (Principal(kind="user", id="1", role="supervisor"), {"admin"}, True, False, True),
        (Principal(kind="user", id="1", role="viewer"), {"admin", "supervisor"}, True, False, True),
        (Principal(kind="user", id="1"), {"admin", "supervisor"}, False, False, False),
        (Principal(kind="channel", id="k", role="admin", channel="api"), {"admin"}, True, False, False),
        (Principal(kind="visitor", id="v", role="admin"), {"admin"}, True, False, False),
    ],
)
def test_who_sees_identities_unmasked(principal, roles, assignee_sees, by_role, asks_tickets):
    rule = Policy(frozenset(roles), assignee_sees)
    assert rule.by_role(principal) is by_role
    assert rule.asks_tickets(principal) is asks_tickets


def test_render_masks_only_when_asked_and_to_read_takes_what_it_is_given():
    row = {"id": uuid.uuid4(), "name": "n", "tier": "vip", "organization_id": None, "account_owner_id": None,
           "language": None, "time_zone": None, "tags": [], "notes": None, "attributes": {},
           "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC), "version": 1}
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = [{"id": a, "kind": "email", "value": "zhang.wei@example.com"},
           {"id": b, "kind": "phone", "value": "+8613912345678"}]
    assert render(ids, unmasked=True) == [
        {"id": a, "kind": "email", "value": "zhang.wei@example.com"},
        {"id": b, "kind": "phone", "value": "+8613912345678"},
    ]
    masked = render(ids, unmasked=False)
    assert [i["value"] for i in masked] == ["z***@example.com", "+86 139****5678"]
    assert to_read(row, masked)["identities"] == masked
    assert fields_of(ids) == ["identities.email", "identities.phone"]
    assert fields_of([]) == []


def test_identity_filters_normalise_like_resolution():
    assert identity_filters(email=" Zhang.Wei@Example.COM ", phone="+86 (139) 0000-0000") == [
        ("email", "zhang.wei@example.com"),
        ("phone", "+8613900000000"),
    ]
    assert identity_filters(email=None, phone="0086 139 0000 0000") == [("phone", "+8613900000000")]
    assert identity_filters(email=None, phone=None) == []
