"""Schemathesis per role: the composed document must be true for a supervisor, an agent of a team
and a channel key too, not only for the admin (tests/e2e/test_schemathesis.py).

For each role, every operation is first asked once, as that role (path ids that name nothing, a
body that is no valid request): an answer 403 means the role may not use the operation, which is
then checked as that one answer (a problem document with the request id) and not searched further.
Operations that take no credential (sign-in, refresh, OIDC, the customers' links) answer every role
alike: they are the admin run's only. Of the operations the role reaches, those it is answered
differently from the admin (its own
rules) and a seeded sample of the others, ``SCHEMATHESIS_ROLE_OPERATIONS`` in all, get
schemathesis' examples, fuzzing and stateful phases with every check and fewer cases than the
admin's run (the coverage phase, which walks every boundary of every schema, stays the admin's:
the schemas are the same for every role), bounded in time. Zero failures; the numbers of
operations and cases are printed per role.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_schemathesis import (EXCLUDED, HERE, NEGATIVE_STATUSES, ROBOT_LIMITS, SEED, _report, _toml, prepare,
                                summarize)

#: generated cases per operation in the fuzzing phase, and stateful scenarios, per role
ROLE_MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_ROLE_MAX_EXAMPLES", "3"))
ROLE_STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_ROLE_STATEFUL_EXAMPLES", "5"))
#: operations fuzzed per role: those whose probe the role is answered differently from the admin
#: first (its own rules: scoping, object-level checks), then a seeded sample of the rest; 0: all
ROLE_OPERATIONS = int(os.environ.get("SCHEMATHESIS_ROLE_OPERATIONS", "30"))
#: the hard bound per role (the three together were budgeted at ~8 minutes of CI's 2 cores)
ROLE_TIME_LIMIT_S = int(os.environ.get("SCHEMATHESIS_ROLE_TIME_LIMIT_S", "300"))
ROLES = tuple(os.environ.get("SCHEMATHESIS_ROLES", "supervisor,agent,channel").split(","))
#: where each role's report, output and summary are copied (pytest's temporary directories rotate)
KEEP_DIR = os.environ.get("SCHEMATHESIS_ROLE_KEEP_DIR")
NIL = "00000000-0000-4000-8000-000000000000"
#: never probed (it would end the role's session): every signed-in user may call it, and the
#: hooks give it a session minted for the purpose
NOT_PROBED = {("POST", "/v1/auth/logout")}


def probe_path(path: str, operation: dict[str, Any]) -> str:
    """The path with every parameter naming nothing: an integer 0 or the nil-like UUID."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "path":
            continue
        schema = parameter.get("schema", {})
        kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        value = "0" if "integer" in kinds else NIL
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


async def probe_all(gw: httpx.AsyncClient, document: dict[str, Any], token: str) -> dict[tuple[str, str], Any]:
    """Every operation asked once as the holder of ``token``: (method, path) -> (operation id,
    the answer). Path ids name nothing and the body is a JSON array where every operation takes an
    object or nothing, so a probe never creates or changes anything."""
    answers: dict[tuple[str, str], Any] = {}
    for path, item in sorted(document["paths"].items()):
        for method, operation in sorted(item.items()):
            key = (method.upper(), path)
            if operation.get("security") == []:
                # no credential at all (sign-in, refresh, OIDC, the customers' links): the caller's
                # role cannot change the answer, so these are the admin run's alone
                answers[key] = (operation["operationId"], PUBLIC)
                continue
            if key in EXCLUDED or key in NOT_PROBED:
                answers[key] = (operation["operationId"], None)
                continue
            body = {"json": []} if "requestBody" in operation else {}
            for attempt in (1, 2):
                try:
                    answer = await gw.request(key[0], probe_path(path, operation),
                                              headers={"Authorization": f"Bearer {token}"}, **body)
                    break
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # a keep-alive connection the server closed as the probe went out (uvicorn
                    # drops idle ones after 5 s; a loaded machine makes gaps): once more, fresh
                    if attempt == 2:
                        raise
            answers[key] = (operation["operationId"], answer)
    return answers


#: the probe's answer for an operation that takes no credential (not asked, not fuzzed per role)
PUBLIC = "public"


