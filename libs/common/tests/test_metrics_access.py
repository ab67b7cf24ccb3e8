"""Who may read /metrics (helpdesk_common/metrics_access.py), through an app built by build_app
(every service and the gateway): the scraper's addresses, the trusted-proxy rule, the token,
and the absent route's 404 for everyone else."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.settings import ServiceSettings

INGRESS = "10.2.0.9"  # the ingress controller's pod: a private address, the peer of every internet client
TOKEN = "scrape-token-0123456789"


def _app(**settings):  # type: ignore[no-untyped-def]
    return build_app(ServiceSettings(service_name="metrics-test", **settings),
                     ServiceParts(title="t", routers=[APIRouter()], uses_broker=False))


async def _get(app, path: str, *, peer: str, headers: dict | None = None) -> httpx.Response:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


@pytest.mark.parametrize(("settings", "peer", "headers", "allowed"), [
    # the defaults: loopback and the private ranges a cluster scrapes from; nothing else
    ({}, "127.0.0.1", {}, True),
    ({}, "10.1.2.3", {}, True),
    ({}, "172.31.0.4", {}, True),
    ({}, "192.168.1.20", {}, True),
    ({}, "::1", {}, True),
    ({}, "fd00::7", {}, True),
    ({}, "::ffff:10.1.2.3", {}, True),
    ({}, "203.0.113.5", {}, False),
    ({}, "172.32.0.1", {}, False),
    ({}, "2001:db8::1", {}, False),
    # an internet client behind an ingress nobody configured as trusted: refused, whatever the peer
    ({}, INGRESS, {"X-Forwarded-For": "203.0.113.5"}, False),
    ({}, INGRESS, {"X-Forwarded-For": "10.0.0.1"}, False),  # the chain is not believed either way
    ({}, INGRESS, {"Forwarded": "for=203.0.113.5"}, False),
    ({}, INGRESS, {"X-Real-IP": "203.0.113.5"}, False),
    # behind a trusted ingress: the client's own address decides
    ({"trusted_proxies": INGRESS}, INGRESS, {"X-Forwarded-For": "203.0.113.5"}, False),
    ({"trusted_proxies": INGRESS}, INGRESS, {"X-Forwarded-For": "10.9.8.7, 203.0.113.5"}, False),  # forged left part
    ({"trusted_proxies": INGRESS}, INGRESS, {"X-Forwarded-For": "10.9.8.7"}, True),  # a client inside the network
    ({"trusted_proxies": INGRESS}, INGRESS, {"Forwarded": "for=10.9.8.7"}, False),  # no X-Forwarded-For: unknown
    ({"trusted_proxies": INGRESS}, INGRESS, {}, True),  # the proxy's own request
    # a narrower list
    ({"metrics_allowed_networks": "10.4.0.0/16"}, "10.1.2.3", {}, False),
    ({"metrics_allowed_networks": "10.4.0.0/16"}, "10.4.2.3", {}, True),
    ({"metrics_allowed_networks": ""}, "127.0.0.1", {}, False),
    # the token opens it from anywhere; a wrong one, another scheme or no token configured do not
    ({"metrics_token": TOKEN}, "203.0.113.5", {"Authorization": f"Bearer {TOKEN}"}, True),
    ({"metrics_token": TOKEN}, INGRESS, {"Authorization": f"bearer {TOKEN}", "X-Forwarded-For": "203.0.113.5"}, True),
    ({"metrics_token": TOKEN}, "203.0.113.5", {"Authorization": f"Bearer {TOKEN}x"}, False),
    ({"metrics_token": TOKEN}, "203.0.113.5", {"Authorization": f"Basic {TOKEN}"}, False),
    ({}, "203.0.113.5", {"Authorization": "Bearer "}, False),
])
async def test_who_may_read_metrics(settings, peer, headers, allowed):
    r = await _get(_app(**settings), "/metrics", peer=peer, headers=headers)
    if allowed:
        assert r.status_code == 200 and "http_requests" in r.text, r.text
    else:
        assert r.status_code == 404, r.text


async def test_a_refused_scrape_looks_like_an_absent_route():
    app = _app()
    refused = await _get(app, "/metrics", peer="203.0.113.5")
    absent = await _get(app, "/no-such-route", peer="203.0.113.5")
    assert refused.status_code == absent.status_code == 404
    assert refused.headers["content-type"] == absent.headers["content-type"] == "application/problem+json"
    strip = lambda body: {k: v for k, v in body.items() if k not in ("instance", "request_id")}  # noqa: E731
    assert strip(refused.json()) == strip(absent.json())
    assert "http_request" not in refused.text


def test_a_malformed_block_is_refused_at_start_up():
    with pytest.raises(ValueError):
        _app(metrics_allowed_networks="10.0.0.0/8, not-a-network")
