"""The checks every service applies before routing (``RequestChecksMiddleware``: the body limit,
NUL in the URL, shadowed concrete paths) and the HTTP metrics counted at the edge, on a real
uvicorn server (httptools, as the stack runs it) spoken to over a raw socket, so that the
body's framing is exactly what each case sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter, Request
from prometheus_client import REGISTRY

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.devstack import free_port
from helpdesk_common.settings import ServiceSettings

LIMIT = 1_000


def _app():  # type: ignore[no-untyped-def]
    router = APIRouter()

    @router.post("/v1/echo")
    async def echo(request: Request) -> dict:
        return {"received": len(await request.body())}

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected bug")

    @router.get("/v1/things/special")
    async def special() -> dict:
        return {"special": True}

    @router.patch("/v1/things/{thing_id}")
    async def patch_thing(thing_id: int) -> dict:
        return {"id": thing_id}

    settings = ServiceSettings(service_name="checks-test", max_body_bytes=LIMIT)
    return build_app(settings, ServiceParts(title="t", routers=[router]))


@pytest.fixture
async def server() -> AsyncIterator[int]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           http="httptools"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await task


async def _exchange(port: int, raw: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send ``raw`` on a new connection; the answer's status, headers and body (the connection
    may close after it: a refused body is not read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        return status, headers, body
    finally:
        writer.close()


def _chunked(body: bytes, size: int = 300) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


async def test_a_declared_length_within_the_limit_is_read_and_one_above_it_refused(server):
    body = b"x" * LIMIT
    status, _, answer = await _exchange(server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                                        % (len(body), body))
    assert (status, answer) == (200, b'{"received":1000}')
    status, headers, answer = await _exchange(
        server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (LIMIT + 1, body + b"x"))
    assert status == 413 and b"payload-too-large" in answer
    assert headers[b"content-type"] == b"application/problem+json" and b"x-request-id" in headers


async def test_a_chunked_body_is_counted_as_it_arrives(server):
    status, _, answer = await _exchange(
        server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"y" * 900))
    assert (status, answer) == (200, b'{"received":900}')
    status, _, answer = await _exchange(
        server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"y" * 5_000))
    assert status == 413 and b"payload-too-large" in answer


async def test_a_small_length_beside_a_chunked_body_never_lets_a_large_body_through(server):
    """The limit trusts a declared length only without a Transfer-Encoding: a request with both
    is refused by the server or counted as it arrives, never read whole above the limit."""
    status, _, answer = await _exchange(
        server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(b"z" * 5_000))
    assert status in (400, 413), (status, answer)


async def test_the_checks_answer_in_order_size_then_nul_then_method(server):
    big = b"POST /v1/echo?q=%%00 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
    assert (await _exchange(server, big))[0] == 413
    status, _, answer = await _exchange(server, b"GET /v1/things/special?q=a%00b HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 422 and b'"field":"query.q"' in answer and b"nul_character" in answer
    status, headers, answer = await _exchange(server, b"PATCH /v1/things/special HTTP/1.1\r\nHost: t\r\n"
                                                      b"Content-Length: 2\r\n\r\n{}")
    assert status == 405 and headers[b"allow"] == b"GET" and b"method-not-allowed" in answer
    assert (await _exchange(server, b"PATCH /v1/things/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"))[0] == 200


def _counted(method: str, route: str, status: str) -> float:
    return REGISTRY.get_sample_value("http_requests_total", {"method": method, "route": route, "status": status}) or 0


async def test_the_metrics_count_what_the_client_got_by_route_template(server):
    before = [_counted("PATCH", "/v1/things/{thing_id}", "200"), _counted("GET", "/v1/boom", "500"),
              _counted("OTHER", "<unmatched>", "404"), _counted("POST", "/v1/echo", "413"),
              _counted("GET", "<unmatched>", "422")]
    assert (await _exchange(server, b"PATCH /v1/things/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"))[0] == 200
    assert (await _exchange(server, b"GET /v1/boom HTTP/1.1\r\nHost: t\r\n\r\n"))[0] == 500
    # a method outside HTTP's own (the server takes WebDAV's and others) is counted as OTHER:
    # callers cannot grow the label sets
    for method in (b"PROPFIND", b"MKCOL", b"LOCK"):
        assert (await _exchange(server, method + b" /v1/nowhere HTTP/1.1\r\nHost: t\r\n\r\n"))[0] == 404
    assert (await _exchange(server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n"))[0] == 413
    assert (await _exchange(server, b"GET /v1/x?a=%00 HTTP/1.1\r\nHost: t\r\n\r\n"))[0] == 422
    after = [_counted("PATCH", "/v1/things/{thing_id}", "200"), _counted("GET", "/v1/boom", "500"),
             _counted("OTHER", "<unmatched>", "404"), _counted("POST", "/v1/echo", "413"),
             _counted("GET", "<unmatched>", "422")]
    assert [a - b for a, b in zip(after, before)] == [1, 1, 3, 0, 1]
    # the 413 was refused before routing: no route matched it
    assert _counted("POST", "<unmatched>", "413") >= 1
    assert REGISTRY.get_sample_value("http_requests_total", {"method": "PROPFIND", "route": "<unmatched>",
                                                             "status": "404"}) is None
