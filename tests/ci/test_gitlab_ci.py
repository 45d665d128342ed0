"""GitLab CI of generated projects: the GitLab schema, gitlab-ci-local, jobs run for real.

One project with one Python service (helm deploys) and two four-service monorepos built by the
documented commands (tests/monorepo.py: api/python, worker/go, web/node, ledger/java), one
promoting through Argo CD and one deploying with helm.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from extensions.context import LANGUAGES
from tests.ci.gitlab_local import (
    as_gitlab_repository,
    gitlab_ci_local,
    listed_jobs,
    preview,
    with_gitlab_origin,
)
from tests.helpers import render, run
from tests.monorepo import FOUR_SERVICES, build_monorepo, tool_env
from tests.update.gitrepo import commit_all, git, snapshot_template

Tool = Callable[[str], str]
SERVICES = dict(FOUR_SERVICES)
ENVIRONMENTS = ("dev", "staging", "prod")
# What selects every service besides its own paths: the CI definitions, scripts and Makefile.
PLATFORM_PATHS = [".gitlab-ci.yml", ".gitlab/ci/*.yml", "scripts/**/*", "Makefile"]
TOOLCHAINS = {f".toolchain-{language}" for language in LANGUAGES}
# What copies of a project leave out: gitlab-ci-local's work folder and installed dependencies.
IGNORED = shutil.ignore_patterns(".gitlab-ci-local", "node_modules", ".venv")


@pytest.fixture(scope="module")
def gitlab_project(copie_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GitLab project with deploy_target=helm, as a git repo with an origin on main."""
    rendered = render(copie_session, ci_provider="gitlab", deploy_target="helm")
    return as_gitlab_repository(rendered, tmp_path_factory.mktemp("gitlab"))


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


def gitlab_monorepo(template: Path, where: Path, **answers: Any) -> Path:
    project = build_monorepo(template, where / "project", ci_provider="gitlab", **answers)
    return with_gitlab_origin(project, where / "origin.git")


@pytest.fixture(scope="module")
def monorepo(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four services of four languages on GitLab, promoted through Argo CD (the default)."""
    return gitlab_monorepo(template_repo, tmp_path_factory.mktemp("argocd"))


@pytest.fixture(scope="module")
def helm_monorepo(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same four services, deployed by helm from CI."""
    return gitlab_monorepo(template_repo, tmp_path_factory.mktemp("helm"), deploy_target="helm")


def ci_files(project: Path) -> list[Path]:
    """.gitlab-ci.yml and every file it includes."""
    gitlab = project / ".gitlab" / "ci"
    return [
        project / ".gitlab-ci.yml",
        *sorted(gitlab.glob("*.yml")),
        *sorted((gitlab / "services").glob("*.yml")),
    ]


def pipeline(project: Path) -> dict[str, Any]:
    """The files as written, merged into one mapping (no extends applied)."""
    merged: dict[str, Any] = {}
    for path in ci_files(project):
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")))
    return merged


def ancestors(jobs: dict[str, Any], name: str) -> list[str]:
    """Every template a job extends, directly or through another template."""
    extends = jobs[name].get("extends", [])
    parents = [extends] if isinstance(extends, str) else list(extends)
    return [found for parent in parents for found in (parent, *ancestors(jobs, parent))]


def descriptor(project: Path, service: str) -> dict[str, str]:
    catalog = project / "apps" / service / "catalog-info.yaml"
    annotations: dict[str, str] = yaml.safe_load(catalog.read_text("utf-8"))["metadata"][
        "annotations"
    ]
    return {key.removeprefix("devops-template/"): value for key, value in annotations.items()}


def change_paths(job: dict[str, Any]) -> list[list[str]]:
    """The rules:changes path lists of a resolved job."""
    return [rule["changes"]["paths"] for rule in job["rules"] if "changes" in rule]


# --- the default project: one Python service ------------------------------------------------------


def test_gitlab_ci_local_reads_the_pipeline_with_every_job(
    gitlab_project: Path, tool: Tool
) -> None:
    listed = gitlab_ci_local(gitlab_project, tool, "--list", "--variable", "CI_PIPELINE_SOURCE=web")
    jobs = listed_jobs(listed.stdout)
    assert set(jobs) == {
        "lint-deploy",
        "lint:my-service",
        "test:my-service",
        "coverage:my-service",
        "build:my-service",
        "sign:my-service",
    }, listed.stdout
    assert jobs["build:my-service"]["needs"] == "[lint:my-service,coverage:my-service]"
    everything = listed_jobs(gitlab_ci_local(gitlab_project, tool, "--list-all").stdout)
    assert {"template-update", "deploy:my-service:dev", "deploy:my-service:prod"} <= set(everything)


@pytest.mark.parametrize("fixture", ["gitlab_project", "monorepo", "helm_monorepo"])
def test_every_ci_file_matches_the_gitlab_schema_and_yamllint(
    fixture: str, request: pytest.FixtureRequest, tool: Tool
) -> None:
    project: Path = request.getfixturevalue(fixture)
    files = ci_files(project)
    assert project / ".gitlab" / "ci" / "custom.yml" in files
    assert not (project / ".gitlab" / "ci" / "services.yml").exists()
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *files], cwd=project)
    run([tool("yamllint"), "--strict", *files], cwd=project)


