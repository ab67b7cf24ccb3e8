"""Every service's /metrics is valid Prometheus text and is not reachable through the gateway; the
gateway's own figures are on its ops listener, never on its public port (issue 17)."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpdesk_common.devstack import SERVICES


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
async def test_metrics_parse(stack, service):
    async with httpx.AsyncClient() as client:
        r = await client.get(stack.metrics_url(service))
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert "http_requests" in families  # counter family name without _total
    assert "http_request_duration_seconds" in families


async def test_service_metrics_not_reachable_via_gateway(gw, key_headers, admin_headers):
    # ticket-svc labels this request with its own route template; the gateway never does
    await gw.get("/v1/tickets/00000000-0000-0000-0000-000000000000", headers=admin_headers)
    marker = 'route="/v1/tickets/{ticket_id}"'
    for path in ["/v1/tickets/../../metrics", "/v1/metrics", "/v1/tickets/metrics", "/v1/analytics/../metrics",
                 "/v1/customers/%2e%2e/%2e%2e/metrics", "/v1/tickets/%2e%2e/%2e%2e/metrics", "/metrics"]:
        for headers in (key_headers, admin_headers):
            r = await gw.get(path, headers=headers)
            assert marker not in r.text, path
            # the gateway's own /metrics has its live-stream consumer; never a service's consumers
            for upstream in ("ticket-svc.", "customer-svc.", "sla-svc.", "analytics-svc."):
                assert f'consumer="{upstream}' not in r.text, path


async def test_the_gateways_public_port_never_answers_metrics(stack, gw):
    """Not even to loopback, the scraper's own address: 404 as for an absent route. The same
    process's ops listener serves the figures, and the probes too."""
    public = await gw.get("/metrics")
    assert public.status_code == 404 and "http_requests" not in public.text
    assert public.headers["content-type"].startswith("application/problem+json")
    async with httpx.AsyncClient() as client:
        scraped = await client.get(stack.metrics_url("gateway"))
        ops = stack.metrics_url("gateway").removesuffix("/metrics")
        assert scraped.status_code == 200 and 'consumer="gateway.stream"' in scraped.text
        assert (await client.get(f"{ops}/healthz")).status_code == 200
        assert (await client.get(f"{ops}/readyz")).json()["status"] in ("ready", "degraded")
        # only the ops routes: the API is not reachable through the ops port
        assert (await client.get(f"{ops}/v1/tickets")).status_code == 404


async def test_readyz_everywhere(stack):
    async with httpx.AsyncClient() as client:
        for s in SERVICES:
            r = await client.get(f"{stack.url_of(s.name)}/readyz")
            assert r.status_code == 200, (s.name, r.text)
