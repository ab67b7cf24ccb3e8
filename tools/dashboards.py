"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (one overview, one per service) and
k8s/overlays/prod/monitoring.yaml (the alerting and recording rules for the Prometheus operator).

    python tools/dashboards.py          # rewrite the JSON files
    python tools/dashboards.py --check  # exit 1 if a committed file differs from what this writes

The panels are data here, so every dashboard has the same layout and the JSON stays reviewable;
tests/e2e/test_prometheus.py evaluates every expression against a real Prometheus scraping the
stack and checks that every metric they name exists. Grafana imports the files through
deploy/grafana/provisioning/dashboards/helpdesk.yml.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"

#: (title, unit, [(expr, legend)]) per panel; two panels per row
Panel = tuple[str, str, list[tuple[str, str]]]

OVERVIEW: list[Panel] = [
    ("Requests per second, by service", "reqps", [("job:http_requests:rate5m", "{{job}}")]),
    ("5xx per second, by service", "reqps", [("job:http_errors:rate5m", "{{job}}")]),
    ("p95 latency, by service", "s", [("job:http_request_duration_seconds:p95_5m", "{{job}}")]),
    ("Tickets opened, by channel", "reqps", [("channel:tickets_opened:rate5m", "{{channel}}")]),
    ("Intake SLOs: 5xx and over 500 ms (5 m)", "percentunit", [
        ("helpdesk:intake_error_ratio:rate5m", "5xx"), ("helpdesk:intake_slow_ratio:rate5m", "over 500 ms")]),
    ("Processes up", "none", [
        ('up{job=~"gateway|customer-svc|ticket-svc|sla-svc|analytics-svc|notify-svc|kb-svc"}', "{{job}} {{instance}}")]),
    ("Outbox backlog, by service", "none", [("job:outbox_backlog:sum", "{{job}}")]),
    ("Oldest unsent event, by service", "s", [("max by (job) (outbox_oldest_unsent_age_seconds)", "{{job}}")]),
    ("Consumer lag", "none", [("job_consumer:consumer_lag:sum", "{{consumer}}")]),
    ("Events dead-lettered", "none", [
        ('sum by (consumer) (increase(consumer_events_total{outcome="dead_lettered"}[1h]))', "{{consumer}}"),
        ("max by (job) (outbox_dead_letters)", "outbox {{job}}")]),
    ("SLA firing lag, p99", "s", [("helpdesk:sla_fire_lag_seconds:p99_5m", "p99")]),
    ("SLA breaches per second, by metric", "reqps", [("metric:sla_breaches:rate15m", "{{metric}}")]),
    ("Deliveries failing for good, by channel", "percentunit", [
        ("channel:notify_deliveries_failed:ratio10m", "{{channel}}")]),
    ("Delivery queue", "none", [("max(notify_delivery_backlog)", "queued or in flight")]),
]


def red(job: str) -> list[Panel]:
    """Rate, errors, duration by route, and the event pipeline: the same first rows everywhere."""
    return [
        ("Requests per second, by route", "reqps", [
            (f'sum by (route) (rate(http_requests_total{{job="{job}"}}[{RATE}]))', "{{route}}")]),
        ("Errors per second, by route and status", "reqps", [
            (f'sum by (route, status) (rate(http_requests_total{{job="{job}",status=~"4..|5.."}}[{RATE}]))',
             "{{status}} {{route}}")]),
        ("p95 latency, by route", "s", [
            (f'histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{{job="{job}"}}[{RATE}])))',
             "{{route}}")]),
        ("Outbox: backlog and oldest unsent", "none", [
            (f'sum(outbox_backlog{{job="{job}"}})', "backlog"),
            (f'max(outbox_oldest_unsent_age_seconds{{job="{job}"}})', "oldest unsent (s)")]),
        ("Events published, by topic", "reqps", [
            (f'sum by (topic) (rate(outbox_published_total{{job="{job}"}}[{RATE}]))', "{{topic}}")]),
        ("Events consumed, by consumer and outcome", "reqps", [
            (f'sum by (consumer, outcome) (rate(consumer_events_total{{job="{job}"}}[{RATE}]))',
             "{{consumer}} {{outcome}}")]),
        ("Consumer lag, by topic", "none", [
            (f'sum by (consumer, topic) (consumer_lag{{job="{job}"}})', "{{consumer}} {{topic}}")]),
        ("Consumer batch time, p95", "s", [
            (f'histogram_quantile(0.95, sum by (consumer, le) (rate(consumer_batch_seconds_bucket{{job="{job}"}}[{RATE}])))',
             "{{consumer}}")]),
    ]


