"""Offline checks of the Dockerfile and the Kubernetes manifests (no cluster, no docker).

The manifests are rendered by a small pure-Python subset of Kustomize (``resources``
recursively, ``namespace``, ``images``, ``labels``); a kustomization using anything else
fails the render instead of being silently half-applied. Every rendered object is validated
against the Kubernetes 1.30 OpenAPI schema (``kubernetes_validate``, strict: unknown fields
are errors). Deliberately independent of the service code (which may be mid-change): the
expected services and topics are listed here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_VERSION = "1.30"
SECRET_NAME = "helpdesk-secrets"
UID = 10001
#: every process's ops listener (<PREFIX>OPS_PORT): /metrics, /healthz, /readyz
OPS_PORT = 9180

# directory name -> (python package, port, env prefix)
SERVICES: dict[str, tuple[str, int, str]] = {
    "gateway": ("gateway", 8080, "GATEWAY_"),
    "customer-svc": ("customer_svc", 8081, "CUSTOMER_"),
    "ticket-svc": ("ticket_svc", 8082, "TICKET_"),
    "sla-svc": ("sla_svc", 8083, "SLA_"),
    "analytics-svc": ("analytics_svc", 8084, "ANALYTICS_"),
    "notify-svc": ("notify_svc", 8085, "NOTIFY_"),
    "kb-svc": ("kb_svc", 8086, "KB_"),
}
TOPICS = ("tickets.events", "customers.events", "sla.events", "insights.events", "users.events", "deliveries.events",
          "kb.events")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SENSITIVE = ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL", "PRIVATE_KEY", "API_KEY")


# --- a tiny Kustomize ------------------------------------------------------------------

SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "labels", "patches"}


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]


def _split_image(image: str) -> tuple[str, str]:
    """'reg:5000/a/b:tag' -> ('reg:5000/a/b', ':tag'); digests kept as '@sha256:...'."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def containers(doc: dict) -> list[dict]:
    if doc.get("kind") != "Deployment":
        return []
    pod = doc["spec"]["template"]["spec"]
    return pod.get("initContainers", []) + pod["containers"]


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def apply_json_patch(doc: dict, ops: list[dict]) -> None:
    """RFC 6902 ``add``, ``remove`` and ``replace`` (what the overlays use); anything else fails
    the render, as does a path that does not exist (kustomize fails on those too)."""
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] == "remove":
            assert (int(last) < len(node)) if isinstance(node, list) else last in node, f"no {op['path']} to remove"
            del node[int(last) if isinstance(node, list) else last]
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace":
                assert last in node, f"no {op['path']} to replace"
            if isinstance(node, list):
                node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                node[last] = copy.deepcopy(op["value"])
        else:
            raise AssertionError(f"the test renderer supports add, remove and replace, not {op['op']}")


def _targets(doc: dict, target: dict) -> bool:
    unsupported = set(target) - {"kind", "name"}
    assert not unsupported, f"patch targets by {unsupported} are not supported by the test renderer"
    return all(doc.get("kind") == target["kind"] if key == "kind" else doc["metadata"]["name"] == target["name"]
               for key in target)


def render(directory: Path) -> list[dict]:
    kust = yaml.load((directory / "kustomization.yaml").read_text(), Loader=LOADER)
    unsupported = set(kust) - SUPPORTED_KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: the test's Kustomize subset does not handle {unsupported}"
    docs: list[dict] = []
    for resource in kust.get("resources", []):
        path = (directory / resource).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists missing {resource}"
        docs += render(path) if path.is_dir() else load_yaml_docs(path)
    docs = copy.deepcopy(docs)
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if "namespace" in kust:
            meta["namespace"] = kust["namespace"]
        for label in kust.get("labels", []):
            meta.setdefault("labels", {}).update(label["pairs"])
            if doc.get("kind") == "Deployment" and label.get("includeTemplates"):
                doc["spec"]["template"]["metadata"].setdefault("labels", {}).update(label["pairs"])
            if label.get("includeSelectors"):
                raise AssertionError("labels.includeSelectors is not supported by the test renderer")
        for container in containers(doc):
            name, ref = _split_image(container["image"])
            for image in kust.get("images", []):
                if image["name"] != name:
                    continue
                new_ref = ref
                if "newTag" in image:
                    new_ref = f":{image['newTag']}"
                if "digest" in image:
                    new_ref = f"@{image['digest']}"
                container["image"] = image.get("newName", name) + new_ref
        if doc.get("kind") == "Job":  # images: kustomize sets them in Jobs too
            for container in doc["spec"]["template"]["spec"]["containers"]:
                name, ref = _split_image(container["image"])
                for image in kust.get("images", []):
                    if image["name"] == name and "newTag" in image:
                        container["image"] = f"{name}:{image['newTag']}"
    for entry in kust.get("patches", []):
        ops = yaml.load(entry["patch"], Loader=LOADER)
        assert isinstance(ops, list), "only JSON 6902 patches (a list of operations) are supported"
        matched = [doc for doc in docs if _targets(doc, entry["target"])]
        assert matched, f"{directory}: a patch targets nothing: {entry['target']}"
        for doc in matched:
            apply_json_patch(doc, ops)
    return docs


