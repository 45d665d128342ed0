"""Helpers shared by the test areas (no fixtures here: plain functions)."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy

REPO_ROOT = Path(__file__).resolve().parent.parent


def render(copie: Any, **answers: Any) -> Path:
    """Render the working tree (pytest-copie uses vcs_ref HEAD plus uncommitted changes)."""
    result = copie.copy(extra_answers=answers)
    if result.exit_code != 0:
        raise AssertionError(f"copier copy failed with {answers}: {result.exception!r}")
    project: Path = result.project_dir
    return project


def copy_template(destination: Path, src: Path = REPO_ROOT, **answers: Any) -> Path:
    """`copier copy --defaults --trust --vcs-ref HEAD` of the working tree, without pytest-copie.

    Copier includes uncommitted changes of a local template at HEAD (in a commit of its own, so
    `_commit` differs between two renders of a dirty tree: give `src`, a git snapshot of the
    tree, to compare renders byte for byte). A refused answer raises ValueError naming the
    question.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(src),
            destination,
            data=answers,
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return destination


def run(
    command: Sequence[str | Path],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a real tool; on failure the assertion shows its whole output."""
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {completed.returncode} in {cwd}\n"
            f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
        )
    return completed


def yaml_files(project: Path) -> Iterator[Path]:
    """Every YAML file of a generated project that is YAML (Helm templates are Go templates)."""
    for path in sorted(project.rglob("*")):
        if path.suffix not in {".yaml", ".yml"} or not path.is_file():
            continue
        if "templates" in path.parts and "charts" in path.parts:
            continue
        yield path


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    """Non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def project_files(project: Path) -> list[Path]:
    """Every file of a generated project, outside .git (relative paths, sorted)."""
    return sorted(
        path.relative_to(project)
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    )
