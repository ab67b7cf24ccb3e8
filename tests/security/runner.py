"""Runs the matrix's cells: one request per (rule, principal kind), through the gateway."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx

from .matrix import RULES, UNREACHABLE, Rule
from .principals import KINDS, World, bearer
from .routes import Route

#: requests in flight at once (the stack shares the machine's cores with this process)
CONCURRENCY = 12
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass
class Cell:
    route: str
    kind: str
    expected: str
    status: int | None = None
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.detail

    def __str__(self) -> str:
        return f"{self.route} as {self.kind}: expected {self.expected}, got {self.status} {self.detail}"


def _fill(path: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: values[m.group(1)], path)


def verdict(rule: Rule | None, expected: str, response_status: int, content_type: str, body: str) -> str:
    """'' when the answer is the expected outcome, else why not."""
    tolerated = rule.tolerate if rule is not None else {}
    if response_status >= 500 and response_status not in tolerated:
        return f"server error: {body[:300]}"
    if response_status >= 400 and rule is not None and rule.envelope == "zendesk":
        if not (content_type.startswith("application/json") and '"error"' in body and '"description"' in body):
            return f"a {response_status} that is not Zendesk's error envelope ({content_type}): {body[:200]}"
    elif response_status >= 400 and not content_type.startswith("application/problem+json"):
        return f"a {response_status} that is not problem+json ({content_type})"
    if expected == "ok":
        return "" if response_status < 400 or response_status in tolerated else f"refused: {body[:300]}"
    if expected == "no":
        return "" if response_status in (401, 403, 404) else f"reached: {body[:300]}"
    return "" if response_status == int(expected) else f"{body[:300]}"


async def _request(world: World, rule: Rule, kind: str) -> Cell:
    cell = Cell(rule.route, kind, rule.expect[kind])
    try:
        prepared = await rule.fresh(world, kind) if rule.fresh else {}
        names = _PARAM.findall(rule.path)
        # a parameter names a World.ids entry, or is a literal after "="
        values = {name: (lambda ref: ref[1:] if ref.startswith("=") else world.ids[ref])(rule.params.get(name, name))
                  for name in names if name not in prepared.get("params", {})}
        values.update(prepared.get("params", {}))
        headers = dict(world.headers[kind])
        if kind == "customer" and rule.customer_token:
            headers = bearer(world.tokens[rule.customer_token])
        if kind in world.roles and "headers" in prepared:
            headers = prepared["headers"]
        headers.update(rule.headers)
        headers.update(prepared.get("extra_headers", {}))
        body = prepared.get("json", rule.json)
        if callable(body):
            body = body(world)
        query = rule.query(world) if callable(rule.query) else rule.query
        request: dict[str, Any] = {"headers": headers, "params": query}
        if body is not None:
            request["json"] = body
        elif rule.content is not None:
            request["content"] = rule.content
            headers["Content-Type"] = rule.content_type or "application/octet-stream"
        elif rule.files is not None or rule.data is not None:
            request["files"], request["data"] = rule.files, rule.data
        url = _fill(rule.path, values)
        async with world.gw.stream(rule.method, url, **request) as response:
            cell.status = response.status_code
            text = "" if (rule.stream and response.status_code < 400) else (await response.aread()).decode(
                "utf-8", "replace")
            cell.detail = verdict(rule, cell.expected, response.status_code,
                                  response.headers.get("content-type", ""), text)
    except Exception as exc:  # noqa: BLE001 - a cell that cannot run is a failed cell, named
        cell.detail = f"could not run: {type(exc).__name__}: {exc}"[:500]
    return cell


async def _unreachable(world: World, route: Route, kind: str) -> Cell:
    cell = Cell(f"{route.key} ({route.owner}, not forwarded)", kind, UNREACHABLE[kind])
    try:
        response = await world.gw.request(route.method, _PARAM.sub("x1", route.path), headers=world.headers[kind])
        cell.status = response.status_code
        cell.detail = verdict(None, cell.expected, response.status_code, response.headers.get("content-type", ""),
                              response.text)
    except Exception as exc:  # noqa: BLE001
        cell.detail = f"could not run: {type(exc).__name__}: {exc}"[:500]
    return cell


async def run_matrix(world: World, unreachable: list[Route]) -> list[Cell]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def bounded(coroutine):
        async with gate:
            return await coroutine

    concurrent = [bounded(_request(world, rule, kind)) for rule in RULES if not rule.serial for kind in KINDS]
    concurrent += [bounded(_unreachable(world, route, kind)) for route in unreachable for kind in KINDS]
    cells = list(await asyncio.gather(*concurrent))
    for rule in RULES:
        if rule.serial:
            for kind in KINDS:
                cells.append(await _request(world, rule, kind))
    return cells


def summary(cells: list[Cell]) -> str:
    passed = sum(cell.passed for cell in cells)
    routes = len({cell.route for cell in cells})
    return (f"authorization matrix: {len(cells)} cells ({routes} routes x {len(KINDS)} principal kinds), "
            f"{passed} passed, {len(cells) - passed} failed")


def failures(cells: list[Cell]) -> list[str]:
    return [str(cell) for cell in cells if not cell.passed]


__all__ = ["Cell", "run_matrix", "summary", "failures", "verdict", "httpx"]
