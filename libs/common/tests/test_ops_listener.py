"""The ops listener (helpdesk_common/ops_listener.py) on its own: it serves the app it is given on
its own port, a taken port fails its start with an OSError (not uvicorn's sys.exit from inside a
task), and it lets the port go when stopped."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI

from helpdesk_common.devstack import free_port
from helpdesk_common.ops_listener import OpsListener

pytestmark = pytest.mark.timeout(60)


def probe_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


async def test_serves_then_lets_the_port_go():
    port = free_port()
    ops = OpsListener(app=probe_app(), host="127.0.0.1", port=port)
    await ops.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).json() == {"status": "ok"}
    finally:
        await ops.stop()
    with socket.socket() as again:  # free again: a restarted app binds it (as uvicorn does, SO_REUSEADDR)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
    await ops.stop()  # stopping twice is harmless


async def test_a_taken_port_is_an_os_error_of_the_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ops = OpsListener(app=probe_app(), host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await ops.start()
        await ops.stop()
