"""Argo CD wiring: an ApplicationSet that finds the services at run time, valid upstream.

The ApplicationSets are evaluated here as the ApplicationSet controller evaluates them: the git
files generator lists the service descriptors of a real repository at the generator's revision,
the matrix crosses them with the environments (or the open pull requests), and every string of
the template and the templatePatch is executed by Go's text/template (tests/charts/gotemplate),
the engine Argo CD uses. The Applications that come out are validated against the upstream CRD.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.crd_schema import close_objects, validate_custom_resource
from tests.helpers import load_yaml_documents, run
from tests.monorepo import FOUR_SERVICES, build_monorepo
from tests.update.gitrepo import commit_all, git, snapshot_template

GO_RENDERER = Path(__file__).with_name("gotemplate") / "main.go"
# The repository identity case of issue #9: owner and project name differ from the repository.
IDENTITY: dict[str, Any] = {
    "owner": "acme",
    "project_name": "shop",
    "repo_url": "https://github.example.com/platform/shop-mono.git",
}
SERVICES = [name for name, _ in FOUR_SERVICES]
ENVIRONMENTS = ["dev", "staging", "prod"]
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


# --- Argo CD's evaluation of an ApplicationSet, with the real template engine -------------------


@dataclass(frozen=True)
class GoTemplate:
    """tests/charts/gotemplate, built once: Go's text/template over JSON objects."""

    binary: Path

    def render(self, jobs: list[tuple[Any, dict[str, Any]]], options: list[str]) -> list[Any]:
        request = {"options": options, "jobs": [{"object": o, "params": p} for o, p in jobs]}
        completed = subprocess.run(
            [str(self.binary)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(f"Go template failed: {completed.stderr}")
        rendered: list[Any] = json.loads(completed.stdout)
        return rendered

    def one(self, template: Any, params: dict[str, Any], options: list[str]) -> Any:
        return self.render([(template, params)], options)[0]


@pytest.fixture(scope="session")
def gotemplate(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> GoTemplate:
    binary = tmp_path_factory.mktemp("gotemplate") / "gotemplate"
    run(
        [tool("go"), "build", "-o", binary, GO_RENDERER],
        cwd=GO_RENDERER.parent,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""},
    )
    return GoTemplate(binary)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A git files generator path pattern: `*` stays within one folder."""
    parts = (re.escape(part) for part in pattern.split("*"))
    return re.compile("[^/]*".join(parts) + r"\Z")


@dataclass
class Sources:
    """What the generators read: git repositories by URL, and the open pull requests."""

    repositories: dict[str, Path]
    pull_requests: list[dict[str, Any]] = field(default_factory=list)
    pull_request_generators: list[dict[str, Any]] = field(default_factory=list)

    def files(self, url: str, revision: str, pattern: str) -> Iterator[tuple[str, str]]:
        repository = self.repositories[url]  # KeyError: the generator reads an unknown repository
        listed = git(repository, "ls-tree", "-r", "--name-only", revision).split()
        for path in sorted(p for p in listed if glob_regex(pattern).match(p)):
            yield path, git(repository, "show", f"{revision}:{path}")


def git_file_params(path: str, content: str) -> dict[str, Any]:
    """Parameters of one file, as the git files generator gives them to Go templates."""
    params: dict[str, Any] = dict(yaml.safe_load(content) or {})
    folder = path.rsplit("/", 1)[0]
    params["path"] = {
        "path": folder,
        "basename": folder.rsplit("/", 1)[-1],
        "filename": path.rsplit("/", 1)[-1],
        "segments": folder.split("/"),
    }
    return params


def generator_params(
    generator: dict[str, Any],
    sources: Sources,
    gotemplate: GoTemplate,
    options: list[str],
    previous: dict[str, Any],
) -> list[dict[str, Any]]:
    """The parameter sets of one generator; `previous` is the matrix's first child's set."""
    if previous:  # a matrix child may use the parameters of the child before it
        generator = gotemplate.one(generator, previous, options)
    (kind,) = generator
    spec = generator[kind]
    if kind == "matrix":
        first, second = spec["generators"]
        combined = []
        for outer in generator_params(first, sources, gotemplate, options, {}):
            for inner in generator_params(second, sources, gotemplate, options, outer):
                assert not set(outer) & set(inner), f"parameters clash: {set(outer) & set(inner)}"
                combined.append({**inner, **outer})
        return combined
    if kind == "list":
        return [dict(element) for element in spec["elements"]]
    if kind == "git":
        return [
            git_file_params(path, content)
            for item in spec["files"]
            for path, content in sources.files(spec["repoURL"], spec["revision"], item["path"])
        ]
    if kind == "pullRequest":
        sources.pull_request_generators.append(spec)
        return [dict(request) for request in sources.pull_requests]
    raise AssertionError(f"no evaluation for the {kind} generator")


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic merge patch of maps (null deletes); lists would need the type's merge keys."""
    merged = dict(target)
    for key, value in patch.items():
        assert not isinstance(value, list), f"templatePatch replaces the list {key}: not evaluated"
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = strategic_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def generate_applications(
    appset: dict[str, Any], sources: Sources, gotemplate: GoTemplate
) -> dict[str, dict[str, Any]]:
    """Application name -> Application, as the ApplicationSet controller would create them."""
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    options = spec.get("goTemplateOptions", [])
    params = [
        params
        for generator in spec["generators"]
        for params in generator_params(generator, sources, gotemplate, options, {})
    ]
    rendered = gotemplate.render([(spec["template"], p) for p in params], options)
    patches = (
        gotemplate.render([(spec["templatePatch"], p) for p in params], options)
        if "templatePatch" in spec
        else [None] * len(params)
    )
    applications = {}
    for template, patch in zip(rendered, patches, strict=True):
        application = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **template}
        if patch is not None:
            application = strategic_merge(application, yaml.safe_load(patch))
            application["spec"]["project"] = template["spec"]["project"]  # as Argo CD enforces
        application["metadata"].setdefault("finalizers", [RESOURCES_FINALIZER])
        name = application["metadata"]["name"]
        assert name not in applications, f"two Applications named {name}"
        applications[name] = application
    return applications


# --- Fixtures -------------------------------------------------------------------------------------


def argocd_documents(project: Path) -> dict[str, dict[str, Any]]:
    documents = {}
    for path in sorted((project / "deploy" / "argocd").glob("*.yaml")):  # not notifications/
        (document,) = load_yaml_documents(path.read_text(encoding="utf-8"))
        documents[path.name] = document
    return documents


def crd_files(schemas_dir: Path) -> list[Path]:
    return sorted((schemas_dir / "argo-cd").glob("*-crd.yaml"))


def committed(project: Path) -> Path:
    """A rendered project as the git repository on main that Argo CD reads."""
    if not (project / ".git").is_dir():
        git(project, "init", "-q", "-b", "main")
        commit_all(project, "generated")
    return project


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-service monorepo of issue #9 with previews and the repository identity case."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    return build_monorepo(
        template,
        tmp_path_factory.mktemp("monorepo") / "shop",
        preview_environments=True,
        **IDENTITY,
    )


