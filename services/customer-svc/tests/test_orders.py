"""Orders and behaviour events on the real database: idempotent by external id (a repeat writes
nothing, a change is one version and one order.updated), money per currency, who may do what,
lists newest first with cursors."""

import uuid

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))


async def outbox(db, prefix: str) -> list:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT key, payload FROM outbox WHERE event_type LIKE :p ORDER BY seq"),
                                   {"p": prefix + "%"})).all()
    return [(r.key, events.decode(r.payload)) for r in rows]


async def customer(api, external_id: str = "C1") -> str:
    r = await api.post("/v1/customers", json={"name": "张三", "identities": [
        {"kind": "external:api", "value": external_id}]}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()["id"]


ORDER = {"external_id": "SO-1", "ordered_at": "2026-11-01T10:00:00+08:00", "amount": "12.5", "currency": "CNY",
         "status": "paid", "items": [{"sku": "A-1", "name": "茶叶", "quantity": 2, "unit_price": "6.25"}]}


async def test_recording_again_updates_or_changes_nothing(api, db):
    customer_id = await customer(api)
    url = f"/v1/customers/{customer_id}/orders"
    r = await api.post(url, json=ORDER, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["amount"], order["currency"], order["status"], order["version"], order["source"]) == (
        "12.50", "CNY", "paid", 1, "api")
    assert order["items"] == [{"sku": "A-1", "name": "茶叶", "quantity": 2, "unit_price": "6.25"}]
    again = await api.post(url, json={**ORDER, "amount": "12.50"}, headers=ADMIN)
    assert again.status_code == 200 and again.headers["x-order-outcome"] == "unchanged"
    assert again.json() == order
    shipped = await api.post(url, json={**ORDER, "status": "shipped", "amount": "11"}, headers=SUPERVISOR)
    assert shipped.status_code == 200 and shipped.headers["x-order-outcome"] == "updated"
    assert (shipped.json()["id"], shipped.json()["status"], shipped.json()["amount"], shipped.json()["version"]) == (
        order["id"], "shipped", "11.00", 2)
    # by the customer's external id, through POST /v1/orders: the same order, no duplicate
    same = await api.post("/v1/orders", json={**ORDER, "status": "shipped", "amount": "11.00",
                                              "customer_external_id": "C1"}, headers=SUPERVISOR)
    assert same.status_code == 200 and same.json()["id"] == order["id"] and same.json()["version"] == 2
    # the same external id in another source system is another order
    other = await api.post(url, json={**ORDER, "source": "erp"}, headers=SUPERVISOR)
    assert other.status_code == 201 and other.json()["id"] != order["id"]
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM orders"))).scalar() == 2

    log = await outbox(db, "order.")
    assert [e.type for _, e in log] == ["order.recorded", "order.updated", "order.recorded"]
    assert all(key == customer_id for key, _ in log)
    assert log[1][1].data.changes == {"amount": {"before": "12.50", "after": "11.00"},
                                      "status": {"before": "paid", "after": "shipped"}}
    assert log[0][1].data.amount == "12.50" and log[0][1].data.items[0].name == "茶叶"


async def test_the_largest_order_and_its_change_fit_an_event(api, db):
    """100 items of the longest Chinese names and SKUs, then all of them changed: both events are
    under EVENT_MAX_BYTES because an update names the items' change without carrying them twice."""
    url = f"/v1/customers/{await customer(api)}/orders"
    items = [{"sku": "货" * 100, "name": "茶" * 200, "quantity": 1, "unit_price": "1.00"} for _ in range(100)]
    assert (await api.post(url, json={**ORDER, "items": items}, headers=SUPERVISOR)).status_code == 201
    changed = [{**item, "name": "咖" * 200} for item in items]
    r = await api.post(url, json={**ORDER, "items": changed}, headers=SUPERVISOR)
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    log = await outbox(db, "order.")
    assert log[-1][1].data.changes == {"items": {}} and log[-1][1].data.items[0].name == "咖" * 200


async def test_an_external_id_belongs_to_one_customer(api):
    first, second = await customer(api, "C1"), await customer(api, "C2")
    assert (await api.post(f"/v1/customers/{first}/orders", json=ORDER, headers=SUPERVISOR)).status_code == 201
    r = await api.post(f"/v1/customers/{second}/orders", json=ORDER, headers=SUPERVISOR)
    assert r.status_code == 409 and r.json()["type"].endswith("order-customer-mismatch")


async def test_money_and_currency(api):
    url = f"/v1/customers/{await customer(api)}/orders"
    cases = [
        ({"amount": "12.345"}, "body.amount"),  # CNY has 2 places
        ({"amount": "100.5", "currency": "JPY"}, "body.amount"),  # JPY has none
        ({"amount": "-1"}, "body.amount"),
        ({"amount": "1e3"}, "body.amount"),
        ({"amount": "NaN"}, "body.amount"),
        ({"amount": 12.5}, "body.amount"),  # a JSON float is not exact
        ({"amount": False}, "body.amount"),  # not the integer 0
        ({"items": [{"unit_price": False}]}, "body.items"),
        ({"amount": "1000000000000000"}, "body.amount"),
        ({"currency": "ABC"}, "body.currency"),
        ({"currency": "RMB"}, "body.currency"),
        ({"currency": "CN"}, "body.currency"),
        ({"currency": "cny"}, "body.currency"),  # the document's enum is upper case
        ({"amount": " 12.5"}, "body.amount"),
        ({"ordered_at": "2026-11-01T10:00:00"}, "body.ordered_at"),  # no offset
        ({"ordered_at": "9999-12-31T23:59:59-14:00"}, "body.ordered_at"),  # past year 9999 in UTC
        ({"status": "lost"}, "body.status"),
        ({"items": [{"quantity": 0}]}, "body.items"),
        ({"items": [{"unit_price": "1.001"}]}, "body.items"),
        ({"items": [{"quantity": 1}] * 101}, "body.items"),
    ]
    for index, (change, field) in enumerate(cases):
        r = await api.post(url, json={**ORDER, "external_id": f"bad-{index}", **change}, headers=SUPERVISOR)
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert any(e["field"].startswith(field) for e in r.json()["errors"]), (change, r.json()["errors"])
        if change.get("amount") in ("12.345", "100.5") or "'1.001'" in str(change):
            # schema-valid, refused by a rule across amount and currency: said so (the document cannot)
            assert {e["code"] for e in r.json()["errors"]} == {"cross_field"}, r.json()["errors"]
    good = [({"amount": "1200", "currency": "JPY"}, "1200"), ({"amount": "1.25", "currency": "KWD"}, "1.250"),
            ({"amount": 7, "currency": "USD"}, "7.00"), ({"amount": "0"}, "0.00"), ({"amount": "12.500"}, "12.50")]
    for index, (change, shown) in enumerate(good):
        r = await api.post(url, json={**ORDER, "external_id": f"good-{index}", "items": [], **change},
                           headers=SUPERVISOR)
        assert r.status_code == 201 and r.json()["amount"] == shown, (change, r.text)


async def test_who_may_and_the_customer_lookup(api):
    customer_id = await customer(api)
    url = f"/v1/customers/{customer_id}/orders"
    for headers in (AGENT, CHANNEL):
        assert (await api.post(url, json=ORDER, headers=headers)).status_code == 403
        assert (await api.post("/v1/orders", json={**ORDER, "customer_id": customer_id},
                               headers=headers)).status_code == 403
    order = (await api.post(url, json=ORDER, headers=SUPERVISOR)).json()
    assert (await api.get(f"/v1/orders/{order['id']}", headers=AGENT)).json() == order
    assert (await api.get(f"/v1/orders/{order['id']}", headers=CHANNEL)).status_code == 403
    assert (await api.get(f"/v1/orders/{uuid.uuid4()}", headers=AGENT)).status_code == 404
    assert (await api.post(f"/v1/customers/{uuid.uuid4()}/orders", json={**ORDER, "external_id": "x"},
                           headers=SUPERVISOR)).status_code == 404
    nobody = await api.post("/v1/orders", json={**ORDER, "external_id": "x", "customer_external_id": "nobody"},
                            headers=SUPERVISOR)
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "body.customer_external_id"
    unknown = await api.post("/v1/orders", json={**ORDER, "external_id": "x", "customer_id": str(uuid.uuid4())},
                             headers=SUPERVISOR)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "not_found"
    two = await api.post("/v1/orders", json={**ORDER, "customer_id": customer_id, "customer_external_id": "C1"},
                         headers=SUPERVISOR)
    assert two.status_code == 422
    by_identity = await api.post("/v1/orders", json={**ORDER, "external_id": "SO-2", "customer_identity": {
        "kind": "external:api", "value": "C1"}}, headers=SUPERVISOR)
    assert by_identity.status_code == 201 and by_identity.json()["customer_id"] == customer_id


async def test_lists_newest_first_with_cursors(api):
    customer_id = await customer(api)
    url = f"/v1/customers/{customer_id}/orders"
    for day in (3, 1, 2):
        r = await api.post(url, json={**ORDER, "external_id": f"SO-{day}",
                                      "ordered_at": f"2026-11-0{day}T00:00:00Z"}, headers=SUPERVISOR)
        assert r.status_code == 201
    seen, cursor = [], None
    while True:
        r = await api.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=AGENT)
        assert r.status_code == 200, r.text
        seen += [o["external_id"] for o in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["SO-3", "SO-2", "SO-1"]
    assert (await api.get(f"/v1/customers/{uuid.uuid4()}/orders", headers=AGENT)).status_code == 404
    assert (await api.get(url, params={"cursor": "nope"}, headers=AGENT)).status_code == 400


async def test_behaviour_events_once_per_external_id(api, db):
    customer_id = await customer(api)
    url = f"/v1/customers/{customer_id}/interactions"
    body = {"kind": "login", "occurred_at": "2026-11-02T08:00:00+08:00", "external_id": "ev-1",
            "properties": {"device": "iPhone", "城市": "上海"}}
    first = await api.post(url, json=body, headers=SUPERVISOR)
    assert first.status_code == 201, first.text
    again = await api.post(url, json=body, headers=SUPERVISOR)
    assert again.status_code == 200 and again.json() == first.json()
    assert (await api.post(url, json={**body, "external_id": None, "kind": "coupon",
                                      "occurred_at": "2026-11-01T12:00:00Z"},
                           headers=SUPERVISOR)).status_code == 201
    assert (await api.post(url, json={**body, "external_id": None, "kind": "custom:wishlist",
                                      "occurred_at": "2026-11-01T00:00:00Z"}, headers=SUPERVISOR)).status_code == 201
    for bad in ({"kind": "hack"}, {"properties": {"x": "a" * 5000}}, {"occurred_at": "yesterday"},
                {"properties": {"n": 2 ** 70}}, {"properties": {"n": [-1.7e308]}}, {"properties": {"k" * 65: 1}},
                {"properties": {"n": [[[[[[[[[1]]]]]]]]]}}, {"occurred_at": "0001-01-01T00:00:00+14:00"}):
        r = await api.post(url, json={**body, **bad}, headers=SUPERVISOR)
        assert r.status_code == 422, (bad, r.text)
    deep = await api.post(url, json={**body, "external_id": "deep", "kind": "page_view",
                                     "occurred_at": "2026-10-01T00:00:00Z", "properties": {"n": [[[[[[[[1]]]]]]]]}},
                          headers=SUPERVISOR)
    assert deep.status_code == 201, deep.text  # eight levels: what the document's JsonValue allows
    assert (await api.post(url, json=body, headers=AGENT)).status_code == 403
    listed = await api.get(url, params={"limit": 2}, headers=AGENT)
    assert [i["kind"] for i in listed.json()["items"]] == ["login", "coupon"]
    rest = await api.get(url, params={"cursor": listed.json()["next_cursor"]}, headers=AGENT)
    assert [i["kind"] for i in rest.json()["items"]] == ["custom:wishlist", "page_view"]
    assert rest.json()["next_cursor"] is None
    log = await outbox(db, "behavior.")
    assert [e.data.kind for _, e in log] == ["login", "coupon", "custom:wishlist", "page_view"]
    assert log[0][1].data.properties == {"device": "iPhone", "城市": "上海"}
