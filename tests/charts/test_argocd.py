"""Argo CD wiring: one AppProject and one Application per environment, valid upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.crd_schema import close_objects, validate_custom_resource
from tests.helpers import load_yaml_documents, run


def argocd_documents(project: Path) -> dict[str, dict[str, Any]]:
    documents = {}
    for path in sorted((project / "deploy" / "argocd").glob("*.yaml")):  # not notifications/
        (document,) = load_yaml_documents(path.read_text(encoding="utf-8"))
        documents[path.name] = document
    return documents


def crd_files(schemas_dir: Path) -> list[Path]:
    return sorted((schemas_dir / "argo-cd").glob("*-crd.yaml"))


def test_every_argocd_manifest_is_valid_against_the_upstream_crds(
    default_project: Path, schemas_dir: Path
) -> None:
    documents = argocd_documents(default_project)
    assert set(documents) == {
        "project.yaml",
        "my-service-dev.yaml",
        "my-service-staging.yaml",
        "my-service-prod.yaml",
    }
    for name, document in documents.items():
        assert validate_custom_resource(document, crd_files(schemas_dir)) == [], name


def test_crd_validation_refuses_an_unknown_field(default_project: Path, schemas_dir: Path) -> None:
    application = argocd_documents(default_project)["my-service-dev.yaml"]
    application["spec"]["syncPolicy"]["automated"]["selfheal"] = True  # typo of selfHeal
    errors = validate_custom_resource(application, crd_files(schemas_dir))
    assert any("selfheal" in error for error in errors), errors


def test_closing_objects_keeps_fields_that_preserve_unknown_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "open": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {},
            },
            "closed": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
        },
    }
    closed = close_objects(schema)
    assert closed["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["open"]
    assert closed["properties"]["closed"]["additionalProperties"] is False
    assert closed["properties"]["closed"]["properties"]["a"]["type"] == ["string", "null"]


def test_applications_point_at_existing_values_files_in_their_own_namespaces(
    default_project: Path,
) -> None:
    documents = argocd_documents(default_project)
    project = documents.pop("project.yaml")
    allowed = {(d["server"], d["namespace"]) for d in project["spec"]["destinations"]}
    for name, application in documents.items():
        source = application["spec"]["source"]
        chart = default_project / source["path"]
        assert (chart / "Chart.yaml").is_file(), name
        for values_file in source["helm"]["valueFiles"]:
            assert (chart / values_file).is_file(), f"{name}: {values_file} does not exist"
        destination = application["spec"]["destination"]
        assert (destination["server"], destination["namespace"]) in allowed, name
        assert application["spec"]["project"] == project["metadata"]["name"] != "default"
        assert source["repoURL"] in project["spec"]["sourceRepos"]


def test_only_production_syncs_by_hand(default_project: Path) -> None:
    documents = argocd_documents(default_project)
    automated = {
        name: "automated" in doc["spec"]["syncPolicy"]
        for name, doc in documents.items()
        if doc["kind"] == "Application"
    }
    assert automated == {
        "my-service-dev.yaml": True,
        "my-service-staging.yaml": True,
        "my-service-prod.yaml": False,
    }
    dev_policy = documents["my-service-dev.yaml"]["spec"]["syncPolicy"]
    assert dev_policy["automated"] == {"prune": True, "selfHeal": True}


def test_applications_create_restricted_namespaces_with_retry_and_finalizer(
    default_project: Path,
) -> None:
    for name, document in argocd_documents(default_project).items():
        assert document["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
        if document["kind"] != "Application":
            continue
        policy = document["spec"]["syncPolicy"]
        assert "CreateNamespace=true" in policy["syncOptions"], name
        labels = policy["managedNamespaceMetadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", name
        assert policy["retry"]["limit"] > 0
        assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}


@pytest.mark.parametrize(
    ("environments", "expected"),
    [
        (["dev"], ["my-service-dev.yaml"]),
        (["test", "live"], ["my-service-live.yaml", "my-service-test.yaml"]),
    ],
    ids=["one-environment", "custom-names"],
)
def test_one_application_per_environment(
    make_project: Callable[..., Path],
    schemas_dir: Path,
    environments: list[str],
    expected: list[str],
) -> None:
    project = make_project(environments=environments)
    documents = argocd_documents(project)
    assert sorted(name for name in documents if name != "project.yaml") == expected
    for document in documents.values():
        assert validate_custom_resource(document, crd_files(schemas_dir)) == []
    production = documents[f"my-service-{environments[-1]}.yaml"]
    assert "automated" not in production["spec"]["syncPolicy"]


@pytest.mark.parametrize("deploy_target", ["helm", "none"])
def test_no_argocd_manifests_without_argocd(
    make_project: Callable[..., Path], deploy_target: str
) -> None:
    project = make_project(deploy_target=deploy_target)
    assert not (project / "deploy" / "argocd").exists()
    assert "repo_url" not in (project / ".copier-answers.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_healthy_environments_before_production_notify_ci_to_promote(
    make_project: Callable[..., Path], tool: Callable[[str], str], ci_provider: str
) -> None:
    project = make_project(ci_provider=ci_provider)
    config = project / "deploy/argocd/notifications/argocd-notifications-cm.yaml"
    run([tool("kubernetes-validate"), "--strict", "-k", "1.31.0", config])
    (configmap,) = load_yaml_documents(config.read_text(encoding="utf-8"))
    data = {key: yaml.safe_load(value) for key, value in configmap["data"].items()}
    service = data["service.webhook.my-service-promote"]
    if ci_provider == "github":
        assert service["url"] == "https://api.github.com/repos/my-org/my-service/dispatches"
        assert service["headers"][0]["value"] == "Bearer $github-promote-token"
    else:
        assert service["url"].startswith("https://gitlab.com/api/v4/projects/my-org%2Fmy-service/")
    (trigger,) = data["trigger.on-my-service-promotable"]
    assert "'Succeeded'" in trigger["when"]
    assert "'Healthy'" in trigger["when"]
    assert trigger["oncePer"] == "app.status.sync.revision"
    subscription = "notifications.argoproj.io/subscribe.on-my-service-promotable.my-service-promote"
    for name, document in argocd_documents(project).items():
        if document["kind"] != "Application":
            continue
        annotations = document["metadata"].get("annotations", {})
        assert (subscription in annotations) is (name != "my-service-prod.yaml"), name


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_preview_environments_deploy_each_open_request_with_its_own_image(
    make_project: Callable[..., Path], schemas_dir: Path, ci_provider: str
) -> None:
    project = make_project(ci_provider=ci_provider, preview_environments=True)
    previews = yaml.safe_load((project / "deploy/argocd/previews.yaml").read_text("utf-8"))
    assert validate_custom_resource(previews, crd_files(schemas_dir)) == []
    spec = previews["spec"]
    assert spec["goTemplate"] is True
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    assert set(generator["pullRequest"]) == {"requeueAfterSeconds", ci_provider}
    template = spec["template"]["spec"]
    assert template["destination"]["namespace"] == "my-service-pr-{{ .number }}"
    assert template["source"]["helm"]["valueFiles"] == ["values-dev.yaml"]
    (parameter,) = template["source"]["helm"]["parameters"]
    assert parameter == {"name": "image.tag", "value": "pr-{{ .number }}-{{ .head_sha }}"}
    assert "automated" in template["syncPolicy"]
    project_spec = argocd_documents(project)["project.yaml"]["spec"]
    assert "my-service-pr-*" in {d["namespace"] for d in project_spec["destinations"]}
    if ci_provider == "github":
        workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text("utf-8"))
        job = workflow["jobs"]["publish-preview"]
        kaniko = next(s for s in job["steps"] if s.get("name", "").startswith("Build and push"))
        assert kaniko["env"]["IMAGE_TAG"] == (
            "pr-${{ github.event.pull_request.number }}-${{ github.event.pull_request.head.sha }}"
        )
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    else:
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))
        assert 'tag="pr-$CI_MERGE_REQUEST_IID-$CI_COMMIT_SHA"' in pipeline[".build"]["script"][0]


def test_without_previews_nothing_deploys_pull_requests(default_project: Path) -> None:
    assert not (default_project / "deploy/argocd/previews.yaml").exists()
    workflow = yaml.safe_load((default_project / ".github/workflows/ci.yml").read_text("utf-8"))
    assert "publish-preview" not in workflow["jobs"]


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_separate_configuration_repository_is_what_argo_cd_reads(
    make_project: Callable[..., Path], schemas_dir: Path, ci_provider: str
) -> None:
    project = make_project(
        ci_provider=ci_provider, gitops_repo="separate", preview_environments=True
    )
    host = "github.com" if ci_provider == "github" else "gitlab.com"
    config = f"https://{host}/my-org/my-service-gitops.git"
    documents = argocd_documents(project)
    for document in documents.values():
        assert validate_custom_resource(document, crd_files(schemas_dir)) == []
    for name, document in documents.items():
        if document["kind"] == "Application":
            assert document["spec"]["source"]["repoURL"] == config, name
    # Previews deploy the pull request's own chart, so the project allows both repositories.
    assert documents["project.yaml"]["spec"]["sourceRepos"] == [
        config,
        f"https://{host}/my-org/my-service.git",
    ]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["gitops_repo_url"] == config