@pytest.mark.parametrize("fixture", ["gitlab_project", "monorepo"])
def test_every_job_script_passes_shellcheck_as_posix_sh(
    fixture: str, request: pytest.FixtureRequest, tool: Tool, tmp_path: Path
) -> None:
    """The job images differ (kaniko's busybox, Alpine for helm, Debian): plain sh only."""
    project: Path = request.getfixturevalue(fixture)
    scripts = []
    for name, job in preview(project, tool).items():
        if isinstance(job, dict) and "script" in job:
            script = tmp_path / f"{name.replace(':', '_')}.sh"
            lines = ["#!/bin/sh", *job.get("before_script", []), *job["script"]]
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            scripts.append(script)
    assert {path.stem for path in scripts} >= {"build_my-service", "template-update"} or {
        "promote",
        "promote_worker_dev",
    } <= {path.stem for path in scripts}
    run([tool("shellcheck"), "--shell=sh", "--severity=style", *scripts])


def test_schedules_run_only_the_update_and_triggers_no_service_job(gitlab_project: Path) -> None:
    jobs = pipeline(gitlab_project)
    rules = jobs[".service:my-service"]["rules"]
    assert rules[0] == {
        "if": '$CI_PIPELINE_SOURCE == "schedule" || $CI_PIPELINE_SOURCE == "trigger"',
        "when": "never",
    }
    assert jobs["template-update"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $TEMPLATE_UPDATE == "true"'}
    ]


