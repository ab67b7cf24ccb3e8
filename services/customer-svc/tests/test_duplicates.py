"""Duplicate suggestions on the real database, through the blind indexes: each reason found (phone digits, WeChat unionid
under another kind, e-mail local part with a case/width-folded name, a name in one organisation),
the confidence of several together, the list across the base paged with each pair once under its
strongest reason, dismissals, who may ask; and the plans: each key query can use its index."""

import uuid

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))


async def create(api, identities: list[tuple[str, str]], **profile) -> str:
    r = await api.post("/v1/customers", json={"identities": [{"kind": k, "value": v} for k, v in identities],
                                              **profile}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def organization(api, name: str) -> str:
    r = await api.post("/v1/organizations", json={"name": name}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def legacy_identity(db, customer_id: str, kind: str, value: str) -> None:
    """An identity keyed as before phones were keyed E.164 (migration 0005 kept such keys when
    two customers held the same number), stored encrypted with its blind indexes as every row is
    once ``python -m customer_svc.pii reencrypt`` has run."""
    from customer_svc.pii.codec import codec

    enc, bidx, phone_key, email_local = codec().identity_columns(kind, value)
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO customer_identities (kind, value_enc, value_bidx, phone_key, email_local, "
                                "customer_id) VALUES (:k, :e, :b, :p, :l, :c)"),
                           {"k": kind, "e": enc, "b": bidx, "p": phone_key, "l": email_local, "c": customer_id})


async def duplicates(api, customer_id: str) -> dict[str, tuple[float, list[str]]]:
    r = await api.get(f"/v1/customers/{customer_id}/duplicates", headers=SUPERVISOR)
    assert r.status_code == 200, r.text
    return {item["customer"]["id"]: (item["confidence"], [x["reason"] for x in item["reasons"]])
            for item in r.json()["items"]}


async def test_each_reason_is_found(api, db):
    by_email = await create(api, [("email", "x1@example.com")], name="张伟")
    legacy = await create(api, [("email", "x2@example.com")], name="王芳")
    await legacy_identity(db, legacy, "phone", "138 0013 8000")
    e164 = await create(api, [("phone", "+8613800138000")], name="Fang Wang")
    assert await duplicates(api, legacy) == {e164: (0.9, ["same_phone"])}
    assert await duplicates(api, e164) == {legacy: (0.9, ["same_phone"])}

    unionid = await create(api, [("wechat_unionid", "oUnion-1")])
    external = await create(api, [("external:wechat", "oUnion-1")])
    assert await duplicates(api, unionid) == {external: (0.95, ["same_wechat_unionid"])}
    assert await duplicates(api, external) == {unionid: (0.95, ["same_wechat_unionid"])}

    # e-mail local part with the same name: case and width folded; Chinese names exactly
    latin = await create(api, [("email", "zhangwei@qq.com")], name="Zhang Wei")
    wide = await create(api, [("email", "ZhangWei@163.com")], name="ＺＨＡＮＧ　wei")
    other_name = await create(api, [("email", "zhangwei@126.com")], name="Zhang Wen")
    assert await duplicates(api, latin) == {wide: (0.75, ["same_email_local_part_and_name"])}
    han = await create(api, [("email", "zw@qq.com")], name="张伟")
    han_too = await create(api, [("email", "zw@163.com")], name=" 张伟 ")
    await create(api, [("email", "zw@126.com")], name="张伟伟")
    assert await duplicates(api, han) == {han_too: (0.75, ["same_email_local_part_and_name"])}
    assert other_name not in await duplicates(api, wide)

    # a name within one organisation; another organisation's namesake is someone else
    acme, other_org = await organization(api, "Acme"), await organization(api, "其他公司")
    li = await create(api, [("email", "li.na@acme.cn")], name="李娜", organization_id=acme)
    li_too = await create(api, [("phone", "+8613900000001")], name="李娜", organization_id=acme)
    await create(api, [("phone", "+8613900000002")], name="李娜", organization_id=other_org)
    assert await duplicates(api, li) == {li_too: (0.6, ["same_name_and_organization"])}
    # two reasons together: stronger than either
    both = await create(api, [("email", "li.na@qq.com")], name="李娜", organization_id=acme)
    found = await duplicates(api, li)
    assert found[both] == (0.9, ["same_email_local_part_and_name", "same_name_and_organization"])
    assert by_email not in await duplicates(api, han)  # 张伟 without a shared local part


async def test_list_across_the_base_and_dismissals(api, db):
    a = await create(api, [("email", "a@example.com")], name="王芳")
    await legacy_identity(db, a, "phone", "13800138000")
    b = await create(api, [("phone", "+8613800138000")], name="王芳")
    acme = await organization(api, "Acme")
    c = await create(api, [("email", "c@acme.cn")], name="李娜", organization_id=acme)
    d = await create(api, [("email", "d@acme.cn")], name="李娜", organization_id=acme)
    e = await create(api, [("email", "e@acme.cn")], name="李娜", organization_id=acme)
    u = await create(api, [("wechat_unionid", "oU-9")])
    v = await create(api, [("external:crm", "oU-9")])

    whole = await api.get("/v1/customer-duplicates", headers=SUPERVISOR)
    assert whole.status_code == 200, whole.text
    items = whole.json()["items"]
    pairs = [({i["first"]["id"], i["second"]["id"]}, i["reasons"][0]["reason"]) for i in items]
    assert pairs[0] == ({u, v}, "same_wechat_unionid") and pairs[1] == ({a, b}, "same_phone")
    assert sorted(map(sorted, (p for p, _ in pairs[2:]))) == sorted(map(sorted, ({c, d}, {c, e}, {d, e})))
    assert whole.json()["next_cursor"] is None

    # one at a time: the same pairs, each once
    seen, cursor = [], None
    for _ in range(10):
        r = await api.get("/v1/customer-duplicates", params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                          headers=SUPERVISOR)
        assert r.status_code == 200, r.text
        seen += [{i["first"]["id"], i["second"]["id"]} for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [p for p, _ in pairs]

    # dismissed pairs are no longer suggested, in either list
    r = await api.post("/v1/customer-duplicates/dismiss", json={"first_id": d, "second_id": c}, headers=SUPERVISOR)
    assert r.status_code == 204
    again = await api.post("/v1/customer-duplicates/dismiss", json={"first_id": c, "second_id": d}, headers=ADMIN)
    assert again.status_code == 204
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM duplicate_dismissals"))).scalar() == 1
    assert set(await duplicates(api, c)) == {e}
    listed = [{i["first"]["id"], i["second"]["id"]} for i in
              (await api.get("/v1/customer-duplicates", headers=SUPERVISOR)).json()["items"]]
    assert {c, d} not in listed and {c, e} in listed and len(listed) == 4

    # merged customers are never suggested
    assert (await api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=SUPERVISOR)).status_code == 200
    assert await duplicates(api, a) == {}
    gone = await api.get(f"/v1/customers/{b}/duplicates", headers=SUPERVISOR)
    assert gone.status_code == 410 and gone.json()["survivor_id"] == a


async def test_who_may_and_bad_input(api):
    a = await create(api, [("email", "a@example.com")])
    b = await create(api, [("email", "b@example.com")])
    for headers in (AGENT, CHANNEL):
        for method, url, body in (("GET", f"/v1/customers/{a}/duplicates", None),
                                  ("GET", "/v1/customer-duplicates", None),
                                  ("POST", "/v1/customer-duplicates/dismiss", {"first_id": a, "second_id": b})):
            r = await api.request(method, url, json=body, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", (url, r.text)
    url = "/v1/customer-duplicates/dismiss"
    same = await api.post(url, json={"first_id": a, "second_id": a}, headers=SUPERVISOR)
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "body.second_id"
    unknown = await api.post(url, json={"first_id": a, "second_id": str(uuid.uuid4())}, headers=SUPERVISOR)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "not_found"
    assert (await api.post(url, json={"first_id": a}, headers=SUPERVISOR)).status_code == 422
    assert (await api.get(f"/v1/customers/{uuid.uuid4()}/duplicates", headers=SUPERVISOR)).status_code == 404
    for cursor in ("x", "W10", "WzksbnVsbF0", "WzMsWyJub3QtYS11dWlkIiwiIl1d"):
        r = await api.get("/v1/customer-duplicates", params={"cursor": cursor}, headers=SUPERVISOR)
        assert r.status_code == 400 and r.json()["type"].endswith("invalid-cursor"), (cursor, r.text)
    assert (await api.get("/v1/customer-duplicates", params={"limit": 51}, headers=SUPERVISOR)).status_code == 422


async def test_each_key_query_can_use_its_index(api, db, raw):
    """The key expressions of the queries are the indexed ones: with sequential scans off, the
    plans name the indexes (with a few rows the planner would scan the table anyway)."""
    from customer_svc.duplicates import repository

    customer = await create(api, [("email", "a@example.com"), ("phone", "+8613800138000")], name="王芳")
    await raw.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + repository._OF_CUSTOMER, uuid.UUID(customer), 50))
    for index in ("ix_customer_identities_phone_key", "ix_customer_identities_email_local_bidx",
                  "ix_customers_org_name_bidx", "ix_customer_identities_bidx"):
        assert index in plan, plan
    for reason, index in (("same_phone", "ix_customer_identities_phone_key"),
                          ("same_wechat_unionid", "_customer_identities_bidx"),
                          ("same_email_local_part_and_name", "ix_customer_identities_email_local_bidx"),
                          ("same_name_and_organization", "ix_customers_org_name_bidx")):
        key = "00000000-0000-0000-0000-000000000000" if reason == "same_name_and_organization" else ""
        args = (key, 20, 25) if reason in repository._ONE_KEY else (key, "", 20, 25)
        plan = "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + repository._GROUPS[reason], *args))
        assert index in plan, (reason, plan)
