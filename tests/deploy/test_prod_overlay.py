"""k8s/overlays/prod, offline (issue 17): rendered by test_manifests' small Kustomize (resources,
namespace, images, labels, JSON 6902 patches), the core kinds validated strictly against the
Kubernetes 1.30 schema, the operators' resources (Strimzi, CloudNativePG, the Prometheus operator)
checked structurally: no registry here serves their CRD schemas in a form kubernetes_validate reads.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .test_manifests import K8S, K8S_VERSION, SECRET_NAME, SENSITIVE, SERVICES, TOPICS, _env, _id, render

ROOT = Path(__file__).resolve().parents[2]
PROD = render(K8S / "overlays" / "prod")
CORE_KINDS = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget",
              "NetworkPolicy", "Job"}
OPERATOR_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "ServiceMonitor", "PrometheusRule"}
DATABASES = {"gateway": "gateway", "customer-svc": "customer", "ticket-svc": "ticket", "sla-svc": "sla",
             "analytics-svc": "analytics", "notify-svc": "notify", "kb-svc": "kb"}


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in PROD if d["kind"] == kind}


def test_the_overlay_holds_only_known_kinds_and_no_secret():
    kinds = {d["kind"] for d in PROD}
    assert kinds <= CORE_KINDS | OPERATOR_KINDS, kinds - CORE_KINDS - OPERATOR_KINDS
    assert "Secret" not in kinds
    assert {d["metadata"]["namespace"] for d in PROD} == {"helpdesk"}
    keys = [(d["kind"], d["metadata"]["name"]) for d in PROD]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("doc", [d for d in PROD if d["kind"] in CORE_KINDS], ids=_id)
def test_every_core_object_is_valid_for_kubernetes_1_30(doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_scales_keeps_a_replica_spreads_and_migrates_in_a_job(name):
    package, _, prefix = SERVICES[name]
    dep = of_kind("Deployment")[name]
    pod = dep["spec"]["template"]["spec"]
    assert "initContainers" not in pod, "prod migrates in Jobs"
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"helpdesk/{name}:0.1.0"
    hpa = of_kind("HorizontalPodAutoscaler")[name]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = of_kind("PodDisruptionBudget")[name]
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    assert pdb["spec"]["minAvailable"] == 1 < hpa["spec"]["minReplicas"]
    job = of_kind("Job")[f"migrate-{name}"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "helpdesk_common.migrate", package]
    assert container["image"] == f"helpdesk/{name}:0.1.0"
    assert _env(container)[f"{prefix}DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == name


def test_secrets_are_only_referenced():
    for doc in PROD:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                if any(word in env["name"] for word in SENSITIVE):
                    assert "valueFrom" in env and "value" not in env, (_id(doc), env["name"])


# --- network policies ------------------------------------------------------------------------


def policy_for(labels: dict) -> list[dict]:
    return [p for p in of_kind("NetworkPolicy").values()
            if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
            and p["spec"]["podSelector"] != {}]


def test_ingress_is_denied_by_default():
    deny = of_kind("NetworkPolicy")["default-deny-ingress"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_only_the_gateway_takes_outside_traffic_and_only_prometheus_reads_the_ops_ports():
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    for name in SERVICES:
        (policy,) = policy_for({"app.kubernetes.io/name": name})
        rules = policy["spec"]["ingress"]
        by_port = {rule["ports"][0]["port"]: rule["from"] for rule in rules}
        assert set(by_port) == {"http", "ops"}, name
        assert by_port["ops"] == [monitoring], name
        sources = by_port["http"]
        if name == "gateway":
            assert all("namespaceSelector" in s and "podSelector" not in s for s in sources)
        else:
            callers = {s["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for s in sources}
            assert "gateway" in callers and callers <= set(SERVICES) - {name}, (name, callers)
            assert all("namespaceSelector" not in s for s in sources), name


def test_each_database_accepts_only_its_own_service():
    for name, db in DATABASES.items():
        policy = of_kind("NetworkPolicy")[f"pg-{db}"]
        assert policy["spec"]["podSelector"] == {"matchLabels": {"cnpg.io/cluster": f"pg-{db}"}}
        app_rule = policy["spec"]["ingress"][0]
        assert app_rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}]
        assert app_rule["ports"] == [{"protocol": "TCP", "port": 5432}]
        others = [s for rule in policy["spec"]["ingress"][1:] for s in rule["from"]]
        for source in others:
            labels = source.get("podSelector", {}).get("matchLabels", {})
            assert "app.kubernetes.io/name" not in labels, (db, source)


# --- the operators' resources ----------------------------------------------------------------


def test_a_cloudnativepg_cluster_per_service_database():
    clusters = of_kind("Cluster")
    assert set(clusters) == {f"pg-{db}" for db in DATABASES.values()}
    for db in DATABASES.values():
        spec = clusters[f"pg-{db}"]["spec"]
        assert clusters[f"pg-{db}"]["apiVersion"] == "postgresql.cnpg.io/v1"
        assert spec["instances"] >= 3
        assert spec["bootstrap"]["initdb"] == {"database": db, "owner": db, "secret": {"name": f"pg-{db}-app"}}


def test_strimzi_kafka_three_kraft_nodes_replication_three_min_isr_two():
    (pool,) = of_kind("KafkaNodePool").values()
    (kafka,) = of_kind("Kafka").values()
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] == "helpdesk"
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    bootstrap = of_kind("ConfigMap")["helpdesk-config"]["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap == "helpdesk-kafka-bootstrap:9092"  # the Service Strimzi creates for "helpdesk"
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind("KafkaTopic").values()}
    for topic in TOPICS:
        assert topics[topic]["replicas"] == 3 and topics[topic]["config"]["min.insync.replicas"] == "2", topic


def test_the_prometheus_operator_scrapes_the_ops_ports_with_the_repositorys_rules():
    (monitor,) = of_kind("ServiceMonitor").values()
    assert monitor["spec"]["endpoints"] == [{"port": "ops", "path": "/metrics", "interval": "15s"}]
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    for svc in of_kind("Service").values():
        assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert "ops" in {p["name"] for p in svc["spec"]["ports"]}
    (rule,) = of_kind("PrometheusRule").values()
    expected = []
    for name in ("recording.yml", "alerts.yml"):
        expected += yaml.safe_load((ROOT / "deploy/prometheus/rules" / name).read_text())["groups"]
    assert rule["spec"]["groups"] == expected, "out of date: python tools/dashboards.py rewrites it"


def test_the_patch_renderer_refuses_what_it_cannot_do():
    from .test_manifests import apply_json_patch

    doc = {"spec": {"a": 1}}
    apply_json_patch(doc, [{"op": "add", "path": "/spec/b", "value": [1]}, {"op": "remove", "path": "/spec/a"}])
    assert doc == {"spec": {"b": [1]}}
    with pytest.raises(AssertionError):
        apply_json_patch(doc, [{"op": "remove", "path": "/spec/missing"}])
    with pytest.raises(AssertionError):
        apply_json_patch(doc, [{"op": "move", "from": "/spec/b", "path": "/spec/c"}])
