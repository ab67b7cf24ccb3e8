"""The OpenAPI document of every service: its error answers, derived from the routes, and the
rules of what it takes (docs/ARCHITECTURE.md, "The API document").

FastAPI documents the success answer and a 422 with its own ``HTTPValidationError`` body, but
every error here is an RFC 9457 ``application/problem+json`` (``problems.py``), and most routes
can answer more than 422. ``build_app`` calls ``install`` so that each operation of each service
declares the errors it can answer, with one shared ``Problem`` schema, derived from the route:

- 401 and 403 when the route needs a caller (a dependency marked with ``authenticates``);
  a route without one says ``security: []`` (the gateway's sign-in, for instance);
- 404 when it has path parameters (no such resource, or one the caller may not see);
- 400 when it takes a JSON body (malformed JSON) or a ``cursor`` (a forged cursor);
- 409 on a caller's writes (POST, PUT, PATCH, DELETE): a state conflict, or a value that must be
  unique is taken;
- 412 when it reads ``If-Match``; 413 when it takes a body; 422 when it takes any input.

A route adds what cannot be derived with FastAPI's ``responses=`` (``problem_responses(...)``):
any 4xx/5xx answer declared without content gets the problem body. The gateway adds its own
answers to what it forwards (429, 502, 504: ``gateway/proxy/openapi.py``).

Request bodies and parameters also get what the server enforces everywhere: no U+0000 in text
(``NO_NUL_PATTERN``), a default said in words rather than as ``default`` (which generators read
as "always present"), free-form values as ``JsonValue``; and integer bounds stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"

#: one schema for every error answer of every service (problems.py renders it)
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. `type` is stable per kind of error; other members may be added "
                   "per kind (e.g. `current_version` on a 412, `field` on a 403 assignment refusal).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "https://helpdesk.dev/problems/<kind>",
                 "examples": ["https://helpdesk.dev/problems/validation-error"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {"type": "string", "description": "the X-Request-ID of the request, for the logs"},
        "errors": {
            "type": "array",
            "description": "validation errors: one per field",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "description": 'where: "body.subject", "query.limit", ...'},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

DESCRIPTIONS = {
    400: "Malformed request: the body is not valid JSON, or the cursor is not one this API issued.",
    401: "Missing, invalid or expired credentials (`unauthorized`).",
    403: "The caller may not do this (`forbidden` and more specific kinds).",
    404: "No such resource, or one the caller may not see (`not-found`).",
    409: "The resource's state does not allow it, or a value that must be unique is taken.",
    412: "`If-Match` names a version that is no longer current (`version-conflict`, with `current_version`).",
    413: "The request body is larger than the limit (`payload-too-large`).",
    415: "The request body's media type is not one this operation takes.",
    422: "Invalid input (`validation-error`, with `errors` naming each field).",
    429: "Too many requests (`rate-limited`): retry after `Retry-After` seconds.",
    502: "The service behind the gateway is unavailable (`bad-gateway`).",
    503: "Busy or unavailable for a moment: retry after `Retry-After` seconds.",
    504: "The service behind the gateway did not answer in time (`gateway-timeout`).",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "required": True,
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "the scheme to use (Bearer)",
                                         "schema": {"type": "string"}}}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

F = TypeVar("F", bound=Callable[..., Any])


def authenticates(dependency: F) -> F:
    """Mark a FastAPI dependency that identifies the caller (401 without credentials)."""
    dependency.__helpdesk_authenticates__ = True  # type: ignore[attr-defined]
    return dependency


def problem(status: int, description: str | None = None, *, retry_after: bool | None = None) -> dict[str, Any]:
    """One error answer of the document: the shared Problem body (and Retry-After on 429/503)."""
    answer: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if retry_after if retry_after is not None else status in (429, 503):
        answer["headers"] = dict(RETRY_AFTER)
    if status == 401:
        answer["headers"] = dict(WWW_AUTHENTICATE)
    return answer


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """For a route's ``responses=``: answers the route gives that cannot be derived from it.
    ``descriptions`` by ``_<status>`` keyword: ``problem_responses(503, _503="busy")``."""
    return {status: {"description": descriptions.get(f"_{status}", DESCRIPTIONS.get(status, "Error"))}
            for status in statuses}


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route with the path and settings it has in the app (FastAPI 0.165 keeps
    included routers lazily: a route context resolves the prefix and the router's options)."""
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def authenticated(route: Any) -> bool:
    return any(getattr(d.call, "__helpdesk_authenticates__", False) for d in _dependants(route.dependant))