@pytest.fixture(scope="module")
def applications(monorepo: Path, gotemplate: GoTemplate) -> dict[str, dict[str, Any]]:
    appset = argocd_documents(monorepo)["applicationset.yaml"]
    sources = Sources({IDENTITY["repo_url"]: monorepo})
    return generate_applications(appset, sources, gotemplate)


def allowed_by(project: dict[str, Any], application: dict[str, Any]) -> bool:
    destination = application["spec"]["destination"]
    return any(
        allowed["server"] == destination["server"]
        and fnmatch.fnmatchcase(destination["namespace"], allowed["namespace"])
        for allowed in project["spec"]["destinations"]
    )


def notifications(project: Path) -> dict[str, Any]:
    config = project / "deploy/argocd/notifications/argocd-notifications-cm.yaml"
    (configmap,) = load_yaml_documents(config.read_text(encoding="utf-8"))
    return {key: yaml.safe_load(value) for key, value in configmap["data"].items()}


# --- Upstream CRDs --------------------------------------------------------------------------------


def test_every_argocd_object_is_valid_against_the_upstream_crds(
    monorepo: Path, schemas_dir: Path
) -> None:
    documents = argocd_documents(monorepo)
    assert set(documents) == {
        "applicationset.yaml",
        "project.yaml",
        "previews.yaml",
        "previews-project.yaml",
    }
    for name, document in documents.items():
        assert validate_custom_resource(document, crd_files(schemas_dir)) == [], name


