"""deploy/prometheus and deploy/grafana, offline: promtool's own checks of the configuration and the
rules, the alerts' unit tests (deploy/prometheus/tests/alerts_test.yml), a runbook and a unit test
for every alert, every dashboard expression parsed by promtool, the dashboards as
tools/dashboards.py writes them. The same files against a live stack: tests/e2e/test_prometheus.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RUNBOOKS = ROOT / "deploy" / "runbooks"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if not binary:
        pytest.fail("promtool is not installed: `make prometheus` (apt-get install -y prometheus) installs it")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    groups = yaml.safe_load((PROM / "rules" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_configuration_and_its_rule_files():
    done = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_checks_the_rules():
    done = promtool("check", "rules", str(PROM / "rules" / "recording.yml"), str(PROM / "rules" / "alerts.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_unit_tests_pass():
    done = promtool("test", "rules", "alerts_test.yml", cwd=PROM / "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_a_severity_and_a_unit_test():
    tested = {case["alertname"] for test in yaml.safe_load((PROM / "tests" / "alerts_test.yml").read_text())["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)) >= 15
    for rule in alerts():
        runbook = ROOT / rule["annotations"]["runbook_url"]
        assert runbook.is_file(), (rule["alert"], runbook)
        assert rule["alert"] in runbook.read_text(), f"{runbook.name} does not name {rule['alert']}"
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no unit test that fires it"
    # and no runbook for an alert that does not exist
    referenced = {ROOT / rule["annotations"]["runbook_url"] for rule in alerts()}
    assert set(RUNBOOKS.glob("*.md")) <= referenced


def test_the_alerts_this_issue_asks_for_exist():
    names = {rule["alert"] for rule in alerts()}
    assert {"HelpdeskServiceDown", "IntakeErrorBudgetFastBurn", "IntakeErrorBudgetSlowBurn",
            "IntakeLatencyBudgetFastBurn", "IntakeLatencyBudgetSlowBurn", "OutboxBacklogGrowing",
            "OutboxOldestUnsentTooOld", "ConsumerLagHigh", "ConsumerDeadLetters", "SlaFiringLagHigh",
            "SlaBreachesSpiking", "DeliveryFailuresHigh", "PostgresConnectionsNearLimit",
            "KafkaBrokerDiskFilling"} <= names


def dashboard_exprs() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == "prometheus", (path.name, panel["title"])
            for target in panel["targets"]:
                found.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return found


def test_every_dashboard_expression_parses(tmp_path):
    """Each expression becomes a recording rule of a scratch file that promtool parses (Grafana's
    $__rate_interval replaced by a duration): a typo fails here, not on a blank panel."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 80
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(exprs)]}]}
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_there_is_an_overview_and_a_dashboard_per_service():
    names = {path.stem for path in DASHBOARDS.glob("*.json")}
    assert names == {"overview", "gateway", "customer-svc", "ticket-svc", "sla-svc", "analytics-svc",
                     "notify-svc", "kb-svc"}
    overview = " ".join(expr for where, expr in dashboard_exprs() if where.startswith("overview"))
    for needed in ("job:http_requests:rate5m", "job:http_errors:rate5m", "channel:tickets_opened:rate5m",
                   "job:outbox_backlog:sum", "job_consumer:consumer_lag:sum", "helpdesk:sla_fire_lag_seconds:p99_5m",
                   "metric:sla_breaches:rate15m"):
        assert needed in overview, needed


def test_the_dashboards_are_what_the_generator_writes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "dashboards.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_grafana_provisions_the_data_source_and_the_dashboards():
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/helpdesk.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
