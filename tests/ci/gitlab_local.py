"""gitlab-ci-local on a generated project: a git repository whose origin looks like GitLab."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.helpers import run
from tests.update.gitrepo import GIT_ENV, commit_all, git


def as_gitlab_repository(rendered: Path, where: Path) -> Path:
    """A copy of a rendered project as a git repository with main pushed to an origin."""
    project = where / "project"
    shutil.copytree(rendered, project)
    remote = where / "origin.git"
    git(where, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "generated")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "-u", "origin", "main")
    git(project, "remote", "set-head", "origin", "main")
    # gitlab-ci-local derives the project path from the remote's URL; it never fetches.
    git(project, "remote", "set-url", "origin", "git@gitlab.example.com:my-org/my-service.git")
    return project


def gitlab_ci_local(
    project: Path, tool: Callable[[str], str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **GIT_ENV,
        "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE",
        "PATH": os.pathsep.join([str(Path(tool("uv")).parent), os.environ["PATH"]]),
    }
    return run([tool("gitlab-ci-local"), *args], cwd=project, env=env, timeout=900)


def listed_jobs(output: str) -> dict[str, dict[str, str]]:
    """Rows of `gitlab-ci-local --list`: job name -> stage, when, needs."""
    jobs = {}
    for line in output.splitlines():
        words = line.split()
        stages = {"lint", "test", "build", "deploy", "promote"}
        if len(words) >= 4 and words[1] in stages:
            jobs[words[0]] = {"stage": words[1], "when": words[2], "needs": " ".join(words[4:])}
    return jobs
