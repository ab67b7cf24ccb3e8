"""The index-key rotation ``python -m ticket_svc.pii reindex`` (docs/security.md, "ticket-svc: the
requester on a ticket", "Rotating the index key"): tickets, WeChat / WeCom conversations and the identity
projection written under index key A, the command run to key B, then every lookup (``?requester=``
by e-mail, phone and openid, threading by conversation key, the intake's link to a known customer)
works under B, no index computed under A is left in any row, and a second run changes nothing; the
same with the service still writing under A during the walk; the command as ops run it. Real
PostgreSQL, the real app."""

import asyncio
import json
import os
import sys
import uuid

import pytest

from helpdesk_common.pii_crypto import generate_key
from helpdesk_common.testing import SESSION_PII_ENV
from ticket_svc.pii import codec as pii_codec
from ticket_svc.pii.codec import Codec, is_indexed_conversation, sealed_identities
from ticket_svc.pii.reindex import WrongIndexKey
from ticket_svc.pii.reindex import run as reindex
from ticket_svc.tickets import repository

from .test_conversation_pii import inbound, wechat, wecom
from .test_requester_pii import ADMIN, create, raw  # noqa: F401 (raw: the fixture)

KEYS = SESSION_PII_ENV["TICKET_"]["TICKET_PII_KEYS"]
KEY_A = SESSION_PII_ENV["TICKET_"]["TICKET_PII_INDEX_KEY"]


def people(tag: str) -> list[dict]:
    return [{"name": f"王{tag}{i}", "email": f"Wang.{tag}{i}@Example.com", "phone": f"+86139{i:04d}{i:04d}"}
            for i in range(3)]


async def stored_indexes(raw) -> set[str]:
    """Every blind index ticket-svc holds: the requester's, the conversation keys', the projection's."""
    found: set[str] = set()
    for r in await raw.fetch("SELECT requester_identity_bidx, requester_bidx, conversation_key FROM tickets"):
        found |= {r["requester_identity_bidx"], *r["requester_bidx"]} - {None}
        if is_indexed_conversation(r["conversation_key"]):
            found.add(r["conversation_key"].split("#", 1)[1])
    found |= {r["value_bidx"] for r in await raw.fetch("SELECT value_bidx FROM customer_identity_projection")}
    return found


async def dump(raw) -> list[str]:
    """Every row of the tables the rotation touches, as text (``change_xid`` included: a rewrite shows)."""
    return sorted([r[0] for table in ("tickets", "customer_identity_projection", "reply_routes")
                   for r in await raw.fetch(f"SELECT t::text FROM {table} t")])


