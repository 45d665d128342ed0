"""Fixtures of the service tests (the contract's checks live in contract.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import render


@pytest.fixture
def stop_on_exit() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts in their own session; killed with their group if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def language_project(request: pytest.FixtureRequest, copie_session: Any) -> Path:
    """`copier copy --defaults` with the test module's LANGUAGE, once per worker; read only."""
    language: str = request.module.LANGUAGE
    return render(copie_session, language=language)


@pytest.fixture(scope="module")
def project_copy(
    request: pytest.FixtureRequest,
    language_project: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A private copy of the module's project that the Makefiles may write into."""
    language: str = request.module.LANGUAGE
    destination = tmp_path_factory.mktemp(f"{language}-service") / "project"
    shutil.copytree(language_project, destination)
    return destination
