"""Shared fixtures: render the working tree with pytest-copie, find the real tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO_ROOT, render

SCHEMAS_DIR = Path(
    os.environ.get("DEVOPS_TEMPLATE_SCHEMAS", REPO_ROOT.parent / "shared" / "schemas")
)
IN_CI = os.environ.get("CI", "").lower() == "true"

# `make test` runs this suite: its flags must not reach the make of the projects under test.
for _variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(_variable, None)

# Make the bootstrapped tools visible to every subprocess, whichever way pytest was started.
for _bin in (REPO_ROOT / ".tools" / "bin", REPO_ROOT / ".venv" / "bin"):
    if _bin.is_dir() and str(_bin) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ['PATH']}"


def missing(reason: str) -> None:
    """Skip locally with the reason; in CI a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: prerequisites must exist, run scripts/bootstrap dev)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    """Absolute path of a command-line tool that scripts/bootstrap installs."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            missing(f"{name} is not on PATH; run scripts/bootstrap dev")
            raise AssertionError  # unreachable: missing() raises
        return path

    return find


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """Upstream Argo CD / Argo Events / Argo Workflows CRDs (../shared/schemas)."""
    if not (SCHEMAS_DIR / "argo-cd").is_dir():
        missing(f"schema folder {SCHEMAS_DIR} is missing (upstream Argo CRDs)")
    return SCHEMAS_DIR


@pytest.fixture(scope="session")
def default_project(copie_session: Any) -> Path:
    """`copier copy --defaults`, rendered once per test worker."""
    return render(copie_session)


@pytest.fixture
def make_project(copie: Any) -> Callable[..., Path]:
    """Render the template with answers on top of the defaults."""

    def make(**answers: Any) -> Path:
        return render(copie, **answers)

    return make


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a template git repository tagged v0.1.0 (what `make add-service`
    fetches, as it would fetch gh:org/devops-template)."""
    from tests.update.gitrepo import snapshot_template

    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session", autouse=True)
def monorepo_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where tests.monorepo.build_monorepo keeps each distinct monorepo of the run.

    Under xdist, the folder above the worker's basetemp (pytest-N/, one per run), so that the
    workers build a monorepo once between them; else the basetemp.
    """
    from tests import monorepo

    basetemp = tmp_path_factory.getbasetemp()
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    monorepo.BUILD_CACHE = root / "monorepo-builds"
    yield monorepo.BUILD_CACHE
    monorepo.BUILD_CACHE = None
