"""docker/k8s/: valid against the Kubernetes schemas, and consistent with Tabcast's drain and settings.

``kubernetes-validate`` bundles the OpenAPI schemas of each Kubernetes release, so this runs offline.
"""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.realtime.server import HTTP_GRACE_SECONDS
from tests.test_configuration import variables_read_by_code

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "docker" / "k8s"
# Releases still common in managed clusters, and the newest the package knows.
VERSIONS = ["1.29.0", "1.33.0", kubernetes_validate.latest_version()]


def manifests() -> dict[str, dict]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def by_kind(kind: str) -> dict:
    docs = [doc for doc in manifests().values() if doc["kind"] == kind]
    assert len(docs) == 1, f"expected one {kind} in docker/k8s/"
    return docs[0]


def settings_env_names() -> set[str]:
    """Environment variables the code reads (the same parser that keeps README's table in step)."""
    return set(variables_read_by_code())


def test_every_kind_the_issue_asks_for_is_there():
    kinds = {doc["kind"] for doc in manifests().values()}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap",
            "Secret"} <= kinds, kinds
    assert by_kind("HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(manifests()))
def test_manifest_is_valid_against_the_kubernetes_schema(name, version):
    # strict: an unknown or misspelt field (e.g. "readinesProbe") is an error, not ignored.
    kubernetes_validate.validate(manifests()[name], version, strict=True)


def test_the_validator_rejects_a_misspelt_field():
    deployment = by_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomization_applies_everything_but_the_secret_and_the_migration_job():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secret.yaml", "migrate-job.yaml"}


def _container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env_of(deployment: dict) -> tuple[dict, dict]:
    """(ConfigMap data, Secret data) the Deployment's container takes its environment from."""
    refs = _container(deployment)["envFrom"]
    config_name = next(ref["configMapRef"]["name"] for ref in refs if "configMapRef" in ref)
    secret_name = next(ref["secretRef"]["name"] for ref in refs if "secretRef" in ref)
    docs = manifests()
    return docs[f"ConfigMap/{config_name}"]["data"], docs[f"Secret/{secret_name}"]["stringData"]


def test_drain_fits_in_the_termination_grace_period():
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    config, _ = _env_of(deployment)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    drain = float(config["TABCAST_DRAIN_SECONDS"])
    # Endpoints are removed during preStop; then SIGTERM: the drain, the last sockets (<= 2 s),
    # uvicorn's HTTP grace, the last flush. Anything longer is SIGKILLed mid-drain.
    needed = pre_stop + drain + 2 + HTTP_GRACE_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= needed + 5, (pod["terminationGracePeriodSeconds"], needed)
    assert pre_stop >= 5  # kube-proxy and ingress controllers take seconds to drop an endpoint
    # Liveness never fires during a drain (/healthz answers 503 "draining" for its whole length).
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain + 2 + HTTP_GRACE_SECONDS
    # A rolling update brings a new pod up before an old one drains.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_ask_healthz_on_the_served_port_with_an_allowed_host():
    deployment = by_kind("Deployment")
    container = _container(deployment)
    config, _ = _env_of(deployment)
    allowed = [host.strip().lstrip(".") for host in config["TABCAST_ALLOWED_HOSTS"].split(",")]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    serve_port = int(container["command"][container["command"].index("--port") + 1])
    assert ports["http"] == serve_port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ("http", serve_port), probe
        hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
        assert hosts and hosts[0] in allowed, (probe, hosts, allowed)  # else Django answers 400
    # Readiness notices the drain's 503 within a probe period.
    assert container["readinessProbe"]["failureThreshold"] == 1


def test_environment_names_are_read_by_the_settings():
    deployment = by_kind("Deployment")
    config, secret = _env_of(deployment)
    names = set(config) | set(secret) | {env["name"] for env in _container(deployment).get("env", [])}
    known = settings_env_names()
    assert "TABCAST_DRAIN_SECONDS" in known and "REDIS_URL" in known  # the parser works
    assert names <= known, sorted(names - known)
    # What a multi-pod deployment cannot run without, and secrets kept out of the ConfigMap.
    assert {"REDIS_URL", "DATABASE_URL", "TABCAST_SECRET_KEY", "TABCAST_EMAIL_URL"} <= set(secret)
    assert {"TABCAST_ALLOWED_HOSTS", "TABCAST_TRUSTED_PROXIES"} <= set(config)
    assert not {"TABCAST_REUSE_PORT"} & names  # one process per pod: SO_REUSEPORT is for hosts


def test_service_pdb_and_hpa_point_at_the_deployment():
    deployment = by_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = by_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= {
        port["name"] for port in _container(deployment)["ports"]}
    pdb = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = by_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # The PDB lets one pod go at a time and the HPA never scales below what keeps one serving.
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] == 1
    # The migration job's pods are not behind the Service.
    job = by_kind("Job")
    assert not service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
