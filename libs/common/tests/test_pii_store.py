"""helpdesk_common.pii_store: what customer-svc and ticket-svc share for personal data at rest."""

import asyncio

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.pii_crypto import Keyring, PiiDecryptError, PiiKeyError, generate_key, new_settings
from helpdesk_common.pii_store import (
    MaskPolicy, cli, is_sealed, load_keys, open_json, parse_roles, seal_json, sealed_kid, walk,
)


def test_load_keys_names_the_missing_setting_and_never_a_key():
    keys = new_settings("TICKET_")
    ring, index = load_keys(service="ticket-svc", prefix="TICKET_", keys=keys["TICKET_PII_KEYS"],
                            index_key=keys["TICKET_PII_INDEX_KEY"])
    assert ring.current_kid == "k1" and len(index) == 32
    with pytest.raises(PiiKeyError, match="TICKET_PII_KEYS is not set: ticket-svc .*pii_crypto ticket"):
        load_keys(service="ticket-svc", prefix="TICKET_", keys=None, index_key=keys["TICKET_PII_INDEX_KEY"])
    with pytest.raises(PiiKeyError, match="TICKET_PII_INDEX_KEY is not set"):
        load_keys(service="ticket-svc", prefix="TICKET_", keys=keys["TICKET_PII_KEYS"], index_key="")
    with pytest.raises(PiiKeyError, match="TICKET_PII_KEYS") as bad:
        load_keys(service="ticket-svc", prefix="TICKET_", keys="k1:short", index_key=keys["TICKET_PII_INDEX_KEY"])
    assert keys["TICKET_PII_INDEX_KEY"] not in str(bad.value)


def test_sealed_json_round_trips_and_is_bound_to_its_column():
    ring = Keyring.from_settings(f"k1:{generate_key()}")
    value = {"name": "张伟", "email": "zhang.wei@example.com", "phone": "+8613800138000"}
    sealed = seal_json(ring, value, context="tickets.requester")
    assert is_sealed(sealed) and sealed_kid(sealed) == "k1" and "zhang" not in str(sealed)
    assert open_json(ring, sealed, context="tickets.requester") == value
    assert open_json(ring, value, context="tickets.requester") == value  # plaintext from before: as it is
    assert not is_sealed(value) and sealed_kid(value) is None and not is_sealed({"sealed": "not a token"})
    with pytest.raises(PiiDecryptError):
        open_json(ring, sealed, context="customers.name")


def test_the_masking_rule():
    rule = MaskPolicy.of(["admin", "supervisor"], True)
    admin, agent = Principal(kind="user", id="a", role="admin"), Principal(kind="user", id="b", role="agent")
    channel = Principal(kind="channel", id="k", channel="web")
    assert rule.by_role(admin) and not rule.asks_tickets(admin)
    assert not rule.by_role(agent) and rule.asks_tickets(agent)
    assert not rule.by_role(channel) and not rule.asks_tickets(channel)
    assert not MaskPolicy.of(["admin"], False).asks_tickets(agent)
    assert parse_roles("admin, supervisor,") == ["admin", "supervisor"]
    assert parse_roles('["admin"]') == ["admin"] and parse_roles(["x"]) == ["x"]


def test_walk_runs_each_step_until_a_short_batch_and_cli_reports(capsys):
    pages = {"a": [3, 3, 1], "b": [0]}

    def step(name):
        async def run(conn, after):
            return pages[name].pop(0), (after or 0) + 1
        return run

    done, batches = asyncio.run(walk(None, [("a", step("a")), ("b", step("b"))], batch=3))
    assert done == {"a": 7, "b": 0} and batches == 3

    async def report(left):
        return {"moved": 1, "remaining": {"tickets": left}}

    assert cli(["reencrypt"], module="x.pii", run=lambda: report(0)) == 0
    assert cli(["reencrypt"], module="x.pii", run=lambda: report(2)) == 1
    assert cli([], module="x.pii", run=lambda: report(0)) == 2
    out = capsys.readouterr()
    assert '"remaining":{"tickets":2}' in out.out and "usage: python -m x.pii reencrypt" in out.err