def choose(role_answers: dict[tuple[str, str], Any], admin_answers: dict[tuple[str, str], Any], *, limit: int,
           seed: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(operation id -> "METHOD path" to fuzz, the refused ones, what is wrong with the answers).
    A 403 is the role being refused the operation: checked as that one answer. Of the others,
    those answered differently from the admin come first, then a sample of the rest (seeded)."""
    refused: list[str] = []
    wrong: list[str] = []
    differing: list[tuple[str, str]] = []
    same: list[tuple[str, str]] = []
    for key, (operation_id, r) in sorted(role_answers.items()):
        label = f"{key[0]} {key[1]}"
        if key in EXCLUDED or r is PUBLIC:
            continue
        if r is None:
            differing.append((operation_id, label))
            continue
        if r.status_code >= 500:
            wrong.append(f"{label}: {r.status_code} to the probe {r.text[:200]}")
        if r.status_code == 403:
            refused.append(label)
            if r.headers.get("content-type") != "application/problem+json" or (
                    r.json().get("request_id") != r.headers.get("x-request-id")):
                wrong.append(f"{label}: 403 without a problem naming the request id")
            continue
        admin = admin_answers.get(key, (None, None))[1]
        admin = None if admin is PUBLIC else admin
        (differing if admin is None or admin.status_code != r.status_code else same).append((operation_id, label))
    random.Random(f"{SEED}:{seed}").shuffle(same)
    chosen = (differing + same)[:limit] if limit else differing + same
    return dict(chosen), refused, wrong


def slowest(events: Path, n: int = 5) -> str:
    """The operations that took the most response time in a run (where a bound goes)."""
    spent: dict[str, list[float]] = {}
    if events.is_file():
        for line in events.read_text().splitlines():
            finished = json.loads(line).get("ScenarioFinished")
            if finished:
                recorder = finished["recorder"]
                for interaction in recorder.get("interactions", {}).values():
                    response = interaction.get("response") or {}
                    spent.setdefault(recorder["label"], []).append(float(response.get("elapsed") or 0))
    top = sorted(spent.items(), key=lambda item: -sum(item[1]))[:n]
    return ", ".join(f"{label} {sum(times):.1f} s/{len(times)}" for label, times in top)


def role_config(*, base_url: str, token: str, report_dir: Path) -> str:
    return "\n".join([
        f"base-url = {_toml(base_url)}",
        f"seed = {SEED}",
        "workers = 1",
        "continue-on-failure = true",
        "request-timeout = 30",
        "color = false",
        "[auth.openapi.bearer]",
        f"bearer = {_toml(token)}",
        "[generation]",
        f"max-examples = {ROLE_MAX_EXAMPLES}",
        'database = "none"',
        "[checks.negative_data_rejection]",
        f"expected-statuses = {_toml(NEGATIVE_STATUSES)}",
        "[phases.stateful]",
        "max-steps = 6",
        "[phases.stateful.generation]",
        f"max-examples = {ROLE_STATEFUL_EXAMPLES}",
        "[reports]",
        f"directory = {_toml(str(report_dir))}",
        "json.enabled = true",
        "ndjson.enabled = true",
    ]) + "\n"


def run_role(*, base_url: str, settings: dict[str, Any], operation_ids: list[str], workdir: Path
             ) -> tuple[int, str, dict[str, Any], Path]:
    report_dir = workdir / "report"
    settings = {**settings, "accepted_log": str(workdir / "accepted.tsv")}
    config = workdir / "schemathesis.toml"
    config.write_text(role_config(base_url=base_url, token=settings["admin_token"], report_dir=report_dir))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"),
           "HELPDESK_ST_SETTINGS": json.dumps(settings), "NO_COLOR": "1", "COLUMNS": "120"}
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
               f"{base_url}/openapi.json", "--checks", "all", "--suppress-health-check", "all",
               "--phases", "examples,fuzzing,stateful",
               *(arg for operation_id in operation_ids for arg in ("--include-operation-id", operation_id))]
    try:
        done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, timeout=ROLE_TIME_LIMIT_S)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = -1, f"stopped after {ROLE_TIME_LIMIT_S} s\n{exc.stdout or ''}{exc.stderr or ''}"
    reports = sorted(report_dir.glob("json-*.json"))
    events = sorted(report_dir.glob("ndjson-*.ndjson"))
    return code, output, _report(reports[-1]) if reports else {}, events[-1] if events else Path()


async def role_token(gw: httpx.AsyncClient, admin: dict[str, str], stack: Any, role: str) -> str:
    """A supervisor; an agent in a team of its own; the web channel's key."""
    if role == "channel":
        return stack.creds["channel_api_keys"]["web"]
    password = uuid.uuid4().hex + "Aa1!"
    email = f"st-{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = await gw.post("/v1/users", headers=admin, json={"email": email, "password": password, "role": role,
                                                              "name": f"st {role}"})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    if role == "agent":
        profile = await gw.put(f"/v1/agents/{user_id}", headers=admin, json={"display_name": "st agent",
                                                                                "status": "online"})
        assert profile.status_code == 200, profile.text
        team = await gw.post("/v1/teams", headers=admin, json={"name": f"st team {uuid.uuid4().hex[:6]}",
                                                               "strategy": "manual", "members": [user_id]})
        assert team.status_code == 201, team.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return login.json()["access_token"]


