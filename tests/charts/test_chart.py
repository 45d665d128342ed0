"""The Helm chart of the generated service: lint, render, validate, secure by default.

Every test runs the real helm, kubernetes-validate and yamllint on a rendered project. Kubernetes
objects are validated offline against the OpenAPI schemas that kubernetes-validate ships.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml
from packaging.version import Version

from tests.helpers import REPO_ROOT, load_yaml_documents, run
from tests.monorepo import FOUR_SERVICES

DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")
PROD = DEFAULT_ENVIRONMENTS[-1]
SLUG = "my-service"
MONITORING_API = "monitoring.coreos.com/v1"
# Custom resources: no schema in kubernetes-validate, checked field by field instead.
CUSTOM_KINDS = {"ServiceMonitor"}
# Volume types the restricted Pod Security Standard allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
Manifest = dict[str, Any]


def kubernetes_version() -> str:
    """pins.kubernetes.version, clamped to the releases kubernetes-validate has schemas for."""
    pins = yaml.safe_load((REPO_ROOT / "extensions" / "versions.yaml").read_text(encoding="utf-8"))
    wanted = Version(str(pins["kubernetes"]["version"]))
    shipped = sorted({Version(v) for v in kubernetes_validate.utils.all_versions()})
    eligible = [v for v in shipped if (v.major, v.minor) <= (wanted.major, wanted.minor)]
    return str(eligible[-1] if eligible else shipped[0])


@dataclass(frozen=True)
class Helm:
    """The helm binary with a private HOME, cache and config (nothing leaks to the user's)."""

    binary: str
    env: dict[str, str]
    kube_version: str

    def template(self, chart: Path, *args: str) -> list[Manifest]:
        command = [self.binary, "template", chart.name, str(chart), "--kube-version"]
        result = run([*command, self.kube_version, *args], env=self.env)
        return load_yaml_documents(result.stdout)

    def lint(self, chart: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, "lint", "--strict", str(chart), "--kube-version", self.kube_version]
        return run([*command, *args], env=self.env, check=check)


@dataclass(frozen=True)
class Rendered:
    env: str
    manifests: list[Manifest]


def chart_dir(project: Path, slug: str = SLUG) -> Path:
    return project / "deploy" / "charts" / slug


def overlay(chart: Path, env: str) -> list[str]:
    return ["--values", str(chart / f"values-{env}.yaml")]


def by_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def service_policy(manifests: Sequence[Manifest]) -> Manifest:
    """The service's NetworkPolicy (the smoke test's pod has one of its own)."""
    found = [
        m
        for m in by_kind(manifests, "NetworkPolicy")
        if m["metadata"]["labels"].get("app.kubernetes.io/component") != "smoke-test"
    ]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]


def pod_specs(manifests: Sequence[Manifest]) -> list[tuple[str, Manifest]]:
    """(object name, pod spec) of every object with a pod template."""
    return [
        (f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
        for m in manifests
        if "template" in m.get("spec", {})
    ]


def validate_strictly(
    manifests: Sequence[Manifest], validator: str, version: str, folder: Path
) -> None:
    """kubernetes-validate --strict: unknown fields, wrong types and missing fields all fail."""
    stream = folder / "manifests.yaml"
    stream.write_text(yaml.safe_dump_all(manifests, sort_keys=False), encoding="utf-8")
    result = run([validator, "--strict", "-k", version, stream], check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for manifest in manifests:
        reference = f"{manifest['kind'].lower()}/{manifest['metadata']['name']}"
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        assert f"passed for resource {reference} " in output, output
    unexpected = [
        line
        for line in output.splitlines()
        if line.startswith(("WARN", "ERROR", "FATAL"))
        and not any(f"kind {kind} " in line for kind in CUSTOM_KINDS)
    ]
    assert not unexpected, output


def restricted_violations(pod: Manifest) -> list[str]:
    """Violations of the "restricted" Pod Security Standard (baseline included) in a pod spec."""
    problems: list[str] = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{flag} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds)}")
    if pod_context.get("sysctls"):
        problems.append("pod sets sysctls")
    containers = pod.get("initContainers", []) + pod["containers"]
    for container in containers:
        name = container["name"]
        context = container.get("securityContext", {})

        def effective(field: str, context: Manifest = context) -> Any:
            return context.get(field, pod_context.get(field))

        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if effective("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        user = effective("runAsUser")
        if not isinstance(user, int) or isinstance(user, bool) or user == 0:
            problems.append(f"{name}: runAsUser {user!r} is not a numeric non-root id")
        seccomp = effective("seccompProfile") or {}
        if seccomp.get("type") not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{name}: seccompProfile {seccomp!r}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {context['procMount']}")
        if any("hostPort" in port for port in container.get("ports", [])):
            problems.append(f"{name}: uses a hostPort")
    return problems


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DEFAULT_ENVIRONMENTS)
def rendered(request: pytest.FixtureRequest, helm: Helm, chart: Path) -> Rendered:
    """helm template with values.yaml + values-<env>.yaml, once per environment and worker."""
    env = str(request.param)
    return Rendered(env=env, manifests=helm.template(chart, *overlay(chart, env)))


