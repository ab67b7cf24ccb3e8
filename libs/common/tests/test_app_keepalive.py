"""A service that answered an unexpected error with its 500 problem keeps the connection: the
next request on it (the gateway pools keep-alive connections) is answered, not dropped."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.devstack import free_port
from helpdesk_common.settings import ServiceSettings


def _app():  # type: ignore[no-untyped-def]
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected bug")

    @router.get("/v1/slow")
    async def slow() -> dict:
        await asyncio.sleep(0.2)
        return {"ok": True}

    return build_app(ServiceSettings(service_name="keepalive-test"), ServiceParts(title="t", routers=[router]))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def test_a_500_keeps_the_connection_for_the_next_request():
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # both requests on one keep-alive connection, the second sent before the first is answered
            writer.write(b"GET /v1/boom HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/slow HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            first = await _read_response(reader)
            second = await _read_response(reader)
            writer.close()
        assert first[0] == 500 and b"internal-error" in first[1] and b"Traceback" not in first[1]
        assert second == (200, b'{"ok":true}')
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await task