BASE = render(K8S / "base")
DEV = render(K8S / "overlays" / "dev")
CONFIG = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "ConfigMap"}
DEPLOYMENTS = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Deployment"}
K8S_SERVICES = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Service"}


def _id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# --- schema -------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", BASE + DEV, ids=_id)
def test_every_object_is_valid_for_kubernetes_1_30(doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_manifest_file_is_listed_in_the_kustomization():
    listed = set(yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.y*ml")} - {"kustomization.yaml"}
    assert on_disk == listed


def test_object_names_are_unique():
    keys = [(d["kind"], d["metadata"]["name"]) for d in BASE]
    assert len(keys) == len(set(keys))


# --- one Deployment + Service per process ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_deployment_service_migrations_and_its_port(name):
    package, port, prefix = SERVICES[name]
    assert (ROOT / "services" / name / "src" / package).is_dir(), f"no package {package} under services/{name}"
    assert name in DEPLOYMENTS, f"no Deployment for {name}"
    assert name in K8S_SERVICES, f"no Service for {name}"
    dep = DEPLOYMENTS[name]
    pod_template = dep["spec"]["template"]
    pod = pod_template["spec"]
    app = pod["containers"][0]
    assert app["image"].split(":")[0] == f"helpdesk/{name}"
    assert [(p["name"], p["containerPort"]) for p in app["ports"]] == [("http", port), ("ops", OPS_PORT)]
    assert _env(app)["PORT"]["value"] == str(port)
    # /metrics and the probes on the ops listener (helpdesk_common/ops_listener.py), on every
    # interface of the pod: the gateway's public port never answers /metrics (issue 17)
    assert _env(app)[f"{prefix}OPS_PORT"]["value"] == str(OPS_PORT)
    assert _env(app)[f"{prefix}OPS_HOST"]["value"] == "0.0.0.0"
    annotations = pod_template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(OPS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert app[probe]["httpGet"]["port"] == "ops", probe
    migrate = [c for c in pod.get("initContainers", []) if c["command"][:3] == ["python", "-m", "helpdesk_common.migrate"]]
    assert len(migrate) == 1, "one init container running the migrations"
    assert migrate[0]["command"][3:] == [package]
    assert migrate[0]["image"] == app["image"]
    for container, needed in ((app, (f"{prefix}DATABASE_URL", "INTERNAL_AUTH_PUBLIC_KEY")),
                              (migrate[0], (f"{prefix}DATABASE_URL",))):
        env = _env(container)
        for var in needed:
            assert env[var]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, (container["name"], var)
    svc_ports = K8S_SERVICES[name]["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in svc_ports] == [("http", port), ("ops", OPS_PORT)]


def test_only_the_gateway_app_gets_the_user_token_signing_keys():
    for name, dep in DEPLOYMENTS.items():
        for c in containers(dep):
            signs = "GATEWAY_SIGNING_KEYS" in _env(c)
            assert signs == (name == "gateway" and c["name"] == "app"), (name, c["name"])


def test_only_the_gateway_app_can_sign_identities():
    """The private identity key mints identities for every service: the gateway's app
    container has it, no other container (nor the gateway's migration step) does."""
    for name, dep in DEPLOYMENTS.items():
        for c in containers(dep):
            signs = "INTERNAL_AUTH_PRIVATE_KEY" in _env(c)
            assert signs == (name == "gateway" and c["name"] == "app"), (name, c["name"])


@pytest.mark.parametrize("name", sorted(K8S_SERVICES))
def test_service_selects_an_existing_deployment(name):
    svc = K8S_SERVICES[name]
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    selector = svc["spec"]["selector"]
    assert selector, "a Service without a selector selects nothing"
    matches = [
        dep
        for dep in DEPLOYMENTS.values()
        if selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(matches) == 1, f"{name} selects {len(matches)} Deployments"
    port_names = {p.get("name") for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    port_numbers = {p["containerPort"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    for port in svc["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        assert target in (port_names if isinstance(target, str) else port_numbers), (name, target)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_selector_matches_its_pod_labels(name):
    dep = DEPLOYMENTS[name]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


# --- probes, resources, hardening ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_is_probed(name):
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    for app in pod["containers"]:
        port_names = {p["name"] for p in app["ports"]} | {p["containerPort"] for p in app["ports"]}
        assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert app[probe]["httpGet"]["port"] in port_names, (probe, "probe targets an undeclared port")


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_container_has_requests_and_limits(name):
    for c in containers(DEPLOYMENTS[name]):
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), (c["name"], kind)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_runs_hardened(name):
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == UID
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in containers(DEPLOYMENTS[name]):
        sc = c["securityContext"]
        assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", UID) == UID, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), c["name"]
        assert sc.get("privileged", False) is False, c["name"]
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{c['name']}: read-only root needs an emptyDir on /tmp"


# --- secrets ------------------------------------------------------------------------------


def _documented_secret_keys() -> set[str]:
    return set(re.findall(r"`([a-z0-9-]+)`", (K8S / "README.md").read_text()))


@pytest.mark.parametrize("doc", BASE, ids=_id)
def test_no_literal_secret_values(doc):
    assert doc["kind"] != "Secret", "Secrets are created per environment, never committed"
    documented = _documented_secret_keys()
    for c in containers(doc):
        for env in c.get("env", []):
            if any(word in env["name"].upper() for word in SENSITIVE):
                assert "value" not in env, (c["name"], env["name"])
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                assert ref, f"{c['name']}: {env['name']} must come from a secretKeyRef"
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == SECRET_NAME and ref["key"] in documented, (env["name"], ref)
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", str(env.get("value", ""))), env["name"]
        for source in c.get("envFrom", []):
            assert "secretRef" not in source or source["secretRef"]["name"] == SECRET_NAME
    if doc["kind"] == "ConfigMap":
        for key, value in doc.get("data", {}).items():
            assert not any(word in key.upper() for word in SENSITIVE), key
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", value), f"{key} carries credentials"


def test_gateway_upstreams_point_at_the_services():
    data = CONFIG["helpdesk-config"]["data"]
    for name, (_, port, prefix) in SERVICES.items():
        if name == "gateway":
            continue
        assert data[f"GATEWAY_{prefix.rstrip('_')}_URL"] == f"http://{name}:{port}"
    # the services' own calls to each other
    for key, name in (("NOTIFY_TICKET_URL", "ticket-svc"), ("ANALYTICS_TICKET_URL", "ticket-svc"),
                      ("TICKET_KB_URL", "kb-svc"), ("SLA_TICKET_URL", "ticket-svc"), ("KB_TICKET_URL", "ticket-svc")):
        assert data[key] == f"http://{name}:{SERVICES[name][1]}", key
    assert data["KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert data["KAFKA_BOOTSTRAP_SERVERS"]
    for dep in DEPLOYMENTS.values():
        for c in containers(dep):
            assert {"configMapRef": {"name": "helpdesk-config"}} in c.get("envFrom", []), c["name"]


# --- the dev overlay -------------------------------------------------------------------------


def test_dev_overlay_sets_namespace_and_pins_every_image():
    assert {_id(d) for d in DEV} == {_id(d) for d in BASE}
    assert {d["metadata"].get("namespace") for d in DEV} == {"helpdesk-dev"}
    images = [c["image"] for d in DEV for c in containers(d)]
    assert images and all(_split_image(i)[1] == ":dev" for i in images), images


# --- Dockerfile -------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def test_dockerfile_is_parametrised_multi_stage_and_non_root():
    instructions = _dockerfile()
    ops = [op.upper() for op, _ in instructions]
    args = " ".join(rest for op, rest in instructions if op.upper() == "ARG")
    froms = [rest for op, rest in instructions if op.upper() == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert "python:3.11-slim" in args + " ".join(froms)
    assert re.search(r"\bSERVICE\b", args) and re.search(r"\bPACKAGE\b", args)
    last_from = len(ops) - 1 - ops[::-1].index("FROM")
    users = [rest for op, rest in instructions[last_from:] if op.upper() == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER must be a numeric non-root uid, got {users[-1]}"
    assert "EXPOSE" in ops[last_from:]
    installs = " ".join(rest for op, rest in instructions if op.upper() == "RUN" and "pip install" in rest)
    assert "libs/common" in installs and "services/${SERVICE}" in installs
    assert not re.search(r"(^|\s)(-e|--editable)\s", installs), "install non-editable"
    cmd = [rest for op, rest in instructions if op.upper() == "CMD"][-1]
    for part in ("uvicorn", "--factory", ".main:create_app", "--host 0.0.0.0", "PORT}", "--loop uvloop", "--http httptools", "--no-access-log"):
        assert part in cmd, part


def test_dockerignore_keeps_local_state_out_of_the_context():
    entries = {line.strip().removeprefix("**/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".data", ".git", "__pycache__", "bench/results"} <= entries


# --- Kafka topics (Strimzi CRDs: kept out of the base, not schema-validated) ------------------


def test_strimzi_topics_cover_every_topic_and_its_dlq():
    docs = render(K8S / "kafka")
    assert {d["kind"] for d in docs} == {"KafkaTopic"}
    assert all(d["apiVersion"].startswith("kafka.strimzi.io/") for d in docs)
    assert all(d["metadata"]["labels"].get("strimzi.io/cluster") for d in docs)
    partitions = {d["spec"]["topicName"]: d["spec"]["partitions"] for d in docs}
    expected = {t: 12 for t in TOPICS} | {f"{t}.dlq": 1 for t in TOPICS}
    assert partitions == expected
    names = [d["metadata"]["name"] for d in docs]
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) for n in names) and len(set(names)) == len(names)
    assert not any(d["kind"].startswith("Kafka") for d in BASE), "CRD objects stay out of the base"
