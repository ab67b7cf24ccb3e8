"""deploy/compose.yaml, statically (there is no container engine on these machines): it parses, it
validates against the Compose Specification's JSON schema (`make compose-schema` takes it from
Debian's docker-compose package), and it keeps the project's rules: every service from the one image
with its ops port, migrations before services, secrets only from the environment, only the gateway,
Prometheus, Grafana and Jaeger's UI published and on loopback, Prometheus and Grafana fed from
deploy/, traces to Jaeger."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = ROOT / ".cache" / "compose-spec" / "compose_spec.json"
SERVICES = {"gateway": ("gateway", 8080, "GATEWAY_"), "customer-svc": ("customer_svc", 8081, "CUSTOMER_"),
            "ticket-svc": ("ticket_svc", 8082, "TICKET_"), "sla-svc": ("sla_svc", 8083, "SLA_"),
            "analytics-svc": ("analytics_svc", 8084, "ANALYTICS_"), "notify-svc": ("notify_svc", 8085, "NOTIFY_"),
            "kb-svc": ("kb_svc", 8086, "KB_")}
SENSITIVE = re.compile(r"(KEY|KEYS|PASSWORD|SECRET|TOKEN)$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_matches_the_compose_specification_schema(compose):
    if not SCHEMA.is_file():
        pytest.fail("the Compose Specification schema is missing: `make compose-schema` fetches it")
    schema = json.loads(SCHEMA.read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(compose)]
    assert not errors, errors


def test_the_schema_check_can_fail():
    schema = json.loads(SCHEMA.read_text()) if SCHEMA.is_file() else pytest.fail("`make compose-schema`")
    bad = {"services": {"x": {"image": "a", "restart": ["always"], "portz": []}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(bad))


def test_every_service_runs_from_the_one_image_with_its_ops_port(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in SERVICES} | {services["migrate"]["image"]}
    assert len(images) == 1, images
    for name, (package, port, prefix) in SERVICES.items():
        svc = services[name]
        env = svc["environment"]
        assert env["APP_PACKAGE"] == package and env["PORT"] == str(port), name
        assert env[f"{prefix}OPS_PORT"] == "9180" and env[f"{prefix}OPS_HOST"] == "0.0.0.0", name
        assert "9180/readyz" in " ".join(svc["healthcheck"]["test"]), name
        assert env[f"{prefix}DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert svc["read_only"] is True and svc["user"] == "10001:10001" and svc["cap_drop"] == ["ALL"], name
        # traces go to the topology's own OTLP receiver (helpdesk_common/tracing.py)
        host, _, port = env["OTEL_EXPORTER_OTLP_ENDPOINT"].removeprefix("http://").partition(":")
        assert host in services and port == "4318", name
    assert "helpdesk_common.migrate" in " ".join(services["migrate"]["command"])
    for package, _, _ in SERVICES.values():
        assert package in " ".join(services["migrate"]["command"]), package


def test_secrets_come_only_from_the_environment(compose):
    """Every sensitive value is a required ${VAR:?...} (or an optional ${VAR:-}) substitution: the
    file holds none, and a missing one stops compose before anything starts."""
    checked = 0
    for name, svc in compose["services"].items():
        for var, value in (svc.get("environment") or {}).items():
            if SENSITIVE.search(var) or "DATABASE_URL" in var or var == "DATA_SOURCE_NAME":
                assert re.search(r"\$\{[A-Z_]+:[?-]", str(value)), (name, var, value)
                checked += 1
    assert checked >= 30


def test_only_the_gateway_prometheus_grafana_and_jaeger_are_published_on_loopback(compose):
    published = {name: svc["ports"] for name, svc in compose["services"].items() if svc.get("ports")}
    assert set(published) == {"gateway", "prometheus", "grafana", "jaeger"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)
            assert ":9180" not in str(port), "the ops port is never published"


def test_prometheus_grafana_and_the_exporters_are_wired_to_deploy(compose):
    services = compose["services"]
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert any(v.startswith("./grafana/provisioning:") for v in services["grafana"]["volumes"])
    assert any(v.startswith("./grafana/dashboards:") for v in services["grafana"]["volumes"])
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in scrape}
    for name in SERVICES:
        assert targets[name] == f"{name}:9180"
    host, port = targets["postgres"].split(":")
    assert host in services and port == "9187"
    host, _ = targets["kafka-node"].split(":")
    assert host in services and any(v.endswith(":/kafka-data:ro") for v in services[host]["volumes"])
    for mount in ("./postgres/init.sh", "./alertmanager/alertmanager.yml"):
        assert (COMPOSE.parent / mount.removeprefix("./")).is_file(), mount


def test_a_kraft_cluster_of_three_with_replication_three(compose):
    nodes = [name for name in compose["services"] if name.startswith("kafka-") and name[-1].isdigit()]
    assert len(nodes) == 3
    ids = {compose["services"][n]["environment"]["KAFKA_NODE_ID"] for n in nodes}
    assert ids == {1, 2, 3}
    env = compose["services"][nodes[0]]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
