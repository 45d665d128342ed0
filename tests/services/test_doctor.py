"""A generated project states and checks its prerequisites (issue #13, item 2): `make doctor`,
run first by `make lint` and `make test`, prints one line per missing tool with how to get it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from extensions.context import LANGUAGES, load_pins
from tests.helpers import copy_template, run

# What the doctor itself runs on: a machine with only these has none of the toolchains.
BASE_TOOLS = ("bash", "sh", "make", "sed", "sort", "head", "dirname", "basename", "cat", "env")
# Per language: the lines `make doctor` prints on a machine without its toolchain (what is
# missing, for which services; how to get it).
MISSING = {
    "python": [("doctor: uv is missing (python services: {s}", "install uv ")],
    "node": [("doctor: node is missing (node services: {s}", "install Node.js 20.19+")],
    "go": [("doctor: go is missing (go services: {s}", "install Go 1.21+")],
    "java": [
        ("doctor: a JDK is missing (java services: {s}", "install JDK 25"),
        ("doctor: mvn is missing (java services: {s}", "install Maven 3.8+"),
    ],
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per language, its first service named after it."""
    root = tmp_path_factory.mktemp("doctor")
    return {
        language: copy_template(root / language, language=language, project_slug=f"{language}-svc")
        for language in LANGUAGES
    }


@pytest.fixture(scope="module")
def bare_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with the basic commands and no toolchain (no uv, node, pnpm, go, java, mvn, cc)."""
    directory = tmp_path_factory.mktemp("bare-bin")
    for name in BASE_TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        (directory / name).symlink_to(found)
    return str(directory)


def bare_env(path: str) -> dict[str, str]:
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": path, "LANG": "C.UTF-8"}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("target", ["doctor", "test"])
def test_a_missing_toolchain_is_one_line_per_tool_with_how_to_get_it(
    projects: dict[str, Path], bare_path: str, language: str, target: str
) -> None:
    project = projects[language]
    result = run(["make", target], cwd=project, env=bare_env(bare_path), check=False)

    assert result.returncode != 0
    lines = result.stderr.splitlines()
    for what, how in MISSING[language]:
        prefix = what.format(s=f"{language}-svc")
        assert any(line.startswith(prefix) and how in line for line in lines), result.stderr
    assert lines[-2].startswith("doctor: ")
    assert lines[-2].endswith("README.md lists what each language needs")
    # The toolchain never ran: no shell error about a command that is not there.
    assert "No such file or directory" not in result.stderr
    assert "command not found" not in result.stderr
    assert not (project / "apps" / f"{language}-svc" / "coverage.xml").exists()


@pytest.mark.parametrize("target", ["update", "add-service", "promote"])
def test_the_repository_commands_say_how_to_get_uv(
    projects: dict[str, Path], bare_path: str, target: str
) -> None:
    result = run(["make", target], cwd=projects["go"], env=bare_env(bare_path), check=False)
    assert result.returncode != 0
    assert result.stderr.startswith(
        "doctor: uv is missing (make add-service, update and promote): install uv "
    )
    assert "No such file or directory" not in result.stderr


def test_doctor_passes_where_the_toolchains_are(projects: dict[str, Path], jdk: Path) -> None:
    env = {
        **os.environ,
        "JAVA_HOME": str(jdk),
        "PATH": f"{jdk / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    for language, project in projects.items():
        result = run(["make", "doctor"], cwd=project, env=env, check=False)
        assert result.returncode == 0, (language, result.stderr)
        assert f"{language}: {language}-svc" in result.stdout


def test_an_old_jdk_is_named_with_the_version_needed(
    projects: dict[str, Path], tmp_path: Path, bare_path: str
) -> None:
    """A JDK older than the pinned one (a `java` that says 17) is refused by its version."""
    home = tmp_path / "jdk17"
    (home / "bin").mkdir(parents=True)
    for name in ("java", "javac"):
        script = home / "bin" / name
        script.write_text(
            "#!/bin/sh\necho 'openjdk version \"17.0.12\" 2024-07-16' >&2\n", encoding="utf-8"
        )
        script.chmod(0o755)
    env = {**bare_env(bare_path), "JAVA_HOME": str(home)}
    result = run(["make", "doctor"], cwd=projects["java"], env=env, check=False)
    assert result.returncode != 0
    assert "doctor: the JDK is 17 (java services: java-svc): install JDK 25" in result.stderr


def test_readme_lists_each_languages_prerequisites_and_the_doctor(
    projects: dict[str, Path],
) -> None:
    readme = (projects["go"] / "README.md").read_text(encoding="utf-8")
    assert "`make doctor`" in readme
    for language in LANGUAGES.values():
        assert f"| {language.key} | {language.requirements} |" in readme


def test_local_python_is_the_version_ci_and_the_images_use(projects: dict[str, Path]) -> None:
    version = str(load_pins()["python"]["version"])
    project = projects["python"]
    # The service pins its Python; the root does not, so the root scripts run on the machine's.
    assert not (project / ".python-version").exists()
    assert (project / "apps/python-svc/.python-version").read_text(encoding="utf-8").strip() == (
        version
    )
    dockerfile = (project / "apps/python-svc/Dockerfile").read_text(encoding="utf-8")
    assert f"python:{version}." in dockerfile
