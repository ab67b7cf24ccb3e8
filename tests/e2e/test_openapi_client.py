"""A TypeScript client generated from the composed document takes the README's requests.

The agents' SPA generates its types with openapi-typescript from the gateway's /openapi.json. This
generates them the same way, with the default options, from the real gateway of the e2e stack,
and type-checks tools/ts-client/readme-requests.ts (the README's requests through openapi-fetch)
with ``tsc --noEmit --strict``. The npm packages are pinned by tools/ts-client/package-lock.json
and installed with ``npm ci`` (Node.js 20 and npm are required, as on CI).

The document used to mark request fields with a default as required for such a client: it
carried ``default`` on them, which openapi-typescript reads as "always present" (right for an
answer, wrong for a request), so ``{"subject", "requester"}`` did not type-check. The second test
puts that back, and a required ``priority``, and checks that tsc then refuses the same file.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ts-client"
BIN = TOOL / "node_modules" / ".bin"


@pytest.fixture(scope="session")
def ts_tools() -> Path:
    """tools/ts-client/node_modules as pinned by its lock file (``npm ci``, once per session)."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "Node.js 20 and npm are needed for the typed-client check"
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], cwd=TOOL,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return BIN


def type_check(document: dict[str, Any], workdir: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """Generate ``api.d.ts`` from ``document`` next to a copy of the README's requests, then run
    ``tsc --noEmit --strict`` on them."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("readme-requests.ts", "tsconfig.json"):
        shutil.copy(TOOL / name, workdir / name)
    (workdir / "node_modules").symlink_to(TOOL / "node_modules", target_is_directory=True)
    (workdir / "openapi.json").write_text(json.dumps(document))
    generated = subprocess.run([str(bin_dir / "openapi-typescript"), "openapi.json", "-o", "api.d.ts"], cwd=workdir,
                               capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return subprocess.run([str(bin_dir / "tsc"), "-p", "tsconfig.json"], cwd=workdir, capture_output=True,
                          text=True, timeout=300)


async def test_a_generated_client_takes_the_readme_requests(gw, ts_tools, tmp_path):
    document = (await gw.get("/openapi.json")).json()
    checked = type_check(document, tmp_path / "client", ts_tools)
    assert checked.returncode == 0, f"tsc refused the README's requests:\n{checked.stdout}{checked.stderr}"


@pytest.mark.parametrize("mistake", ["a default on priority", "priority required"])
async def test_the_check_fails_when_the_document_is_wrong(gw, ts_tools, tmp_path, mistake):
    document = copy.deepcopy((await gw.get("/openapi.json")).json())
    create = document["components"]["schemas"]["TicketCreate"]
    if mistake == "priority required":
        create["required"].append("priority")
    else:  # what the document said before
        create["properties"]["priority"]["default"] = "normal"
    checked = type_check(document, tmp_path / "client", ts_tools)
    assert checked.returncode != 0 and "priority" in checked.stdout, checked.stdout + checked.stderr
