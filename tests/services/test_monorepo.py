"""Services of every language side by side in one repository, built by the documented commands.

`copier copy` with the first service, then `make add-service` for each other one
(tests/monorepo.py). The real toolchains run: uv, pnpm, go, Maven on JDK 25, sharing this
machine's caches as the single-service tests do.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import LANGUAGES
from tests.helpers import load_yaml_documents, run
from tests.monorepo import FOUR_SERVICES, build_monorepo, lint_deploy_env, tool_env
from tests.services.contract import parse_dockerfile, read_reports
from tests.update.gitrepo import git, snapshot_template

# Shared files of the pnpm workspace at the repository root: one copy, whatever the services.
WORKSPACE_FILES = (
    "package.json",
    "pnpm-workspace.yaml",
    "tsconfig.base.json",
    "eslint.config.js",
    ".prettierrc.json",
)
TWO_NODE_SERVICES = (("web", "node"), ("site", "node"))
ANNOTATIONS = {
    "devops-template/language",
    "devops-template/build-context",
    "devops-template/dockerfile",
    "devops-template/image",
    "devops-template/chart",
    "devops-template/watch",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def four_services(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_monorepo(template, tmp_path_factory.mktemp("four") / "shop")


@pytest.fixture(scope="module")
def two_node_services(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_monorepo(template, tmp_path_factory.mktemp("node") / "shop", TWO_NODE_SERVICES)


def descriptor(project: Path, service: str) -> dict[str, Any]:
    path = project / "apps" / service / "catalog-info.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


# --- every language lints and tests from the root ------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_for_four_languages(
    four_services: Path, java_env: dict[str, str], schemas_dir: Path
) -> None:
    env = {**tool_env(), "JAVA_HOME": java_env["JAVA_HOME"]}
    env["PATH"] = f"{java_env['JAVA_HOME']}/bin:{env['PATH']}"

    lint = run(
        ["make", "lint"], cwd=four_services, env=lint_deploy_env(schemas_dir, env), timeout=1800
    )
    assert "lint-deploy: every check passed" in lint.stdout
    result = run(["make", "test"], cwd=four_services, env=env, timeout=1800)

    for name, _ in FOUR_SERVICES:
        reports = read_reports(four_services / "apps" / name)
        assert reports.failed == 0, name
        assert reports.tests >= 5, name
        assert reports.line_rate >= 0.8, name
        assert f"Entering directory '{four_services / 'apps' / name}'" in result.stdout


# --- the descriptor: a Backstage Component whose annotations name real paths ---------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "language"), FOUR_SERVICES, ids=[n for n, _ in FOUR_SERVICES])
def test_descriptor_is_a_backstage_component_naming_the_real_paths(
    four_services: Path, name: str, language: str
) -> None:
    project = four_services
    component = descriptor(project, name)
    # The Backstage Component shape (catalog-info.yaml, kind Component, v1alpha1).
    assert component["apiVersion"] == "backstage.io/v1alpha1"
    assert component["kind"] == "Component"
    metadata, spec = component["metadata"], component["spec"]
    assert re.fullmatch(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", metadata["name"])
    assert len(name) <= 63
    assert metadata["name"] == name
    assert {"type", "lifecycle", "owner"} <= spec.keys()
    assert all(isinstance(spec[key], str) and spec[key] for key in ("type", "lifecycle", "owner"))
    annotations: dict[str, str] = metadata["annotations"]
    assert annotations.keys() >= ANNOTATIONS
    assert all(isinstance(value, str) for value in annotations.values())
    for key in annotations:
        prefix, _, rest = key.partition("/")
        assert re.fullmatch(r"[a-z0-9.-]+", prefix), key
        assert re.fullmatch(r"[A-Za-z0-9._-]+", rest), key

    # Each annotation is what the repository really has.
    assert annotations["devops-template/language"] == language
    dockerfile = project / annotations["devops-template/dockerfile"]
    assert dockerfile == project / "apps" / name / "Dockerfile"
    assert dockerfile.is_file()
    context = project / annotations["devops-template/build-context"]
    assert context.is_dir()
    for stage in parse_dockerfile(dockerfile.read_text(encoding="utf-8")):
        for value in stage.values("COPY"):
            if value.startswith("--from="):
                continue
            for source in (s for s in shlex.split(value)[:-1] if not s.startswith("--")):
                assert list(context.glob(source.rstrip("/"))), f"{source} is not in {context}"
    chart = project / annotations["devops-template/chart"]
    chart_meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart == project / "deploy" / "charts" / name
    assert chart_meta["name"] == name
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    image = values["image"]
    assert annotations["devops-template/image"] == image["repository"]
    watch = annotations["devops-template/watch"].split()
    assert watch[:2] == [f"apps/{name}/", f"deploy/charts/{name}/"]
    assert watch[2:] == list(LANGUAGES[language].shared_paths)
    for path in watch:
        assert (project / path).exists(), f"watch names {path}, which does not exist"


# --- Node services share one pnpm workspace and lockfile -----------------------------------------


@pytest.mark.slow
def test_second_node_service_joins_the_lockfile_and_lints_and_tests_beside_the_first(
    two_node_services: Path,
) -> None:
    """`make add-service` adds the second service's importer to the lockfile and changes nothing
    else in it: the first service keeps the packages it had, and its files are untouched
    (test_second_node_service_leaves_the_workspace_files_alone), so its lint and test are those
    of tests/services/test_node_service.py. The second one lints and tests in the shared
    workspace, installed frozen."""
    project = two_node_services
    lockfile = (project / "pnpm-lock.yaml").read_text(encoding="utf-8")
    assert not re.search(r"://|\btarball\b|registry\.", lockfile), "a download address"
    before = load_yaml_documents(git(project, "show", "HEAD~1:pnpm-lock.yaml"))
    after = load_yaml_documents(lockfile)
    assert "apps/site" not in before[-1]["importers"]
    site = after[-1]["importers"].pop("apps/site")
    assert site["dependencies"].keys() == before[-1]["importers"]["apps/web"]["dependencies"].keys()
    assert after == before, "adding a service changed more of the lockfile than its importer"
    env = tool_env()

    run(["pnpm", "install", "--frozen-lockfile", "--use-stderr"], cwd=project, env=env)
    run(["make", "lint"], cwd=project / "apps" / "site", env=env)
    run(["make", "test"], cwd=project / "apps" / "site", env=env)
    reports = read_reports(project / "apps" / "site")
    assert reports.failed == 0
    assert reports.tests >= 20
    # Installing changed no tracked file: the lockfile was already what pnpm writes.
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in TWO_NODE_SERVICES])
def test_each_node_dockerfile_builds_its_own_service(two_node_services: Path, name: str) -> None:
    service = two_node_services / "apps" / name
    other = next(n for n, _ in TWO_NODE_SERVICES if n != name)
    dockerfile = (service / "Dockerfile").read_text(encoding="utf-8")
    ignore = (service / "Dockerfile.dockerignore").read_text(encoding="utf-8")

    build = parse_dockerfile(dockerfile)[0]
    assert f"apps/{name}/ apps/{name}/" in build.values("COPY")
    assert f'--filter "{name}..."' in " ".join(build.values("RUN"))
    assert f"--filter {name} deploy" in " ".join(build.values("RUN"))
    assert f"!apps/{name}/" in ignore.split()
    assert f"apps/{other}" not in dockerfile + ignore


@pytest.mark.slow
def test_second_node_service_leaves_the_workspace_files_alone(two_node_services: Path) -> None:
    # The commit of `make add-service NAME=site`: the service, its chart and answers, and the
    # new importer in the lockfile; no workspace file is written again or duplicated.
    changed = git(two_node_services, "show", "--name-only", "--format=", "HEAD").split()
    assert "pnpm-lock.yaml" in changed
    assert not set(WORKSPACE_FILES) & set(changed)
    outside = {
        path for path in changed if not path.startswith(("apps/site/", "deploy/charts/site/"))
    }
    assert outside == {".copier-answers.site.yml", "pnpm-lock.yaml"}
    for name in WORKSPACE_FILES[1:]:  # a service has its own package.json, nothing else here
        assert not (two_node_services / "apps" / "site" / name).exists(), name
