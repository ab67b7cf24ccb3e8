"""Votes, view counts and the review queue over HTTP: one vote per viewer and article (users,
customers, anonymous readers by X-KB-Voter; a second vote replaces the first), kb.article_feedback
for new and changed votes only, articles flagged by negative share or review date."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

from .conftest import customer_headers, publish


def _anon(voter: str) -> dict:
    return {"X-KB-Voter": voter, "x-kb-client": uuid.uuid4().hex}


async def _feedback_events(db) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE event_type = 'kb.article_feedback' ORDER BY seq"))).scalars().all()
    return [orjson.loads(r)["data"] for r in rows]


async def test_one_vote_per_viewer_and_article(kb, headers, db):
    article = await publish(kb, headers["editor"], title="如何申请退款", body="<p>退款</p>")
    url = f"/v1/kb/articles/{article['id']}/votes"
    first = await kb.post(url, json={"helpful": True}, headers=_anon("reader-aaaaaaaaaaaaaa"))
    assert first.status_code == 201, first.text
    assert first.json() == {"article_id": article["id"], "locale": "zh-CN", "helpful": True, "has_comment": False,
                            "helpful_votes": 1, "not_helpful_votes": 0}
    same = await kb.post(url, json={"helpful": True}, headers=_anon("reader-aaaaaaaaaaaaaa"))
    assert same.status_code == 200 and same.json()["helpful_votes"] == 1
    changed = await kb.post(url, json={"helpful": False, "comment": "  没有说明退款多久到账  "},
                            headers=_anon("reader-aaaaaaaaaaaaaa"))
    assert changed.status_code == 200
    assert (changed.json()["helpful_votes"], changed.json()["not_helpful_votes"]) == (0, 1)
    # other viewers: another anonymous reader, a customer (twice), an agent (twice)
    customer = customer_headers()
    for h in (_anon("reader-bbbbbbbbbbbbbb"), customer, customer, headers["agent"], headers["agent"]):
        r = await kb.post(url, json={"helpful": True, "locale": "zh-CN"}, headers=h)
        assert r.status_code in (200, 201), r.text
    assert r.json()["helpful_votes"] == 3 and r.json()["not_helpful_votes"] == 1
    # one event per new or changed vote, never the comment's text
    sent = await _feedback_events(db)
    assert [(e["helpful"], e["has_comment"], e["viewer_kind"]) for e in sent] == [
        (True, False, "public"), (False, True, "public"), (True, False, "public"), (True, False, "customer"),
        (True, False, "staff")]
    async with db.connect() as conn:
        voters = (await conn.execute(text("SELECT voter FROM kb_article_votes"))).scalars().all()
        comment = await conn.scalar(text("SELECT comment FROM kb_article_votes WHERE NOT helpful"))
    assert len(voters) == 4 and not any("reader-" in v for v in voters)  # the anonymous id is digested
    assert comment == "没有说明退款多久到账"


async def test_votes_need_a_readable_article_and_a_voter(kb, headers):
    agents_only = await publish(kb, headers["editor"], title="内部退款流程", body="<p>内部</p>", visibility="agents")
    draft = await publish(kb, headers["editor"], title="草稿", body="<p>草稿</p>", publish=False)
    public = await publish(kb, headers["editor"], title="公开", body="<p>公开</p>")
    for article in (agents_only, draft, {"id": str(uuid.uuid4())}):
        r = await kb.post(f"/v1/kb/articles/{article['id']}/votes", json={"helpful": True},
                          headers=_anon("reader-cccccccccccccc"))
        assert r.status_code == 404, r.text
    assert (await kb.post(f"/v1/kb/articles/{agents_only['id']}/votes", json={"helpful": True},
                          headers=headers["agent"])).status_code == 201
    url = f"/v1/kb/articles/{public['id']}/votes"
    r = await kb.post(url, json={"helpful": True}, headers={"x-kb-client": "a"})  # anonymous, no voter id
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "voter_required"
    for bad_voter in ("short", "x" * 129, "has space in it....."):
        r = await kb.post(url, json={"helpful": True}, headers=_anon(bad_voter))
        assert r.status_code == 422, bad_voter
    for body in ({}, {"helpful": "yes"}, {"helpful": 1}, {"helpful": True, "comment": "x" * 2001},
                 {"helpful": True, "comment": "a\x00b"}, {"helpful": True, "extra": 1},
                 {"helpful": True, "locale": "??"}):
        r = await kb.post(url, json=body, headers=_anon("reader-dddddddddddddd"))
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await kb.post(url, json={"helpful": True, "locale": "en"}, headers=_anon("reader-dddddddddddddd"))
    assert r.status_code == 404  # no English translation


async def test_view_counts_and_the_review_queue(kb, headers, db):
    editor = headers["editor"]
    liked = await publish(kb, editor, title="如何申请退款", body="<p>退款</p>")
    disliked = await publish(kb, editor, title="修改地址", body="<p>地址</p>")
    few = await publish(kb, editor, title="发票", body="<p>发票</p>")
    due = await publish(kb, editor, title="旧文章", body="<p>旧</p>")
    etag = (await kb.get(f"/v1/kb/articles/{due['id']}", headers=editor)).headers["etag"]
    r = await kb.patch(f"/v1/kb/articles/{due['id']}", json={"review_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
                       headers={**editor, "If-Match": etag})
    assert r.status_code == 200, r.text
    for i in range(3):
        await kb.get(f"/v1/kb/public/articles/{liked['id']}")
    votes = {liked["id"]: [True, True, True, False], disliked["id"]: [False, False, False, True],
             few["id"]: [False, False]}
    for article_id, helpful in votes.items():
        for i, h in enumerate(helpful):
            r = await kb.post(f"/v1/kb/articles/{article_id}/votes", json={"helpful": h},
                              headers=_anon(f"reader-{i:016d}"))
            assert r.status_code == 201, r.text

    summary = (await kb.get(f"/v1/kb/articles/{liked['id']}/feedback", headers=headers["agent"])).json()
    assert (summary["views"], summary["helpful"], summary["not_helpful"], summary["needs_review"]) == (3, 3, 1, False)
    assert summary["locales"] == [{"locale": "zh-CN", "views": 3, "helpful": 3, "not_helpful": 1}]

    r = await kb.get("/v1/kb/review-queue", headers=editor)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["article_id"] for i in items] == [due["id"], disliked["id"]], items  # due first; 2 votes are too few
    assert items[0]["reasons"] == ["review_due"] and items[1]["reasons"] == ["negative_feedback"]
    assert items[1]["negative_share"] == 0.75 and items[1]["titles"] == {"zh-CN": "修改地址"}
    assert (await kb.get("/v1/kb/review-queue", headers=headers["agent"])).status_code == 403
    assert (await kb.get("/v1/kb/review-queue")).status_code == 401


def test_review_rule_table():
    from kb_svc.feedback.rules import needs_review

    cases = [  # votes, not helpful, share, min votes -> flagged
        (10, 3, 0.3, 10, False),   # exactly the share does not pass it
        (10, 4, 0.3, 10, True),
        (9, 9, 0.3, 10, False),    # too few votes
        (0, 0, 0.0, 1, False),
        (1, 1, 0.0, 1, True),
        (100, 100, 1.0, 10, False),  # a share of 1 is never passed
    ]
    for votes, bad, share, minimum, flagged in cases:
        assert needs_review(votes=votes, not_helpful=bad, share=share, min_votes=minimum) is flagged
