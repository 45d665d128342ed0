"""`make update` on real git repositories: fixes land, migrations run, user work survives.

The pattern is Copier's own: template at v0.1.0 -> copy -> user edits -> template v0.2.0 ->
update -> assert. v0.2.0 brings a fix to a template-owned platform file and to every service's
Dockerfile, a new file, a change to the user-owned service Makefile (which must not arrive) and
a rename of a user-owned file (values-<env>.yaml -> env/<env>.yaml) carried by a migration.
`make update` updates the platform and then every service, each from its own answers file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import run
from tests.monorepo import make
from tests.update.conftest import CHANGED, FIXED, replace_in
from tests.update.gitrepo import GIT_ENV, commit_all, conflict_markers, copy_project, git

USER_LINE = "# user edit: keep me"
SERVICE = "my-service"


def answers(project: Path, name: str = ".copier-answers.yml") -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / name).read_text(encoding="utf-8"))
    return loaded


def make_user_edits(project: Path) -> dict[Path, str]:
    """Edits a team makes after generating; returns the files and the text they must keep."""
    service_code = sorted((project / f"apps/{SERVICE}/src").rglob("*.py"))[0]
    values_prod = project / f"deploy/charts/{SERVICE}/values-prod.yaml"
    notes = project / "notes/decisions.md"
    for path in (service_code, values_prod):
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{USER_LINE}\n")
    notes.parent.mkdir()
    notes.write_text("# Our decisions\n", encoding="utf-8")
    commit_all(project, "Our own changes")
    return {
        service_code: USER_LINE,
        project / f"deploy/charts/{SERVICE}/env/prod.yaml": USER_LINE,
        notes: "# Our decisions",
    }


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_update_brings_fixes_runs_migrations_and_keeps_user_work(
    template_repo: Path, tmp_path: Path, ci_provider: str
) -> None:
    project = copy_project(template_repo, tmp_path / "project", data={"ci_provider": ci_provider})
    kept = make_user_edits(project)
    if ci_provider == "gitlab":
        custom = project / ".gitlab/ci/custom.yml"
        with custom.open("a", encoding="utf-8") as handle:
            handle.write(f"{USER_LINE}\n")
        commit_all(project, "Our CI jobs")
        kept[custom] = USER_LINE
    head = git(project, "rev-parse", "HEAD")

    make(project, "update")

    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    service = project / f"apps/{SERVICE}"
    assert (service / "Dockerfile").read_text(encoding="utf-8").endswith(FIXED)
    assert CHANGED not in (service / "Makefile").read_text(encoding="utf-8")
    assert (project / "docs/runbook.md").read_text(encoding="utf-8") == "# Runbook of my-service\n"
    chart = project / f"deploy/charts/{SERVICE}"
    assert sorted(p.name for p in chart.glob("values-*.yaml")) == []
    assert sorted(p.name for p in (chart / "env").iterdir()) == [
        "dev.yaml",
        "prod.yaml",
        "staging.yaml",
    ]
    for path, text in kept.items():
        assert text in path.read_text(encoding="utf-8"), path
    assert conflict_markers(project) == []
    assert answers(project)["_commit"] == "v0.2.0"
    assert answers(project, f".copier-answers.{SERVICE}.yml")["_commit"] == "v0.2.0"
    # Left for review: the branch has not moved, the changes are in the work tree.
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(project, "diff", "--cached", "--name-only") == ""
    assert " M .yamllint.yaml" in git(project, "status", "--porcelain").splitlines()


def test_conflicts_are_listed_per_application_and_file_and_fail_the_command(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    replace_in(project / ".yamllint.yaml", "max: 120", "max: 100")
    with (project / f"apps/{SERVICE}/Dockerfile").open("a", encoding="utf-8") as dockerfile:
        dockerfile.write("# our own last line\n")
    commit_all(project, "Stricter line length, our Dockerfile")

    completed = make(project, "update", check=False)

    assert completed.returncode != 0
    listing = completed.stdout[completed.stdout.index("conflicts to resolve") :]
    assert listing.splitlines()[1:5] == [
        "  platform (.copier-answers.yml):",
        "    - .yamllint.yaml",
        f"  service {SERVICE} (.copier-answers.{SERVICE}.yml):",
        f"    - apps/{SERVICE}/Dockerfile",
    ]
    text = (project / ".yamllint.yaml").read_text(encoding="utf-8")
    assert "max: 100" in text  # the user's line is still there ...
    assert "max: 130" in text  # ... beside the template's, for a person to decide
    assert conflict_markers(project) == [".yamllint.yaml", f"apps/{SERVICE}/Dockerfile"]


def test_org_data_file_answers_are_recorded_and_survive_updates(
    template_repo: Path, tmp_path: Path
) -> None:
    """`copier copy --data-file org.yml --data ...`: the data file beats the template's
    defaults, --data beats the data file, and updates keep every recorded answer."""
    org = tmp_path / "org.yml"
    org.write_text(
        "owner: acme\nenvironments: [dev, prod]\ncoverage_threshold: 90\n", encoding="utf-8"
    )
    project = tmp_path / "project"
    run(
        [
            Path(sys.executable).parent / "copier",
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "v0.1.0",
            "--data-file",
            org,
            "--data",
            "coverage_threshold=95",
            template_repo,
            project,
        ],
        env={**os.environ, **GIT_ENV},
    )
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Initial commit")

    make(project, "update")

    for name in (".copier-answers.yml", f".copier-answers.{SERVICE}.yml"):
        recorded = answers(project, name)
        assert recorded["owner"] == "acme", name
        assert recorded["environments"] == ["dev", "prod"], name
        assert recorded["coverage_threshold"] == 95, name
        assert recorded["_commit"] == "v0.2.0", name
    assert answers(project, f".copier-answers.{SERVICE}.yml")["project_slug"] == SERVICE
    assert sorted(p.name for p in (project / f"deploy/charts/{SERVICE}/env").iterdir()) == [
        "dev.yaml",
        "prod.yaml",
    ]
    assert conflict_markers(project) == []


def test_changing_deploy_target_later_yields_the_helm_tree(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    assert (project / "deploy/argocd").is_dir()

    make(project, "update", "DATA=deploy_target=helm", "COPIER_ARGS=--vcs-ref=v0.1.0")

    fresh = copy_project(template_repo, tmp_path / "fresh", data={"deploy_target": "helm"})
    assert not (project / "deploy/argocd").exists()
    assert tree(project) == tree(fresh)


def test_rendering_is_replay_safe(template_repo: Path, tmp_path: Path) -> None:
    """The same answers and version render the same bytes (no time, randomness or network)."""
    first = copy_project(template_repo, tmp_path / "first")
    second = copy_project(template_repo, tmp_path / "second")
    assert tree(first) == tree(second)


def tree(project: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def test_deleted_template_owned_file_stays_deleted_after_update(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    (project / ".editorconfig").unlink()
    commit_all(project, "We do not use editorconfig")

    make(project, "update")

    assert not (project / ".editorconfig").exists()
    assert git(project, "status", "--porcelain", "--", ".editorconfig") == ""


def test_update_refuses_a_dirty_work_tree_and_changes_nothing(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    shutil.copy2(project / "Makefile", project / "Makefile.bak")

    completed = make(project, "update", check=False)

    assert completed.returncode != 0
    assert "uncommitted changes; commit or stash them first" in completed.stderr
    assert git(project, "status", "--porcelain") == "?? Makefile.bak\n"
    assert answers(project)["_commit"] == "v0.1.0"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("description=Billing", "description is a service's own answer; give SERVICE=<name>"),
        ("project_slug=other", "project_slug names a service"),
        ("oops", "'oops' is not question=value"),
    ],
)
def test_update_refuses_data_it_cannot_apply_safely(
    template_repo: Path, tmp_path: Path, data: str, message: str
) -> None:
    project = copy_project(template_repo, tmp_path / "project")

    completed = make(project, "update", f"DATA={data}", check=False)

    assert completed.returncode != 0
    assert message in completed.stderr
    assert git(project, "status", "--porcelain") == ""
