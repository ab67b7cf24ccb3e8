"""A service's replicas behind one setting (proxy/upstreams.py): requests spread over them in turn,
one that refuses connections is skipped at once (a POST too: it never saw the request) and tried
again after its down mark, and a single URL behaves as before."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from helpdesk_common.devstack import free_port

from .conftest import FakeTicketSvc, fake_ticket_app, new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("setting", "expected"), [
    ("http://127.0.0.1:8082", ("http://127.0.0.1:8082",)),
    ("http://a:1/, http://b:2 ,http://a:1", ("http://a:1", "http://b:2")),
    ("https://svc.internal", ("https://svc.internal",)),
])
def test_parse_urls(setting, expected):
    from gateway.proxy.upstreams import parse_urls

    assert parse_urls(setting) == expected


@pytest.mark.parametrize("setting", ["", " , ", "ftp://x", "127.0.0.1:8082", "http://", "http://a b"])
def test_parse_urls_refuses(setting):
    from gateway.proxy.upstreams import parse_urls

    with pytest.raises(ValueError):
        parse_urls(setting)


def test_round_robin_down_marks_and_last_resort():
    from gateway.proxy.upstreams import DOWN_S, Upstream

    now = [100.0]
    replicas = Upstream(("http://a", "http://b", "http://c"), clock=lambda: now[0])
    assert [replicas.order()[0] for _ in range(6)] == ["http://a", "http://b", "http://c"] * 2
    replicas.down("http://b")
    firsts = [replicas.order()[0] for _ in range(6)]
    assert sorted(firsts) == ["http://a"] * 3 + ["http://c"] * 3  # the live ones share evenly
    assert replicas.order()[-1] == "http://b"  # a last resort, not forgotten
    now[0] += 1
    replicas.down("http://a")
    replicas.down("http://c")
    last_resort = replicas.order()  # all down: tried anyway, the oldest mark first
    assert last_resort[0] == "http://b" and sorted(last_resort[1:]) == ["http://a", "http://c"]
    now[0] += DOWN_S
    assert sorted(replicas.order()) == ["http://a", "http://b", "http://c"]
    replicas.up("http://a")
    single = Upstream(("http://only",))
    single.down("http://only")
    assert single.order() == ["http://only"]


def _failovers() -> float:
    return REGISTRY.get_sample_value("gateway_upstream_failovers_total", {"service": "ticket service"}) or 0.0


async def test_requests_spread_over_replicas_and_survive_one_going_away(gateway_env, ticket_svc, monkeypatch):
    second = FakeTicketSvc()
    gone_port = free_port()  # a third replica that never listens: refused at once
    async with serve(fake_ticket_app(second), lifespan="off") as (second_url, _):
        monkeypatch.setenv("GATEWAY_TICKET_URL", f"{ticket_svc.url},{second_url},http://127.0.0.1:{gone_port}")
        _, admin = user_token("admin")
        async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
            before = _failovers()
            for i in range(12):
                r = await client.post("/v1/tickets", json={"subject": f"spread {i}"}, headers=admin)
                assert r.status_code == 299, r.text  # every POST answered, the dead replica's turns too
            first_count, second_count = len(ticket_svc.forwarded), len(second.forwarded)
            assert first_count + second_count == 12
            assert first_count >= 5 and second_count >= 5, (first_count, second_count)
            assert _failovers() - before >= 1  # the refusing replica was tried once, then skipped
    # the second replica has stopped: everything goes to the first, nothing fails
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        _, admin = user_token("admin")
        baseline = len(ticket_svc.forwarded)
        for i in range(6):
            r = await client.get(f"/v1/tickets/probe-{i}", headers=admin)
            assert r.status_code == 299, r.text
        assert len(ticket_svc.forwarded) - baseline == 6


async def test_every_replica_refusing_is_a_502_problem(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_TICKET_URL", f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get("/v1/tickets", headers=admin)
        assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
        assert "127.0.0.1" not in r.text  # no upstream address in the answer


def test_a_bad_upstream_setting_stops_the_start(monkeypatch):
    from pydantic import ValidationError

    from gateway.config import Settings

    monkeypatch.setenv("GATEWAY_KB_URL", "http://127.0.0.1:8086,kb-svc:8086")
    with pytest.raises(ValidationError, match="kb_url"):
        Settings()
