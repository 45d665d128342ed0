"""The deploy side of jobs: charts, Argo Events and Argo Workflows objects, RBAC, Argo CD.

A monorepo is built with the documented commands (`copier copy` with an HTTP service, then
`make add-service ... KIND=job TRIGGER=<trigger>` once per trigger). Every job chart is linted
and rendered by the real helm for every environment; every Argo object is validated against the
upstream schemas of ../shared/schemas with unknown fields refused; native objects go through
kubernetes-validate --strict; the ApplicationSet is evaluated by Go's text/template, as Argo CD
evaluates it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.charts.test_argocd import (
    GO_RENDERER,
    GoTemplate,
    Sources,
    allowed_by,
    argocd_documents,
    crd_files,
    generate_applications,
)
from tests.charts.test_chart import (
    Helm,
    kubernetes_version,
    restricted_violations,
    validate_strictly,
)
from tests.crd_schema import close_objects, validate_custom_resource
from tests.helpers import REPO_ROOT, run
from tests.monorepo import build_monorepo, make, tool_env
from tests.update.gitrepo import commit_all, snapshot_template

ENVIRONMENTS = ("dev", "staging", "prod")
REPO_URL = "https://github.com/acme/batch.git"
# One job per trigger, in the order they are added: the first one creates the EventBus.
JOBS = {"partner-import": "s3", "nightly-report": "calendar", "partner-hook": "webhook"}
EVENT_KINDS = {"EventSource", "Sensor", "EventBus"}
WORKFLOW_KINDS = {"WorkflowTemplate"}
Manifest = dict[str, Any]


# --- Fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HTTP service (copier copy), then one job per trigger with `make add-service`."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    project = build_monorepo(
        template,
        tmp_path_factory.mktemp("monorepo") / "batch",
        services=[("api", "python")],
        repo_url=REPO_URL,
    )
    for name, trigger in JOBS.items():
        make(
            project,
            "add-service",
            f"NAME={name}",
            "LANGUAGE=python",
            "KIND=job",
            f"TRIGGER={trigger}",
            "COPIER_ARGS=--defaults",
        )
        commit_all(project, f"Add the job {name}")
    return project


@pytest.fixture(scope="module")
def helm(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return Helm(binary=tool("helm"), env=env, kube_version=kubernetes_version())


@pytest.fixture(scope="module")
def rendered(monorepo: Path, helm: Helm) -> dict[tuple[str, str], list[Manifest]]:
    """(job, environment) -> what Argo CD applies: the chart with values-<env>.yaml."""
    manifests = {}
    for job in JOBS:
        chart = monorepo / "deploy" / "charts" / job
        for env in ENVIRONMENTS:
            values = ["--values", str(chart / f"values-{env}.yaml")]
            manifests[(job, env)] = helm.template(chart, "--namespace", f"jobs-{env}", *values)
    return manifests


@pytest.fixture(scope="module")
def go_template(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> GoTemplate:
    binary = tmp_path_factory.mktemp("gotemplate") / "gotemplate"
    run(
        [tool("go"), "build", "-o", binary, GO_RENDERER],
        cwd=GO_RENDERER.parent,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""},
    )
    return GoTemplate(binary)


# --- Upstream schemas, strictly ---------------------------------------------------------------


@cache
def argo_events_validator(schema_file: Path, kind: str) -> jsonschema.protocols.Validator:
    """Strict validator of an Argo Events kind from the upstream JSON schema (schema.json).

    The CRDs of Argo Events ship without a schema; its JSON schema does, with every Kubernetes
    type it uses. Every described object is closed, as tests/crd_schema.py closes CRDs.
    """
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    definitions = close_objects(schema["definitions"])
    root = dict(definitions[f"io.argoproj.events.v1alpha1.{kind}"])
    # metadata is an ObjectMeta: kept open, as the API server's own schema does.
    root["properties"] = {**root["properties"], "metadata": {"type": "object"}}
    root["definitions"] = definitions
    return jsonschema.Draft7Validator(root)


def argo_errors(document: Manifest, schemas_dir: Path) -> list[str]:
    kind = document["kind"]
    if kind in EVENT_KINDS:
        assert document["apiVersion"] == "argoproj.io/v1alpha1"
        validator = argo_events_validator(schemas_dir / "argo-events" / "schema.json", kind)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(document)
        ]
    crds = sorted((schemas_dir / "argo-workflows").glob("argoproj.io_*.yaml"))
    return validate_custom_resource(document, crds)


def is_argo(document: Manifest) -> bool:
    return str(document["apiVersion"]).startswith("argoproj.io/")


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in by_kind(manifests, kind) if name in (None, m["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def every_rendering(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> Iterator[tuple[str, str, list[Manifest]]]:
    for (job, env), manifests in sorted(rendered.items()):
        yield job, env, manifests


# --- Lint and render ------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("job", JOBS)
def test_job_chart_lints_strictly_with_each_environment_overlay(
    monorepo: Path, helm: Helm, job: str, env: str
) -> None:
    chart = monorepo / "deploy" / "charts" / job
    result = helm.lint(chart, "--values", str(chart / f"values-{env}.yaml"))
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_each_job_renders_its_triggers_argo_objects(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    sources = {"s3": "minio", "calendar": "calendar", "webhook": "webhook"}
    for job, env, manifests in every_rendering(rendered):
        trigger = JOBS[job]
        source = one(manifests, "EventSource", job)["spec"]
        assert set(source) & set(sources.values()) == {sources[trigger]}, (job, env)
        one(manifests, "Sensor", job)
        one(manifests, "WorkflowTemplate", job)
        assert not by_kind(manifests, "Secret"), "secrets are referenced, never rendered"
        assert not by_kind(manifests, "ClusterRole"), "no cluster-wide rights"
        assert not by_kind(manifests, "ClusterRoleBinding"), "no cluster-wide rights"


def test_every_argo_object_is_valid_against_the_upstream_schemas(
    rendered: dict[tuple[str, str], list[Manifest]], schemas_dir: Path
) -> None:
    seen: set[str] = set()
    for job, env, manifests in every_rendering(rendered):
        for document in filter(is_argo, manifests):
            seen.add(document["kind"])
            errors = argo_errors(document, schemas_dir)
            assert errors == [], f"{job} {env} {document['kind']}: {errors}"
    assert seen == EVENT_KINDS | WORKFLOW_KINDS


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("EventSource", ["spec"], "eventBusNam"),
        ("Sensor", ["spec", "triggers", 0], "retryStrategie"),
        ("EventBus", ["spec", "jetstream"], "replica"),
        ("WorkflowTemplate", ["spec", "templates", 1, "container"], "securityContex"),
    ],
)
def test_schema_validation_refuses_an_unknown_field(
    rendered: dict[tuple[str, str], list[Manifest]],
    schemas_dir: Path,
    kind: str,
    path: list[str | int],
    typo: str,
) -> None:
    document = copy.deepcopy(one(rendered[("partner-import", "dev")], kind))
    node: Any = document
    for step in path:
        node = node[step]
    node[typo] = {}
    assert any(typo in error for error in argo_errors(document, schemas_dir))


def test_native_objects_are_valid_kubernetes(
    rendered: dict[tuple[str, str], list[Manifest]],
    tool: Callable[[str], str],
    tmp_path: Path,
) -> None:
    validator = tool("kubernetes-validate")
    for job, env, manifests in every_rendering(rendered):
        native = [m for m in manifests if not is_argo(m)]
        assert native, (job, env)
        folder = tmp_path / f"{job}-{env}"
        folder.mkdir()
        validate_strictly(native, validator, kubernetes_version(), folder)


# --- The shared EventBus ------------------------------------------------------------------------


def test_the_first_job_creates_the_event_bus_and_the_others_use_it(
    monorepo: Path, rendered: dict[tuple[str, str], list[Manifest]]
) -> None:
    first, *others = JOBS
    answers = {
        job: yaml.safe_load((monorepo / f".copier-answers.{job}.yml").read_text(encoding="utf-8"))
        for job in JOBS
    }
    assert answers[first]["event_bus"] is True
    assert [answers[job]["event_bus"] for job in others] == [False] * len(others)
    for env in ENVIRONMENTS:
        bus = one(rendered[(first, env)], "EventBus")
        assert bus["metadata"]["name"] == "default"
        jetstream = bus["spec"]["jetstream"]
        assert jetstream["replicas"] == 3
        for template in ("containerTemplate", "reloaderContainerTemplate"):
            resources = jetstream[template]["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}, template
            assert "memory" in resources["limits"], template
        budget = one(rendered[(first, env)], "PodDisruptionBudget")
        assert budget["spec"]["maxUnavailable"] == 1
        selected = budget["spec"]["selector"]["matchLabels"]
        assert selected == {"controller": "eventbus-controller", "eventbus-name": "default"}
        for job in others:
            assert not by_kind(rendered[(job, env)], "EventBus"), job
            assert not by_kind(rendered[(job, env)], "PodDisruptionBudget"), job
        for job in JOBS:
            for kind in ("EventSource", "Sensor"):
                assert one(rendered[(job, env)], kind)["spec"]["eventBusName"] == "default"


# --- RBAC -------------------------------------------------------------------------------------


def test_the_sensor_may_only_create_workflows_and_read_its_own_template(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, env, manifests in every_rendering(rendered):
        sensor = one(manifests, "Sensor", job)
        account = sensor["spec"]["template"]["serviceAccountName"]
        assert account == f"{job}-sensor"
        role = one(manifests, "Role", account)
        assert role["rules"] == [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtemplates"],
                "resourceNames": [job],
                "verbs": ["get"],
            },
        ], (job, env)
        binding = one(manifests, "RoleBinding", account)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": account,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": f"jobs-{env}"}
        ]
        trigger = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]
        assert trigger["operation"] == "submit"
        workflow = trigger["source"]["resource"]
        assert workflow["kind"] == "Workflow"
        assert workflow["spec"]["workflowTemplateRef"] == {"name": job}
        assert set(workflow["spec"]) == {"workflowTemplateRef", "arguments"}


def test_workflow_pods_have_no_api_token_and_the_executor_only_reports_results(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, _env, manifests in every_rendering(rendered):
        spec = one(manifests, "WorkflowTemplate", job)["spec"]
        workflow_account = one(manifests, "ServiceAccount", spec["serviceAccountName"])
        assert workflow_account["automountServiceAccountToken"] is False
        assert spec["automountServiceAccountToken"] is False
        executor = spec["executor"]["serviceAccountName"]
        assert one(manifests, "Role", executor)["rules"] == [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtaskresults"],
                "verbs": ["create", "patch"],
            }
        ]
        roles = {role["metadata"]["name"] for role in by_kind(manifests, "Role")}
        assert roles == {f"{job}-sensor", executor}


# --- The WorkflowTemplate -----------------------------------------------------------------------


def workflow_pods(template: Manifest) -> list[tuple[str, Manifest]]:
    """The pod spec of each step, as the workflow controller builds it (init, main, wait)."""
    spec = template["spec"]
    patch = yaml.safe_load(spec["podSpecPatch"])
    executor = {c["name"]: c for c in patch["initContainers"] + patch["containers"]}
    assert set(executor) == {"init", "wait"}, "the patch must cover Argo's own containers"
    pods = []
    for step in spec["templates"]:
        if "container" not in step:
            continue
        main = {**step["container"], "name": "main"}
        pods.append(
            (
                step["name"],
                {
                    "securityContext": spec["securityContext"],
                    "volumes": spec["volumes"],
                    "initContainers": [executor["init"]],
                    "containers": [main, executor["wait"]],
                },
            )
        )
    return pods


def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, env, manifests in every_rendering(rendered):
        template = one(manifests, "WorkflowTemplate", job)
        pods = workflow_pods(template)
        assert [name for name, _ in pods] == ["validate", "load"]
        for kind in ("EventSource", "Sensor"):
            events_pod = one(manifests, kind, job)["spec"]["template"]
            pods.append(
                (
                    kind,
                    {
                        "securityContext": events_pod["securityContext"],
                        "volumes": events_pod.get("volumes", []),
                        "containers": [{"name": kind, **events_pod["container"]}],
                    },
                )
            )
        for bus in by_kind(manifests, "EventBus"):
            jetstream = bus["spec"]["jetstream"]
            containers = [
                {"name": name, **jetstream[name]}
                for name in (
                    "containerTemplate",
                    "reloaderContainerTemplate",
                    "metricsContainerTemplate",
                )
            ]
            pods.append(
                (
                    "EventBus",
                    {"securityContext": jetstream["securityContext"], "containers": containers},
                )
            )
        for name, pod in pods:
            assert restricted_violations(pod) == [], (job, env, name)
            for container in pod["containers"] + pod.get("initContainers", []):
                context = container.get("securityContext", {})
                assert context.get("readOnlyRootFilesystem") is True, (job, name, container["name"])


def test_restricted_check_catches_an_executor_container_left_out(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    template = copy.deepcopy(one(rendered[("partner-import", "dev")], "WorkflowTemplate"))
    patch = yaml.safe_load(template["spec"]["podSpecPatch"])
    del patch["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    template["spec"]["podSpecPatch"] = json.dumps(patch)
    (name, pod), _ = workflow_pods(template)
    assert restricted_violations(pod) == ["wait: allowPrivilegeEscalation is not false"], name


def test_validate_then_load_pass_an_artifact_through_the_repository(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, _env, manifests in every_rendering(rendered):
        spec = one(manifests, "WorkflowTemplate", job)["spec"]
        steps = {step["name"]: step for step in spec["templates"]}
        dag = steps[spec["entrypoint"]]["dag"]["tasks"]
        assert [task["name"] for task in dag] == ["validate", "load"]
        assert dag[1]["depends"] == "validate.Succeeded"
        (handed,) = dag[1]["arguments"]["artifacts"]
        assert handed["from"] == "{{tasks.validate.outputs.artifacts.validated}}"
        (produced,) = steps["validate"]["outputs"]["artifacts"]
        (consumed,) = steps["load"]["inputs"]["artifacts"]
        assert produced["name"] == consumed["name"] == handed["name"] == "validated"
        # Under a writable emptyDir, since the root filesystem is read-only.
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for step_name, artifact in (("validate", produced), ("load", consumed)):
            container = steps[step_name]["container"]
            assert container["args"] == [step_name, artifact["path"]]
            mounts = [
                m
                for m in container["volumeMounts"]
                if artifact["path"].startswith(m["mountPath"] + "/")
            ]
            assert mounts, (job, step_name)
            assert {m["name"] for m in mounts} <= empty_dirs
        repository = spec["artifactRepositoryRef"]
        configmap = one(manifests, "ConfigMap", repository["configMap"])
        s3 = yaml.safe_load(configmap["data"][repository["key"]])["s3"]
        assert s3["bucket"]
        assert s3["endpoint"]
        assert s3["accessKeySecret"]["name"] == s3["secretKeySecret"]["name"] == f"{job}-artifacts"


def test_workflows_are_bounded_retried_cleaned_up_and_one_per_object_at_a_time(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, _env, manifests in every_rendering(rendered):
        spec = one(manifests, "WorkflowTemplate", job)["spec"]
        assert spec["activeDeadlineSeconds"] > 0
        assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0
        assert spec["ttlStrategy"]["secondsAfterFailure"] > 0
        assert spec["podGC"]["strategy"] in {"OnPodSuccess", "OnPodCompletion"}
        (mutex,) = spec["synchronization"]["mutexes"]
        assert mutex["name"] == f"{job}-{{{{workflow.parameters.lock}}}}"
        for step in (s for s in spec["templates"] if "container" in s):
            retry = step["retryStrategy"]
            assert int(retry["limit"]) > 0
            assert set(retry["backoff"]) == {"duration", "factor", "maxDuration"}
            assert retry["retryPolicy"] == "Always"
            assert step["activeDeadlineSeconds"] <= spec["activeDeadlineSeconds"]
            resources = step["container"]["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}
            assert "memory" in resources["limits"]


def container_env(manifests: list[Manifest], job: str) -> dict[str, Any]:
    spec = one(manifests, "WorkflowTemplate", job)["spec"]
    (validate,) = [s for s in spec["templates"] if s["name"] == "validate"]
    return {item["name"]: item for item in validate["container"]["env"]}


def test_the_job_gets_the_contracts_environment_with_credentials_by_reference(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    for job, _env, manifests in every_rendering(rendered):
        env = container_env(manifests, job)
        for name, parameter in (
            ("EVENT_BUCKET", "bucket"),
            ("EVENT_KEY", "key"),
            ("EVENT_ETAG", "etag"),
            ("EVENT_SIZE", "size"),
            ("EVENT_TIME", "event-time"),
        ):
            assert env[name]["value"] == f"{{{{workflow.parameters.{parameter}}}}}", name
        for name in ("OUTPUT_BUCKET", "OUTPUT_PREFIX", "STATE_PREFIX", "S3_ENDPOINT_URL"):
            assert "value" in env[name], name
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert set(env[name]) == {"name", "valueFrom"}, name
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == f"{job}-storage"


def test_only_the_s3_trigger_tells_both_steps_the_key_is_url_encoded(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    """Bucket notifications URL-encode the key; webhook bodies and calendar answers do not."""
    for job, _env, manifests in every_rendering(rendered):
        spec = one(manifests, "WorkflowTemplate", job)["spec"]
        steps = {s["name"]: s for s in spec["templates"] if "container" in s}
        assert set(steps) == {"validate", "load"}
        for name, step in steps.items():
            env = {item["name"]: item for item in step["container"]["env"]}
            if JOBS[job] == "s3":
                assert env["EVENT_KEY_ENCODING"] == {"name": "EVENT_KEY_ENCODING", "value": "url"}
            else:
                assert "EVENT_KEY_ENCODING" not in env, (job, name)


def sensor_parameters(manifests: list[Manifest], job: str) -> dict[str, dict[str, Any]]:
    """Workflow parameter name -> where the Sensor reads it in the event."""
    trigger = one(manifests, "Sensor", job)["spec"]["triggers"][0]
    workflow = trigger["template"]["argoWorkflow"]
    names = [p["name"] for p in workflow["source"]["resource"]["spec"]["arguments"]["parameters"]]
    mapped = {}
    for parameter in workflow["parameters"]:
        match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", parameter["dest"])
        assert match, parameter["dest"]
        assert parameter["src"]["dependencyName"] == "event"
        mapped[names[int(match.group(1))]] = parameter["src"]
    return mapped


def test_the_sensor_maps_each_triggers_event_to_the_workflow_parameters(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    s3 = sensor_parameters(rendered[("partner-import", "dev")], "partner-import")
    assert {name: src.get("dataKey") for name, src in s3.items()} == {
        "bucket": "notification.0.s3.bucket.name",
        "key": "notification.0.s3.object.key",
        "etag": "notification.0.s3.object.eTag",
        "size": "notification.0.s3.object.size",
        "event-time": "notification.0.eventTime",
        "lock": None,
    }
    assert "sha256sum" in s3["lock"]["dataTemplate"]
    # Optional fields of the contract have a default; the object itself has none.
    assert [name for name, src in s3.items() if "value" in src] == ["etag", "size", "event-time"]

    hook = sensor_parameters(rendered[("partner-hook", "dev")], "partner-hook")
    assert hook["bucket"]["dataKey"] == "body.bucket"
    assert hook["key"]["dataKey"] == "body.key"
    assert hook["event-time"] == {"dependencyName": "event", "contextKey": "time", "value": ""}
    assert ".Input.body.bucket" in hook["lock"]["dataTemplate"]

    calendar = sensor_parameters(rendered[("nightly-report", "dev")], "nightly-report")
    assert calendar == {
        "event-time": {"dependencyName": "event", "contextKey": "time", "value": ""}
    }
    for job, _env, manifests in every_rendering(rendered):
        retry = one(manifests, "Sensor", job)["spec"]["triggers"][0]["retryStrategy"]
        assert retry["steps"] > 1
        assert retry["factor"] > 1


def test_a_calendar_job_processes_its_configured_object_under_a_fixed_lock(
    monorepo: Path, rendered: dict[tuple[str, str], list[Manifest]]
) -> None:
    answers = yaml.safe_load(
        (monorepo / ".copier-answers.nightly-report.yml").read_text(encoding="utf-8")
    )
    manifests = rendered[("nightly-report", "dev")]
    calendar = one(manifests, "EventSource")["spec"]["calendar"]["calendar"]
    assert calendar == {"schedule": answers["schedule"], "timezone": answers["timezone"]}
    parameters = {
        p["name"]: p.get("value")
        for p in one(manifests, "WorkflowTemplate")["spec"]["arguments"]["parameters"]
    }
    assert parameters["bucket"] == answers["bucket"]
    assert parameters["key"] == answers["object_key"]
    object_id = f"{answers['bucket']}/{answers['object_key']}".encode()
    assert parameters["lock"] == hashlib.sha256(object_id).hexdigest()[:32]


def test_trigger_secrets_are_references(rendered: dict[tuple[str, str], list[Manifest]]) -> None:
    s3 = one(rendered[("partner-import", "prod")], "EventSource")["spec"]["minio"]["s3"]
    assert s3["accessKey"] == {"name": "partner-import-notifications", "key": "accesskey"}
    assert s3["secretKey"] == {"name": "partner-import-notifications", "key": "secretkey"}
    assert s3["bucket"] == {"name": "partner-import-drops"}
    assert s3["filter"] == {"prefix": "incoming/", "suffix": ""}
    hook = one(rendered[("partner-hook", "prod")], "EventSource")["spec"]["webhook"]["webhook"]
    assert hook["authSecret"] == {"name": "partner-hook-webhook", "key": "token"}


# --- Argo CD ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def applications(monorepo: Path, go_template: GoTemplate) -> dict[str, Manifest]:
    appset = argocd_documents(monorepo)["applicationset.yaml"]
    return generate_applications(appset, Sources({REPO_URL: monorepo}), go_template)


def test_argo_cd_deploys_each_job_per_environment_into_the_shared_jobs_namespace(
    monorepo: Path, applications: dict[str, Manifest], schemas_dir: Path
) -> None:
    expected = {f"{name}-{env}" for name in ["api", *JOBS] for env in ENVIRONMENTS}
    assert set(applications) == expected
    project = argocd_documents(monorepo)["project.yaml"]
    for name, application in applications.items():
        service, env = name.rsplit("-", 1)
        namespace = f"jobs-{env}" if service in JOBS else name
        assert application["spec"]["destination"]["namespace"] == namespace, name
        assert application["spec"]["source"]["path"] == f"deploy/charts/{service}"
        assert application["spec"]["source"]["helm"]["valueFiles"] == [f"values-{env}.yaml"]
        assert allowed_by(project, application), name
        assert validate_custom_resource(application, crd_files(schemas_dir)) == [], name


def test_the_project_admits_every_kind_the_job_charts_render(
    monorepo: Path, rendered: dict[tuple[str, str], list[Manifest]], schemas_dir: Path
) -> None:
    project = argocd_documents(monorepo)["project.yaml"]
    assert validate_custom_resource(project, crd_files(schemas_dir)) == []
    admitted = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    rendered_kinds = {
        (str(m["apiVersion"]).rpartition("/")[0], m["kind"])
        for _job, _env, manifests in every_rendering(rendered)
        for m in manifests
    }
    assert rendered_kinds - admitted == set()
    argo = {kind for group, kind in admitted if group == "argoproj.io"}
    assert argo == {"EventBus", "EventSource", "Sensor", "WorkflowTemplate"}


# --- The descriptor and the command -----------------------------------------------------------


def test_a_jobs_descriptor_says_job_and_keeps_what_ci_reads(monorepo: Path) -> None:
    for job, trigger in JOBS.items():
        descriptor = yaml.safe_load(
            (monorepo / "apps" / job / "catalog-info.yaml").read_text(encoding="utf-8")
        )
        assert descriptor["spec"]["type"] == "job"
        annotations = descriptor["metadata"]["annotations"]
        assert annotations["devops-template/kind"] == "job"
        assert annotations["devops-template/trigger"] == trigger
        assert annotations["devops-template/chart"] == f"deploy/charts/{job}"
        assert annotations["devops-template/dockerfile"] == f"apps/{job}/Dockerfile"
        assert annotations["devops-template/image"].endswith(f"/{job}")
        assert f"apps/{job}/" in annotations["devops-template/watch"]
    service = yaml.safe_load((monorepo / "apps/api/catalog-info.yaml").read_text(encoding="utf-8"))
    assert service["spec"]["type"] == "service"
    assert service["metadata"]["annotations"]["devops-template/kind"] == "service"


def test_add_service_records_the_kind_and_only_the_triggers_questions(monorepo: Path) -> None:
    asked = {
        "s3": {"bucket", "prefix"},
        "calendar": {"bucket", "object_key", "schedule", "timezone"},
        "webhook": set(),
    }
    trigger_questions = {"bucket", "prefix", "object_key", "schedule", "timezone"}
    for job, trigger in JOBS.items():
        answers = yaml.safe_load(
            (monorepo / f".copier-answers.{job}.yml").read_text(encoding="utf-8")
        )
        assert answers["kind"] == "job"
        assert answers["trigger"] == trigger
        assert set(answers) & trigger_questions == asked[trigger], job
        assert (monorepo / "apps" / job / "Dockerfile").is_file(), job
        assert not (monorepo / "deploy" / "charts" / job / "templates" / "deployment.yaml").exists()
    api = yaml.safe_load((monorepo / ".copier-answers.api.yml").read_text(encoding="utf-8"))
    assert api["kind"] == "service"
    assert "trigger" not in api
    assert "event_bus" not in api


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["KIND=cron"], "KIND='cron': choose one of service, job"),
        (["KIND=job", "TRIGGER=ftp"], "TRIGGER='ftp': choose one of s3, calendar, webhook"),
        (["TRIGGER=s3"], "TRIGGER='s3': only a job has a trigger; add KIND=job"),
    ],
)
def test_add_service_refuses_an_unknown_kind_or_trigger_and_writes_nothing(
    monorepo: Path, arguments: list[str], message: str
) -> None:
    before = run(["git", "status", "--porcelain"], cwd=monorepo).stdout
    refused = make(
        monorepo, "add-service", "NAME=refused", "LANGUAGE=python", *arguments, check=False
    )
    assert refused.returncode != 0
    assert message in refused.stderr
    assert run(["git", "status", "--porcelain"], cwd=monorepo).stdout == before


# --- kube-score, when bootstrap installed it ----------------------------------------------------


def test_workflow_pods_pass_kube_score_with_their_documented_waivers(
    rendered: dict[tuple[str, str], list[Manifest]], tmp_path: Path
) -> None:
    """The pods the workflow controller creates, scored as scripts/ci/lint-deploy scores pods."""
    kube_score = shutil.which("kube-score")
    if kube_score is None:
        pytest.skip("kube-score is not on PATH (scripts/bootstrap installs it)")
    pins = yaml.safe_load((REPO_ROOT / "extensions/versions.yaml").read_text(encoding="utf-8"))
    executor_image = f"quay.io/argoproj/argoexec:{pins['argo']['workflows']}"
    manifests = rendered[("partner-import", "prod")]
    spec = one(manifests, "WorkflowTemplate")["spec"]
    waivers = spec["podMetadata"]["annotations"]["kube-score/ignore"].split(",")
    assert sorted(waivers) == [
        "container-ephemeral-storage-request-and-limit",
        "container-image-pull-policy",
        "pod-networkpolicy",
    ]
    pods = []
    for name, pod in workflow_pods(one(manifests, "WorkflowTemplate")):
        for container in pod["initContainers"] + pod["containers"][1:]:
            container["image"] = executor_image  # the controller's configured argoexec
        metadata = {"name": f"partner-import-{name}", "namespace": "jobs-prod"}
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**metadata, **spec["podMetadata"]},
                "spec": pod,
            }
        )
    stream = tmp_path / "pods.yaml"
    stream.write_text(yaml.safe_dump_all(pods), encoding="utf-8")
    result = run([kube_score, "score", "--output-format", "ci", stream], check=False)
    critical = [line for line in result.stdout.splitlines() if line.startswith("[CRITICAL]")]
    assert critical == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_projects_own_lint_deploy_passes_with_the_jobs(
    monorepo: Path, schemas_dir: Path, tool: Callable[[str], str]
) -> None:
    """`make lint-deploy` of the generated repository (helm, kubeconform, kube-score, yamllint)
    over the HTTP service and the three jobs, with the upstream schemas of ../shared/schemas."""
    if not (monorepo / "scripts" / "ci" / "lint-deploy").is_file():
        pytest.skip("this template version has no scripts/ci/lint-deploy")
    for name in ("helm", "kubeconform", "kube-score", "yamllint"):
        tool(name)
    checks = "CHECKS=helm kubeconform kube-score yamllint"
    env = {**tool_env(), "LINT_DEPLOY_CRDS": str(schemas_dir)}
    result = run(
        ["make", "lint-deploy", f"LINT_PYTHON={sys.executable}", checks],
        cwd=monorepo,
        env=env,
        check=False,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for job in JOBS:
        for env_name in ENVIRONMENTS:
            assert f"+ kube-score {job}-{env_name}.yaml: 0 critical" in output, output
    assert "Invalid: 0, Errors: 0, Skipped: 0" in output, output


# --- The Sensor's event mapping, evaluated --------------------------------------------------------

SENSOR_TEMPLATE = Path(__file__).with_name("sensortemplate")
# The event data Argo Events' minio source publishes for one upload (its `notification` records
# are MinIO's S3 event records), and a webhook request's data (header and JSON body).
S3_EVENT = {
    "notification": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventTime": "2026-12-01T02:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "partner-drops"},
                "object": {
                    "key": "incoming/acme/day-1.csv",
                    "size": 26,
                    "eTag": "9b2cf535f27731c974343645a3985328",
                },
            },
        }
    ]
}
WEBHOOK_EVENT = {
    "header": {"Content-Type": ["application/json"]},
    "body": {"bucket": "partner-drops", "key": "incoming/acme/day-1.csv"},
}


def data_key(event: Any, path: str) -> str | None:
    """A dataKey (a gjson path of dot-separated keys and indices) over the event's data."""
    node = event
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return str(node)


