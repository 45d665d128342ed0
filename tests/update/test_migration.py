"""The update from v0.1.0 (one application: platform and service) to the monorepo layout.

The template repository is the real v0.1.0 commit of this repository, tagged v0.1.0, then the
working tree tagged v0.2.0. A project generated at v0.1.0, with a team's edits, takes the
documented upgrade (`copier update --trust --defaults`) and must end in the new layout, as a
fresh project of v0.2.0 with the same answers plus the team's edits, with nothing to resolve.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import run
from tests.monorepo import make
from tests.update.gitrepo import (
    GIT_ENV,
    archive_release,
    commit_all,
    conflict_markers,
    copy_project,
    git,
    release_from,
    snapshot_template,
)

USER_LINE = "# user edit: keep me"
SLUG = "shop"
# The user-owned files (`_skip_if_exists`): they may differ from a fresh project's.
USER_OWNED = (
    "README.md",
    ".gitlab/ci/custom.yml",
    "deploy/charts/*/values-*.yaml",
    "deploy/charts/*/smoke-test.sh",
    "apps/*",
    "package.json",
    "pnpm-lock.yaml",
    "pnpm-workspace.yaml",
    "packages/*",
)
TEMPLATE_OWNED_IN_APPS = (
    "Dockerfile",
    ".dockerignore",
    "Dockerfile.dockerignore",
    "catalog-info.yaml",
)


def user_owned(path: str) -> bool:
    if path.startswith("apps/") and Path(path).name in TEMPLATE_OWNED_IN_APPS:
        return path.count("/") != 2  # apps/<service>/<file> is the template's
    return any(fnmatch.fnmatch(path, pattern) for pattern in USER_OWNED)


def files(project: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def answers(project: Path, name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / name).read_text(encoding="utf-8"))
    return loaded


# The commit tagged v0.1.0, by hash: a CI checkout has the history but not always the tags.
V010_COMMIT = "e528a98ab0b96c0a46b1d6f9d6577374a8abd79a"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository: the real v0.1.0 commit, then the working tree as v0.2.0."""
    template = archive_release(
        tmp_path_factory.mktemp("releases") / "template", V010_COMMIT, "v0.1.0"
    )
    current = snapshot_template(tmp_path_factory.mktemp("current"))
    release_from(template, current, "v0.2.0")
    return template


def append(path: Path, line: str = USER_LINE) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{line}\n")


@pytest.mark.parametrize(
    ("ci_provider", "language", "deploy_target"),
    [("github", "python", "argocd"), ("gitlab", "node", "helm")],
)
def test_v010_project_updates_to_the_monorepo_layout_without_losing_edits(
    releases: Path, tmp_path: Path, ci_provider: str, language: str, deploy_target: str
) -> None:
    data = {
        "ci_provider": ci_provider,
        "language": language,
        "deploy_target": deploy_target,
        "project_slug": SLUG,
    }
    project = copy_project(releases, tmp_path / "project", vcs_ref="v0.1.0", data=data)
    assert not (project / f".copier-answers.{SLUG}.yml").exists()  # really the v0.1.0 layout
    service_code = sorted(
        path for path in (project / f"apps/{SLUG}/src").rglob("*") if path.is_file()
    )[0]
    edited = [
        service_code,
        project / f"deploy/charts/{SLUG}/values-dev.yaml",
        project / "README.md",
    ]
    for path in edited:
        append(path)
    if ci_provider == "gitlab":
        append(project / ".gitlab/ci/services.yml")
    commit_all(project, "Our own changes")

    # The documented upgrade (docs/updating.md).
    run(
        [Path(sys.executable).parent / "copier", "update", "--trust", "--defaults", "--quiet"],
        cwd=project,
        env={**os.environ, **GIT_ENV},
    )

    platform = answers(project, ".copier-answers.yml")
    service = answers(project, f".copier-answers.{SLUG}.yml")
    assert platform["scope"] == "platform"
    assert platform["_commit"] == service["_commit"] == "v0.2.0"
    assert platform["_src_path"] == service["_src_path"] == str(releases)
    assert "project_slug" not in platform
    host = "gitlab.com" if ci_provider == "gitlab" else "github.com"
    assert platform["repo_url"] == service["repo_url"] == f"https://{host}/my-org/{SLUG}.git"
    assert (service["scope"], service["project_slug"], service["language"]) == (
        "service",
        SLUG,
        language,
    )
    for path in edited:
        assert path.read_text(encoding="utf-8").endswith(f"{USER_LINE}\n"), path
    if ci_provider == "gitlab":
        assert not (project / ".gitlab/ci/services.yml").exists()
        custom = (project / ".gitlab/ci/custom.yml").read_text(encoding="utf-8")
        assert custom.startswith("# Moved from .gitlab/ci/services.yml")
        # The old blocks are kept, commented out (they would replace the new jobs' keys), and
        # the file is still a valid GitLab include.
        assert f"# {USER_LINE}\n" in custom
        assert "# lint:" in custom
        assert set(yaml.safe_load(custom)) == {".custom"}
    assert conflict_markers(project) == []
    assert not list((project / "deploy").glob(f"argocd/{SLUG}-*.yaml"))

    # The same files as a fresh v0.2.0 project with these answers; template-owned ones identical.
    # The same answers: those the project recorded, defaults of v0.1.0 included (its registry,
    # ghcr then, stays when v0.2.0's default for GitLab is GitLab's own: an update keeps them).
    recorded = {
        key: value
        for key, value in {**platform, **service}.items()
        if not key.startswith("_") and key != "scope"
    }
    fresh = copy_project(releases, tmp_path / "fresh", vcs_ref="v0.2.0", data=recorded)
    migrated, expected = files(project), files(fresh)
    assert sorted(migrated) == sorted(expected)
    differing = sorted(path for path in expected if migrated[path] != expected[path])
    assert [path for path in differing if not user_owned(path)] == []

    # The monorepo commands work from here: another service, then an update with nothing to do.
    commit_all(project, "Update to the monorepo layout")
    make(project, "add-service", "NAME=worker", "LANGUAGE=go", "COPIER_ARGS=--defaults")
    assert answers(project, ".copier-answers.worker.yml")["repo_url"] == platform["repo_url"]
    commit_all(project, "Add the worker")
    make(project, "update")
    assert git(project, "status", "--porcelain") == ""