SPECIFIC: dict[str, list[Panel]] = {
    "gateway": [
        ("Sign-ins, by outcome", "reqps", [
            (f'sum by (outcome) (rate(gateway_logins_total{{job="gateway"}}[{RATE}]))', "{{outcome}}")]),
        ("Refused credentials", "reqps", [
            (f'sum(rate(gateway_auth_failures_total{{job="gateway"}}[{RATE}]))', "refused")]),
        ("Live streams open", "none", [('sum(gateway_open_streams{job="gateway"})', "streams")]),
        ("Upstream retries and failovers", "reqps", [
            (f'sum(rate(gateway_upstream_retries_total{{job="gateway"}}[{RATE}]))', "retries"),
            (f'sum(rate(gateway_upstream_failovers_total{{job="gateway"}}[{RATE}]))', "failovers")]),
    ],
    "ticket-svc": [
        ("Tickets opened, by channel", "reqps", [
            (f'sum by (channel) (rate(tickets_opened_total{{job="ticket-svc"}}[{RATE}]))', "{{channel}}")]),
        ("Ticket timers: pending and fire lag p99", "none", [
            ('sum(ticket_timers_pending{job="ticket-svc"})', "pending"),
            (f'histogram_quantile(0.99, sum by (le) (rate(ticket_timer_fire_lag_seconds_bucket{{job="ticket-svc"}}[{RATE}])))',
             "fire lag p99 (s)")]),
        ("Automations and process decisions", "reqps", [
            (f'sum(rate(ticket_automation_runs_total{{job="ticket-svc"}}[{RATE}]))', "automation runs"),
            (f'sum by (decision) (rate(ticket_process_decisions_total{{job="ticket-svc"}}[{RATE}]))', "{{decision}}")]),
        ("Trigger evaluation, p95", "s", [
            (f'histogram_quantile(0.95, sum by (le) (rate(ticket_trigger_evaluation_seconds_bucket{{job="ticket-svc"}}[{RATE}])))',
             "p95")]),
    ],
    "sla-svc": [
        ("SLA timers running", "none", [('sum(sla_timers_running{job="sla-svc"})', "running")]),
        ("SLA firing lag", "s", [
            (f'histogram_quantile(0.5, sum by (le) (rate(sla_fire_lag_seconds_bucket{{job="sla-svc"}}[{RATE}])))', "p50"),
            (f'histogram_quantile(0.99, sum by (le) (rate(sla_fire_lag_seconds_bucket{{job="sla-svc"}}[{RATE}])))', "p99")]),
        ("Breaches and warnings, by metric", "reqps", [
            (f'sum by (metric) (rate(sla_breaches_total{{job="sla-svc"}}[{RATE}]))', "breach {{metric}}"),
            (f'sum by (metric) (rate(sla_warnings_total{{job="sla-svc"}}[{RATE}]))', "warning {{metric}}")]),
    ],
    "analytics-svc": [
        ("Read model freshness", "s", [
            ('max(analytics_newest_event_age_seconds{job="analytics-svc"})', "newest event folded, age")]),
        ("Ticket created to folded, p95", "s", [
            (f'histogram_quantile(0.95, sum by (le) (rate(event_propagation_seconds_bucket{{job="analytics-svc"}}[{RATE}])))',
             "p95")]),
        ("Events folded", "reqps", [
            (f'sum(rate(analytics_events_folded_total{{job="analytics-svc"}}[{RATE}]))', "folded")]),
    ],
    "notify-svc": [
        ("Deliveries, by channel and outcome", "reqps", [
            (f'sum by (channel, outcome) (rate(notify_deliveries_total{{job="notify-svc"}}[{RATE}]))',
             "{{channel}} {{outcome}}")]),
        ("Delivery queue", "none", [('max(notify_delivery_backlog{job="notify-svc"})', "queued or in flight")]),
        ("Delivery attempt time, p95, by channel", "s", [
            (f'histogram_quantile(0.95, sum by (channel, le) (rate(notify_delivery_attempt_seconds_bucket{{job="notify-svc"}}[{RATE}])))',
             "{{channel}}")]),
    ],
    "customer-svc": [],
    "kb-svc": [],
}


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1, "type": "timeseries", "title": title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict:
    return {
        "uid": uid, "title": title, "tags": ["helpdesk"], "schemaVersion": 39, "version": 1, "editable": False,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "utc",
        "templating": {"list": []}, "annotations": {"list": []},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


def render() -> dict[str, str]:
    boards = {"overview.json": dashboard("helpdesk-overview", "Help desk: overview", OVERVIEW)}
    for job, extra in SPECIFIC.items():
        boards[f"{job}.json"] = dashboard(f"helpdesk-{job}", f"Help desk: {job}", red(job) + extra)
    return {name: json.dumps(board, indent=2, ensure_ascii=False) + "\n" for name, board in boards.items()}


ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "k8s" / "overlays" / "prod" / "monitoring.yaml"
MONITORING_HEADER = """\
# For the Prometheus operator: every helpdesk Service's ops port scraped, job named after the
# service (the rules' job labels); the rules are deploy/prometheus/rules/*.yml, copied here by
# `python tools/dashboards.py` (tests/deploy/test_prod_overlay.py checks they are the same).
"""


def monitoring_manifest() -> str:
    """k8s/overlays/prod/monitoring.yaml: a ServiceMonitor and the PrometheusRule holding
    deploy/prometheus/rules/*.yml's groups, so Kubernetes runs the very rules promtool tests."""
    import yaml

    groups = []
    for name in ("recording.yml", "alerts.yml"):
        groups += yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / name).read_text())["groups"]
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "helpdesk"},
               "spec": {"jobLabel": "app.kubernetes.io/name",
                        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "helpdesk"}},
                        "endpoints": [{"port": "ops", "path": "/metrics", "interval": "15s"}]}}
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "helpdesk"},
            "spec": {"groups": groups}}
    return MONITORING_HEADER + "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=120) for doc in (monitor, rule))


def main(argv: list[str]) -> int:
    boards = render()
    if "--check" in argv:
        stale = [name for name, text in boards.items()
                 if not (OUT / name).exists() or (OUT / name).read_text() != text]
        if MONITORING.read_text() != monitoring_manifest():
            stale.append(str(MONITORING.relative_to(ROOT)))
        if stale:
            print(f"out of date: {stale}; run python tools/dashboards.py", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in boards.items():
        (OUT / name).write_text(text)
    MONITORING.write_text(monitoring_manifest())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
