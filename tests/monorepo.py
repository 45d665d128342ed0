"""Monorepos built by the documented commands: `copier copy`, then `make add-service`.

The template is a git snapshot of the working tree (tests/update/gitrepo.py), so the
repository records a real template source and version, as a user's does, and `make
add-service` fetches the template from there like it would from gh:org/devops-template.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from copier import run_copy

from tests.helpers import REPO_ROOT, run
from tests.update.gitrepo import GIT_ENV, commit_all, git

# The documented mixed-language monorepo: a Python API, a Go worker, a Node web app and a Java
# service (issue #9's scenario). The first one is the service `copier copy` creates.
FOUR_SERVICES: tuple[tuple[str, str], ...] = (
    ("api", "python"),
    ("worker", "go"),
    ("web", "node"),
    ("ledger", "java"),
)


def tool_env() -> dict[str, str]:
    """Environment of `make` in a generated repository: the bootstrapped tools and git identity."""
    path = os.pathsep.join(
        [str(REPO_ROOT / ".tools" / "bin"), str(REPO_ROOT / ".venv" / "bin"), os.environ["PATH"]]
    )
    return {**os.environ, **GIT_ENV, "PATH": path}


# Schemas lint-deploy converts, kept once for the suite (a project keeps them in .tools/cache).
LINT_DEPLOY_CACHE = REPO_ROOT / ".tools" / "cache" / "lint-deploy"
# Every tool lint-deploy runs, whatever the CI provider (scripts/bootstrap installs them).
LINT_DEPLOY_TOOLS = (
    "helm",
    "kubeconform",
    "kube-score",
    "hadolint",
    "yamllint",
    "shellcheck",
    "gitleaks",
    "actionlint",
    "zizmor",
    "check-jsonschema",
)


def lint_deploy_env(schemas: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default tool_env()) for a generated repository's real `make lint` to run offline.

    Its lint-deploy runs every check as a user's does, with the tools scripts/bootstrap installed
    (the versions `make tools` pins) and this Python, which has kubernetes-validate
    (LINT_PYTHON: no `make tools` installing .tools/ per project), and the CRDs of `schemas`
    (the schemas_dir fixture: the release tags `make tools` downloads). A missing tool skips
    locally and fails in CI.
    """
    from tests.conftest import missing

    base = dict(env if env is not None else tool_env())
    for name in LINT_DEPLOY_TOOLS:
        if shutil.which(name, path=base["PATH"]) is None:
            missing(f"{name} is not on PATH; run scripts/bootstrap dev")
    return {
        **base,
        "LINT_PYTHON": sys.executable,
        "LINT_DEPLOY_CRDS": str(schemas),
        "LINT_DEPLOY_CACHE": str(LINT_DEPLOY_CACHE),
    }


def make(project: Path, *args: str, check: bool = True, timeout: float = 900) -> Any:
    """`make <args>` at the repository root, as a user types it."""
    return run(["make", *args], cwd=project, env=tool_env(), check=check, timeout=timeout)


def add_service(project: Path, name: str, language: str, *copier_args: str) -> None:
    """`make add-service NAME=... LANGUAGE=... COPIER_ARGS=--defaults`, then a commit."""
    args = " ".join(["--defaults", *copier_args])
    make(project, "add-service", f"NAME={name}", f"LANGUAGE={language}", f"COPIER_ARGS={args}")
    commit_all(project, f"Add the service {name}")


def build_monorepo(
    template: Path,
    destination: Path,
    services: Sequence[tuple[str, str]] = FOUR_SERVICES,
    vcs_ref: str = "HEAD",
    **platform: Any,
) -> Path:
    """`copier copy` with the first service, a first commit, then `make add-service` for the rest.

    `template` is a git repository (tests.update.gitrepo.snapshot_template).
    """
    (first, first_language), *others = services
    data = {**platform, "project_slug": first, "language": first_language}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(template),
            destination,
            data=data,
            defaults=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, "Initial commit from devops-template")
    for name, language in others:
        add_service(destination, name, language)
    return destination
