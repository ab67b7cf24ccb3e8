"""Baselines measured in the same `make bench` run, on the same machine, as subprocesses.

* ``hello_app``: a raw ASGI app (no framework) answering ``{"hello":"world"}``: the ceiling of
  one uvicorn worker (uvloop, httptools) on this machine.
* ``insert_app``: FastAPI validating the same ~600-byte ticket body with pydantic and doing
  one raw asyncpg single-row INSERT (pool of 10): the floor any intake path compares with.
* ``select_app``: FastAPI reading one customer row by primary key with raw asyncpg (pool of
  10) and answering it as JSON: the floor any single-customer read (the 360 view,
  ``bench/customers.py``) compares with.

Run with ``uvicorn --factory bench.baselines:hello_app`` / ``insert_app`` from the repository
root; the insert app reads its DSN from ``BENCH_DSN`` (a plain ``postgresql://`` URL) and
expects the table from ``SCHEMA`` (``bench/run.py`` creates it); the select app reads
customer-svc's ``customers`` table at ``BENCH_DSN``.
"""

import contextlib
import json
import os
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HELLO = json.dumps({"hello": "world"}, separators=(",", ":")).encode()

SCHEMA = """
DROP TABLE IF EXISTS bench_tickets;
CREATE TABLE bench_tickets (
    id uuid PRIMARY KEY,
    subject text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


def hello_app():
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(HELLO)).encode())]

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": HELLO})

    return app


# module level, not inside the factory: FastAPI resolves the endpoint's annotations from the
# module's globals (a local class shows up as an unresolvable forward reference -> 422)
class Requester(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=256)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=65_536)
    requester: Requester
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    type: str | None = Field(None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


def insert_app():
    import asyncpg
    from fastapi import FastAPI

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/v1/tickets", status_code=201)
    async def create(body: TicketIn):
        ticket_id = uuid.uuid4()
        async with app.state.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO bench_tickets (id, subject, body) VALUES ($1, $2, $3)",
                ticket_id, body.subject, body.model_dump_json(),
            )
        return {"id": str(ticket_id), "status": "new", "priority": body.priority}

    return app


def select_app():
    import asyncpg
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/customers/{customer_id}")
    async def read(customer_id: uuid.UUID):
        async with app.state.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT id, name, tier, language, created_at FROM customers WHERE id = $1",
                                      customer_id)
        if row is None:
            return JSONResponse({"title": "Not found"}, status_code=404)
        return {"id": str(row["id"]), "name": row["name"], "tier": row["tier"], "language": row["language"],
                "created_at": row["created_at"].isoformat()}

    return app
