"""`make run` on the embedded default, then SIGTERM / Ctrl-C to make: nothing left behind."""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from helpdesk_common.devstack import free_port

from .conftest import _free_block

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("how", ["sigterm-to-make", "ctrl-c-to-group"])
def test_make_run_starts_everything_and_stops_cleanly(tmp_path, how):
    base = _free_block()
    env = os.environ | {
        "GATEWAY_PORT": str(base), "SERVICES_BASE_PORT": str(base),
        "EMBEDDED_PG_PORT": str(free_port()), "EMBEDDED_KAFKA_PORT": str(free_port()),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    data = tmp_path / "data"
    make = subprocess.Popen(["make", "-s", "run", f"DATA_DIR={data}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    creds_path = data / "dev-credentials.json"
    try:
        deadline = time.monotonic() + 180
        while not creds_path.exists():
            assert make.poll() is None, make.stdout.read().decode()
            assert time.monotonic() < deadline, "make run did not come up"
            time.sleep(0.5)
        time.sleep(0.5)
        creds = json.loads(creds_path.read_text())
        assert set(creds) >= {"gateway_url", "channel_api_key", "admin_email", "admin_password"}
        assert creds["gateway_url"] == f"http://127.0.0.1:{base}"
        with urllib.request.urlopen(f"{creds['gateway_url']}/healthz", timeout=5) as r:
            assert r.status == 200
        tree = psutil.Process(make.pid).children(recursive=True)
        assert len(tree) >= 8  # shell/python supervisor, postgres, tansu, five services
        if how == "sigterm-to-make":
            make.send_signal(signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGINT)
        make.wait(60)
        gone, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], [p.info if hasattr(p, "info") else p for p in alive]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for p in psutil.process_iter(["cmdline"]):
            if str(data) in " ".join(p.info["cmdline"] or []):
                p.kill()
