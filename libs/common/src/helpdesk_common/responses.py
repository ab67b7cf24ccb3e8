"""A JSON response rendered by orjson straight from rows and dicts.

Used where an endpoint returns database rows without a pydantic round-trip (hot paths) and
for problem documents. asyncpg returns its own UUID type, which orjson does not know, so
the fallback renders anything unknown with ``str``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def _default(value: Any) -> str:
    return str(value)


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z)


class JSONBytesResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