@pytest.fixture(scope="module")
def validator(tool: Callable[[str], str]) -> str:
    return tool("kubernetes-validate")


# --- Lint and schema validation ------------------------------------------------------------------


@pytest.mark.parametrize("env", DEFAULT_ENVIRONMENTS)
def test_chart_lints_strictly_with_each_environment_overlay(
    helm: Helm, chart: Path, env: str
) -> None:
    result = helm.lint(chart, *overlay(chart, env))
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_each_environment_renders_valid_kubernetes_objects(
    rendered: Rendered, validator: str, helm: Helm, tmp_path: Path
) -> None:
    kinds = sorted(m["kind"] for m in rendered.manifests)
    expected = ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"]
    expected += ["ConfigMap", "Job", "NetworkPolicy"]  # the smoke test hook, its script, its policy
    if rendered.env == PROD:
        expected.append("HorizontalPodAutoscaler")
    assert kinds == sorted(expected)
    validate_strictly(rendered.manifests, validator, helm.kube_version, tmp_path)


def test_every_optional_object_renders_valid_kubernetes_objects(
    helm: Helm, chart: Path, validator: str, tmp_path: Path
) -> None:
    manifests = helm.template(
        chart,
        "--api-versions",
        MONITORING_API,
        "--set",
        "autoscaling.enabled=true",
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.className=nginx",
        "--set-json",
        'ingress.tls=[{"secretName":"my-service-tls","hosts":["my-service.example.com"]}]',
        "--set-json",
        'extraEnv=[{"name":"DATABASE_PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}}]',
        "--set-json",
        'podAnnotations={"example.com/team":"payments"}',
        "--set",
        "podAntiAffinityPreset=hard",
    )
    optional = {"HorizontalPodAutoscaler", "Ingress", "ServiceMonitor"}
    assert optional <= {m["kind"] for m in manifests}
    validate_strictly(manifests, validator, helm.kube_version, tmp_path)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "imageTag=0123abc"], "imageTag"),
        (["--set", "probes.liveness.paht=/healthz"], "paht"),
        (["--set", "replicaCount=two"], "/replicaCount"),
        (["--set", "resources.limits.memory=256MB"], "/resources/limits/memory"),
        (["--set", "securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["--set", "podSecurityContext.runAsUser=0"], "/podSecurityContext/runAsUser"),
        (["--set", "networkPolicy.enabled=maybe"], "/networkPolicy/enabled"),
    ],
    ids=[
        "pull-policy-enum",
        "unknown-top-level-key",
        "misspelt-nested-key",
        "integer-type",
        "quantity-format",
        "privilege-escalation",
        "root-user",
        "boolean-type",
    ],
)
def test_values_schema_refuses_invalid_values(
    helm: Helm, chart: Path, arguments: list[str], named: str
) -> None:
    result = helm.lint(chart, *arguments, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "values don't meet the specifications of the schema" in output, output
    assert named in output, output


# --- Security -------------------------------------------------------------------------------------


def test_pod_template_meets_restricted_pod_security_standard(rendered: Rendered) -> None:
    specs = pod_specs(rendered.manifests)
    assert specs, "no pod template rendered"
    for name, pod in specs:
        assert restricted_violations(pod) == [], name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["fsGroup"] == 10001, name
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp is not an emptyDir"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            assert "cpu" not in resources.get("limits", {}), f"{name}: a CPU limit throttles"


def test_probes_check_liveness_and_readiness_separately(rendered: Rendered) -> None:
    deployment = one(rendered.manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    liveness, readiness, startup = (
        container[probe] for probe in ("livenessProbe", "readinessProbe", "startupProbe")
    )
    assert liveness["httpGet"] == {"path": "/healthz", "port": "http"}
    assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
    assert startup["httpGet"]["path"] == "/healthz"
    assert liveness != readiness != startup != liveness
    # The start-up budget must exceed one liveness period, or slow starts get killed.
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget > liveness["periodSeconds"] * liveness["failureThreshold"]


def test_service_reaches_the_named_container_port(rendered: Rendered) -> None:
    deployment = one(rendered.manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    service = one(rendered.manifests, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_selectors_match_the_pod_labels(rendered: Rendered) -> None:
    deployment = one(rendered.manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": one(rendered.manifests, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(rendered.manifests, "PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ],
        "NetworkPolicy": service_policy(rendered.manifests)["spec"]["podSelector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector, kind
        assert selector.items() <= pod_labels.items(), kind
    # No label that changes per release in selectors: a Deployment selector is immutable.
    assert set(selectors["Deployment"]) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    service_account = one(rendered.manifests, "ServiceAccount")
    assert service_account["automountServiceAccountToken"] is False
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        == (service_account["metadata"]["name"])
    )


def test_network_policy_admits_only_http_in_and_dns_out(rendered: Rendered) -> None:
    policy = service_policy(rendered.manifests)["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["ingress"], "no ingress rule: the Service would be unreachable"
    for rule in policy["ingress"]:
        assert rule["from"], "a rule without peers admits every source"
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = policy["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in peers
    assert len(policy["egress"]) == 1
    (dns,) = policy["egress"]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_network_policy_without_allowed_sources_denies_all_ingress(helm: Helm, chart: Path) -> None:
    manifests = helm.template(
        chart,
        "--set",
        "networkPolicy.ingress.fromSameNamespace=false",
        "--set-json",
        "networkPolicy.ingress.namespaceSelectors=[]",
        "--set",
        "networkPolicy.egress.dns.enabled=false",
    )
    policy = service_policy(manifests)["spec"]
    assert policy["ingress"] == []
    assert policy["egress"] == []
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]


# --- Optional objects -----------------------------------------------------------------------------


def test_autoscaling_enabled_renders_hpa_and_leaves_replicas_to_it(helm: Helm, chart: Path) -> None:
    manifests = helm.template(
        chart, "--set", "autoscaling.enabled=true", "--set", "autoscaling.minReplicas=3"
    )
    deployment = one(manifests, "Deployment")
    assert "replicas" not in deployment["spec"]
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] == 3
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_autoscaling_disabled_renders_replicas_and_no_hpa(helm: Helm, chart: Path) -> None:
    manifests = helm.template(
        chart, "--set", "autoscaling.enabled=false", "--set", "replicaCount=4"
    )
    assert one(manifests, "Deployment")["spec"]["replicas"] == 4
    assert by_kind(manifests, "HorizontalPodAutoscaler") == []


def test_autoscaling_refuses_max_below_min(helm: Helm, chart: Path) -> None:
    result = run(
        [
            helm.binary,
            "template",
            SLUG,
            str(chart),
            *("--set", "autoscaling.enabled=true"),
            *("--set", "autoscaling.minReplicas=5", "--set", "autoscaling.maxReplicas=2"),
        ],
        env=helm.env,
        check=False,
    )
    assert result.returncode != 0
    assert "maxReplicas must be at least autoscaling.minReplicas" in result.stderr


def test_production_overlay_autoscales_and_other_environments_run_one_pod(
    rendered: Rendered,
) -> None:
    deployment = one(rendered.manifests, "Deployment")
    if rendered.env == PROD:
        assert "replicas" not in deployment["spec"]
        assert one(rendered.manifests, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
    else:
        assert deployment["spec"]["replicas"] == 1
        assert by_kind(rendered.manifests, "HorizontalPodAutoscaler") == []


def test_service_monitor_renders_only_where_prometheus_operator_api_exists(
    helm: Helm, chart: Path
) -> None:
    assert by_kind(helm.template(chart), "ServiceMonitor") == []
    manifests = helm.template(chart, "--api-versions", MONITORING_API)
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == MONITORING_API
    service = one(manifests, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"[0-9]+[smh]", endpoint["interval"])
    disabled = helm.template(
        chart, "--api-versions", MONITORING_API, "--set", "serviceMonitor.enabled=false"
    )
    assert by_kind(disabled, "ServiceMonitor") == []


def test_ingress_enabled_routes_hosts_to_the_service_http_port(
    helm: Helm, chart: Path, validator: str, tmp_path: Path
) -> None:
    manifests = helm.template(
        chart,
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.className=nginx",
        "--set-json",
        'ingress.hosts=[{"host":"api.example.org","paths":[{"path":"/","pathType":"Prefix"}]}]',
        "--set-json",
        'ingress.tls=[{"secretName":"api-tls","hosts":["api.example.org"]}]',
    )
    validate_strictly(manifests, validator, helm.kube_version, tmp_path)
    ingress = one(manifests, "Ingress")["spec"]
    service = one(manifests, "Service")
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "api-tls", "hosts": ["api.example.org"]}]
    (rule,) = ingress["rules"]
    assert rule["host"] == "api.example.org"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": "http"},
    }
    assert by_kind(helm.template(chart), "Ingress") == []


# --- Answers that reach the chart -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "repository"),
    [
        (
            {"project_name": "Billing API", "owner": "acme-corp"},
            "ghcr.io/acme-corp/billing-api",
        ),
        (
            {
                "project_slug": "ledger",
                "registry_host": "registry.example.com:5000",
                "image_repository": "platform/ledger-svc",
            },
            "registry.example.com:5000/platform/ledger-svc",
        ),
    ],
    ids=["derived-from-owner-and-slug", "explicit-host-and-repository"],
)
def test_deployment_runs_the_image_from_the_registry_answers(
    make_project: Callable[..., Path], helm: Helm, answers: dict[str, str], repository: str
) -> None:
    project = make_project(**answers)
    slug = str(answers.get("project_slug", "billing-api"))
    chart = chart_dir(project, slug)
    manifests = helm.template(chart, "--set", "image.tag=0123abcd")
    deployment = one(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repository}:0123abcd"
    assert deployment["metadata"]["name"] == slug
    # Promotion writes the tag into the environment overlay; the overlay then wins.
    values_dev = chart / "values-dev.yaml"
    promoted = values_dev.read_text(encoding="utf-8").replace('tag: ""', 'tag: "fedcba98"', 1)
    values_dev.write_text(promoted, encoding="utf-8")
    manifests = helm.template(chart, *overlay(chart, "dev"))
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repository}:fedcba98"
    # Without any tag the chart's appVersion is deployed, never "latest".
    (container,) = one(helm.template(chart), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repository}:0.1.0"


