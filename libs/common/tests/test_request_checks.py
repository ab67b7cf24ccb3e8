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


async def _serve(http: str) -> AsyncIterator[int]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           http=http))
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


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """The app on uvicorn's httptools protocol, as the stack runs it."""
    async for port in _serve("httptools"):
        yield port


@pytest.fixture(params=["httptools", "h11"])
async def any_server(request) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    """The app on each of uvicorn's HTTP/1.1 protocols."""
    async for port in _serve(request.param):
        yield port


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


async def test_a_small_length_beside_a_chunked_body_never_lets_a_large_body_through(any_server):
    """A request with both a Content-Length and a Transfer-Encoding is refused by the server
    (httptools) or framed as chunked (h11); then its body is counted as it arrives, the declared
    length not trusted, and the large body is a 413."""
    status, _, answer = await _exchange(
        any_server, b"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(b"z" * 5_000))
    assert status in (400, 413), (status, answer)
    assert status != 400 or b"payload" not in answer  # the server's own refusal, not the app's


async def test_a_declared_length_is_trusted_only_without_a_transfer_encoding():
    """The layer itself, under a server that delivers more than the declared length: with a
    Transfer-Encoding beside it the body is counted, without one the server's framing is trusted."""
    from helpdesk_common.observability import RequestChecksMiddleware

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % len(body)})

    async def answer(headers: list[tuple[bytes, bytes]]) -> list[dict]:
        chunks = [b"z" * 600] * 5
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": chunks.pop(), "more_body": bool(chunks)}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/echo", "query_string": b"", "headers": headers}
        await RequestChecksMiddleware(app, max_bytes=LIMIT)(scope, receive, send)
        return sent

    both = await answer([(b"content-length", b"10"), (b"transfer-encoding", b"chunked")])
    assert both[0]["status"] == 413
    trusted = await answer([(b"content-length", b"10")])
    assert trusted[0]["status"] == 200  # the server frames by the length: no count of its own
    assert (await answer([]))[0]["status"] == 413
    for declared in (b"1001", "\u00b2".encode(), b"9" * 5000, b"-1", b"abc"):
        assert (await answer([(b"content-length", declared)]))[0]["status"] == 413, declared


async def test_the_checks_answer_in_order_size_then_nul_then_method(server):
    big = b"POST /v1/echo?q=%%00 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
    assert (await _exchange(server, big))[0] == 413
    status, _, answer = await _exchange(server, b"GET /v1/things/special?q=a%00b HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 422 and b'"field":"query.q"' in answer and b"nul_character" in answer
    status, headers, answer = await _exchange(server, b"PATCH /v1/things/special HTTP/1.1\r\nHost: t\r\n"
                                                      b"Content-Length: 2\r\n\r\n{}")
    assert status == 405 and headers[b"allow"] == b"GET" and b"method-not-allowed" in answer
    # NUL before the method, size before both
    assert (await _exchange(server, b"PATCH /v1/things/special?q=%00 HTTP/1.1\r\nHost: t\r\n\r\n"))[0] == 422
    assert (await _exchange(server, b"PATCH /v1/things/special?q=%%00 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                            % (LIMIT + 1)))[0] == 413
    assert (await _exchange(server, b"PATCH /v1/things/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"))[0] == 200


def _counted(method: str, route: str, status: str) -> float:
    return REGISTRY.get_sample_value("http_requests_total", {"method": method, "route": route, "status": status}) or 0


async def test_the_metrics_count_what_the_client_got_by_route_template(server):
    before = [_counted("PATCH", "/v1/things/{thing_id}", "200"), _counted("GET", "/v1/boom", "500"),
              _counted("OTHER", "<unmatched>", "404"), _counted("POST", "/v1/echo", "413"),
              _counted("GET", "<unmatched>", "422"), _counted("POST", "<unmatched>", "413")]
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
             _counted("GET", "<unmatched>", "422"), _counted("POST", "<unmatched>", "413")]
    # the 413 was refused before routing: no route matched it
    assert [a - b for a, b in zip(after, before)] == [1, 1, 3, 0, 1, 1]
    assert REGISTRY.get_sample_value("http_requests_total", {"method": "PROPFIND", "route": "<unmatched>",
                                                             "status": "404"}) is None