def test_crd_validation_refuses_an_unknown_field(monorepo: Path, schemas_dir: Path) -> None:
    appset = argocd_documents(monorepo)["applicationset.yaml"]
    appset["spec"]["template"]["spec"]["syncPolicy"]["retry"]["limt"] = 3  # typo of limit
    errors = validate_custom_resource(appset, crd_files(schemas_dir))
    assert any("limt" in error for error in errors), errors


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


def test_argocd_files_pass_yamllint_with_the_projects_config(
    monorepo: Path, tool: Callable[[str], str]
) -> None:
    run([tool("yamllint"), "--strict", "deploy/argocd"], cwd=monorepo)


# --- The ApplicationSet, evaluated ----------------------------------------------------------------


def test_one_application_per_service_and_environment(
    applications: dict[str, dict[str, Any]], schemas_dir: Path
) -> None:
    assert sorted(applications) == sorted(f"{s}-{e}" for s in SERVICES for e in ENVIRONMENTS)
    for name, application in applications.items():
        assert validate_custom_resource(application, crd_files(schemas_dir)) == [], name


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_application_deploys_its_services_chart_with_the_environments_values(
    monorepo: Path, applications: dict[str, dict[str, Any]], service: str, environment: str
) -> None:
    application = applications[f"{service}-{environment}"]
    source = application["spec"]["source"]
    assert source["repoURL"] == IDENTITY["repo_url"]
    assert source["targetRevision"] == "main"
    assert source["path"] == f"deploy/charts/{service}"
    assert source["helm"]["valueFiles"] == [f"values-{environment}.yaml"]
    assert (monorepo / source["path"] / f"values-{environment}.yaml").is_file()
    assert application["spec"]["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": f"{service}-{environment}",  # unchanged from the per-environment files
    }
    labels = application["metadata"]["labels"]
    assert labels["devops-template/service"] == service
    assert labels["devops-template/environment"] == environment
    assert application["metadata"]["finalizers"] == [RESOURCES_FINALIZER]


def test_environments_before_production_sync_by_themselves_and_production_by_hand(
    applications: dict[str, dict[str, Any]],
) -> None:
    for name, application in applications.items():
        policy = application["spec"]["syncPolicy"]
        if name.endswith("-prod"):
            assert "automated" not in policy, name
        else:
            assert policy["automated"] == {"prune": True, "selfHeal": True}, name
        assert "CreateNamespace=true" in policy["syncOptions"], name
        labels = policy["managedNamespaceMetadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", name
        assert policy["retry"]["limit"] > 0
        assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}