def test_workflow_avoids_duplicate_pipelines_and_jobs_are_interruptible(
    gitlab_project: Path,
) -> None:
    jobs = pipeline(gitlab_project)
    rules = jobs["workflow"]["rules"]
    assert rules[0] == {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    assert rules[1] == {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"}
    assert jobs["default"]["interruptible"] is True
    assert jobs[".deploy"]["interruptible"] is False


def test_platform_ci_files_name_no_service(monorepo: Path) -> None:
    """The template-owned platform files serve any set of services: none is written in them."""
    platform = [path for path in ci_files(monorepo) if path.parent.name != "services"] + [
        monorepo / ".gitlab" / "CODEOWNERS"
    ]
    for name in SERVICES:
        # where a service's name would stand: paths, image, job and namespace names
        word = re.compile(
            rf"(apps/|charts/|/|:|SERVICE: ){name}\b|\b{name}-({'|'.join(ENVIRONMENTS)})"
        )
        for path in platform:
            text = path.read_text(encoding="utf-8")
            assert not word.search(text), f"{path.name} names the service {name}"


# --- a monorepo: every service's jobs, toolchain, paths and image ---------------------------------


def test_every_service_has_lint_test_coverage_and_build_jobs(monorepo: Path, tool: Tool) -> None:
    listed = listed_jobs(gitlab_ci_local(monorepo, tool, "--list-all").stdout)
    for name in SERVICES:
        assert {f"lint:{name}", f"test:{name}", f"coverage:{name}", f"build:{name}"} <= set(listed)
        assert listed[f"coverage:{name}"]["needs"] == f"[test:{name}]"
        assert listed[f"build:{name}"]["needs"] == f"[lint:{name},coverage:{name}]"
    services_files = sorted(p.stem for p in (monorepo / ".gitlab/ci/services").glob("*.yml"))
    assert services_files == sorted(SERVICES)


def test_lint_and_test_jobs_use_their_own_languages_toolchain_and_cache(
    monorepo: Path, tool: Tool
) -> None:
    written = pipeline(monorepo)
    resolved = preview(monorepo, tool)
    for name, language in SERVICES.items():
        toolchain = written[f".toolchain-{language}"]
        for kind in ("lint", "test"):
            job = resolved[f"{kind}:{name}"]
            assert TOOLCHAINS & set(ancestors(written, f"{kind}:{name}")) == {
                f".toolchain-{language}"
            }
            assert job["image"] in (toolchain["image"], {"name": toolchain["image"]})
            assert job["variables"]["SERVICE"] == name
            (cache,) = job["cache"]
            assert cache["paths"] == toolchain["cache"]["paths"]
            lockfiles = [f.replace("$SERVICE", name) for f in LANGUAGES[language].lockfiles]
            assert cache["key"] == {"files": lockfiles, "prefix": f"{language}-{name}"}
            assert all((monorepo / lockfile).is_file() for lockfile in lockfiles)
        for kind in ("coverage", "build"):
            assert not TOOLCHAINS & set(ancestors(written, f"{kind}:{name}")), kind
            assert "cache" not in resolved[f"{kind}:{name}"]


def test_build_jobs_take_image_context_and_dockerfile_from_the_descriptor(
    monorepo: Path, tool: Tool
) -> None:
    resolved = preview(monorepo, tool)
    for name in SERVICES:
        described = descriptor(monorepo, name)
        variables = resolved[f"build:{name}"]["variables"]
        assert variables["IMAGE"] == described["image"]
        assert variables["BUILD_CONTEXT"] == described["build-context"]
        assert variables["DOCKERFILE"] == described["dockerfile"]
        assert "-debug@sha256:" in resolved[f"build:{name}"]["image"]["name"]  # kaniko, by digest
    assert resolved["build:web"]["variables"]["BUILD_CONTEXT"] == "."  # the pnpm workspace


def test_a_services_jobs_watch_its_own_paths_and_the_platforms(monorepo: Path, tool: Tool) -> None:
    resolved = preview(monorepo, tool)
    for name in SERVICES:
        watched = [
            f"{path}**/*" if path.endswith("/") else path
            for path in descriptor(monorepo, name)["watch"].split()
        ]
        expected = [*watched, f".gitlab/ci/services/{name}.yml", *PLATFORM_PATHS]
        for kind in ("lint", "test", "coverage", "build"):
            job = resolved[f"{kind}:{name}"]
            assert change_paths(job) == [expected, expected], f"{kind}:{name}"
            merge_request = next(rule for rule in job["rules"] if "changes" in rule)
            assert merge_request["changes"]["compare_to"] == "refs/heads/main"
        others = [other for other in SERVICES if other != name]
        assert not [p for p in expected for o in others if f"/{o}/" in p or p.endswith(f"/{o}.yml")]
    assert {"packages/**/*", "pnpm-lock.yaml"} <= set(change_paths(resolved["lint:web"])[0])
    assert "pnpm-lock.yaml" not in change_paths(resolved["lint:api"])[0]


@pytest.fixture(scope="module")
def merge_request_repo(monorepo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the monorepo to commit changes in; origin/main stays the merge base."""
    copy = tmp_path_factory.mktemp("merge-request") / "project"
    shutil.copytree(monorepo, copy, symlinks=True, ignore=IGNORED)
    return copy


@pytest.mark.parametrize(
    ("changed", "selected"),
    [
        ("apps/worker/main.go", {"worker"}),
        ("deploy/charts/ledger/values-dev.yaml", {"ledger"}),
        ("packages/logger/src/index.ts", {"web"}),
        (".gitlab/ci/services/api.yml", {"api"}),
        ("scripts/ci/gitops", set(SERVICES)),
        ("README.md", set()),
    ],
    ids=["service-code", "service-chart", "node-shared-package", "service-ci", "platform", "docs"],
)
def test_a_merge_request_runs_the_jobs_of_the_services_it_changes(
    merge_request_repo: Path, tool: Tool, changed: str, selected: set[str]
) -> None:
    git(merge_request_repo, "reset", "-q", "--hard", "origin/main")
    with (merge_request_repo / changed).open("a", encoding="utf-8") as handle:
        handle.write("\n")
    git(merge_request_repo, "add", changed)
    git(merge_request_repo, "commit", "-q", "-m", f"Change {changed}")
    listed = gitlab_ci_local(
        merge_request_repo, tool, "--list", "--variable", "CI_PIPELINE_SOURCE=merge_request_event"
    )
    jobs = set(listed_jobs(listed.stdout))
    expected = {f"{kind}:{name}" for name in selected for kind in ("lint", "test", "coverage")}
    built = {f"{kind}:{name}" for name in selected for kind in ("build", "scan")}
    # The platform's lint (scripts/ci/lint-deploy) runs on every request: secrets can be anywhere.
    assert jobs == {"lint-deploy"} | expected | built, listed.stdout


# --- deployments and promotions ---------------------------------------------------------------


def test_helm_deploys_each_service_to_each_environment_in_order_with_manual_production(
    helm_monorepo: Path, tool: Tool
) -> None:
    listed = listed_jobs(gitlab_ci_local(helm_monorepo, tool, "--list-all").stdout)
    resolved = preview(helm_monorepo, tool)
    groups = set()
    for name in SERVICES:
        previous = None
        for env in ENVIRONMENTS:
            job = resolved[f"deploy:{name}:{env}"]
            assert listed[f"deploy:{name}:{env}"]["stage"] == "deploy"
            # Each deployment deploys what its promotion job committed (promotion by commit).
            assert [need["job"] for need in job["needs"]] == [f"promote:{name}:{env}"]
            promotion = resolved[f"promote:{name}:{env}"]
            needs = [f"deploy:{name}:{previous}"] if previous else [f"build:{name}", f"sign:{name}"]
            assert [need["job"] for need in promotion["needs"]] == needs
            assert job["environment"]["name"] == env
            assert job["variables"]["SERVICE"] == name
            (rule,) = promotion["rules"]
            assert rule["if"] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
            assert (rule.get("when") == "manual") is (env == "prod")
            groups.add(job["resource_group"])
            previous = env
        tiers = [
            resolved[f"deploy:{name}:{env}"]["environment"]["deployment_tier"]
            for env in ENVIRONMENTS
        ]
        assert tiers == ["development", "staging", "production"]
    assert len(groups) == len(SERVICES) * len(ENVIRONMENTS)
    script = "\n".join(resolved["deploy:worker:dev"]["script"])
    assert "--atomic --wait" in script
    assert '-f "promoted/values-$CI_ENVIRONMENT_NAME.yaml"' in script
    assert "--set" not in script
    assert not [job for job in listed if job.startswith("promote:") and job.count(":") != 2]


def test_main_promotes_each_built_service_to_the_first_environment(
    monorepo: Path, tool: Tool
) -> None:
    listed = listed_jobs(gitlab_ci_local(monorepo, tool, "--list-all").stdout)
    resolved = preview(monorepo, tool)
    for name in SERVICES:
        # The digest build pushed and sign signed.
        assert listed[f"promote:{name}:dev"]["needs"] == f"[build:{name},sign:{name}]"
        job = resolved[f"promote:{name}:dev"]
        (rule,) = job["rules"]
        assert (
            rule["if"] == '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'
        )
        assert rule["changes"]["paths"] == change_paths(resolved[f"build:{name}"])[1]
        assert job["variables"]["SERVICE"] == name
        assert job["resource_group"] == "promote"


def test_a_trigger_pipeline_runs_only_the_promotion(monorepo: Path, tool: Tool) -> None:
    trigger = ("--variable", "CI_PIPELINE_SOURCE=trigger")
    named = ("--variable", "PROMOTE_SERVICE=worker", "--variable", "PROMOTE_ENVIRONMENT=dev")
    listed = gitlab_ci_local(monorepo, tool, "--list", *trigger, *named)
    assert set(listed_jobs(listed.stdout)) == {"promote"}, listed.stdout
    unnamed = gitlab_ci_local(monorepo, tool, "--list", *trigger)
    assert set(listed_jobs(unnamed.stdout)) == set(), unnamed.stdout


@pytest.fixture
def promotion_repo(monorepo: Path, tmp_path: Path) -> Path:
    """A clone of the monorepo whose origin is a real bare repository (what CI pushes to)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(monorepo), str(origin))
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


def run_job(
    project: Path, job: dict[str, Any], check: bool = True, **variables: str
) -> subprocess.CompletedProcess[str]:
    """The before_script and script of a resolved job, as the runner runs them, in `project`."""
    env = {
        **tool_env(),
        "CI_DEFAULT_BRANCH": "main",
        "CI_SERVER_HOST": "gitlab.example.com",
        "CI_PROJECT_PATH": "my-org/my-service",
        **variables,
    }
    for key, value in job.get("variables", {}).items():
        env.setdefault(key, re.sub(r"\$(\w+)", lambda m: env.get(m[1], m[0]), str(value)))
    script = "\n".join([*job.get("before_script", []), *job["script"]])
    return run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=project, env=env, check=check)


def values_tags(repo: Path, rev: str) -> dict[tuple[str, str], str | None]:
    """image.tag of every service x environment at a revision of the repository."""
    tags = {}
    for name in SERVICES:
        for env in ENVIRONMENTS:
            text = git(repo, "show", f"{rev}:deploy/charts/{name}/values-{env}.yaml")
            tags[name, env] = ((yaml.safe_load(text) or {}).get("image") or {}).get("tag")
    return tags


@pytest.mark.slow
def test_promotion_moves_one_service_one_environment_at_a_time(
    monorepo: Path, promotion_repo: Path, tool: Tool
) -> None:
    jobs = preview(monorepo, tool)
    origin = promotion_repo.parent / "origin.git"
    before = values_tags(origin, "main")
    sha = git(promotion_repo, "rev-parse", "HEAD").strip()

    run_job(promotion_repo, jobs["promote:worker:dev"], CI_COMMIT_SHA=sha)
    after_build = values_tags(origin, "main")
    assert after_build == {**before, ("worker", "dev"): sha}

    out = run_job(
        promotion_repo, jobs["promote"], PROMOTE_SERVICE="worker", PROMOTE_ENVIRONMENT="dev"
    )
    assert values_tags(origin, "main") == {**after_build, ("worker", "staging"): sha}, out.stdout
    subject = git(origin, "log", "-1", "--format=%s", "main").strip()
    assert subject == f"Promote worker {sha} to staging [skip ci]"

    # Production goes by merge request: a branch for this service; main stays as it was.
    main = git(origin, "rev-parse", "main").strip()
    out = run_job(
        promotion_repo, jobs["promote"], PROMOTE_SERVICE="worker", PROMOTE_ENVIRONMENT="staging"
    )
    assert git(origin, "rev-parse", "main").strip() == main
    branch = f"promote/worker-prod-{sha}"
    assert values_tags(origin, branch) == {**values_tags(origin, "main"), ("worker", "prod"): sha}
    assert "PROMOTE_TOKEN is not set" in out.stdout  # the merge request needs the token

    out = run_job(
        promotion_repo, jobs["promote"], PROMOTE_SERVICE="worker", PROMOTE_ENVIRONMENT="prod"
    )
    assert "prod is the last environment: nothing to promote" in out.stdout
    assert git(origin, "rev-parse", "main").strip() == main


@pytest.mark.slow
@pytest.mark.parametrize(
    ("service", "environment", "message"),
    [
        ("../../etc", "dev", "is not a service of this repository"),
        ("billing", "dev", "is not a service of this repository"),
        ("worker", "qa", "is not an environment of this repository"),
    ],
    ids=["path", "unknown-service", "unknown-environment"],
)
def test_promotion_refuses_what_is_not_a_service_or_an_environment(
    monorepo: Path, promotion_repo: Path, tool: Tool, service: str, environment: str, message: str
) -> None:
    origin = promotion_repo.parent / "origin.git"
    main = git(origin, "rev-parse", "main").strip()
    result = run_job(
        promotion_repo,
        preview(monorepo, tool)["promote"],
        check=False,
        PROMOTE_SERVICE=service,
        PROMOTE_ENVIRONMENT=environment,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert git(origin, "rev-parse", "main").strip() == main


# --- custom.yml: the user's jobs and overrides ------------------------------------------------

# .gitlab/ci/services.yml as v0.1.0 rendered it (deploy_target=helm): the migration renames it to
# custom.yml, where its jobs now override the template's jobs of the same name.
V010_SERVICES_YML = """\
.my-service:
  variables:
    SERVICE: my-service
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule" || $CI_PIPELINE_SOURCE == "trigger"
      when: never
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      changes:
        paths: &my-service-paths
          - apps/my-service/**/*
          - deploy/charts/my-service/**/*
          - scripts/ci/**/*
          - .gitlab-ci.yml
          - .gitlab/ci/*.yml
          - Makefile
        compare_to: refs/heads/main
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      changes:
        paths: *my-service-paths
    - if: $CI_PIPELINE_SOURCE == "web"

lint:my-service:
  extends: [.lint, .my-service]

test:my-service:
  extends: [.test, .my-service]

coverage:my-service:
  extends: [.coverage, .my-service]
  needs: [test:my-service]

build:my-service:
  extends: [.build, .my-service]
  needs: [lint:my-service, coverage:my-service]
""" + "".join(
    f"""
deploy:my-service:{env}:
  extends: [.deploy]
  variables:
    SERVICE: my-service
  needs: [build:my-service{f', "deploy:my-service:{previous}"' if previous else ""}]
  environment:
    name: {env}
    deployment_tier: {tier}
  resource_group: my-service-{env}
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      changes:
        paths: *my-service-paths{chr(10) + "      when: manual" if env == "prod" else ""}
"""
    for env, previous, tier in (
        ("dev", None, "development"),
        ("staging", "dev", "staging"),
        ("prod", "staging", "production"),
    )
)


def with_custom_yml(project: Path, where: Path, text: str) -> Path:
    copy = where / "project"
    shutil.copytree(project, copy, symlinks=True, ignore=IGNORED)
    (copy / ".gitlab" / "ci" / "custom.yml").write_text(text, encoding="utf-8")
    commit_all(copy, "custom.yml")
    return copy


def test_a_v010_services_block_in_custom_yml_still_gives_a_valid_pipeline(
    gitlab_project: Path, tool: Tool, tmp_path: Path
) -> None:
    project = with_custom_yml(gitlab_project, tmp_path, V010_SERVICES_YML)
    custom = project / ".gitlab" / "ci" / "custom.yml"
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", custom], cwd=project)
    listed = set(listed_jobs(gitlab_ci_local(project, tool, "--list-all").stdout))
    template = set(listed_jobs(gitlab_ci_local(gitlab_project, tool, "--list-all").stdout))
    assert listed == template  # the old jobs replace the template's, none runs twice
    resolved = preview(project, tool)
    assert "scripts/ci/**/*" in change_paths(resolved["lint:my-service"])[0]  # the old block won
    assert resolved["deploy:my-service:prod"]["rules"][0]["when"] == "manual"


def test_a_job_in_custom_yml_overrides_the_templates_job_of_that_name(
    gitlab_project: Path, tool: Tool, tmp_path: Path
) -> None:
    custom = """\
build:my-service:
  rules:
    - if: $CI_COMMIT_TAG

audit:my-service:
  extends: [.lint, ".service:my-service:toolchain", ".service:my-service"]
  script:
    - make -C apps/my-service lint
"""
    project = with_custom_yml(gitlab_project, tmp_path, custom)
    resolved = preview(project, tool)
    build = resolved["build:my-service"]
    assert build["rules"] == [{"if": "$CI_COMMIT_TAG"}]
    # the rest is kept (on GitLab the default registry is GitLab's own)
    assert build["variables"]["IMAGE"] == "registry.gitlab.com/my-org/my-service"
    assert resolved["audit:my-service"]["variables"]["SERVICE"] == "my-service"
    web = gitlab_ci_local(project, tool, "--list", "--variable", "CI_PIPELINE_SOURCE=web")
    assert {"audit:my-service", "lint:my-service"} <= set(listed_jobs(web.stdout))
    assert "build:my-service" not in listed_jobs(web.stdout)


def test_the_rendered_custom_yml_runs_no_job(gitlab_project: Path) -> None:
    custom = yaml.safe_load((gitlab_project / ".gitlab/ci/custom.yml").read_text("utf-8"))
    assert custom, "GitLab refuses an empty include"
    assert all(name.startswith(".") for name in custom)


@pytest.mark.slow
def test_lint_test_and_coverage_jobs_run_green_under_gitlab_ci_local(
    gitlab_project: Path, tool: Tool
) -> None:
    tool("make")
    result = gitlab_ci_local(
        gitlab_project,
        tool,
        "--force-shell-executor",
        "--variable",
        "CI_PIPELINE_SOURCE=web",
        "lint:my-service",
        "test:my-service",
        "coverage:my-service",
    )
    assert "PASS  lint:my-service" in result.stdout
    assert "PASS  test:my-service" in result.stdout
    # the coverage regex of the job read the percentage from the job log
    assert "PASS  coverage:my-service 100.00% coverage" in result.stdout
    assert "line coverage 100.00% meets the threshold of 80%" in result.stdout + result.stderr


# --- scripts/ci/gitlab_api.py against a GitLab API stand-in on loopback --------------------------


class FakeGitLab(BaseHTTPRequestHandler):
    """Just the API calls the script makes; notes are paginated one per page."""

    notes: ClassVar[list[dict[str, Any]]] = []
    merge_requests: ClassVar[list[dict[str, Any]]] = []
    approved: ClassVar[set[int]] = set()
    calls: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, payload: Any, next_page: str = "") -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Next-Page", next_page)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> dict[str, Any]:
        length = int(self.headers["Content-Length"])
        data: dict[str, Any] = json.loads(self.rfile.read(length))
        return data

    def do_GET(self) -> None:
        assert self.headers["PRIVATE-TOKEN"] == "glpat-test"
        self.calls.append(f"GET {self.path}")
        path, _, query = self.path.partition("?")
        if path.endswith("/notes"):
            page = int(dict(p.split("=") for p in query.split("&"))["page"])
            items = self.notes[page - 1 : page]
            self.reply(items, str(page + 1) if page < len(self.notes) else "")
        elif path.endswith("/approvals"):
            self.reply({"approved": int(path.split("/")[-2]) in self.approved})
        else:
            self.reply([mr for mr in self.merge_requests if mr["state"] == "opened"])

    def do_PUT(self) -> None:
        self.calls.append(f"PUT {self.path}")
        self.reply({"updated": self.body()})

    def do_POST(self) -> None:
        self.calls.append(f"POST {self.path}")
        data = self.body()
        if self.path.endswith("/merge_requests"):
            data |= {"iid": 7, "state": "opened"}
        self.reply(data)


@pytest.fixture
def api_server() -> Iterator[str]:
    FakeGitLab.notes, FakeGitLab.merge_requests, FakeGitLab.calls = [], [], []
    FakeGitLab.approved = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    thread.join()


def gitlab_api(project: Path, api: str, *args: str | Path, token: str = "glpat-test") -> str:
    env = {
        "PATH": os.environ["PATH"],
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "my-org/my-service",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_DEFAULT_BRANCH": "main",
        "GITLAB_API_TOKEN": token,
        "TEMPLATE_UPDATE_TOKEN": token,
        "PROMOTE_TOKEN": token,
    }
    script = project / "scripts/ci/gitlab_api.py"
    return run([sys.executable, script, *args], cwd=project.parent, env=env).stdout


def test_note_is_created_once_then_updated_in_place(
    gitlab_project: Path, api_server: str, tmp_path: Path
) -> None:
    report = tmp_path / "coverage.md"
    report.write_text("<!-- coverage-report:my-service -->\nLine coverage: 91%\n", "utf-8")
    marker = "<!-- coverage-report:my-service -->"
    assert "created" in gitlab_api(gitlab_project, api_server, "note", "--marker", marker, report)
    FakeGitLab.notes = [
        {"id": 1, "body": "LGTM", "system": False},
        {"id": 2, "body": f"{marker}\nold", "system": False},
    ]
    out = gitlab_api(gitlab_project, api_server, "note", "--marker", marker, report)
    assert "updated note 2" in out
    project_notes = "/api/v4/projects/my-org%2Fmy-service/merge_requests/3/notes"
    assert FakeGitLab.calls[1] == f"POST {project_notes}"
    assert FakeGitLab.calls[-1] == f"PUT {project_notes}/2"
    assert sum(call.startswith("GET") for call in FakeGitLab.calls) == 3  # two pages, then one


def test_merge_request_is_opened_then_refreshed(
    gitlab_project: Path, api_server: str, tmp_path: Path
) -> None:
    body = tmp_path / "update.md"
    body.write_text("Template changelog\n", encoding="utf-8")
    args = ("merge-request", "--source", "template-update", "--title", "T", "--description", body)
    assert "opened merge request !7" in gitlab_api(gitlab_project, api_server, *args)
    FakeGitLab.merge_requests = [{"iid": 7, "state": "opened"}]
    assert "updated merge request !7" in gitlab_api(gitlab_project, api_server, *args)


def test_release_due_merges_only_approved_requests_whose_time_has_passed(
    gitlab_project: Path, api_server: str
) -> None:
    FakeGitLab.merge_requests = [
        {
            "iid": 1,
            "state": "opened",
            "source_branch": "promote/api-prod-1",
            "description": "release-at: 2030-01-31T09:00Z",
        },
        {
            "iid": 2,
            "state": "opened",
            "source_branch": "promote/api-prod-2",
            "description": "release-at: 2030-01-31T09:00Z",
        },
        {
            "iid": 3,
            "state": "opened",
            "source_branch": "promote/api-prod-3",
            "description": "release-at: 2030-02-01T09:00Z",
        },
        {
            "iid": 4,
            "state": "opened",
            "source_branch": "promote/api-prod-4",
            "description": "no release time",
        },
    ]
    FakeGitLab.approved = {1, 3, 4}
    out = gitlab_api(gitlab_project, api_server, "release-due", "--now", "2030-01-31T10:00Z")
    assert "released !1" in out
    merges = [call for call in FakeGitLab.calls if call.endswith("/merge")]
    assert merges == ["PUT /api/v4/projects/my-org%2Fmy-service/merge_requests/1/merge"]


def test_without_a_token_the_script_reports_and_passes(
    gitlab_project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.md"
    report.write_text("x\n", encoding="utf-8")
    out = gitlab_api(
        gitlab_project, "http://127.0.0.1:9/none", "note", "--marker", "m", str(report), token=""
    )
    assert "GITLAB_API_TOKEN is not set" in out


def test_gitlab_api_script_is_formatted_linted_and_typed(gitlab_project: Path, tool: Tool) -> None:
    script = gitlab_project / "scripts/ci/gitlab_api.py"
    run([tool("ruff"), "format", "--check", "--diff", script], cwd=gitlab_project)
    run([tool("ruff"), "check", script], cwd=gitlab_project)
    run([tool("mypy"), "--strict", script], cwd=gitlab_project)
