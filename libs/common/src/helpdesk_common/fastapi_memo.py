"""Memoise what FastAPI works out again on every request from a route's fixed declarations.

For each query, header or cookie parameter of the route, on every request, FastAPI (0.165)
asks whether its annotation is a sequence (walking ``Annotated`` and ``Union`` with
``typing.get_origin`` and ``issubclass``), whether it is a Pydantic model, and which aliases it
answers to. None of that changes after the route is built. Measured in-process on a route with
the ticket list's 21 query parameters: 340 µs a request against 60 for the same route without
parameters, three quarters of it these three questions (docs/performance.md, round 5); on
ticket-svc under search, FastAPI's dependency solving was 17 % of the process's samples.

``install`` wraps the three functions of ``fastapi.dependencies.utils`` with caches: by the
annotation (equal annotations give equal answers) and on the parameter's ``ModelField``. The
answers are the library's own, computed once. Where a later FastAPI has moved or renamed one
of them, nothing is patched and a warning says so (libs/common/tests/test_fastapi_memo.py
fails first: it checks the names and that answers do not change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.dependencies import utils as _deps

log = logging.getLogger(__name__)

#: the functions wrapped: (name in fastapi.dependencies.utils, how the answer is cached)
PATCHED = ("field_annotation_is_sequence", "_get_param_model", "_get_param_aliases")
_MARK = "_helpdesk_memoised"
#: FastAPI's own functions, as they were before ``install`` (the test compares against them)
ORIGINALS: dict[str, Callable[..., Any]] = {}
_ANNOTATION_CACHE_MAX = 10_000  # distinct annotations; a process has a few hundred


def _by_annotation(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    cache: dict[Any, bool] = {}

    def field_annotation_is_sequence(annotation: Any) -> bool:
        try:
            return cache[annotation]
        except KeyError:
            if len(cache) >= _ANNOTATION_CACHE_MAX:
                cache.clear()
            answer = cache[annotation] = original(annotation)
            return answer
        except TypeError:  # an unhashable annotation
            return original(annotation)

    return field_annotation_is_sequence


def _on_field(original: Callable[..., Any], attribute: str) -> Callable[..., Any]:
    def memoised(field: Any, **kwargs: Any) -> Any:
        store = getattr(field, "__dict__", None)
        if store is None:  # a field type without an instance dict: ask every time
            return original(field, **kwargs)
        key = f"{attribute}{sorted(kwargs.items())}" if kwargs else attribute
        try:
            answer = store[key]
        except KeyError:
            answer = store[key] = original(field, **kwargs)
        return list(answer) if isinstance(answer, list) else answer  # callers get their own list

    memoised.__name__ = original.__name__
    return memoised


def install() -> bool:
    """Wrap the three functions once per process; False (and a warning) when this FastAPI does
    not have them where expected."""
    if getattr(_deps, _MARK, False):
        return True
    if not all(callable(getattr(_deps, name, None)) for name in PATCHED):
        log.warning("FastAPI's parameter helpers moved; request parameters are not memoised",
                    extra={"missing": [n for n in PATCHED if not callable(getattr(_deps, n, None))]})
        return False
    ORIGINALS.update({name: getattr(_deps, name) for name in PATCHED})
    _deps.field_annotation_is_sequence = _by_annotation(_deps.field_annotation_is_sequence)
    _deps._get_param_model = _on_field(_deps._get_param_model, "_helpdesk_param_model")
    _deps._get_param_aliases = _on_field(_deps._get_param_aliases, "_helpdesk_param_aliases")
    setattr(_deps, _MARK, True)
    return True