def test_the_project_admits_every_application_and_nothing_reads_another_repository(
    monorepo: Path, applications: dict[str, dict[str, Any]]
) -> None:
    project = argocd_documents(monorepo)["project.yaml"]
    assert project["metadata"]["name"] == "shop-mono"  # the repository, not a service
    assert project["metadata"]["finalizers"] == [RESOURCES_FINALIZER]
    for name, application in applications.items():
        assert application["spec"]["project"] == "shop-mono", name
        assert allowed_by(project, application), name
        assert application["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]
    stranger = {"spec": {"destination": {"server": "https://kubernetes.default.svc"}}}
    for namespace in ("kube-system", "argocd", "api"):
        stranger["spec"]["destination"]["namespace"] = namespace
        assert not allowed_by(project, stranger), namespace


def test_adding_services_edited_nothing_under_deploy_argocd(monorepo: Path) -> None:
    # Three of the four services came with `make add-service`, one commit each.
    commits = git(monorepo, "log", "--format=%s", "--", "deploy/argocd").splitlines()
    assert commits == ["Initial commit from devops-template"]
    assert len(git(monorepo, "log", "--format=%s").splitlines()) == len(SERVICES)


def test_only_environments_before_production_subscribe_to_the_promotion(
    monorepo: Path, applications: dict[str, dict[str, Any]]
) -> None:
    config = notifications(monorepo)
    (trigger,) = config["trigger.on-shop-mono-promotable"]
    assert trigger["send"] == ["shop-mono-promote"]
    assert "template.shop-mono-promote" in config
    subscription = "notifications.argoproj.io/subscribe.on-shop-mono-promotable.shop-mono-promote"
    for name, application in applications.items():
        annotations = application["metadata"].get("annotations", {})
        assert (subscription in annotations) is (not name.endswith("-prod")), name


@pytest.mark.parametrize(
    "environments",
    [["dev"], ["test", "qa", "live"]],
    ids=["one-environment", "custom-names"],
)
def test_environments_come_from_the_platforms_answers(
    make_project: Callable[..., Path],
    gotemplate: GoTemplate,
    schemas_dir: Path,
    environments: list[str],
) -> None:
    project = committed(make_project(environments=environments))
    documents = argocd_documents(project)
    assert set(documents) == {"applicationset.yaml", "project.yaml"}
    sources = Sources({"https://github.com/my-org/my-service.git": project})
    applications = generate_applications(documents["applicationset.yaml"], sources, gotemplate)
    assert sorted(applications) == sorted(f"my-service-{env}" for env in environments)
    production = applications[f"my-service-{environments[-1]}"]
    assert "automated" not in production["spec"]["syncPolicy"]
    for application in applications.values():
        assert validate_custom_resource(application, crd_files(schemas_dir)) == []
        assert allowed_by(documents["project.yaml"], application)
    patterns = [d["namespace"] for d in documents["project.yaml"]["spec"]["destinations"]]
    assert patterns == [f"*-{env}" for env in environments]


@pytest.mark.parametrize("deploy_target", ["helm", "none"])
def test_no_argocd_manifests_without_argocd(
    make_project: Callable[..., Path], deploy_target: str
) -> None:
    project = make_project(deploy_target=deploy_target)
    assert not (project / "deploy" / "argocd").exists()


# --- Notifications: the payload contract with CI ------------------------------------------------


def healthy_application(service: str, environment: str) -> dict[str, Any]:
    """What a notification template sees of a synced, healthy Application (`.app`)."""
    return {
        "app": {
            "metadata": {
                "name": f"{service}-{environment}",
                "labels": {
                    "devops-template/service": service,
                    "devops-template/environment": environment,
                },
            },
            "spec": {"destination": {"namespace": f"{service}-{environment}"}},
            "status": {"sync": {"revision": "0123abcd"}},
        }
    }


def test_github_notification_dispatches_service_and_environment_to_the_repository(
    monorepo: Path, gotemplate: GoTemplate, tool: Callable[[str], str]
) -> None:
    config_file = monorepo / "deploy/argocd/notifications/argocd-notifications-cm.yaml"
    run([tool("kubernetes-validate"), "--strict", "-k", "1.31.0", config_file])
    config = notifications(monorepo)
    service = config["service.webhook.shop-mono-promote"]
    assert service["url"] == "https://github.example.com/api/v3/repos/platform/shop-mono/dispatches"
    assert service["headers"][0] == {
        "name": "Authorization",
        "value": "Bearer $github-promote-token",
    }
    webhook = config["template.shop-mono-promote"]["webhook"]["shop-mono-promote"]
    assert webhook["method"] == "POST"
    body = gotemplate.one(webhook["body"], healthy_application("worker", "staging"), [])
    assert json.loads(body) == {
        "event_type": "environment-healthy",
        "client_payload": {"service": "worker", "environment": "staging", "revision": "0123abcd"},
    }
    (trigger,) = config["trigger.on-shop-mono-promotable"]
    assert "'Succeeded'" in trigger["when"]
    assert "'Healthy'" in trigger["when"]
    assert trigger["oncePer"] == "app.status.sync.revision"


def test_gitlab_notification_triggers_a_pipeline_with_service_and_environment(
    make_project: Callable[..., Path], gotemplate: GoTemplate, tool: Callable[[str], str]
) -> None:
    project = make_project(
        ci_provider="gitlab", repo_url="https://gitlab.example.com/platform/web/shop-mono.git"
    )
    config_file = project / "deploy/argocd/notifications/argocd-notifications-cm.yaml"
    run([tool("kubernetes-validate"), "--strict", "-k", "1.31.0", config_file])
    config = notifications(project)
    service = config["service.webhook.shop-mono-promote"]
    # The trigger token travels in the body, never in the URL (proxies and logs keep URLs).
    assert service["url"] == (
        "https://gitlab.example.com/api/v4/projects/platform%2Fweb%2Fshop-mono/trigger/pipeline"
    )
    webhook = config["template.shop-mono-promote"]["webhook"]["shop-mono-promote"]
    assert "path" not in webhook
    # Argo CD 2.10+ gives templates the notifications secret as .secrets.
    context = {
        **healthy_application("api", "dev"),
        "secrets": {"gitlab-promote-trigger-token": "glptt-not-a-real-token"},
    }
    body = gotemplate.one(webhook["body"], context, [])
    assert json.loads(body) == {
        "token": "glptt-not-a-real-token",
        "ref": "main",
        "variables": {"PROMOTE_SERVICE": "api", "PROMOTE_ENVIRONMENT": "dev"},
    }


def test_no_argocd_file_names_the_owner_and_project_instead_of_the_repository(
    monorepo: Path,
) -> None:
    for path in sorted((monorepo / "deploy/argocd").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert "acme" not in text, path
        assert "api.github.com" not in text, path


# --- Preview environments -------------------------------------------------------------------------


def open_request(repository: Path, number: int) -> dict[str, Any]:
    """Parameters the pull request generator gives for one open request at HEAD."""
    sha = git(repository, "rev-parse", "HEAD").strip()
    return {
        "number": str(number),
        "branch": "feature/x",
        "branch_slug": "feature-x",
        "target_branch": "main",
        "target_branch_slug": "main",
        "head_sha": sha,
        "head_short_sha": sha[:8],
        "head_short_sha_7": sha[:7],
        "author": "someone",
        "title": "A change",
        "labels": ["preview"],
    }


def test_previews_deploy_every_service_of_each_open_request_with_its_own_image(
    monorepo: Path, gotemplate: GoTemplate, schemas_dir: Path
) -> None:
    documents = argocd_documents(monorepo)
    sources = Sources(
        {IDENTITY["repo_url"]: monorepo},
        pull_requests=[open_request(monorepo, 7), open_request(monorepo, 12)],
    )
    previews = generate_applications(documents["previews.yaml"], sources, gotemplate)
    (generator,) = sources.pull_request_generators
    assert generator["github"]["api"] == "https://github.example.com/api/v3"
    assert (generator["github"]["owner"], generator["github"]["repo"]) == ("platform", "shop-mono")
    assert generator["github"]["tokenRef"] == {"secretName": "github-token", "key": "token"}
    assert generator["github"]["labels"] == ["preview"]  # only requests a maintainer labelled
    assert sorted(previews) == sorted(f"{s}-pr-{n}" for s in SERVICES for n in (7, 12))
    sha = git(monorepo, "rev-parse", "HEAD").strip()
    for service in SERVICES:
        application = previews[f"{service}-pr-7"]
        assert validate_custom_resource(application, crd_files(schemas_dir)) == []
        spec = application["spec"]
        assert spec["destination"]["namespace"] == f"{service}-pr-7"
        # The chart of main; only the image comes from the request, from its own repository.
        assert spec["source"]["targetRevision"] == "main"
        assert spec["source"]["path"] == f"deploy/charts/{service}"
        assert spec["source"]["helm"]["valueFiles"] == ["values-dev.yaml"]
        descriptor = yaml.safe_load(
            (monorepo / "apps" / service / "catalog-info.yaml").read_text(encoding="utf-8")
        )
        image = descriptor["metadata"]["annotations"]["devops-template/image"]
        assert spec["source"]["helm"]["parameters"] == [
            {"name": "image.repository", "value": f"{image}-preview"},
            {"name": "image.tag", "value": f"pr-7-{sha}"},
            {"name": "image.digest", "value": ""},
        ]
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert application["metadata"]["labels"]["devops-template/service"] == service
        assert "annotations" not in application["metadata"]  # previews never promote
        assert allowed_by(documents["previews-project.yaml"], application)
        assert not allowed_by(documents["project.yaml"], application)
        assert spec["project"] == "shop-mono-previews"
        assert (
            spec["source"]["repoURL"] in documents["previews-project.yaml"]["spec"]["sourceRepos"]
        )


def test_gitlab_previews_watch_the_project_path(
    make_project: Callable[..., Path], schemas_dir: Path
) -> None:
    project = make_project(
        ci_provider="gitlab",
        preview_environments=True,
        repo_url="https://gitlab.example.com/platform/web/shop-mono.git",
    )
    previews = argocd_documents(project)["previews.yaml"]
    assert validate_custom_resource(previews, crd_files(schemas_dir)) == []
    (matrix,) = previews["spec"]["generators"]
    pull_requests, descriptors = matrix["matrix"]["generators"]
    assert pull_requests["pullRequest"]["gitlab"] == {
        "api": "https://gitlab.example.com/",
        "project": "platform/web/shop-mono",
        "pullRequestState": "opened",
        "tokenRef": {"secretName": "gitlab-token", "key": "token"},
        "labels": ["preview"],  # only merge requests a maintainer labelled
    }
    assert descriptors["git"]["repoURL"] == "https://gitlab.example.com/platform/web/shop-mono.git"


def creatable_namespaces(project: dict[str, Any]) -> list[str]:
    """Name patterns of the Namespaces a project lets its Applications create."""
    whitelist = project["spec"]["clusterResourceWhitelist"]
    assert {(item["group"], item["kind"]) for item in whitelist} == {("", "Namespace")}
    names = [str(item["name"]) for item in whitelist]
    assert all(names)  # an entry without a name would admit every namespace
    return names


def admits(project: dict[str, Any], namespace: str) -> bool:
    """Whether the project lets an Application deploy into, and create, the namespace."""
    application = {
        "spec": {
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace}
        }
    }
    deploys = allowed_by(project, application)
    creates = any(fnmatch.fnmatchcase(namespace, name) for name in creatable_namespaces(project))
    assert deploys == creates, namespace  # the destinations and the creatable names agree
    return deploys


def test_previews_have_a_project_of_their_own_that_admits_only_their_namespaces(
    monorepo: Path,
    applications: dict[str, dict[str, Any]],
    gotemplate: GoTemplate,
    schemas_dir: Path,
) -> None:
    documents = argocd_documents(monorepo)
    environments, previews_project = documents["project.yaml"], documents["previews-project.yaml"]
    for project in (environments, previews_project):
        assert validate_custom_resource(project, crd_files(schemas_dir)) == []
    assert previews_project["metadata"]["name"] == "shop-mono-previews"
    assert previews_project["metadata"]["finalizers"] == [RESOURCES_FINALIZER]
    assert previews_project["spec"]["sourceRepos"] == [IDENTITY["repo_url"]]
    # The kinds of the environments, no more; no cluster-wide object but its own namespaces.
    assert (
        previews_project["spec"]["namespaceResourceWhitelist"]
        == environments["spec"]["namespaceResourceWhitelist"]
    )
    assert creatable_namespaces(previews_project) == ["*-pr-[0-9]*"]
    assert "clusterResourceBlacklist" not in previews_project["spec"]
    sources = Sources({IDENTITY["repo_url"]: monorepo}, pull_requests=[open_request(monorepo, 7)])
    previews = generate_applications(documents["previews.yaml"], sources, gotemplate)
    preview_namespaces = {a["spec"]["destination"]["namespace"] for a in previews.values()}
    assert preview_namespaces == {f"{service}-pr-7" for service in SERVICES}
    environment_namespaces = {a["spec"]["destination"]["namespace"] for a in applications.values()}
    assert {f"api-{env}" for env in ENVIRONMENTS} <= environment_namespaces
    for namespace in preview_namespaces | {"api-pr-1", "ledger-pr-2048"}:
        assert admits(previews_project, namespace), namespace
        assert not admits(environments, namespace), namespace
    for namespace in environment_namespaces | {"jobs-dev", "web-prod"}:
        assert admits(environments, namespace), namespace
        assert not admits(previews_project, namespace), namespace
    for stranger in ("kube-system", "argocd", "default", "api", "api-pr-x", "api-pr-", "pr-7"):
        assert not admits(environments, stranger), stranger
        assert not admits(previews_project, stranger), stranger


def test_without_previews_nothing_deploys_pull_requests(default_project: Path) -> None:
    assert not (default_project / "deploy/argocd/previews.yaml").exists()
    assert not (default_project / "deploy/argocd/previews-project.yaml").exists()
    project = argocd_documents(default_project)["project.yaml"]
    assert not any("-pr-" in d["namespace"] for d in project["spec"]["destinations"])


# --- A separate configuration repository -------------------------------------------------------


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_separate_configuration_repository_is_what_argo_cd_reads(
    make_project: Callable[..., Path],
    gotemplate: GoTemplate,
    schemas_dir: Path,
    ci_provider: str,
) -> None:
    project = committed(
        make_project(ci_provider=ci_provider, gitops_repo="separate", preview_environments=True)
    )
    host = "github.com" if ci_provider == "github" else "gitlab.com"
    config = f"https://{host}/my-org/my-service-gitops.git"
    monorepo = f"https://{host}/my-org/my-service.git"
    documents = argocd_documents(project)
    for document in documents.values():
        assert validate_custom_resource(document, crd_files(schemas_dir)) == []
    # The descriptors live in the monorepo; the charts and values Argo CD deploys in the
    # configuration repository (a copy of deploy/).
    sources = Sources({monorepo: project})
    applications = generate_applications(documents["applicationset.yaml"], sources, gotemplate)
    assert sorted(applications) == [f"my-service-{env}" for env in ("dev", "prod", "staging")]
    for name, application in applications.items():
        assert application["spec"]["source"]["repoURL"] == config, name
    # The environments read the configuration repository only; previews, main's charts of the
    # monorepo, in a project of their own.
    assert documents["project.yaml"]["spec"]["sourceRepos"] == [config]
    assert documents["previews-project.yaml"]["spec"]["sourceRepos"] == [monorepo]
    previews = documents["previews.yaml"]["spec"]["template"]["spec"]
    assert previews["source"]["repoURL"] == monorepo
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["gitops_repo_url"] == config
