"""The authorization matrix (issue 15, item 1): every public route × every principal kind,
through the gateway of the real stack. The rows are the route table (routes.py): a route without a
rule fails here, naming it, and so does a rule that names no route. The rules and the reasons for
each expectation: matrix.py; the principals and their objects: principals.py; docs/security.md,
"Authorization matrix"."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from .matrix import RULES, Rule
from .principals import KINDS, build_world
from .routes import public_routes, unreachable_routes
from .runner import failures, run_matrix, summary, verdict
from .stack import start_matrix_stack


def test_every_public_route_has_exactly_one_rule():
    routes = {route.key for route in public_routes()}
    named = [rule.route for rule in RULES]
    twice = sorted({key for key in named if named.count(key) > 1})
    assert not twice, f"routes with more than one rule: {twice}"
    without = sorted(routes - set(named))
    assert not without, f"routes without a rule in tests/security/matrix.py (add one): {without}"
    stale = sorted(set(named) - routes)
    assert not stale, f"rules naming no route (removed or renamed?): {stale}"


def test_every_rule_names_every_kind_and_reasons_for_its_tolerances():
    for rule in RULES:
        assert set(rule.expect) == set(KINDS), rule.route
        assert all(reason.strip() for reason in rule.tolerate.values()), rule.route
        assert not set(rule.tolerate) & {401, 403, 404} or "ok" in rule.expect.values(), rule.route


def test_the_route_table_reads_the_gateway_and_every_service():
    owners = {route.owner for route in public_routes()}
    assert owners == {"gateway", "ticket_svc", "customer_svc", "sla_svc", "analytics_svc", "notify_svc", "kb_svc"}
    # the internal routes exist and are not public
    assert {"PUT /internal/users/{user_id}", "GET /internal/attachments/{sha256}"} <= {
        route.key for route in unreachable_routes()}
    assert not any(route.path.startswith("/internal/") for route in public_routes())


@pytest.mark.parametrize("status, expected, outcome", [
    (200, "ok", ""), (204, "ok", ""), (302, "ok", ""), (404, "404", ""), (403, "403", ""), (401, "401", ""),
    (403, "404", "x"), (404, "403", "x"), (200, "404", "x"), (200, "401", "x"), (401, "ok", "x"),
    (500, "ok", "x"), (503, "403", "x"), (404, "no", ""), (401, "no", ""), (200, "no", "x"),
])
def test_a_cells_verdict(status, expected, outcome):
    rule = Rule("GET /x", {kind: expected for kind in KINDS})
    got = verdict(rule, expected, status, "application/problem+json", "{}")
    assert bool(got) == bool(outcome), (status, expected, got)


def test_a_4xx_must_be_a_problem_and_a_tolerated_status_needs_its_rule():
    rule = Rule("GET /x", {kind: "ok" for kind in KINDS}, tolerate={409: "answered twice"})
    assert verdict(rule, "ok", 409, "application/problem+json", "") == ""
    assert verdict(rule, "ok", 422, "application/problem+json", "") != ""
    assert verdict(rule, "404", 404, "text/html", "") != ""


@pytest.fixture(scope="module")
def matrix_stack(tmp_path_factory):
    stack = start_matrix_stack(Path(tmp_path_factory.mktemp("matrix")))
    try:
        yield stack
    finally:
        stack.stop_all()


async def test_authorization_matrix(matrix_stack, report):
    shadowed = {route.key for route in public_routes() if route.owner == "gateway"}
    unreachable = [route for route in unreachable_routes() if route.key not in shadowed]
    async with httpx.AsyncClient(base_url=matrix_stack.creds["gateway_url"], timeout=60) as gw:
        started = time.monotonic()
        world = await build_world(gw, creds=matrix_stack.creds, secrets=matrix_stack.secrets)
        built = time.monotonic()
        cells = await run_matrix(world, unreachable)
        ran = time.monotonic()
    line = f"{summary(cells)}; set-up {built - started:.0f} s, cells {ran - built:.0f} s"
    report(line, section="authorization matrix")
    failed = failures(cells)
    assert not failed, f"{len(failed)} cells failed:\n" + "\n".join(failed)
