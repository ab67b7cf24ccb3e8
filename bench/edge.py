"""CPU per request of the edge layer (helpdesk_common/edge.py): one build_app service answering a
small GET, called in-process over ASGI with and without ``EdgeMiddleware`` (the stack under it),
interleaved, process CPU time, median of 10 rounds of 2,000 requests.

Run: ``.venv/bin/python bench/edge.py`` (no database, no network).
"""
import asyncio, time
from fastapi import APIRouter
from helpdesk_common.app import build_app, ServiceParts
from helpdesk_common.settings import ServiceSettings
import logging
r = APIRouter()
@r.get("/v1/items/{item_id}")
async def item(item_id: int) -> dict:
    return {"id": item_id, "subject": "x" * 100}
app = build_app(ServiceSettings(service_name="bench"), ServiceParts(title="t", routers=[r]))
logging.getLogger().setLevel("WARNING")
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
         "path": "/v1/items/1", "raw_path": b"/v1/items/1", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"t"), (b"authorization", b"Bearer x"), (b"x-request-id", b"abc-123")],
         "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}
async def send(message):
    pass
async def run(target, n):
    t = time.process_time()
    for _ in range(n):
        await target(dict(scope), receive, send)
    return (time.process_time() - t) / n * 1e6
async def main():
    await app(dict(scope), receive, send)  # builds the stack
    with_edge = app.middleware_stack
    without = with_edge.app
    a, b = [], []
    for _ in range(10):
        a.append(await run(with_edge, 2000)); b.append(await run(without, 2000))
    a.sort(); b.sort()
    print(f"CPU per request (median of 10 x 2000): with edge {a[5]:.1f} us, without {b[5]:.1f} us, edge costs {a[5]-b[5]:.1f} us")
asyncio.run(main())