async def found(client, value: str) -> set[str]:
    answer = await client.get("/v1/tickets", params={"requester": value}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {t["id"] for t in answer.json()["items"]}


def no_index_of(key_a: Codec, values: list[str], rows: list[str]) -> None:
    """None of the A-key indexes of ``values`` occurs anywhere in ``rows``."""
    for value in values:
        index = key_a.identity_index(value)
        assert not [row for row in rows if index in row], value


async def test_reindex_moves_every_blind_index_to_the_new_key(client, raw):
    key_b = generate_key()
    a, b = Codec.from_settings(KEYS, KEY_A), Codec.from_settings(KEYS, key_b)
    persons = people("r")
    persons[0]["wechat_openid"] = openid_api = f"oApi{uuid.uuid4().hex[:16]}"
    tickets = [(await create(client, f"ticket {i}", p))["id"] for i, p in enumerate(persons)]
    openid, userid = f"oRot{uuid.uuid4().hex[:16]}", f"wmRot{uuid.uuid4().hex[:12]}"
    chat = await inbound(client, "wechat", wechat(openid))
    work = await inbound(client, "wecom", wecom(userid))
    customer, other = uuid.uuid4(), uuid.uuid4()
    await repository.upsert_identities(raw, customer_id=customer, identities=sealed_identities(
        [("email", persons[1]["email"].lower()), ("phone", persons[1]["phone"])]))
    await repository.upsert_identities(raw, customer_id=other, identities=sealed_identities(
        [("wechat_openid", openid)]))
    values = [v for p in persons for v in (p["email"].lower(), p["phone"])] + [openid_api, openid, userid]
    assert await stored_indexes(raw) == {a.identity_index(v) for v in values}  # all written under A

    # a wrong "old" key: the first batch is refused before anything is written
    before = await dump(raw)
    with pytest.raises(WrongIndexKey):
        await reindex(raw, Codec.from_settings(KEYS, generate_key()), b, batch=2)
    assert await dump(raw) == before

    report, left = await reindex(raw, a, b, batch=2)
    assert (report.tickets, report.conversation_keys, report.identities, report.duplicates, report.already) == \
        (5, 2, 3, 0, 0)
    assert report.batches == 4 and left == {"tickets": 0, "identities": 0}  # tickets 2+2+1, customers 2
    assert await stored_indexes(raw) == {b.identity_index(v) for v in values}
    moved = await dump(raw)
    no_index_of(a, values, moved)  # no index computed under A in any column of any row
    again, left = await reindex(raw, a, b, batch=2)  # repeated (or resumed): nothing to move
    assert (again.tickets, again.conversation_keys, again.identities, again.already) == (0, 0, 0, 8)
    assert await dump(raw) == moved  # not one row rewritten

    # the service on key B finds everyone by every index
    pii_codec.configure(KEYS, key_b)
    for ticket, person in zip(tickets, persons):
        assert await found(client, person["email"].upper()) == {ticket}
        assert await found(client, person["phone"]) == {ticket}
        assert await found(client, f"+86 139 {person['phone'][6:10]} {person['phone'][10:]}") == {ticket}
    assert await found(client, openid_api) == {tickets[0]}
    assert await found(client, openid) == {chat["ticket_id"]}
    assert (await inbound(client, "wechat", wechat(openid)))["ticket_id"] == chat["ticket_id"]  # threading
    assert (await inbound(client, "wecom", wecom(userid)))["ticket_id"] == work["ticket_id"]
    linked = await create(client, "known customer", {"email": persons[1]["email"]})
    assert linked["customer_id"] == str(customer)  # the intake's projection lookup
    # ... and key A finds nothing any more
    pii_codec.configure(KEYS, KEY_A)
    assert await found(client, persons[0]["email"]) == set() and await found(client, openid) == set()


async def test_reindex_with_the_service_running(client, raw):
    """The walk runs while the service still indexes with A, then the replicas switch to B and the
    command runs again: what the service wrote under A meanwhile is moved, what it wrote under B is
    done, and the projection's identity written under both keys keeps the newer row."""
    key_b = generate_key()
    a, b = Codec.from_settings(KEYS, KEY_A), Codec.from_settings(KEYS, key_b)
    person = people("s")[0]
    email, openid = person["email"].lower(), f"oRun{uuid.uuid4().hex[:16]}"
    first = (await create(client, "before", person))["id"]
    chat = await inbound(client, "wechat", wechat(openid))
    await repository.upsert_identities(raw, customer_id=uuid.uuid4(), identities=sealed_identities([("email", email)]))

    report, _ = await reindex(raw, a, b, batch=10)
    assert (report.tickets, report.conversation_keys, report.identities) == (2, 1, 1)
    # the service, still on A, misses what moved (docs: how lookups behave during the rotation) ...
    assert await found(client, email) == set()
    split = await inbound(client, "wechat", wechat(openid))
    assert split["ticket_id"] != chat["ticket_id"]  # the conversation's next message opened a ticket
    # ... and writes under A: a ticket, and the consumer's newer news about the identity
    during = (await create(client, "during", person))["id"]
    customer = uuid.uuid4()
    await repository.upsert_identities(raw, customer_id=customer, identities=sealed_identities([("email", email)]))
    assert await raw.fetchval("SELECT count(*) FROM customer_identity_projection") == 2  # one per key

    pii_codec.configure(KEYS, key_b)  # the replicas switch; the service writes under B
    after = (await create(client, "after", person))["id"]
    report, left = await reindex(raw, a, b, batch=10)
    # moved: "during" and the split conversation's ticket (its key too), the identity's A row; the
    # older B row of the identity went as a duplicate; already: three tickets and that B row
    assert (report.tickets, report.conversation_keys, report.identities, report.duplicates, report.already) == \
        (2, 1, 1, 1, 4) and left == {"tickets": 0, "identities": 0}
    assert await stored_indexes(raw) == {b.identity_index(v) for v in (email, person["phone"], openid)}
    no_index_of(a, [email, person["phone"], openid], await dump(raw))
    rows = await raw.fetch("SELECT customer_id FROM customer_identity_projection")
    assert [r["customer_id"] for r in rows] == [customer]  # the newer row won
    assert await found(client, email) == {first, during, after}
    assert await found(client, openid) == {chat["ticket_id"], split["ticket_id"]}
    # the conversation continues on its newest open ticket; the intake links the known customer
    assert (await inbound(client, "wechat", wechat(openid)))["ticket_id"] == split["ticket_id"]
    assert (await create(client, "linked", {"email": email}))["customer_id"] == str(customer)
    moved = await dump(raw)
    again, _ = await reindex(raw, a, b, batch=10)
    assert (again.tickets, again.identities, again.duplicates) == (0, 0, 0) and await dump(raw) == moved


async def test_the_reindex_command(client, ticket_db, raw):
    """As ops run it: the settings from the environment, a JSON report naming no key, exit 1 while a
    row from before 0018 waits for ``reencrypt``, 2 without a new key, with the current one, or
    when the rows are not under ``TICKET_PII_INDEX_KEY``."""
    ticket = await create(client, "command", people("c")[0])
    legacy = await create(client, "legacy", {"email": "legacy.reindex@example.com"})
    await raw.execute("UPDATE tickets SET requester = $2, requester_identity_value = $3, "
                      "requester_identity_bidx = NULL, requester_bidx = '{}' WHERE id = $1::uuid", legacy["id"],
                      {"email": "legacy.reindex@example.com"}, "legacy.reindex@example.com")
    key_b = generate_key()
    env = {**os.environ, "TICKET_DATABASE_URL": ticket_db, "TICKET_PII_REENCRYPT_BATCH": "1"}

    async def command(extra: dict[str, str]) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ticket_svc.pii", "reindex",
                                                    env={**env, **extra}, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, out.decode(), err.decode()

    code, _, err = await command({})
    assert code == 2 and "TICKET_PII_NEW_INDEX_KEY" in err
    code, _, err = await command({"TICKET_PII_NEW_INDEX_KEY": KEY_A})
    assert code == 2 and "nothing to rotate" in err
    code, out, err = await command({"TICKET_PII_NEW_INDEX_KEY": key_b})
    assert code == 1, err  # the legacy row: reencrypt first
    report = json.loads(out.strip().splitlines()[-1])
    assert (report["tickets"], report["identities"], report["batches"]) == (1, 0, 1), report
    assert report["not_indexed"] == {"tickets": 1, "identities": 0}
    assert key_b not in out + err and KEY_A not in out + err
    pii_codec.configure(KEYS, key_b)
    assert await found(client, people("c")[0]["email"]) == {ticket["id"]}
    # the rows are under B now: A as the "old" key is the wrong one, refused, nothing written
    before = await dump(raw)
    code, _, err = await command({"TICKET_PII_NEW_INDEX_KEY": generate_key()})
    assert code == 2 and "neither" in err and await dump(raw) == before
