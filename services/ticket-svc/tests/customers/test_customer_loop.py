"""customer-svc's customer-life events through the real broker into ticket-svc (issue 11):
merges re-point tickets and the identity lookup, a removed identity stops linking, CSAT answers
show on the ticket and a bad one opens one follow-up, a churn episode opens one care ticket.
Duplicates are delivered on purpose (the same event twice, and the same answer as a new event);
a "sentinel" event with the same Kafka key, produced last, proves they were all consumed."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))


def now():
    return datetime.now(UTC)


def customer(customer_id, *identities):
    return events.CustomerCreated(source="test", subject=str(customer_id), data=events.CustomerCreatedData(
        customer_id=customer_id, identities=[{"kind": k, "value": v} for k, v in identities], created_at=now()))


def merged(survivor, gone, *identities):
    return events.CustomerMerged(source="test", subject=str(survivor), data=events.CustomerMergedData(
        survivor_id=survivor, merged_id=gone, identities=[{"kind": k, "value": v} for k, v in identities],
        actor="user:boss", at=now()))


def answered(survey_id, ticket_id, customer_id, rating, comment=None, *, key=None):
    return events.SurveyAnswered(source="test", subject=str(key or survey_id), data=events.SurveyAnsweredData(
        survey_id=survey_id, kind="csat", customer_id=customer_id, ticket_id=ticket_id, rating=rating,
        comment=comment, at=now()))


def nps(survey_id, customer_id, score, comment=None, *, ticket_id=None, key=None):
    return events.SurveyAnswered(source="test", subject=str(key or survey_id), data=events.SurveyAnsweredData(
        survey_id=survey_id, kind="nps", customer_id=customer_id, ticket_id=ticket_id, score=score,
        comment=comment, at=now()))


def churn(customer_id, episode, score, *, owner=None, language=None):
    reasons = [{"factor": "order_overdue", "points": min(score, 50), "en": "No order for 200 days",
                "zh_cn": "已200天未下单"},
               {"factor": "sla_breaches", "points": max(score - 50, 0), "en": "2 tickets breached their SLA",
                "zh_cn": "2个工单超出SLA"}]
    return events.InsightChurnRiskChanged(source="test", subject=str(customer_id), data=events.ChurnRiskChangedData(
        customer_id=customer_id, score=score, band="high" if score >= 70 else "medium", episode=episode,
        reasons=reasons, account_owner_id=owner, language=language, at=now()))


async def rows(db, sql, **params):
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


async def known(db, kind, value):
    """The customer the identity projection links ``kind:value`` to (None if none): by its blind
    index (the projection stores no plaintext, docs/security.md "ticket-svc: the requester on a ticket")."""
    from ticket_svc.pii.codec import codec

    found = await rows(db, "SELECT customer_id FROM customer_identity_projection WHERE kind = :k AND value_bidx = :v",
                       k=kind, v=codec().identity_index(value))
    return found[0]["customer_id"] if found else None


async def open_ticket(client, email, headers=CHANNEL, **extra):
    r = await client.post("/v1/tickets", json={"subject": "发票问题", "requester": {"email": email}, **extra},
                          headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def get(client, ticket_id):
    r = await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_merge_repoints_tickets_and_lookups_and_a_replay_changes_nothing(full_client, infra, db):
    survivor, gone = uuid.uuid4(), uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, customer(survivor, ("email", "li@example.com")),
                  customer(gone, ("email", "lei@example.com"), ("phone", "+8613800138000")))
    await wait_for(lambda: known(db, "phone", "+8613800138000"))
    await wait_for(lambda: known(db, "email", "li@example.com"))  # another key: maybe another partition
    kept = await open_ticket(full_client, "li@example.com")
    moved = [await open_ticket(full_client, "lei@example.com") for _ in range(2)]
    assert kept["customer_id"] == str(survivor) and {t["customer_id"] for t in moved} == {str(gone)}

    event = merged(survivor, gone, ("email", "lei@example.com"), ("phone", "+8613800138000"))
    again = merged(survivor, gone, ("email", "lei@example.com"), ("phone", "+8613800138000"))  # a new event id
    await produce(infra.kafka_bootstrap, full_client.topics, event, event, again)

    async def all_moved():
        return [(await get(full_client, t["id"]))["customer_id"] for t in moved] == [str(survivor)] * len(moved)

    await wait_for(all_moved)
    # same key as the merges, so consumed after them: once it is in the inbox, so are they
    sentinel = merged(survivor, uuid.uuid4())
    await produce(infra.kafka_bootstrap, full_client.topics, sentinel)
    await wait_for(lambda: consumed(db, sentinel))

    for t in moved:
        linked = await rows(db, "SELECT payload FROM outbox WHERE event_type = 'ticket.customer_linked' "
                                "AND key = :k", k=t["id"])
        assert [events.decode(r["payload"]).data.customer_id for r in linked] == [survivor]
        audit = await rows(db, "SELECT actor, changes FROM ticket_audit WHERE ticket_id = :t "
                               "AND action = 'customer_merged'", t=uuid.UUID(t["id"]))
        assert [(a["actor"], a["changes"]) for a in audit] == [
            ("user:boss", {"customer_id": {"before": str(gone), "after": str(survivor)}})]
    assert (await get(full_client, kept["id"]))["version"] == kept["version"]
    assert await known(db, "email", "lei@example.com") == survivor
    assert await known(db, "phone", "+8613800138000") == survivor
    # the merged customer's address now opens tickets of the survivor at intake
    assert (await open_ticket(full_client, "lei@example.com"))["customer_id"] == str(survivor)


async def consumed(db, event):
    """The projections consumer committed ``event`` (its inbox row)."""
    return bool(await rows(db, "SELECT 1 FROM inbox WHERE event_id = :e", e=event.id))


async def test_a_removed_identity_no_longer_links_new_tickets(full_client, infra, db):
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics,
                  customer(cid, ("email", "old@example.com"), ("email", "keep@example.com")))
    await wait_for(lambda: known(db, "email", "keep@example.com"))
    assert (await open_ticket(full_client, "old@example.com"))["customer_id"] == str(cid)
    removed = events.CustomerIdentityRemoved(source="test", subject=str(cid), data=events.CustomerIdentityRemovedData(
        customer_id=cid, identity={"kind": "email", "value": "old@example.com"}, actor="user:boss"))
    await produce(infra.kafka_bootstrap, full_client.topics, removed, removed)

    async def gone():
        return await known(db, "email", "old@example.com") is None

    await wait_for(gone)
    assert (await open_ticket(full_client, "old@example.com"))["customer_id"] is None
    assert (await open_ticket(full_client, "keep@example.com"))["customer_id"] == str(cid)


async def test_a_bad_csat_opens_one_follow_up_in_the_team_and_a_good_one_none(full_client, infra, db):
    team = await full_client.post("/v1/teams", json={"name": "售后", "strategy": "manual", "members": []},
                                  headers=ADMIN)
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    cid = uuid.uuid4()
    bad = await open_ticket(full_client, "angry@example.com", headers=ADMIN, team_id=team_id, language="zh-CN")
    good = await open_ticket(full_client, "happy@example.com", headers=ADMIN, team_id=team_id)
    assert (await get(full_client, bad["id"]))["csat"] is None

    survey, other_survey = uuid.uuid4(), uuid.uuid4()
    first = answered(survey, uuid.UUID(bad["id"]), cid, 1, "等了三天没人回复")
    replayed = answered(survey, uuid.UUID(bad["id"]), cid, 1, "等了三天没人回复")  # same answer, new event id
    # the good answer rides the bad one's key, so it is consumed after both duplicates
    fine = answered(other_survey, uuid.UUID(good["id"]), cid, 4, "thanks", key=survey)
    await produce(infra.kafka_bootstrap, full_client.topics, first, first, replayed, fine)

    async def good_shown():
        return (await get(full_client, good["id"]))["csat"]

    csat = await wait_for(good_shown)
    assert csat["rating"] == 4 and csat["comment"] == "thanks" and csat["answered_at"]
    shown = (await get(full_client, bad["id"]))["csat"]
    assert shown["rating"] == 1 and shown["comment"] == "等了三天没人回复"

    follow_ups = await rows(db, "SELECT id, type, team_id, customer_id, follow_up_of, subject, created_by, requester "
                                "FROM tickets WHERE type = 'follow_up'")
    assert len(follow_ups) == 1, follow_ups
    f = follow_ups[0]
    assert str(f["follow_up_of"]) == bad["id"] and str(f["team_id"]) == team_id and f["customer_id"] == cid
    # about the customer, not to them: no address, so no acknowledgement e-mail goes out
    assert f["created_by"] == "system:surveys" and f["requester"] == {}
    assert f["subject"].startswith(f"满意度回访：工单 #{bad['number']} 评分 1/5")
    link = await rows(db, "SELECT kind FROM ticket_links WHERE ticket_id = :a AND other_id = :b",
                      a=f["id"], b=uuid.UUID(bad["id"]))
    assert [r["kind"] for r in link] == ["follow_up_of"]
    note = await rows(db, "SELECT author_kind, public, body_text FROM messages WHERE ticket_id = :t", t=f["id"])
    assert [(m["author_kind"], m["public"]) for m in note] == [("system", False)]
    assert "等了三天没人回复" in note[0]["body_text"]
    audit = await rows(db, "SELECT count(*) AS n FROM ticket_audit WHERE ticket_id = :t AND action = 'csat_answered'",
                       t=uuid.UUID(bad["id"]))
    assert audit[0]["n"] == 1


async def test_an_nps_detractor_opens_one_follow_up_on_the_triggering_ticket_or_routed(full_client, infra, db):
    team = await full_client.post("/v1/teams", json={"name": "客户成功", "strategy": "manual", "members": []},
                                  headers=ADMIN)
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    cid, other = uuid.uuid4(), uuid.uuid4()
    trigger = await open_ticket(full_client, "nps@example.com", headers=ADMIN, team_id=team_id, language="zh-CN")
    on_ticket, without, promoter, passive = (uuid.uuid4() for _ in range(4))
    first = nps(on_ticket, cid, 3, "推荐？不会。", ticket_id=uuid.UUID(trigger["id"]))
    replayed = nps(on_ticket, cid, 3, "推荐？不会。", ticket_id=uuid.UUID(trigger["id"]))  # new event id
    # the rest ride the first one's key, so they are consumed after both duplicates
    lone = nps(without, other, 0, None, key=on_ticket)
    happy = nps(promoter, cid, 10, "great", key=on_ticket)
    lukewarm = nps(passive, cid, 7, None, key=on_ticket, ticket_id=uuid.UUID(trigger["id"]))
    await produce(infra.kafka_bootstrap, full_client.topics, first, first, replayed, lone, happy, lukewarm)
    await wait_for(lambda: _inbox_count(db, 5))  # five events, the first one delivered twice
    follow_ups = await rows(db, "SELECT id, type, team_id, customer_id, follow_up_of, subject, created_by, requester, "
                                "priority FROM tickets WHERE type = 'follow_up' ORDER BY created_at")
    assert len(follow_ups) == 2, follow_ups
    by_customer = {f["customer_id"]: f for f in follow_ups}
    f = by_customer[cid]
    assert str(f["follow_up_of"]) == trigger["id"] and str(f["team_id"]) == team_id
    assert f["created_by"] == "system:surveys" and f["requester"] == {} and f["priority"] == "normal"
    assert f["subject"] == f"NPS 回访：推荐意愿 3/10（贬损者） —— 工单 #{trigger['number']} 发票问题"
    link = await rows(db, "SELECT kind FROM ticket_links WHERE ticket_id = :a AND other_id = :b",
                      a=f["id"], b=uuid.UUID(trigger["id"]))
    assert [r["kind"] for r in link] == ["follow_up_of"]
    note = await rows(db, "SELECT author_kind, public, body_text FROM messages WHERE ticket_id = :t", t=f["id"])
    assert [(m["author_kind"], m["public"]) for m in note] == [("system", False)]
    assert "推荐？不会。" in note[0]["body_text"]
    g = by_customer[other]  # no ticket: routed (no rule here, so no team), linked to nothing
    assert g["follow_up_of"] is None and g["team_id"] is None and g["subject"] == "Follow-up: NPS 0/10 (detractor)"
    # an NPS answer is not a CSAT: the triggering ticket shows none
    assert (await get(full_client, trigger["id"]))["csat"] is None


async def _inbox_count(db, n):
    found = await rows(db, "SELECT count(*) AS n FROM inbox WHERE event_type = 'survey.answered'")
    return found[0]["n"] >= n or None


async def test_a_churn_episode_opens_one_care_ticket_for_the_owner_until_it_is_solved(
        full_client, infra, db, known_users):
    owner = uuid.uuid4()
    await known_users(str(owner))
    r = await full_client.put(f"/v1/agents/{owner}", json={"display_name": "客户经理", "status": "online"},
                              headers=ADMIN)
    assert r.status_code == 200, r.text
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, customer(cid, ("email", "wang@example.com")))
    await wait_for(lambda: known(db, "email", "wang@example.com"))
    await produce(infra.kafka_bootstrap, full_client.topics, churn(cid, "started", 78, owner=owner, language="zh-CN"))

    async def care_tickets():
        return await rows(db, "SELECT id, status, assignee_id, customer_id, subject, requester, care_of, priority "
                              "FROM tickets WHERE type = 'care' ORDER BY created_at")

    first = (await wait_for(care_tickets))[0]
    assert first["assignee_id"] == str(owner) and first["customer_id"] == cid and first["care_of"] == cid
    assert first["subject"].startswith("客户关怀：流失风险 78/100") and "已200天未下单" in first["subject"]
    # the churn score is for agents: no requester address, so nothing about it reaches the customer
    assert first["requester"] == {} and first["priority"] == "high"

    # a second start while it is open opens none; the end (same key, after it) notes the care ticket
    await produce(infra.kafka_bootstrap, full_client.topics, churn(cid, "started", 81, owner=owner),
                  churn(cid, "ended", 55, owner=owner))

    async def noted():
        return await rows(db, "SELECT body_text, public, author_kind FROM messages WHERE ticket_id = :t "
                              "AND author_kind = 'system' AND body_text LIKE '%55/100%'", t=first["id"])

    note = (await wait_for(noted))[0]
    assert note["public"] is False and "流失风险已降至 55/100" in note["body_text"]
    assert len(await care_tickets()) == 1 and (await get(full_client, first["id"]))["status"] != "solved"

    # solved: the next episode opens a new one
    solved = await full_client.patch(f"/v1/tickets/{first['id']}", json={"status": "solved"}, headers=ADMIN)
    assert solved.status_code == 200, solved.text
    await produce(infra.kafka_bootstrap, full_client.topics, churn(cid, "started", 90, owner=owner, language="en"))

    async def two():
        found = await care_tickets()
        return found if len(found) == 2 else None

    old, new = await wait_for(two)
    assert old["care_of"] is None and new["care_of"] == cid and new["assignee_id"] == str(owner)
    assert new["subject"].startswith("Customer care: churn risk 90/100")


async def test_care_without_an_active_owner_is_routed_and_the_database_refuses_a_second(
        full_client, infra, db, known_users):
    gone_owner = uuid.uuid4()
    await known_users(str(gone_owner), active=False)
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, churn(cid, "started", 75, owner=gone_owner))

    async def care():
        return await rows(db, "SELECT id, assignee_id, language FROM tickets WHERE care_of = :c", c=cid)

    found = (await wait_for(care))[0]
    assert found["assignee_id"] is None and found["language"] == "en"
    async with db.connect() as conn:
        try:
            await conn.execute(text(
                "INSERT INTO tickets (id, subject, status, priority, type, requester, created_by, created_at, "
                "updated_at, care_of) VALUES (gen_random_uuid(), 'x', 'new', 'normal', 'care', '{}', 't', now(), "
                "now(), :c)"), {"c": cid})
        except Exception as exc:  # noqa: BLE001 - the unique index's refusal
            assert "ux_tickets_open_care" in str(exc)
        else:
            raise AssertionError("a second open care ticket of one customer was stored")
