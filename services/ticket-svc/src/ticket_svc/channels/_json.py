"""Shared by the JSON channel parsers: strict pydantic validation into InvalidPayload."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

from .inbound import InvalidPayload  # noqa: E402

MAX_BYTES = 50 * 1024 * 1024


def load(body: bytes, model: type[Model]) -> Model:
    """Parse JSON into ``model``; every failing field becomes one field error."""
    if len(body) > MAX_BYTES:
        raise InvalidPayload("The payload is too large.")
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"The body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("The body must be a JSON object.")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"], "code": e["type"]}
                  for e in exc.errors()]
        raise InvalidPayload("The payload has invalid fields.", field_errors=errors) from exc
