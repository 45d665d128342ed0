"""Real git repositories for update tests: a tagged template built from the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from copier import run_copy, run_update

from tests.helpers import REPO_ROOT

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Update Test",
    "GIT_AUTHOR_EMAIL": "update-test@example.com",
    "GIT_COMMITTER_NAME": "Update Test",
    "GIT_COMMITTER_EMAIL": "update-test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{completed.stderr}")
    return completed.stdout


def commit_all(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    if tag:
        git(repo, "tag", tag)


def snapshot_template(destination: Path, tag: str = "v0.1.0") -> Path:
    """The working tree (tracked and new files, not ignored ones) as a template repo at `tag`."""
    listed = git(REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for relative in filter(None, listed.split("\0")):
        source = REPO_ROOT / relative
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, f"template {tag}", tag)
    return destination


def copy_project(
    template: Path,
    destination: Path,
    vcs_ref: str = "v0.1.0",
    data: dict[str, Any] | None = None,
    data_file_answers: dict[str, Any] | None = None,
) -> Path:
    """`copier copy` then the first commit, as a user does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(template),
            destination,
            data=data or {},
            user_defaults=data_file_answers or {},
            defaults=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, "Initial commit from devops-template")
    return destination


def update_project(
    project: Path, vcs_ref: str | None = None, data: dict[str, Any] | None = None
) -> None:
    """`copier update --defaults --conflict inline`, as the fleet job runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_update(
            project,
            data=data or {},
            defaults=True,
            overwrite=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            conflict="inline",
            quiet=True,
        )


def conflict_markers(project: Path) -> list[str]:
    """Files with inline conflict markers or left-over .rej files."""
    found = []
    for path in project.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        if path.suffix == ".rej":
            found.append(str(path.relative_to(project)))
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "<<<<<<< " in text and ">>>>>>> " in text:
            found.append(str(path.relative_to(project)))
    return sorted(found)


def release_from(repo: Path, source: Path, tag: str) -> None:
    """Make `source`'s files (a snapshot_template) the next commit of `repo`, tagged `tag`."""
    for path in repo.iterdir():
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in source.iterdir():
        if path.name != ".git":
            if path.is_dir():
                shutil.copytree(path, repo / path.name)
            else:
                shutil.copy2(path, repo / path.name)
    commit_all(repo, f"template {tag}", tag)


def archive_release(destination: Path, revision: str, tag: str) -> Path:
    """This repository's files at `revision` (e.g. the v0.1.0 tag) as a template repo at `tag`."""
    destination.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, f"template {tag}", tag)
    return destination