@pytest.fixture(scope="module")
def sensor_template(
    tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, Any], str]:
    """Run a dataTemplate as Argo Events does: text/template with Sprig over {"Input": data}."""
    binary = tmp_path_factory.mktemp("sensortemplate") / "sensortemplate"
    run(
        [tool("go"), "build", "-o", binary, "."],
        cwd=SENSOR_TEMPLATE,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"},
        timeout=600,
    )

    def execute(template: str, event: Any) -> str:
        """A dataTemplate over an event; or a retry expression over `lastRetry` (a dict)."""
        if "lastRetry" in template:
            request = json.dumps({"expression": template, "lastRetry": event})
        else:
            request = json.dumps({"template": template, "event": event})
        result = subprocess.run(
            [str(binary)], input=request, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return execute


@pytest.mark.parametrize(
    ("job", "event"), [("partner-import", S3_EVENT), ("partner-hook", WEBHOOK_EVENT)]
)
def test_the_sensor_turns_an_event_into_the_jobs_environment_and_its_lock(
    rendered: dict[tuple[str, str], list[Manifest]],
    sensor_template: Callable[[str, Any], str],
    job: str,
    event: Any,
) -> None:
    parameters = sensor_parameters(rendered[(job, "dev")], job)
    values = {
        name: data_key(event, src["dataKey"]) if "dataKey" in src else src.get("value")
        for name, src in parameters.items()
        if name != "lock"
    }
    assert values["bucket"] == "partner-drops"
    assert values["key"] == "incoming/acme/day-1.csv"
    if job == "partner-import":
        assert values["etag"] == "9b2cf535f27731c974343645a3985328"
        assert values["size"] == "26"
        assert values["event-time"] == "2026-12-01T02:00:00.000Z"
    lock = sensor_template(parameters["lock"]["dataTemplate"], event)
    # The lock docs/jobs.md computes for a replay, and the calendar chart's own.
    assert lock == hashlib.sha256(b"partner-drops/incoming/acme/day-1.csv").hexdigest()[:32]
    mutex = one(rendered[(job, "dev")], "WorkflowTemplate")["spec"]["synchronization"]
    assert "/" not in mutex["mutexes"][0]["name"].replace("{{workflow.parameters.lock}}", lock)


# A tick of Argo Events' calendar source (pkg/eventsources/sources/calendar): its data's
# eventTime is Go's time.String() of the tick in the schedule's time zone, monotonic clock
# included; the CloudEvents context's time is RFC 3339 (metav1.Time), what the job reads.
CALENDAR_EVENT = {
    "context": {
        "type": "calendar",
        "specversion": "1.0",
        "source": "nightly-report",
        "id": "1f6b1e2c3d4e5f60718293a4b5c6d7e8",
        "time": "2026-12-01T01:30:00Z",
        "datacontenttype": "application/json",
        "subject": "calendar",
    },
    "data": {
        "eventTime": "2026-12-01 02:30:00.000118402 +0100 CET m=+86400.000205117",
        "metadata": None,
    },
}


def test_a_calendar_tick_gives_the_job_an_rfc_3339_event_time(
    rendered: dict[tuple[str, str], list[Manifest]],
) -> None:
    """EVENT_TIME must parse as RFC 3339 in every language, or each tick exits 2."""
    (source,) = sensor_parameters(rendered[("nightly-report", "dev")], "nightly-report").values()
    if "contextKey" in source:
        value = data_key(CALENDAR_EVENT["context"], source["contextKey"])
    else:
        value = data_key(CALENDAR_EVENT["data"], source["dataKey"])
    assert value is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value), (
        value
    )
    assert datetime.fromisoformat(value) == datetime(2026, 12, 1, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "exit_code", "retried"),
    [
        ("Failed", "1", False),  # invalid input: the job's verdict
        ("Failed", "2", False),  # configuration error
        ("Failed", "3", True),  # temporary storage failure
        ("Failed", "137", True),  # killed: OOM, node shutdown
        ("Failed", "127", False),  # no such command: the image is wrong, retrying cannot help
        ("Error", "-1", True),  # evicted, or Argo's init or wait container failed
    ],
)
def test_steps_retry_temporary_failures_and_kills_but_not_the_jobs_verdicts(
    rendered: dict[tuple[str, str], list[Manifest]],
    sensor_template: Callable[[str, Any], str],
    status: str,
    exit_code: str,
    retried: bool,
) -> None:
    """The retryStrategy expression, run by expr-lang with Argo's asInt as the controller does."""
    expressions = set()
    for job, _env, manifests in every_rendering(rendered):
        spec = one(manifests, "WorkflowTemplate", job)["spec"]
        expressions |= {
            s["retryStrategy"]["expression"] for s in spec["templates"] if "container" in s
        }
    (expression,) = expressions
    last_retry = {"status": status, "exitCode": exit_code, "duration": "12", "message": ""}
    assert sensor_template(expression, last_retry) == str(retried).lower()


def test_the_lock_template_fails_on_an_event_without_the_object(
    rendered: dict[tuple[str, str], list[Manifest]], sensor_template: Callable[[str, Any], str]
) -> None:
    parameters = sensor_parameters(rendered[("partner-import", "dev")], "partner-import")
    with pytest.raises(AssertionError, match="index"):
        sensor_template(parameters["lock"]["dataTemplate"], {"notification": []})
