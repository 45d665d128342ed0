"""The template repository itself: lint, types, docs and the scripts it runs."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.helpers import REPO_ROOT, run

SHELL_SCRIPTS = [
    REPO_ROOT / "scripts" / "bootstrap",
    REPO_ROOT / "scripts" / "lock",
    REPO_ROOT / ".ci" / "run",
]


def test_python_code_passes_ruff_and_mypy_strict(tool: Callable[[str], str]) -> None:
    run([tool("ruff"), "check", "."], cwd=REPO_ROOT)
    run([tool("ruff"), "format", "--check", "."], cwd=REPO_ROOT)
    run([tool("mypy")], cwd=REPO_ROOT)


def test_shell_scripts_pass_shellcheck(tool: Callable[[str], str]) -> None:
    run([tool("shellcheck"), *SHELL_SCRIPTS], cwd=REPO_ROOT)


def test_options_reference_matches_copier_yml() -> None:
    run([sys.executable, "scripts/options_doc.py", "--check"], cwd=REPO_ROOT)


def test_docs_build_strict(tool: Callable[[str], str], tmp_path: Path) -> None:
    run([tool("mkdocs"), "build", "--strict", "--site-dir", tmp_path / "site"], cwd=REPO_ROOT)
    assert (tmp_path / "site" / "options" / "index.html").is_file()


def test_bootstrap_is_idempotent() -> None:
    """The suite runs after `scripts/bootstrap dev`; a second run installs nothing."""
    again = run(["scripts/bootstrap", "dev"], cwd=REPO_ROOT)
    assert (again.stdout, again.stderr) == ("", "")


def test_bootstrap_runs_the_go_tools_at_the_versions_generated_projects_pin() -> None:
    """The suite tests what users run: every Go tool both scripts/bootstrap and a generated
    project install (extensions/versions.yaml: lint_tools, supply_chain) is the same version."""
    bootstrap = (REPO_ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    ours = dict(re.findall(r'"([\w./-]+)@(v[\w.+-]+)"', bootstrap))
    versions = yaml.safe_load((REPO_ROOT / "extensions" / "versions.yaml").read_text("utf-8"))
    pinned = [*versions["lint_tools"]["go"].values(), *versions["supply_chain"].values()]
    theirs = dict(command.rsplit("@", 1) for command in pinned)
    shared = sorted(set(ours) & set(theirs))
    assert len(shared) == len(theirs), f"bootstrap installs none of {set(theirs) - set(ours)}"
    assert {module: ours[module] for module in shared} == {
        module: theirs[module] for module in shared
    }
