"""`make new` makes a project that `copier update` can update (issue #13, items 1 and 6).

The template is a git snapshot of the working tree (tagged v0.1.0), as a user's clone is; its
`.venv` is this checkout's (bootstrapped), so `make new` runs offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, run
from tests.update.gitrepo import GIT_ENV, commit_all, git, snapshot_template


def env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A clone of the template at v0.1.0 with this checkout's virtualenv (ignored, as .venv/ is)."""
    template = snapshot_template(tmp_path / "devops-template")
    (template / ".venv").symlink_to(REPO_ROOT / ".venv")
    with (template / ".git/info/exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(".venv\n")
    assert git(template, "status", "--porcelain") == ""
    return template


def make_new(template: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    return run(["make", "new", *variables], cwd=template, env=env(), check=False, timeout=900)


def test_make_new_project_updates_with_a_plain_copier_update(
    template: Path, tmp_path: Path
) -> None:
    created = make_new(template, "DEST=../shop", "COPIER_ARGS=--defaults --data owner=acme")
    assert created.returncode == 0, created.stderr
    project = tmp_path / "shop"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    # A relative DEST, an absolute source: the path is the template's, wherever `make` ran.
    assert answers["_src_path"] == str(template)
    assert answers["_commit"] == "v0.1.0"
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Initial commit from devops-template")

    yamllint = template / "template/platform/.yamllint.yaml"
    yamllint.write_text(
        yamllint.read_text(encoding="utf-8").replace("max: 120", "max: 130"), encoding="utf-8"
    )
    commit_all(template, "template v0.2.0", "v0.2.0")

    copier = REPO_ROOT / ".venv/bin/copier"
    updated = run(
        [copier, "update", "--trust", "--defaults", "--conflict", "inline"],
        cwd=project,
        env=env(),
        check=False,
        timeout=900,
    )

    assert updated.returncode == 0, updated.stderr
    assert "Traceback" not in updated.stderr
    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == "v0.2.0"
    # Copier's closing message: where the changelog is, and no conflict here.
    assert f"What changed: {template / 'CHANGELOG.md'}" in updated.stderr
    assert "No conflicts" in updated.stderr


def test_update_lists_the_files_left_with_conflicts(template: Path, tmp_path: Path) -> None:
    assert make_new(template, "DEST=../shop", "COPIER_ARGS=--defaults").returncode == 0
    project = tmp_path / "shop"
    git(project, "init", "-q", "-b", "main")
    yamllint = project / ".yamllint.yaml"
    yamllint.write_text(
        yamllint.read_text(encoding="utf-8").replace("max: 120", "max: 100"), encoding="utf-8"
    )
    commit_all(project, "Initial commit, with our own line length")
    source = template / "template/platform/.yamllint.yaml"
    source.write_text(
        source.read_text(encoding="utf-8").replace("max: 120", "max: 130"), encoding="utf-8"
    )
    commit_all(template, "template v0.2.0", "v0.2.0")

    updated = run(
        [REPO_ROOT / ".venv/bin/copier", "update", "--trust", "--defaults", "--conflict", "inline"],
        cwd=project,
        env=env(),
        check=False,
        timeout=900,
    )

    assert updated.returncode == 0, updated.stderr
    listed = updated.stderr.split("Files left with conflicts", 1)[1].splitlines()
    assert "  - .yamllint.yaml" in listed


def test_make_new_refuses_uncommitted_template_changes_at_head(
    template: Path, tmp_path: Path
) -> None:
    (template / "copier.yml").write_text(
        (template / "copier.yml").read_text(encoding="utf-8") + "# draft\n", encoding="utf-8"
    )

    refused = make_new(template, "DEST=../shop", "REF=HEAD", "COPIER_ARGS=--defaults")

    assert refused.returncode != 0
    assert "make new: the template checkout has uncommitted changes (copier.yml)" in refused.stderr
    assert "DRAFT=1" in refused.stderr
    assert not (tmp_path / "shop").exists()


def test_make_new_refuses_a_checkout_without_git(template: Path, tmp_path: Path) -> None:
    shutil.rmtree(template / ".git")

    refused = make_new(template, "DEST=../shop", "COPIER_ARGS=--defaults")

    assert refused.returncode != 0
    assert "is not a git checkout of the template" in refused.stderr
    assert not (tmp_path / "shop").exists()


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            "--data language=cobol",
            "make new: Invalid choice for 'language': 'cobol' is not in"
            " ['python', 'node', 'go', 'java']",
        ),
        (
            "--data registry=harbor",
            "make new: registry_host: required with Harbor: give your registry's host name,"
            " e.g. harbor.<your domain> (--data registry_host=<host>).",
        ),
        (
            "--data owner=bad!owner",
            "make new: owner: 'bad!owner' is not a GitHub organisation/user or a GitLab group"
            " path, e.g. acme or acme/platform.",
        ),
    ],
    ids=["choice", "required", "validator"],
)
def test_a_refused_answer_is_one_line_naming_the_question(
    template: Path, tmp_path: Path, data: str, line: str
) -> None:
    refused = make_new(template, "DEST=../shop", f"COPIER_ARGS=--defaults {data}")

    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    ours = [text for text in refused.stderr.splitlines() if not text.startswith("make:")]
    assert ours == [line]
    assert not (tmp_path / "shop").exists()