def test_free_text_description_survives_in_chart_metadata(
    make_project: Callable[..., Path], helm: Helm
) -> None:
    description = 'He said: "hi" # {{x}} ünï'
    chart = chart_dir(make_project(description=description))
    helm.lint(chart)
    shown = run([helm.binary, "show", "chart", chart], env=helm.env).stdout
    metadata = yaml.safe_load(shown)
    assert metadata["description"] == description
    assert metadata["name"] == SLUG
    assert metadata["apiVersion"] == "v2"


def test_environment_overlays_follow_the_environment_list(
    make_project: Callable[..., Path], helm: Helm, tool: Callable[[str], str]
) -> None:
    project = make_project(environments=["qa", "live"])
    chart = chart_dir(project)
    overlays = sorted(path.name for path in chart.glob("values-*.yaml"))
    assert overlays == ["values-live.yaml", "values-qa.yaml"]
    run([tool("yamllint"), "--strict", "-c", project / ".yamllint.yaml", *chart.glob("*.yaml")])
    for env in ("qa", "live"):
        helm.lint(chart, *overlay(chart, env))
    live = helm.template(chart, *overlay(chart, "live"))
    assert one(live, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
    qa = helm.template(chart, *overlay(chart, "qa"))
    assert one(qa, "Deployment")["spec"]["replicas"] == 1


def test_values_files_pass_yamllint(default_project: Path, tool: Callable[[str], str]) -> None:
    chart = chart_dir(default_project)
    files = sorted(chart.glob("*.yaml"))
    assert {path.name for path in files} >= {"values.yaml", "Chart.yaml", "values-prod.yaml"}
    config = default_project / ".yamllint.yaml"
    result = run([tool("yamllint"), "--strict", "-f", "parsable", "-c", config, *files])
    assert result.stdout == ""


def test_every_value_in_values_yaml_is_documented(chart: Path) -> None:
    """Each key of values.yaml has a comment on the line above it (label selectors excepted)."""
    lines = (chart / "values.yaml").read_text(encoding="utf-8").splitlines()
    key = re.compile(r"^(?P<indent>\s*(- )?)(?P<name>[A-Za-z][\w./-]*):")
    undocumented: list[str] = []
    selector_indent: int | None = None
    for number, line in enumerate(lines[1:], start=1):
        match = key.match(line)
        if not match:
            continue
        indent = len(match.group("indent"))
        if selector_indent is not None and indent > selector_indent:
            continue  # labels inside a matchLabels selector
        selector_indent = indent if match.group("name") == "matchLabels" else None
        if selector_indent is None and not lines[number - 1].lstrip().startswith("#"):
            undocumented.append(f"line {number + 1}: {line.strip()}")
    assert undocumented == []


def test_image_digest_pins_the_exact_image_and_bad_digests_are_refused(
    helm: Helm, chart: Path
) -> None:
    digest = "sha256:" + "ab" * 32
    manifests = helm.template(
        chart, "--set", "image.tag=3f2c1d9", "--set", f"image.digest={digest}"
    )
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/my-org/my-service:3f2c1d9@{digest}"
    refused = subprocess.run(
        [helm.binary, "lint", "--strict", chart, "--set", "image.digest=latest"],
        env=helm.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "/image/digest" in refused.stdout + refused.stderr


# --- Every chart of a four-service monorepo ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("service", [name for name, _ in FOUR_SERVICES])
def test_every_chart_of_a_monorepo_lints_renders_and_validates_per_environment(
    helm: Helm, four_services: Path, validator: str, tmp_path: Path, service: str
) -> None:
    chart = chart_dir(four_services, service)
    for env in DEFAULT_ENVIRONMENTS:
        result = helm.lint(chart, *overlay(chart, env))
        assert "[WARNING]" not in result.stdout, result.stdout
        assert "0 chart(s) failed" in result.stdout, result.stdout
        manifests = helm.template(chart, *overlay(chart, env))
        deployment = one(manifests, "Deployment")
        assert deployment["metadata"]["name"] == service
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].startswith(f"ghcr.io/my-org/{service}:")
        validate_strictly(manifests, validator, helm.kube_version, tmp_path)