@pytest.fixture
def role_robot_limits(stack):
    """The gateway with the admin run's limits for robots (test_schemathesis.ROBOT_LIMITS)."""
    stack.stop_service("gateway")
    stack.start_service("gateway", extra_env=ROBOT_LIMITS)
    stack.wait_service("gateway")
    try:
        yield
    finally:
        stack.stop_service("gateway")
        stack.start_services(["gateway"])


@pytest.mark.run_last
@pytest.mark.timeout(len(ROLES) * (ROLE_TIME_LIMIT_S + 120) + 300)  # + the stack's start when run alone
async def test_the_composed_document_is_true_for_every_role(role_robot_limits, gw, stack, tmp_path, report):
    base_url = stack.creds["gateway_url"]
    document = (await gw.get("/openapi.json")).json()
    admin_answers = await probe_all(gw, document, (await prepare(gw, stack.creds))["admin_token"])
    results = []
    for role in ROLES:
        settings = await prepare(gw, stack.creds)  # stand-ins, logout sessions; an admin session
        admin = {"Authorization": f"Bearer {settings['admin_token']}"}
        token = await role_token(gw, admin, stack, role)
        answers = await probe_all(gw, document, token)
        public = sum(1 for _, r in answers.values() if r is PUBLIC)
        reachable, refused, wrong = choose(answers, admin_answers, limit=ROLE_OPERATIONS, seed=role)
        # the hooks treat the run's own token as "ours" (logout gets a minted session; inbound
        # routes of other channels are refused to a channel key, so they are not in the run)
        settings = {**settings, "admin_token": token, "channel_keys": {}}
        workdir = tmp_path / role
        workdir.mkdir()
        started = time.monotonic()
        code, output, result, events = run_role(base_url=base_url, settings=settings,
                                                operation_ids=sorted(reachable), workdir=workdir)
        summary = summarize(result, events, time.monotonic() - started, workdir / "accepted.tsv")
        line = (f"role {role}: {public} operations without credentials left to the admin run, "
                f"{len(refused)} refused (one request each), {len(reachable)} fuzzed "
                f"(max {ROLE_OPERATIONS or 'all'}), {ROLE_MAX_EXAMPLES} examples per operation\n" + summary)
        line += f"\n  slowest: {slowest(events)}"
        (workdir / "summary.txt").write_text(line + "\n")
        (workdir / "output.txt").write_text(output)
        if KEEP_DIR:
            shutil.copytree(workdir, Path(KEEP_DIR) / role, dirs_exist_ok=True)
        report(line)
        results.append((role, code, result, output, wrong))
    failed = [(role, code, output) for role, code, result, output, wrong in results
              if code != 0 or result.get("failures") != [] or result.get("errors") != []]
    assert not failed, "\n\n".join(f"{role} (exit {code}):\n{output[-8000:]}" for role, code, output in failed)
    assert not [w for *_, wrong in results for w in wrong], [w for *_, wrong in results for w in wrong]
