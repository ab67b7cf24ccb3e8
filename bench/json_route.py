"""CPU per request of ``JsonBodyRoute`` (helpdesk_common/json_route.py) against FastAPI's own
handling of the same endpoint: the app of libs/common/tests/test_json_route.py, which serves one
endpoint both ways, called in-process over ASGI with a ticket-like JSON body, interleaved,
process CPU time, median of 7 rounds of 2,000 requests.

Run: ``.venv/bin/python bench/json_route.py`` (no database, no network). Round 19: 132 → 76 µs.
"""
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libs" / "common" / "tests"))
from test_json_route import APP  # noqa: E402

logging.getLogger().setLevel("WARNING")
BODY = (b'{"subject": "Order 17 arrived damaged", "count": 3, "tags": ["bench", "damaged", "logistics"], '
        b'"extra": {"order_no": "B-1-2", "region": "cn-east", "value_cents": 7919}}')


def scope(path: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"t"), (b"content-type", b"application/json"), (b"x-caller", b"agent-7"),
                        (b"content-length", str(len(BODY)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def receive() -> dict:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def send(message: dict) -> None:
    pass


async def run(path: str, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await APP(scope(path), receive, send)
    return (time.process_time() - started) / n * 1e6


async def main() -> None:
    await run("/v1/plain", 100)
    await run("/v1/short", 100)
    plain, short = [], []
    for _ in range(7):
        plain.append(await run("/v1/plain", 2000))
        short.append(await run("/v1/short", 2000))
    plain.sort()
    short.sort()
    print(f"CPU per request (median of 7 x 2000): FastAPI's way {plain[3]:.1f} us, JsonBodyRoute {short[3]:.1f} us")


asyncio.run(main())
