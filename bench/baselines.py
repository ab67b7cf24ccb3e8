"""Baselines measured in the same `make bench` run, on the same machine.

* ``hello``: a raw ASGI app answering a JSON hello (the ceiling of uvicorn itself);
* ``insert``: FastAPI validating a ~600-byte body with pydantic and doing one raw asyncpg
  single-row INSERT (pool of 10): the floor any intake path is compared with.

Run with ``uvicorn --factory bench.baselines:hello_app`` / ``insert_app``; the insert app
reads its DSN from ``BENCH_DSN``.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

HELLO = json.dumps({"hello": "world"}).encode()


def hello_app():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(HELLO)).encode())]})
        await send({"type": "http.response.body", "body": HELLO})

    return app


def insert_app():
    import asyncpg
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Requester(BaseModel):
        name: str | None = None
        email: str | None = None

    class Body(BaseModel):
        subject: str
        description: str = ""
        requester: Requester
        priority: str = "normal"
        tags: list[str] = []
        custom_fields: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/tickets", status_code=201)
    async def create(body: Body):
        ticket_id = uuid.uuid4()
        async with app.state.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO bench_tickets (id, subject, body) VALUES ($1, $2, $3)",
                ticket_id, body.subject, body.model_dump_json(),
            )
        return {"id": str(ticket_id), "status": "new"}

    return app
