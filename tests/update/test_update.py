"""`copier update` on real git repositories: fixes land, migrations run, user work survives.

The pattern is Copier's own: template at v0.1.0 -> copy -> user edits -> template v0.2.0 ->
update -> assert. v0.2.0 brings a fix to a template-owned file, a new file, and a rename of a
user-owned file (values-<env>.yaml -> env/<env>.yaml) carried by a migration.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import run
from tests.update.conftest import replace_in
from tests.update.gitrepo import (
    GIT_ENV,
    commit_all,
    conflict_markers,
    copy_project,
    git,
    update_project,
)

USER_LINE = "# user edit: keep me"


def make_user_edits(project: Path) -> dict[Path, str]:
    """Edits a team makes after generating; returns the files and the text they must keep."""
    service_code = sorted((project / "apps/my-service/src").rglob("*.py"))[0]
    values_prod = project / "deploy/charts/my-service/values-prod.yaml"
    notes = project / "notes/decisions.md"
    for path in (service_code, values_prod):
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{USER_LINE}\n")
    notes.parent.mkdir()
    notes.write_text("# Our decisions\n", encoding="utf-8")
    commit_all(project, "Our own changes")
    return {
        service_code: USER_LINE,
        project / "deploy/charts/my-service/env/prod.yaml": USER_LINE,
        notes: "# Our decisions",
    }


@pytest.mark.parametrize("ci_provider", ["github", "gitlab"])
def test_update_brings_fixes_runs_migrations_and_keeps_user_work(
    template_repo: Path, tmp_path: Path, ci_provider: str
) -> None:
    project = copy_project(template_repo, tmp_path / "project", data={"ci_provider": ci_provider})
    kept = make_user_edits(project)
    if ci_provider == "gitlab":
        services = project / ".gitlab/ci/services.yml"
        with services.open("a", encoding="utf-8") as handle:
            handle.write(f"{USER_LINE}\n")
        commit_all(project, "Our CI jobs")
        kept[services] = USER_LINE

    update_project(project)

    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    service = project / "apps/my-service"
    assert "# fixed in v0.2.0" in (service / "Dockerfile").read_text(encoding="utf-8")
    assert "# changed in v0.2.0" not in (service / "Makefile").read_text(encoding="utf-8")
    assert (project / "docs/runbook.md").read_text(encoding="utf-8") == "# Runbook of my-service\n"
    chart = project / "deploy/charts/my-service"
    assert sorted(p.name for p in chart.glob("values-*.yaml")) == []
    assert sorted(p.name for p in (chart / "env").iterdir()) == [
        "dev.yaml",
        "prod.yaml",
        "staging.yaml",
    ]
    for path, text in kept.items():
        assert text in path.read_text(encoding="utf-8"), path
    assert conflict_markers(project) == []
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == "v0.2.0"


def test_user_edit_to_a_template_owned_line_becomes_a_visible_conflict(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    replace_in(project / ".yamllint.yaml", "max: 120", "max: 100")
    commit_all(project, "Stricter line length")

    update_project(project)

    text = (project / ".yamllint.yaml").read_text(encoding="utf-8")
    assert conflict_markers(project) == [".yamllint.yaml"]
    assert "max: 100" in text  # the user's line is still there ...
    assert "max: 130" in text  # ... beside the template's, for a person to decide


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

    update_project(project)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["owner"] == "acme"
    assert answers["environments"] == ["dev", "prod"]
    assert answers["coverage_threshold"] == 95
    assert answers["project_slug"] == "my-service"  # the template's default
    assert answers["_commit"] == "v0.2.0"
    assert sorted(p.name for p in (project / "deploy/charts/my-service/env").iterdir()) == [
        "dev.yaml",
        "prod.yaml",
    ]
    assert conflict_markers(project) == []


def test_changing_deploy_target_later_yields_the_helm_tree(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    assert (project / "deploy/argocd").is_dir()

    update_project(project, vcs_ref="v0.1.0", data={"deploy_target": "helm"})

    fresh = copy_project(template_repo, tmp_path / "fresh", data={"deploy_target": "helm"})
    assert not (project / "deploy/argocd").exists()
    assert tree(project) == tree(fresh)


def test_adding_an_environment_later_keeps_the_existing_overlays(
    template_repo: Path, tmp_path: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    values_prod = project / "deploy/charts/my-service/values-prod.yaml"
    with values_prod.open("a", encoding="utf-8") as handle:
        handle.write(f"{USER_LINE}\n")
    commit_all(project, "Tune prod")

    update_project(
        project, vcs_ref="v0.1.0", data={"environments": ["dev", "qa", "staging", "prod"]}
    )

    chart = project / "deploy/charts/my-service"
    assert (chart / "values-qa.yaml").is_file()
    assert (project / "deploy/argocd/my-service-qa.yaml").is_file()
    assert USER_LINE in values_prod.read_text(encoding="utf-8")
    assert conflict_markers(project) == []


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

    update_project(project)

    assert not (project / ".editorconfig").exists()
    assert git(project, "status", "--porcelain", "--", ".editorconfig") == ""


def test_update_refuses_a_dirty_work_tree(template_repo: Path, tmp_path: Path) -> None:
    project = copy_project(template_repo, tmp_path / "project")
    shutil.copy2(project / "Makefile", project / "Makefile.bak")
    with pytest.raises(Exception, match=r"(?i)dirty|clean"):
        update_project(project)
