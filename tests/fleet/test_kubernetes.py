"""The Kubernetes recipe (deploy/kubernetes) holds together: a recipe, checked, not run here.

Every manifest parses; the built-in kinds validate strictly against the
Kubernetes API's published schemas (offline, through kubernetes-validate);
the KEDA ScaledObject, which those schemas do not know, names what the fleet
really writes (the jobs stream, the workers' group, metrics a role exports);
the commands parse with ``cantata``'s own parser; probes hit the ops routes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from framework.apps.cli import parser
from framework.fleet import JOB_GROUP, FleetKeys, RoleMetrics

RECIPE = Path(__file__).parents[2] / "deploy" / "kubernetes"
KUBERNETES = "1.30"
"""The oldest Kubernetes the recipe is checked against (autoscaling/v2 is GA since 1.23)."""
OPS_ROUTES = {"/healthz", "/livez", "/metrics"}


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(RECIPE.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append(document)
    return found


def named(kind: str, name: str) -> dict[str, Any]:
    (document,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def container(deployment: str) -> dict[str, Any]:
    (only,) = named("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def test_every_builtin_kind_validates_strictly() -> None:
    kinds = []
    for document in documents():
        kinds.append(document["kind"])
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked below
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "cantata", document["metadata"]
    assert sorted(set(kinds)) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "ScaledObject",
        "Secret",
        "Service",
    ]


def test_the_validation_can_fail() -> None:
    broken = named("Deployment", "cantata-worker")
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 330  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_autoscaler_reads_what_the_fleet_writes() -> None:
    scaled = named("ScaledObject", "cantata-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "cantata-worker"
    assert named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert set(triggers) == {"redis-streams", "prometheus"}
    stream = triggers["redis-streams"]["metadata"]
    assert (stream["stream"], stream["consumerGroup"]) == (FleetKeys().jobs, JOB_GROUP)
    assert int(stream["lagCount"]) > 0
    assert stream["address"].startswith(named("Service", "cantata-redis")["metadata"]["name"])
    # The occupancy query names only metrics a worker exports, with the role it labels.
    query = triggers["prometheus"]["metadata"]["query"]
    exported = {family.name for family in RoleMetrics("worker").registry.collect()}
    used = set(re.findall(r"cantata_\w+", query))
    assert used == {"cantata_active_sessions", "cantata_capacity"}
    assert used <= exported
    assert query.count('{role="worker"}') == 2
    assert triggers["prometheus"]["metricType"] == "Value"
    assert 0 < float(triggers["prometheus"]["metadata"]["threshold"]) < 1


def test_the_ingress_command_parses_and_its_probes_hit_the_ops_routes() -> None:
    ingress = container("cantata-ingress")
    assert ingress["args"][0] == "cantata"
    args = parser().parse_args(ingress["args"][1:])
    assert (args.command, args.role) == ("serve", "ingress")
    assert args.redis.startswith("redis://cantata-redis:")
    ports = {p["name"]: p["containerPort"] for p in ingress["ports"]}
    assert ports["http"] == args.port
    for probe in ("readinessProbe", "livenessProbe"):
        assert ingress[probe]["httpGet"]["path"] in OPS_ROUTES
        assert ingress[probe]["httpGet"]["port"] == "http"
    assert ingress["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert ingress["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {e["secretRef"]["name"] for e in ingress["envFrom"]} == {"cantata-secrets"}
    service = named("Service", "cantata-ingress")
    assert (
        service["spec"]["selector"]
        == named("Deployment", "cantata-ingress")["spec"]["selector"]["matchLabels"]
    )


def test_workers_get_a_core_each_and_time_to_drain() -> None:
    worker = container("cantata-worker")
    spec = named("Deployment", "cantata-worker")["spec"]["template"]["spec"]
    arguments = worker["args"]
    grace_s = float(arguments[arguments.index("--grace-s") + 1])
    # The kubelet's SIGKILL comes after the drain and the hang-ups, not during them.
    assert spec["terminationGracePeriodSeconds"] >= grace_s + 10
    assert worker["resources"]["requests"]["cpu"] == worker["resources"]["limits"]["cpu"] == "1"
    ops_port = int(arguments[arguments.index("--ops-port") + 1])
    assert {p["containerPort"] for p in worker["ports"]} == {ops_port}
    annotations = named("Deployment", "cantata-worker")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert int(annotations["prometheus.io/port"]) == ops_port
    assert worker["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_the_worker_command_parses() -> None:
    args = parser().parse_args(container("cantata-worker")["args"][1:])
    assert args.command == "worker"
    assert args.capacity > 0
