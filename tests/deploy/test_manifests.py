"""Offline validation of the Kustomize base and the Dockerfile (no cluster, no docker needed)."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from helpdesk_common.devstack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"


def render(kustomization_dir: Path) -> list[dict]:
    """The subset of Kustomize the base uses: resources (recursively), namespace, images, labels."""
    kust = yaml.safe_load((kustomization_dir / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for res in kust.get("resources", []):
        path = (kustomization_dir / res).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if "namespace" in kust:
            doc["metadata"]["namespace"] = kust["namespace"]
        for pair in kust.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(pair["pairs"])
        for container in _containers(doc):
            for image in kust.get("images", []):
                name, _, _ = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{name}:{image['newTag']}"
    return docs


def _containers(doc: dict) -> list[dict]:
    if doc.get("kind") != "Deployment":
        return []
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


BASE = render(ROOT / "k8s" / "base")
DEV = render(ROOT / "k8s" / "overlays" / "dev")
DEPLOYMENTS = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Deployment"}


@pytest.mark.parametrize("doc", BASE + DEV, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_schema_valid(doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_service_has_a_deployment_and_service():
    services = {d["metadata"]["name"]: d for d in BASE if d["kind"] == "Service"}
    for svc in SERVICES:
        assert svc.name in DEPLOYMENTS and svc.name in services
        labels = DEPLOYMENTS[svc.name]["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in services[svc.name]["spec"]["selector"].items())


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_is_hardened_probed_and_bounded(name):
    dep = DEPLOYMENTS[name]
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    app = pod["containers"][0]
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert any("migrate" in " ".join(c.get("command", [])) for c in pod["initContainers"])
    for c in _containers(dep):
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not c["image"].endswith(":latest")
        for env in c.get("env", []):
            if any(word in env["name"] for word in ("SECRET", "PASSWORD", "DATABASE_URL")):
                assert "secretKeyRef" in env.get("valueFrom", {}), env["name"]


def test_dev_overlay_sets_namespace_and_tags():
    assert {d["metadata"].get("namespace") for d in DEV} == {"helpdesk-dev"}
    assert all(c["image"].endswith(":dev") for d in DEV for c in _containers(d))


def test_dockerfile_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and all(not u.startswith(("root", "0")) for u in users)
    assert "ARG SERVICE" in text and "ARG PACKAGE" in text


def test_strimzi_topics_cover_every_topic_and_dlq():
    from helpdesk_common.events import ALL_TOPICS

    docs = [d for d in yaml.safe_load_all((ROOT / "k8s" / "kafka" / "topics.yaml").read_text()) if d]
    names = {d["spec"]["topicName"] for d in docs}
    assert names == set(ALL_TOPICS) | {f"{t}.dlq" for t in ALL_TOPICS}
