"""Personal data at rest, the rest of it (real database): survey comments encrypted (migration
0010) and read back everywhere they are shown, old plaintext comments moved by ``reencrypt``;
the index-key rotation ``python -m customer_svc.pii reindex``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import pytest

from customer_svc.customers import service
from customer_svc.pii import codec
from customer_svc.pii.reencrypt import run as reencrypt
from customer_svc.pii.reindex import WrongIndexKey
from customer_svc.pii.reindex import run as reindex
from customer_svc.privacy import service as privacy
from customer_svc.surveys import repository as surveys
from helpdesk_common.identity import Principal
from helpdesk_common.pii_crypto import generate_key, key_id_of
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
COMMENT = "客服很好，请打 13812345678 找王小明 wang.xm@example.com"


async def sent_survey(raw, customer_id: uuid.UUID, kind: str = "csat") -> uuid.UUID:
    survey_id = uuid.uuid4()
    await raw.execute(
        "INSERT INTO surveys (id, kind, customer_id, ticket_id, channel, language, status, send_at, sent_at, "
        "expires_at) VALUES ($1, $2, $3, $4, 'email', 'zh-CN', 'sent', now(), now(), now() + interval '1 day')",
        survey_id, kind, customer_id, uuid.uuid4() if kind == "csat" else None)
    return survey_id


async def resolve(raw, requester: dict) -> uuid.UUID:
    async with raw.transaction():
        customer_id, _ = await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester=requester)
    return customer_id


async def test_survey_comments_are_encrypted_and_read_back(raw, api):
    customer_id = await resolve(raw, {"name": "王小明", "email": "wang.xm@example.com"})
    csat, nps = await sent_survey(raw, customer_id), await sent_survey(raw, customer_id, "nps")
    answered = await surveys.answer(raw, csat, rating=2, score=None, comment=COMMENT)
    assert answered["comment"] == COMMENT and "comment_enc" not in answered
    await surveys.answer(raw, nps, rating=None, score=9, comment="NPS 13812345678")
    stored = await raw.fetch("SELECT comment, comment_enc, s::text AS whole FROM surveys s")
    assert all(r["comment"] is None and key_id_of(r["comment_enc"]) == codec.codec().keyring.current_kid
               for r in stored)
    assert not any(needle in r["whole"] for r in stored for needle in ("13812345678", "王小明", "wang.xm", "客服"))
    # every reader shows the plaintext: the lists, the 360 view, the export bundle
    listed = (await api.get(f"/v1/customers/{customer_id}/surveys", headers=ADMIN)).json()["items"]
    assert sorted(s["comment"] for s in listed) == sorted([COMMENT, "NPS 13812345678"])
    view = (await api.get(f"/v1/customers/{customer_id}/360", headers=ADMIN)).json()
    assert view["csat"]["last"]["comment"] == COMMENT and view["nps"]["last"]["comment"] == "NPS 13812345678"
    assert (await surveys.get(raw, csat))["comment"] == COMMENT
    bundle = await privacy.local_export(raw, customer_id=customer_id)
    assert sorted(s["comment"] for s in bundle["surveys"]) == sorted([COMMENT, "NPS 13812345678"])
    assert all("comment_enc" not in s for s in bundle["surveys"])
    # erasure takes the ciphertext too
    await privacy.erase_here(raw, customer_id=customer_id)
    assert await raw.fetchval("SELECT count(*) FROM surveys WHERE comment IS NOT NULL OR comment_enc IS NOT NULL") == 0


async def test_plaintext_comments_from_before_0010_read_and_are_moved_by_reencrypt(raw, api):
    customer_id = await resolve(raw, {"name": "李雷", "email": "lilei@example.com"})
    legacy = await sent_survey(raw, customer_id)
    await raw.execute("UPDATE surveys SET status = 'answered', answered_at = now(), rating = 5, comment = $2 "
                      "WHERE id = $1", legacy, "老的评论 13900001111")
    assert (await surveys.get(raw, legacy))["comment"] == "老的评论 13900001111"
    k2 = generate_key()
    old_spec = os.environ["CUSTOMER_PII_KEYS"]
    codec.configure(f"k2:{k2},{old_spec}", os.environ["CUSTOMER_PII_INDEX_KEY"])  # a rotation at the same time
    newer = await sent_survey(raw, customer_id, "nps")
    await surveys.answer(raw, newer, rating=None, score=3, comment="新的")
    report = await reencrypt(raw, codec.codec(), batch=1)
    assert report.surveys == 1 and report.remaining["surveys"] == 0, report
    row = await raw.fetchrow("SELECT comment, comment_enc FROM surveys WHERE id = $1", legacy)
    assert row["comment"] is None and key_id_of(row["comment_enc"]) == "k2"
    assert (await surveys.get(raw, legacy))["comment"] == "老的评论 13900001111"
    listed = (await api.get(f"/v1/customers/{customer_id}/surveys", headers=ADMIN)).json()["items"]
    assert sorted(s["comment"] for s in listed) == ["新的", "老的评论 13900001111"]
    assert (await reencrypt(raw, codec.codec(), batch=1)).surveys == 0  # idempotent


async def test_reindex_moves_every_blind_index_to_the_new_key(raw, api):
    keys = os.environ["CUSTOMER_PII_KEYS"]
    old_index, new_index = os.environ["CUSTOMER_PII_INDEX_KEY"], generate_key()
    people = [{"name": f"张伟{i} Zhang Wei", "email": f"zhang{i}@example.com", "phone": f"+86 138 0000 {i:04d}"}
              for i in range(5)]
    ids = [await resolve(raw, p) for p in people]
    before = await raw.fetch("SELECT id, value_bidx, phone_key, email_local FROM customer_identities ORDER BY id")
    old, new = codec.Codec.from_settings(keys, old_index), codec.Codec.from_settings(keys, new_index)

    # a wrong "old" key: the first batch is refused before anything is written
    with pytest.raises(WrongIndexKey):
        await reindex(raw, codec.Codec.from_settings(keys, generate_key()), new, batch=3)
    assert await raw.fetch("SELECT id, value_bidx, phone_key, email_local FROM customer_identities ORDER BY id") == before

    report, left = await reindex(raw, old, new, batch=3)
    assert (report.identities, report.customers, report.already) == (10, 5, 0) and left == {"identities": 0,
                                                                                            "customers": 0}
    after = await raw.fetch("SELECT id, value_bidx, phone_key, email_local FROM customer_identities ORDER BY id")
    for a, b in zip(after, before):
        assert a["value_bidx"] != b["value_bidx"]
        assert a["phone_key"] is None or a["phone_key"] != b["phone_key"]
        assert a["email_local"] is None or a["email_local"] != b["email_local"]
    again, _ = await reindex(raw, old, new, batch=3)  # resumed or repeated: nothing left to move
    assert (again.identities, again.customers, again.already) == (0, 0, 15)

    # the service under the new key finds everyone by every index: e-mail, phone, name search, intake
    codec.configure(keys, new_index)
    for i, person in enumerate(people):
        for params in ({"email": person["email"]}, {"q": person["phone"]}, {"q": f"张伟{i}"}):
            found = (await api.get("/v1/customers", params=params, headers=ADMIN)).json()["items"]
            assert str(ids[i]) in [c["id"] for c in found], params
    assert await resolve(raw, {"email": "ZHANG3@example.com"}) == ids[3]
    assert (await api.get("/v1/customers", params={"q": "zha"}, headers=ADMIN)).json()["items"]
    # ... and the old key no longer finds anything
    codec.configure(keys, old_index)
    assert (await api.get("/v1/customers", params={"email": "zhang1@example.com"}, headers=ADMIN)).json()["items"] == []


async def test_the_reindex_command(raw, customer_db):
    """As an operator runs it: the settings from the environment, a JSON report, exit 0 when done,
    2 without a new key or with the new key equal to the current one."""
    await resolve(raw, {"name": "赵六", "email": "zhaoliu@example.com"})
    new_index = generate_key()
    env = {**os.environ, "CUSTOMER_DATABASE_URL": customer_db, "CUSTOMER_PII_REENCRYPT_BATCH": "1"}

    async def command(extra: dict[str, str], *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "customer_svc.pii", *args,
                                                    env={**env, **extra}, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, out.decode(), err.decode()

    code, _, err = await command({}, "reindex")
    assert code == 2 and "CUSTOMER_PII_NEW_INDEX_KEY" in err
    code, _, err = await command({"CUSTOMER_PII_NEW_INDEX_KEY": env["CUSTOMER_PII_INDEX_KEY"]}, "reindex")
    assert code == 2 and "nothing to rotate" in err
    code, out, err = await command({"CUSTOMER_PII_NEW_INDEX_KEY": new_index}, "reindex")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert (report["identities"], report["customers"], report["batches"]) == (1, 1, 2), report
    assert report["not_indexed"] == {"identities": 0, "customers": 0}
    assert new_index not in out + err and env["CUSTOMER_PII_INDEX_KEY"] not in out + err
    # the old key is now the wrong one: refused, nothing written
    code, _, err = await command({"CUSTOMER_PII_NEW_INDEX_KEY": generate_key()}, "reindex")
    assert code == 2 and "neither" in err
