"""The scheduled template-update job and the fleet script: on real repositories, and linted."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import run
from tests.update.conftest import replace_in
from tests.update.gitrepo import GIT_ENV, commit_all, copy_project, git

SCRIPT = Path("scripts/ci/template_update.py")
FLEET = Path("scripts/fleet.py")
WORKFLOW = Path(".github/workflows/template-update.yml")


def load_script(path: Path) -> ModuleType:
    """Import a generated script as a module, to unit-test its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_job_script(project: Path) -> tuple[dict[str, str], str]:
    """Run the script as the workflow does; returns its outputs and the pull request body."""
    body, output = project.parent / "body.md", project.parent / "output.txt"
    output.write_text("", encoding="utf-8")
    env = {**os.environ, **GIT_ENV}
    completed = subprocess.run(
        [sys.executable, SCRIPT, "--body", body, "--output", output],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = dict(line.split("=", 1) for line in output.read_text("utf-8").splitlines())
    return results, body.read_text(encoding="utf-8") if body.exists() else ""


def test_job_updates_and_writes_the_changelog_of_the_new_version(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")

    results, body = run_job_script(project)

    assert results == {"updated": "true", "conflicts": "false", "version": "0.2.0"}
    assert "from devops-template 0.1.0 to 0.2.0" in body
    assert (
        "Applications updated: platform (`.copier-answers.yml`),"
        " service my-service (`.copier-answers.my-service.yml`)." in body
    )
    assert "## [0.2.0]" in body
    assert "yamllint allows 130 characters" in body
    assert "Needs attention" not in body
    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    dockerfile = (project / "apps/my-service/Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.endswith("# fixed in v0.2.0\n")
    assert git(project, "diff", "--cached", "--name-only") == ""  # for the job to commit


def test_job_flags_conflicts_instead_of_pretending_success(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    replace_in(project / ".yamllint.yaml", "max: 120", "max: 100")
    with (project / "apps/my-service/Dockerfile").open("a", encoding="utf-8") as dockerfile:
        dockerfile.write("# our own last line\n")
    commit_all(project, "Our line length and Dockerfile")

    results, body = run_job_script(project)

    assert results["conflicts"] == "true"
    assert "**Needs attention:**" in body
    attention = body[body.index("**Needs attention:**") : body.index("## Template changelog")]
    assert attention.splitlines()[4:] == [
        "- platform (`.copier-answers.yml`):",
        "  - `.yamllint.yaml`",
        "- service my-service (`.copier-answers.my-service.yml`):",
        "  - `apps/my-service/Dockerfile`",
        "",
    ]


def test_job_does_nothing_when_the_project_is_current(template_repo: Path, tmp_path: Path) -> None:
    project = copy_project(template_repo, tmp_path / "project", vcs_ref="v0.2.0")

    results, body = run_job_script(project)

    assert results == {"updated": "false", "conflicts": "false", "version": "0.2.0"}
    assert body == ""
    assert git(project, "status", "--porcelain") == ""


def test_conflict_detection_sees_an_unmerged_index(
    default_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = load_script(default_project / FLEET)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("base\n", encoding="utf-8")
    commit_all(repo, "base")
    git(repo, "switch", "-q", "-c", "other")
    (repo / "a.txt").write_text("theirs\n", encoding="utf-8")
    commit_all(repo, "theirs")
    git(repo, "switch", "-q", "main")
    (repo / "a.txt").write_text("ours\n", encoding="utf-8")
    (repo / "b.txt.rej").write_text("@@ rejected hunk\n", encoding="utf-8")
    commit_all(repo, "ours")
    merge = subprocess.run(["git", "merge", "other"], cwd=repo, capture_output=True, check=False)
    assert merge.returncode != 0

    monkeypatch.chdir(repo)
    assert fleet.find_conflicts() == ["a.txt"]
    (repo / "c.txt.rej").write_text("@@ new rejected hunk\n", encoding="utf-8")
    assert fleet.find_conflicts() == ["a.txt", "c.txt.rej"]


@pytest.mark.parametrize(
    ("current", "latest", "expected"),
    [("0.1.0", "0.2.0", ["0.2.0"]), ("0.1.0", "0.3.0", ["0.3.0", "0.2.0"]), ("0.3.0", "0.3.0", [])],
)
def test_changelog_excerpt_holds_only_the_new_versions(
    default_project: Path, current: str, latest: str, expected: list[str]
) -> None:
    template_update = load_script(default_project / SCRIPT)
    changelog = (
        "# Changelog\n\n## [Unreleased]\n\n- soon\n\n## [0.3.0] - 2026-12-01\n\n- three\n\n"
        "## [0.2.0] - 2026-11-25\n\n- two\n\n## [0.1.0] - 2026-11-01\n\n- one\n"
    )
    excerpt = template_update.changelog_excerpt(changelog, current, latest)
    assert [line[4:9] for line in excerpt.splitlines() if line.startswith("## [")] == expected
    assert "soon" not in excerpt


def test_fleet_workflow_is_clean_under_actionlint_and_zizmor(
    default_project: Path, tool: Callable[[str], str]
) -> None:
    workflow = default_project / WORKFLOW
    run([tool("actionlint"), "-shellcheck", tool("shellcheck"), workflow], cwd=default_project)
    run([tool("zizmor"), "--offline", "--persona", "pedantic", workflow], cwd=default_project)


@pytest.mark.parametrize("script", [SCRIPT, FLEET])
def test_scripts_are_formatted_and_typed(
    default_project: Path, tool: Callable[[str], str], script: Path
) -> None:
    run([tool("ruff"), "format", "--check", "--diff", script], cwd=default_project)
    run([tool("ruff"), "check", script], cwd=default_project)
    run([tool("mypy"), "--strict", script], cwd=default_project)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", {}),
        ("coverage_threshold=90", {"coverage_threshold": "90"}),
        (
            "environments=[dev, qa, staging, prod] description=Billing and invoices",
            {"environments": "[dev, qa, staging, prod]", "description": "Billing and invoices"},
        ),
    ],
)
def test_data_items_may_hold_spaces(
    default_project: Path, data: str, expected: dict[str, str]
) -> None:
    fleet = load_script(default_project / FLEET)
    assert fleet.parse_data(data) == expected
