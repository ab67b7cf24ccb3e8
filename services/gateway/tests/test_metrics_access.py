"""The gateway's /metrics on its public port (helpdesk_common/metrics_access.py): the cluster's
scraper reads it; an internet client behind the ingress, resolved by GATEWAY_TRUSTED_PROXIES,
gets the 404 of an absent route; GATEWAY_METRICS_TOKEN opens it from anywhere."""

from __future__ import annotations

import httpx
import pytest

from .conftest import new_gateway, serve

pytestmark = pytest.mark.timeout(120)

INGRESS = "127.0.0.31"  # stands in for the ingress controller (any 127.0.0.0/8 address is local)


def from_address(url: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_an_internet_client_behind_the_ingress_never_reads_the_gateways_metrics(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", INGRESS)
    async with serve(new_gateway()) as (url, _), from_address(url, INGRESS) as ingress:
        internet = await ingress.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
        assert internet.status_code == 404 and internet.headers["content-type"] == "application/problem+json"
        assert "http_requests" not in internet.text
        forged = await ingress.get("/metrics", headers={"X-Forwarded-For": "10.0.0.5, 203.0.113.5"})
        assert forged.status_code == 404
        inside = await ingress.get("/metrics", headers={"X-Forwarded-For": "10.0.0.5"})
        assert inside.status_code == 200 and "http_requests" in inside.text
        async with httpx.AsyncClient(base_url=url, timeout=30) as scraper:  # a direct scrape from loopback
            assert (await scraper.get("/metrics")).status_code == 200
            # the rest of the public port is unchanged for the same internet client
            assert (await ingress.get("/healthz", headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 200


async def test_the_allow_list_and_the_scrape_token(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_METRICS_ALLOWED_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("GATEWAY_METRICS_TOKEN", "gateway-scrape-token")
    async with serve(new_gateway()) as (url, _), from_address(url, "127.0.0.41") as outsider:
        assert (await outsider.get("/metrics")).status_code == 404
        r = await outsider.get("/metrics", headers={"Authorization": "Bearer gateway-scrape-token"})
        assert r.status_code == 200 and "http_requests" in r.text
        async with from_address(url, "127.0.0.1") as listed:
            assert (await listed.get("/metrics")).status_code == 200