def _names(param: Any) -> list[str]:
    """A parameter's name, or the names of a parameter model's fields (``Query()`` models)."""
    annotation = getattr(getattr(param, "field_info", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return [param.alias]


def derived_errors(route: Any, method: str) -> list[int]:
    """The error statuses an operation can answer, as far as its route shows."""
    params = [p for d in _dependants(route.dependant)
              for p in (*d.path_params, *d.query_params, *d.header_params, *d.cookie_params)]
    names = {name for p in params for name in _names(p)}
    extra_body = (route.openapi_extra or {}).get("requestBody")
    has_body = route.body_field is not None or extra_body is not None
    json_body = route.body_field is not None or (
        extra_body is not None and "application/json" in extra_body.get("content", {}))
    statuses: set[int] = set()
    if authenticated(route):
        statuses |= {401, 403}
        if method in WRITE_METHODS:
            statuses.add(409)
    if route.dependant.path_params:
        statuses.add(404)
    if json_body or "cursor" in names:
        statuses.add(400)
    if "if-match" in {name.lower() for name in names}:
        statuses.add(412)
    if has_body:
        statuses.add(413)
    if has_body or params:
        statuses.add(422)
    return sorted(statuses)


#: no text the API takes may hold U+0000 (PostgreSQL cannot store it: validation.StrictModel for
#: bodies, the URL middleware for paths and queries); an ECMA-262 regex
NO_NUL_PATTERN = r"^[^\u0000]*$"
#: ``openapi_extra`` of an operation that drops U+0000 from its body's text instead of refusing it
#: (a channel's native payload): the NUL rule is not stated on that body
TEXT_NUL_DROPPED: dict[str, Any] = {"x-text-nul": "dropped"}
JSON_VALUE_REF = "#/components/schemas/JsonValue"
#: how deep a free-form value may nest lists and objects (ticket-svc forms.limits)
JSON_VALUE_DEPTH = 8


def json_value_schemas(depth: int = JSON_VALUE_DEPTH) -> dict[str, dict[str, Any]]:
    """A free-form value the API stores (custom fields): any JSON but what PostgreSQL's jsonb and
    the event encoder refuse (validation.StrictModel, forms.limits.value_problem). One component
    per level (``JsonValue``, ``JsonValue1``... ``JsonValue8``, the last one without lists or
    objects) rather than one recursive schema: the depth limit is stated, and TypeScript
    generators (whose types cannot refer to themselves through an array) get a type. Each level is
    one schema whose keywords apply by type (``pattern`` to text, bounds to numbers), not an
    ``anyOf``: test generators walk it without multiplying alternatives level by level."""
    schemas: dict[str, dict[str, Any]] = {}
    for level in range(depth, -1, -1):
        name = "JsonValue" if level == 0 else f"JsonValue{level}"
        schema: dict[str, Any] = {"title": name, "type": ["string", "number", "boolean", "null"],
                                  "pattern": NO_NUL_PATTERN, "minimum": -(2**63), "maximum": 2**63 - 1}
        if level < depth:
            inner = {"$ref": f"#/components/schemas/JsonValue{level + 1}"}
            schema["type"] += ["array", "object"]
            schema.update(items=inner, additionalProperties=inner, propertyNames={"pattern": NO_NUL_PATTERN})
        schemas[name] = schema
    schemas["JsonValue"]["description"] = (
        f"Any JSON value: text without U+0000, numbers within the range of 64-bit integers, lists and objects "
        f"of such values, nested at most {depth} deep (JsonValue1... are the deeper levels).")
    return dict(sorted(schemas.items()))


def _walk(node: Any, schemas: dict[str, Any], seen: set[str], visit: Callable[[dict[str, Any]], None]) -> None:
    """``visit`` every schema object under ``node``, following ``$ref``s to components once."""
    if isinstance(node, list):
        for item in node:
            _walk(item, schemas, seen, visit)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in schemas:
            seen.add(name)
            _walk(schemas[name], schemas, seen, visit)
        return
    visit(node)
    for key in ("properties", "patternProperties", "$defs"):
        for child in (node.get(key) or {}).values():
            _walk(child, schemas, seen, visit)
    for key in ("items", "additionalProperties", "propertyNames", "not", "contains", "if", "then", "else"):
        _walk(node.get(key), schemas, seen, visit)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        _walk(node.get(key), schemas, seen, visit)


#: escapes after which a pattern may match U+0000: negated shorthands, property classes, a
#: control letter (``\c@``), and U+0000 itself (``\0``, ``\x00``, ``\u0000``, ``\u{0}``)
_NUL_ESCAPES = ("D", "W", "S", "p", "P", "c", "0", "x00", "u0000", "u{")
_NUL_ITSELF = ("0", "x00", "u0000")


def pattern_excludes_nul(pattern: str) -> bool:
    """True when no string holding U+0000 matches ``pattern`` (an ECMA-262 regex, which JSON
    Schema applies unanchored), judged from its syntax and on the safe side: anchored at both
    ends without a top-level alternative, and nothing in it that matches U+0000 (no ``.``, no
    negated class but one that lists U+0000, none of ``_NUL_ESCAPES`` elsewhere). False whenever
    that is not evident.

    Why it matters: beside such a pattern, the NUL rule's ``allOf`` says nothing new, and
    generators pay dearly for two patterns on one string (they draw from one and filter by the
    other): schemathesis took 54 s instead of 6 s over the locale parameter of one operation."""
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$" or pattern[-2] == "\\":
        return False
    depth, in_class, negated, names_nul, i = 0, False, False, False, 1
    while i < len(pattern) - 1:
        char = pattern[i]
        if char == "\\":
            if pattern.startswith(_NUL_ESCAPES, i + 1):
                if not negated:
                    return False
                # a negated class that lists U+0000 (``[^\x00-\x1f]``) excludes it
                names_nul = names_nul or pattern.startswith(_NUL_ITSELF, i + 1)
            i += 2
            continue
        if char == "\x00":
            return False
        if in_class:
            if char == "]":
                if negated and not names_nul:
                    return False
                in_class = negated = False
        elif char == "[":
            in_class, negated, names_nul = True, pattern[i + 1:i + 2] == "^", False
            i += 1 + negated
            continue
        elif char == ".":
            return False
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return False
        i += 1
    return depth == 0 and not in_class


def _no_nul(node: dict[str, Any]) -> None:
    """State the NUL rule on free text: a string schema without a format or an enum gets the
    pattern (or, beside a pattern of its own that may match U+0000, an ``allOf`` with it); object
    keys are text too."""
    kinds = node.get("type")
    if (kinds == "string" or (isinstance(kinds, list) and "string" in kinds)) and not (
            {"format", "enum", "const", "contentMediaType"} & node.keys()):
        if "pattern" not in node:
            node["pattern"] = NO_NUL_PATTERN
        elif node["pattern"] != NO_NUL_PATTERN and not pattern_excludes_nul(node["pattern"]) and not any(
                part.get("pattern") == NO_NUL_PATTERN for part in node.get("allOf", [])):
            node.setdefault("allOf", []).append({"pattern": NO_NUL_PATTERN})
    names = node.get("propertyNames")
    if isinstance(names, dict) and "type" not in names and not {"enum", "const"} & names.keys():
        names["type"] = "string"


def _default_in_words(node: dict[str, Any]) -> None:
    """A request field's default goes into its description rather than ``default``: generators
    read ``default`` as "always present" (openapi-typescript makes such a property required, so
    the README's own ``{"subject", "requester"}`` did not type-check), which holds for what the
    server answers, not for what a client may leave out. Which fields are required is said by
    ``required`` alone."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return
    for field in properties.values():
        if isinstance(field, dict) and "default" in field:
            default = field.pop("default")
            words = f"Default: `{json.dumps(default, ensure_ascii=False)}`."
            field["description"] = f"{field['description'].rstrip('.')}. {words}" if field.get("description") else words


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node: Any) -> None:
    """Integer bounds as integers again. FastAPI's OpenAPI model types ``maximum`` and the like
    as floats, so pydantic's exact ``le=2**63 - 1`` (a bigint column) came out as
    ``9.223372036854776e+18``, which is 2**63: a value the document allowed and the server
    refused. Integral bounds become ints; 2**63 as a maximum was always 2**63 - 1."""
    if isinstance(node, list):
        for item in node:
            _exact_bounds(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = 2**63 - 1 if key == "maximum" and value == 2.0**63 else int(value)
            else:
                _exact_bounds(value)


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move the ``$defs`` of a schema written into an operation (``openapi_extra``, from a
    pydantic model with ``ref_template="#/components/schemas/{model}"``) to the components its
    ``$ref``s name."""
    if isinstance(node, list):
        for item in node:
            _hoist_defs(item, schemas)
    elif isinstance(node, dict):
        for name, schema in (node.pop("$defs", None) or {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas are named {name}")
        for value in node.values():
            _hoist_defs(value, schemas)


def finish(app: FastAPI, doc: dict[str, Any]) -> dict[str, Any]:
    """Declare every operation's error answers as problems (in place), and the NUL rule on the
    text every operation takes."""
    paths = doc.get("paths", {})
    component_schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    _hoist_defs(paths, component_schemas)
    guarded: set[str] = set()
    described: set[str] = set()
    for operations in paths.values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _walk(parameter.get("schema"), component_schemas, guarded, _no_nul)
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                if operation.get("x-text-nul") != "dropped":
                    _walk(media.get("schema"), component_schemas, guarded, _no_nul)
                _walk(media.get("schema"), component_schemas, described, _default_in_words)
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in derived_errors(route, method):
                responses.setdefault(str(status), {})
            for code, answer in list(responses.items()):
                if code[:1] in ("4", "5") and code.isdigit():
                    declared = answer.get("description")
                    responses[code] = problem(int(code), None if declared in (None, "Validation Error") else declared)
                    if "headers" in answer:
                        responses[code]["headers"] = {**responses[code].get("headers", {}), **answer["headers"]}
            operation["responses"] = dict(sorted(responses.items()))
            if not authenticated(route) and "security" not in operation:
                operation["security"] = []
    _exact_bounds(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    if JSON_VALUE_REF in repr(doc):
        schemas.update(json_value_schemas())
    text = repr(paths)
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}'" not in text:
            schemas.pop(unused, None)
    return doc


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the finished document (built once, like FastAPI's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_finished", False):
            finish(app, build())
            app.state.openapi_finished = True
        return build()

    app.openapi = openapi  # type: ignore[method-assign]
