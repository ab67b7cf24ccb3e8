"""A real Prometheus (Debian's package, installed by `make test` when missing) scraping the running
stack with deploy/prometheus/prometheus.yml, its targets rewritten to the stack's ports and its
intervals to one second (issue 17):

- every target is up, the gateway's through its ops listener;
- the recording rules evaluate on the stack's own figures (intake, RED per service);
- stopping sla-svc makes HelpdeskServiceDown go pending for it;
- every metric the rules and the dashboards name exists on some process's /metrics, and every
  dashboard expression is one Prometheus evaluates without error.

The exporters' jobs (PostgreSQL, the broker host's node exporter) are dropped: the test stack has
no exporters; their alerts are covered by deploy/prometheus/tests/alerts_test.yml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from helpdesk_common.devstack import SERVICES, free_port

from .conftest import eventually

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
STACK_JOBS = {svc.name for svc in SERVICES}
#: metrics other exporters provide, and Prometheus' own
FOREIGN = re.compile(r"^(up|pg_.*|node_.*|container_.*|kube_.*|kubelet_.*|scrape_.*)$")


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is not installed: `make prometheus` (apt-get install -y prometheus) installs it")
    return found


def config_for(stack, tmp_path: Path) -> Path:
    """deploy/prometheus/prometheus.yml pointed at the stack: the same jobs, rules and relabelling,
    with loopback targets, 1 s intervals and no Alertmanager."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config.pop("alerting", None)
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in STACK_JOBS:
            continue
        host_port = stack.metrics_url(job["job_name"]).removeprefix("http://").removesuffix("/metrics")
        job["static_configs"] = [{"targets": [host_port]}]
        jobs.append(job)
    assert {job["job_name"] for job in jobs} == STACK_JOBS, "deploy/prometheus/prometheus.yml misses a service"
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(stack, tmp_path):
    config = config_for(stack, tmp_path)
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("prometheus did not start: " + (tmp_path / "prometheus.log").read_text()[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


async def query(client: httpx.AsyncClient, url: str, expr: str) -> list[dict]:
    r = await client.get(f"{url}/api/v1/query", params={"query": expr})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def dashboard_expressions() -> list[tuple[str, str]]:
    """(dashboard file, PromQL) for every target of every panel."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        def walk(panels):
            for panel in panels:
                yield panel
                yield from walk(panel.get("panels", []))

        for panel in walk(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                found.append((path.name, target["expr"]))
    return found


def rule_expressions() -> list[str]:
    exprs = []
    for name in ("recording.yml", "alerts.yml"):
        for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / name).read_text())["groups"]:
            exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


def recorded_names() -> set[str]:
    names = set()
    for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / "recording.yml").read_text())["groups"]:
        names |= {rule["record"] for rule in group["rules"]}
    return names


KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: every identifier left once strings, matchers,
    ranges and grouping clauses are taken out, that is not a function call or a keyword."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    return {m.group(1) for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", e)} - KEYWORDS


async def exposed_names(stack) -> set[str]:
    """Every sample name the stack's processes expose (families with their _total, _bucket, _count,
    _sum and _created forms), from their # TYPE lines: a labelled family with no sample yet counts."""
    names: set[str] = set()
    async with httpx.AsyncClient(timeout=30) as client:
        for svc in SERVICES:
            text = (await client.get(stack.metrics_url(svc.name))).text
            for line in text.splitlines():
                if line.startswith("# TYPE "):
                    _, _, name, kind = line.split(" ", 3)
                    names.add(name)
                    if kind == "counter":
                        names |= {f"{name}_total", name.removesuffix("_total") + "_total"}
                    if kind == "histogram":
                        names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


async def test_prometheus_scrapes_the_stack_evaluates_the_rules_and_sees_a_service_go_down(
        stack, prometheus, gw, channel_key_headers, report):
    async with httpx.AsyncClient(timeout=30) as client:
        # 1. every target up
        async def all_up():
            targets = (await client.get(f"{prometheus}/api/v1/targets")).json()["data"]["activeTargets"]
            return len(targets) == len(STACK_JOBS) and all(t["health"] == "up" for t in targets) and targets
        targets = await eventually(all_up, timeout=60)
        assert {t["labels"]["job"] for t in targets} == STACK_JOBS

        # 2. intake through the gateway shows in the recording rules: one web ticket per look, so the
        # counter moves between scrapes (a series first seen at its final value has no rate)
        sent = 0

        async def intake_recorded():
            nonlocal sent
            r = await gw.post("/v1/channels/web/inbound", headers=channel_key_headers["web"], data={
                "subject": f"监控 prometheus {sent}", "description": "scraped", "email": f"prom{sent}@example.com"})
            assert r.status_code == 201, r.text
            sent += 1
            rows = await query(client, prometheus, "helpdesk:intake_requests:rate5m")
            return sent >= 5 and rows and float(rows[0]["value"][1]) > 0
        await eventually(intake_recorded, timeout=60, interval=0.5)

        async def red_per_service():
            rows = await query(client, prometheus, "job:http_requests:rate5m")
            return {row["metric"]["job"] for row in rows} >= {"gateway", "ticket-svc"}
        await eventually(red_per_service, timeout=60)
        async def opened_by_channel():  # ticket-svc's own count, one scrape behind at most
            rows = await query(client, prometheus, 'tickets_opened_total{channel="web"}')
            return rows and float(rows[0]["value"][1]) >= sent
        await eventually(opened_by_channel, timeout=30, interval=0.5)

        # 3. every rule group evaluates without error
        groups = (await client.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
        broken = [(rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"]
                  if rule.get("health") == "err"]
        assert not broken, broken

        # 4. every dashboard expression evaluates
        for dashboard, expr in dashboard_expressions():
            await query(client, prometheus, expr.replace("$__rate_interval", "1m").replace("$job", "ticket-svc"))

        # 5. sla-svc stopped: HelpdeskServiceDown pending for it, then cleared once it is back
        started = time.monotonic()
        stack.stop_service("sla-svc")
        try:
            async def down_pending():
                alerts = (await client.get(f"{prometheus}/api/v1/alerts")).json()["data"]["alerts"]
                return [a for a in alerts if a["labels"]["alertname"] == "HelpdeskServiceDown"
                        and a["labels"]["job"] == "sla-svc" and a["state"] in ("pending", "firing")]
            pending = await eventually(down_pending, timeout=60, interval=0.5)
            went_pending = time.monotonic() - started
        finally:
            stack.start_services(["sla-svc"])
        assert pending[0]["labels"]["severity"] == "page"

        async def cleared():
            alerts = (await client.get(f"{prometheus}/api/v1/alerts")).json()["data"]["alerts"]
            return not any(a["labels"]["alertname"] == "HelpdeskServiceDown" for a in alerts)
        await eventually(cleared, timeout=90, interval=0.5)
    report(f"[prometheus] {len(targets)} targets up; {len(dashboard_expressions())} dashboard expressions evaluated; "
           f"HelpdeskServiceDown pending {went_pending:.1f} s after sla-svc stopped", section="operations")


async def test_every_metric_the_rules_and_dashboards_name_exists(stack):
    exposed = await exposed_names(stack)
    recorded = recorded_names()
    named = {name for expr in rule_expressions() for name in metric_names(expr)}
    named |= {name for _, expr in dashboard_expressions() for name in metric_names(expr)}
    missing = sorted(name for name in named - recorded - exposed if not FOREIGN.match(name))
    assert not missing, f"named in deploy/ but exposed by no process: {missing}"
    assert len(named) > 20  # the extraction found the expressions


def test_the_metric_name_extraction():
    assert metric_names('sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))') == {"http_requests_total"}
    assert metric_names("helpdesk:intake_errors:rate5m / helpdesk:intake_requests:rate5m") == {
        "helpdesk:intake_errors:rate5m", "helpdesk:intake_requests:rate5m"}
    assert metric_names("deriv(job:outbox_backlog:sum[10m]) > 0") == {"job:outbox_backlog:sum"}
    assert metric_names("max by (job) (outbox_oldest_unsent_age_seconds) > 120") == {"outbox_oldest_unsent_age_seconds"}
    assert metric_names('histogram_quantile(0.95, sum by (route, le) (rate(x_bucket{job="a b"}[5m])))') == {"x_bucket"}
    assert metric_names("a > 3 * sum(rate(b[1d] offset 1d)) and on (channel) c >= 10") == {"a", "b", "c"}
