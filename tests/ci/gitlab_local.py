"""gitlab-ci-local on a generated project: a git repository whose origin looks like GitLab."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import run
from tests.update.gitrepo import GIT_ENV, commit_all, git

GITLAB_URL = "git@gitlab.example.com:my-org/my-service.git"


def as_gitlab_repository(rendered: Path, where: Path) -> Path:
    """A copy of a rendered project as a git repository with main pushed to an origin."""
    project = where / "project"
    shutil.copytree(rendered, project)
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "generated")
    return with_gitlab_origin(project, where / "origin.git")


def with_gitlab_origin(project: Path, remote: Path) -> Path:
    """`project` (a git repository on main) with main pushed to a bare `remote` as its origin.

    The remote's URL then looks like GitLab's: gitlab-ci-local derives the project path from it
    and never fetches; origin/main stays the base that rules:changes compare with.
    """
    git(remote.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "-u", "origin", "main")
    git(project, "remote", "set-head", "origin", "main")
    git(project, "remote", "set-url", "origin", GITLAB_URL)
    return project


def gitlab_ci_local(
    project: Path,
    tool: Callable[[str], str],
    *args: str,
    path: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local in `project`; `path` (default this PATH) is what shell-executor jobs see.

    gitlab-ci-local gives a job that names an image CI_PROJECT_DIR=/builds/<path> even when the
    shell executor runs it in `project`, so caches would land in /builds: CI_PROJECT_DIR is the
    project here, as it is where a real runner checks it out.
    """
    search_path = path if path is not None else os.environ["PATH"]
    env = {
        **os.environ,
        **GIT_ENV,
        "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE,CI_PROJECT_DIR",
        "PATH": os.pathsep.join([str(Path(tool("uv")).parent), search_path]),
    }
    if not any("CI_PROJECT_DIR=" in arg for arg in args):
        args = (f"--variable=CI_PROJECT_DIR={project}", *args)
    return run([tool("gitlab-ci-local"), *args], cwd=project, env=env, timeout=900, check=check)


def preview(project: Path, tool: Callable[[str], str], *args: str) -> dict[str, Any]:
    """The pipeline as gitlab-ci-local resolves it: includes merged, `extends` applied."""
    output = gitlab_ci_local(project, tool, "--preview", *args).stdout
    merged: dict[str, Any] = yaml.safe_load(output[output.index("---") :])
    return merged


def listed_jobs(output: str) -> dict[str, dict[str, str]]:
    """Rows of `gitlab-ci-local --list`: job name -> stage, when, needs."""
    jobs = {}
    for line in output.splitlines():
        words = line.split()
        stages = {"lint", "test", "build", "deploy", "promote"}
        if len(words) >= 4 and words[1] in stages:
            jobs[words[0]] = {"stage": words[1], "when": words[2], "needs": " ".join(words[4:])}
    return jobs
