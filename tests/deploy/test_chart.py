"""The Helm chart, offline: rendered with helm-python-sdk for a matrix of values, every
manifest validated by kubernetes-validate --strict on two Kubernetes versions, and the
checks those tools miss."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from scaleml.config import Settings
from scaleml.stack import (
    coordinator_command,
    gateway_command,
    mlflow_command,
    scheduler_command,
    worker_command,
)
from tests.deploy.chart import (
    CASES,
    CHART,
    CRD_KINDS,
    MODELS,
    container,
    containers,
    objects,
    pod_specs,
    render,
)

KUBERNETES = ["1.29.0", kubernetes_validate.latest_version()]
"""The oldest version the chart supports (Chart.yaml kubeVersion) and the newest known."""


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads its JSON schemas from disk on every call; read each once."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.cache(original)
    yield
    kubernetes_validate.utils.schema_contents = original


def _validate(obj: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("case", CASES)
def test_every_manifest_is_valid_on_old_and_new_kubernetes(case: str) -> None:
    objs = objects(CASES[case])
    assert objs
    for version in KUBERNETES:
        for obj in objs:
            if obj["kind"] in CRD_KINDS:
                # no schema ships for CRDs: their pod templates are validated as Pods
                for _, spec, _ in pod_specs(obj):
                    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}
                    _validate({**pod, "spec": spec}, version)
                continue
            _validate(obj, version)


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_finds_no_warning(case: str) -> None:
    report = helm.lint(CHART, CASES[case], strict=True, kube_version="v1.29.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_matrix_renders_what_each_case_asks_for() -> None:
    def kinds(case: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for obj in objects(CASES[case]):
            found.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])
        return found

    defaults = kinds("defaults")
    assert defaults["Deployment"] == {
        "rel-scaleml-scheduler", "rel-scaleml-worker", "rel-scaleml-coordinator",
        "rel-scaleml-mlflow",
    }  # fmt: skip
    assert "StatefulSet" not in defaults  # in-chart PostgreSQL is off by default
    gateway = kinds("gateway")
    assert "rel-scaleml-gateway" in gateway["Deployment"]
    assert (
        gateway["HorizontalPodAutoscaler"]
        == gateway["PodDisruptionBudget"]
        == {"rel-scaleml-gateway"}
    )
    operator = kinds("operator")
    assert operator["DaskCluster"] == operator["DaskAutoscaler"] == {"rel-scaleml"}
    assert "rel-scaleml-worker" not in operator["Deployment"]
    assert "HorizontalPodAutoscaler" not in kinds("hpa-off")
    policies = kinds("policies-ingress")
    assert len(policies["NetworkPolicy"]) == 6 and policies["Ingress"] == {"rel-scaleml"}
    assert len(policies["ServiceMonitor"]) == 2 and "StatefulSet" in policies
    off = kinds("optional-off")
    assert set(off["Deployment"]) == {"rel-scaleml-scheduler", "rel-scaleml-worker"}
    assert "ServiceAccount" not in off and "Pod" not in off


def test_hpa_on_leaves_replicas_to_it_and_off_sets_them() -> None:
    def gateway(case: str) -> dict[str, Any]:
        return next(
            o for o in objects(CASES[case]) if o["metadata"]["name"] == "rel-scaleml-gateway"
        )

    assert "replicas" not in gateway("gateway")["spec"]
    assert gateway("hpa-off")["spec"]["replicas"] == 3


def test_every_values_path_a_template_uses_exists_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    used: set[str] = set()
    for template in (CHART / "templates").rglob("*"):
        if not template.is_file():
            continue
        text = template.read_text()
        used |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text))
        aliases = dict(re.findall(r"\$(\w+) := \.Values\.([A-Za-z0-9_.]+)", text))
        for alias, rest in re.findall(r"\$(\w+)\.([A-Za-z0-9_.]+)", text):
            if alias in aliases:
                used.add(f"{aliases[alias]}.{rest}")
    assert len(used) > 80
    missing = []
    for path in sorted(used):
        node: Any = values
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                missing.append(path)
                break
            node = node[key]
    assert missing == []


@pytest.mark.parametrize("case", CASES)
def test_services_select_pods_and_target_their_ports(case: str) -> None:
    objs = objects(CASES[case])
    pods = [(labels, spec) for obj in objs for _, spec, labels in pod_specs(obj) if labels]
    services = [o for o in objs if o["kind"] == "Service"]
    for service in services:
        selector = service["spec"]["selector"]
        matched = [spec for labels, spec in pods if selector.items() <= labels.items()]
        assert matched, service["metadata"]["name"]
        ports = {p.get("name") for spec in matched for c in spec["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    for obj in objs:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("case", CASES)
def test_every_scaleml_variable_the_chart_sets_is_a_setting(case: str) -> None:
    objs = objects(CASES[case])
    names = {e["name"] for _, c in containers(objs) for e in c.get("env", [])}
    names |= {k for o in objs if o["kind"] == "ConfigMap" for k in o.get("data") or {}}
    scaleml = {n for n in names if n.startswith("SCALEML_")}
    assert scaleml >= {"SCALEML_SCHEDULER", "SCALEML_MLFLOW_TRACKING_URI"}
    assert {n.removeprefix("SCALEML_").lower() for n in scaleml} <= set(Settings.model_fields)


def test_secrets_never_go_to_the_configmap() -> None:
    objs = objects(CASES["gateway"])
    maps = [o for o in objs if o["kind"] == "ConfigMap"]
    assert maps[0]["data"] == {"SCALEML_EXPERIMENT": "churn"}
    coordinator = container(objs, "coordinator")
    token = next(e for e in coordinator["env"] if e["name"] == "SCALEML_COORDINATOR_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "rel-scaleml-auth",
        "key": "coordinator-token",
    }
    with pytest.raises(helm.HelmError, match="secret"):
        render({"settings": {"gateway_token": "x"}})


@pytest.mark.parametrize("case", CASES)
def test_every_container_has_resources_probes_and_runs_unprivileged(case: str) -> None:
    for obj in objects(CASES[case]):
        for what, spec, _ in pod_specs(obj):
            assert spec["automountServiceAccountToken"] is False, what
            pod_security = spec.get("securityContext", {})
            hook = "helm.sh/hook" in obj["metadata"].get("annotations", {})
            for c in spec["containers"]:
                where = (obj["metadata"]["name"], c["name"])
                assert c["resources"]["requests"] and c["resources"]["limits"], where
                if not hook:
                    assert "readinessProbe" in c and "livenessProbe" in c, where
                security = c["securityContext"]
                assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")), where
                assert pod_security.get("runAsUser", 0) != 0, where
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["readOnlyRootFilesystem"] is True, where
                assert security["capabilities"]["drop"] == ["ALL"], where


def test_names_and_labels_fit_63_characters_for_the_longest_release_name() -> None:
    release = "r" * 53  # Helm's limit on release names
    values = CASES["policies-ingress"]
    for obj in objects(values, release=release) + objects(CASES["operator"], release=release):
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        for value in obj["metadata"].get("labels", {}).values():
            assert len(str(value)) <= 63


def test_recommended_labels_on_every_object() -> None:
    for obj in objects(CASES["policies-ingress"]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "scaleml"
        assert labels["app.kubernetes.io/instance"] == "rel"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "scaleml"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "scaleml-0.1.0"
        assert labels["app.kubernetes.io/component"]


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"gateway": {"service": {"port": "8000"}}}, "/gateway/service/port"),
        ({"gatway": {"models": ["churn"]}}, "additional properties 'gatway'"),
        ({"dask": {"worker": {"replicas": "2"}}}, "/dask/worker/replicas"),
        ({"coordinator": {"auth": {"enabled": "yes"}}}, "/coordinator/auth/enabled"),
        ({"gateway": {"models": "churn"}}, "/gateway/models"),
        ({"mlflow": {"backendStore": {"postgress": {}}}}, "additional properties 'postgress'"),
        ({"dask": {"worker": {"memory": {"pause": 80}}}}, "/dask/worker/memory/pause"),
        ({"settings": {"Experiment": "x"}}, "invalid propertyName 'Experiment'"),
    ],
)
def test_the_schema_refuses_bad_values(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(values)


def test_container_commands_are_the_commands_scaleml_cluster_up_runs() -> None:
    objs = objects(CASES["gateway"])
    scheduler = scheduler_command(host="0.0.0.0")
    assert container(objs, "scheduler")["command"] == scheduler.argv
    worker = worker_command(
        scheduler_address="tcp://rel-scaleml-scheduler:8786",
        host="$(POD_IP)",
        nthreads=1,
        memory_limit="4Gi",
        name="$(POD_NAME)",
        local_directory="/scratch",
        dashboard_port=8790,
    )
    rendered = container(objs, "worker")
    assert rendered["command"] == worker.argv
    env = {e["name"]: e.get("value") for e in rendered["env"]}
    assert worker.env.items() <= env.items()
    mlflow = mlflow_command(
        host="0.0.0.0",
        backend_store_uri="sqlite:////mlflow/mlflow.db",
        artifacts_destination="/mlflow/artifacts",
        allowed_hosts="rel-scaleml-mlflow,rel-scaleml-mlflow:5000,localhost,localhost:5000",
    )
    rendered = container(objs, "mlflow")
    assert rendered["command"] == mlflow.argv
    assert mlflow.env.items() <= {e["name"]: e.get("value") for e in rendered["env"]}.items()
    coordinator = coordinator_command(host="0.0.0.0")
    assert container(objs, "coordinator")["command"] == coordinator.argv
    assert (
        container(objs, "gateway")["command"] == gateway_command(host="0.0.0.0", models=MODELS).argv
    )
    # the operator's pods run the same commands
    operator = objects(CASES["operator"])
    assert container(operator, "worker")["command"] == worker.argv
    assert container(operator, "scheduler")["command"] == scheduler.argv


def test_worker_threads_and_memory_follow_the_container_limits() -> None:
    argv = container(objects(CASES["hpa-off"]), "worker")["command"]
    assert argv[argv.index("--nthreads") + 1] == "2"  # 1500m rounded up
    assert argv[argv.index("--memory-limit") + 1] == "6Gi"


def test_external_postgres_and_object_store_come_from_secrets() -> None:
    objs = objects(CASES["external-postgres"])
    assert [o for o in objs if o["kind"] == "Secret"] == []  # every secret is the user's
    coordinator = container(objs, "coordinator")
    db = next(e for e in coordinator["env"] if e["name"] == "SCALEML_COORDINATOR_DB")
    assert db["valueFrom"]["secretKeyRef"] == {"name": "jobs-db", "key": "url"}
    mlflow = container(objs, "mlflow")
    argv = mlflow["command"]
    assert argv[argv.index("--backend-store-uri") + 1] == (
        "postgresql+psycopg://mlflow:$(MLFLOW_DB_PASSWORD)@db.internal:5432/mlflow"
    )
    assert argv[argv.index("--artifacts-destination") + 1] == "s3://models/mlflow"
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["MLFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-db"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-keys"
    deployment = next(o for o in objs if o["metadata"]["name"] == "rel-scaleml-coordinator")
    assert deployment["spec"]["replicas"] == 3


def test_several_coordinators_need_a_shared_job_store() -> None:
    with pytest.raises(helm.HelmError, match=r"coordinator.replicas > 1 needs a shared job store"):
        render({"coordinator": {"replicas": 2}})
    assert objects({"coordinator": {"replicas": 2, "database": {"url": "postgresql://db/j"}}})


def test_the_test_hook_checks_the_gateway_and_the_coordinator() -> None:
    pod = next(o for o in objects(CASES["gateway"]) if o["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    urls = pod["spec"]["containers"][0]["command"][3:]
    assert "http://rel-scaleml-coordinator:8800/health" in urls
    assert "http://rel-scaleml-gateway:8000/v2/health/live" in urls


def test_notes_say_how_to_reach_every_part() -> None:
    notes = render(CASES["gateway"])["scaleml/templates/NOTES.txt"]
    for service in ("gateway", "coordinator", "scheduler", "mlflow"):
        assert f"svc/rel-scaleml-{service}" in notes
