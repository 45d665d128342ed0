"""Monorepos built by the documented commands: `copier copy`, then `make add-service`.

The template is a git snapshot of the working tree (tests/update/gitrepo.py), so the
repository records a real template source and version, as a user's does, and `make
add-service` fetches the template from there like it would from gh:org/devops-template.

A run builds each distinct monorepo once (tests/conftest.py points BUILD_CACHE at a folder
that every xdist worker of the run shares): the first caller builds it under a file lock, and
every caller gets its own copy, git history included, whose answers name the caller's template.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
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


# Where build_monorepo keeps the monorepos of this run (None: build every time). Set by the
# monorepo_build_cache fixture of tests/conftest.py.
BUILD_CACHE: Path | None = None
# A path Copier writes as a plain YAML scalar (`_src_path: /tmp/...`), so that a copy's answers
# can name another template by replacing that line.
PLAIN_PATH = re.compile(r"/[\w./+-]+")


def build_monorepo(
    template: Path,
    destination: Path,
    services: Sequence[tuple[str, str]] = FOUR_SERVICES,
    vcs_ref: str = "HEAD",
    **platform: Any,
) -> Path:
    """`copier copy` with the first service, a first commit, then `make add-service` for the rest.

    `template` is a git repository (tests.update.gitrepo.snapshot_template). With BUILD_CACHE
    set, the monorepo is built once per run for the same template content, services and
    answers, and `destination` gets a copy that records `template` as its source (see
    build_key and retarget): the same files and commits as a build of its own.
    """
    key = None if BUILD_CACHE is None else build_key(template, services, vcs_ref, platform)
    if BUILD_CACHE is None or key is None or (destination.exists() and any(destination.iterdir())):
        return build(template, destination, services, vcs_ref, platform)
    entry = BUILD_CACHE / key
    built = entry / "repo"
    with exclusive(BUILD_CACHE / f"{key}.lock"):
        if not (entry / "done").is_file():
            shutil.rmtree(entry, ignore_errors=True)  # a build that failed half-way
            entry.mkdir(parents=True)
            build(template, built, services, vcs_ref, platform)
            recorded = (built / ".copier-answers.yml").read_text(encoding="utf-8")
            assert f"\n_src_path: {template}\n" in recorded, "Copier wrote another template path"
            (entry / "source").write_text(str(template), encoding="utf-8")
            (entry / "done").touch()
    if destination.exists():
        destination.rmdir()
    shutil.copytree(built, destination, symlinks=True)
    retarget(destination, (entry / "source").read_text(encoding="utf-8"), str(template))
    return destination


def build(
    template: Path,
    destination: Path,
    services: Sequence[tuple[str, str]],
    vcs_ref: str,
    platform: Mapping[str, Any],
) -> Path:
    """The documented commands, in `destination`."""
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


def build_key(
    template: Path, services: Sequence[tuple[str, str]], vcs_ref: str, platform: Mapping[str, Any]
) -> str | None:
    """What decides a build's files and history, hashed; None when it cannot be shared.

    The template counts by content: the tree at `vcs_ref` and `git describe` of it (the
    `_commit` Copier records and `make add-service` checks out), not by its path (each test
    module snapshots the working tree in a folder of its own; retarget names the caller's).
    A dirty template (Copier copies its uncommitted changes at HEAD) or a path that is not a
    plain YAML scalar is built directly.
    """
    if not PLAIN_PATH.fullmatch(str(template)) or git(template, "status", "--porcelain"):
        return None
    tree = git(template, "rev-parse", f"{vcs_ref}^{{tree}}").strip()
    described = git(template, "describe", "--tags", "--always", vcs_ref).strip()
    answers = json.dumps(
        [tree, described, [list(service) for service in services], platform],
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(answers.encode()).hexdigest()[:24]


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock` (every xdist worker of the run waits for it)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def retarget(repo: Path, old: str, new: str) -> None:
    """Make every commit's answers files (and the work tree's) record `new` as `_src_path`.

    Rewrites the history with git fast-export | fast-import: same files, messages, authors and
    dates as if the monorepo had been built from `new` (only the commit ids change).
    """
    if old == new:
        return
    before, after = f"_src_path: {old}\n".encode(), f"_src_path: {new}\n".encode()
    exported = subprocess.run(
        ["git", "fast-export", "--all", "--signed-tags=strip"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        check=True,
    ).stdout
    stream, position = bytearray(), 0
    while position < len(exported):
        end = exported.find(b"\n", position) + 1 or len(exported)
        line = exported[position:end]
        position = end
        if line.startswith(b"data "):  # exact byte count: fast-export never uses delimiters
            size = int(line[5:])
            data = exported[position : position + size].replace(before, after)
            position += size
            stream += b"data %d\n" % len(data) + data
        else:
            stream += line
    subprocess.run(
        ["git", "fast-import", "--force", "--quiet"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        input=bytes(stream),
        capture_output=True,
        check=True,
    )
    git(repo, "reset", "-q", "--hard")
    answers = (repo / ".copier-answers.yml").read_text(encoding="utf-8")
    assert after.decode() in answers, f"{repo}: the answers still name {old}"
