"""Fixtures of the service tests (the contract's checks live in contract.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from extensions.context import load_pins
from tests.conftest import missing
from tests.helpers import render

JAVA_VERSION = str(load_pins()["java"]["version"])
# Where Debian, Ubuntu and the Temurin packages install JDKs.
JDK_ROOTS = (Path("/usr/lib/jvm"),)


def jdk_version(home: Path) -> str | None:
    """The feature version in a JDK's `release` file (JAVA_VERSION="25.0.3" -> "25")."""
    release = home / "release"
    if not (home / "bin" / "javac").is_file() or not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(encoding="utf-8"), re.M)
    return match[1] if match else None


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


@pytest.fixture(scope="session")
def jdk() -> Path:
    """A JDK of the version the service needs: JAVA_HOME if it is one, else one in /usr/lib/jvm."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    candidates += sorted(path for root in JDK_ROOTS if root.is_dir() for path in root.iterdir())
    for home in candidates:
        if jdk_version(home) == JAVA_VERSION:
            return home
    missing(f"no JDK {JAVA_VERSION} in JAVA_HOME or {', '.join(map(str, JDK_ROOTS))}")
    raise AssertionError  # unreachable: missing() raises


@pytest.fixture(scope="session")
def java_env(jdk: Path, tool: Callable[[str], str]) -> dict[str, str]:
    """The environment of every make and Maven call: JDK 25 first, as CI's setup step does."""
    tool("make")
    tool("mvn")
    return {
        **os.environ,
        "JAVA_HOME": str(jdk),
        "PATH": f"{jdk / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
