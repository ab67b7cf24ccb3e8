"""The gateway's figures (issue 17): never on its public port, whoever asks; on its ops listener
(``GATEWAY_OPS_PORT``, helpdesk_common/ops_listener.py) to the cluster's scraper
(helpdesk_common/metrics_access.py): an address in the allow-list, resolved by
GATEWAY_TRUSTED_PROXIES, or GATEWAY_METRICS_TOKEN from anywhere."""

from __future__ import annotations

import httpx
import pytest

from helpdesk_common.devstack import free_port

from .conftest import new_gateway, serve

pytestmark = pytest.mark.timeout(120)

INGRESS = "127.0.0.31"  # stands in for the ingress controller (any 127.0.0.0/8 address is local)


def from_address(url: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_the_public_port_never_answers_metrics_even_to_loopback_or_the_token(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", INGRESS)
    monkeypatch.setenv("GATEWAY_METRICS_TOKEN", "gateway-scrape-token")
    monkeypatch.setenv("GATEWAY_OPS_PORT", str(free_port()))
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as local:
        asked = [
            await local.get("/metrics"),
            await local.get("/metrics", headers={"Authorization": "Bearer gateway-scrape-token"}),
        ]
        async with from_address(url, INGRESS) as ingress:
            asked.append(await ingress.get("/metrics", headers={"X-Forwarded-For": "10.0.0.5"}))
            asked.append(await ingress.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"}))
            # the rest of the public port is unchanged for an internet client
            assert (await ingress.get("/healthz", headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 200
        absent = await local.get("/no-such-route")
        for r in asked:
            assert r.status_code == absent.status_code == 404
            assert r.headers["content-type"] == "application/problem+json" and "http_requests" not in r.text


async def test_the_ops_listener_serves_the_figures_and_probes_to_the_scraper(gateway_env, monkeypatch):
    ops_port = free_port()
    monkeypatch.setenv("GATEWAY_OPS_PORT", str(ops_port))
    ops = f"http://127.0.0.1:{ops_port}"
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=ops, timeout=30) as scraper:
        async with httpx.AsyncClient(base_url=url, timeout=30) as public:
            await public.get("/v1/tickets")  # one request on the public port: counted, shown on the other
        r = await scraper.get("/metrics")
        assert r.status_code == 200 and "http_requests_total" in r.text
        assert (await scraper.get("/healthz")).json() == {"status": "ok"}
        assert (await scraper.get("/readyz")).status_code in (200, 503)
        # the API is not served on the ops port
        assert (await scraper.get("/v1/tickets")).status_code == 404
        # forwarded through a proxy the gateway does not trust: refused, as an absent route
        assert (await scraper.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 404
    # stopped with the app: the port is free again
    async with httpx.AsyncClient(timeout=5) as late:
        with pytest.raises(httpx.ConnectError):
            await late.get(f"{ops}/healthz")


async def test_the_ops_listener_keeps_the_allow_list_and_the_scrape_token(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_METRICS_ALLOWED_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("GATEWAY_METRICS_TOKEN", "gateway-scrape-token")
    ops_port = free_port()
    monkeypatch.setenv("GATEWAY_OPS_PORT", str(ops_port))
    ops = f"http://127.0.0.1:{ops_port}"
    async with serve(new_gateway()), from_address(ops, "127.0.0.41") as outsider:
        assert (await outsider.get("/metrics")).status_code == 404
        r = await outsider.get("/metrics", headers={"Authorization": "Bearer gateway-scrape-token"})
        assert r.status_code == 200 and "http_requests" in r.text
        async with from_address(ops, "127.0.0.1") as listed:
            assert (await listed.get("/metrics")).status_code == 200
