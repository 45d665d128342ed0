"""scripts/ci/next-environment: the environment a healthy one promotes to, from the answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

COPIER_ANSWERS = """\
# Answers of the platform
_commit: v0.1.0
ci_provider: github
environments:
- dev
- staging
- prod
gitops_repo: same
"""
FLOW_ANSWERS = """\
environments: [test, "qa", 'live']  # edited by hand
owner: acme
"""
INDENTED_ANSWERS = """\
environments:
  - dev
  # production last
  - prod
scope: platform
"""


def next_environment(
    project: Path, *args: str, answers: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The script as CI runs it: an executable in the generated repository, its cwd the root."""
    if answers is not None:
        (project / ".copier-answers.yml").write_text(answers, encoding="utf-8")
    return subprocess.run(
        [str(project / "scripts/ci/next-environment"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )


@pytest.fixture
def project(default_project: Path, tmp_path: Path) -> Path:
    """A copy of the generated project's scripts, so that each test writes its own answers."""
    copy = tmp_path / "project"
    (copy / "scripts/ci").mkdir(parents=True)
    script = default_project / "scripts/ci/next-environment"
    (copy / "scripts/ci/next-environment").write_bytes(script.read_bytes())
    (copy / "scripts/ci/next-environment").chmod(script.stat().st_mode)
    return copy


def test_the_generated_script_is_executable(default_project: Path) -> None:
    assert os.access(default_project / "scripts/ci/next-environment", os.X_OK)


@pytest.mark.parametrize(
    ("answers", "healthy", "expected"),
    [
        (COPIER_ANSWERS, "dev", "staging\n"),
        (COPIER_ANSWERS, "staging", "prod\n"),
        (COPIER_ANSWERS, "prod", ""),
        (FLOW_ANSWERS, "test", "qa\n"),
        (FLOW_ANSWERS, "qa", "live\n"),
        (FLOW_ANSWERS, "live", ""),
        (INDENTED_ANSWERS, "dev", "prod\n"),
        (INDENTED_ANSWERS, "prod", ""),
    ],
    ids=[
        "first",
        "before-last",
        "last-prints-nothing",
        "flow-list",
        "flow-quoted",
        "flow-last",
        "indented-with-comment",
        "indented-last",
    ],
)
def test_prints_the_next_environment_and_nothing_after_the_last(
    project: Path, answers: str, healthy: str, expected: str
) -> None:
    result = next_environment(project, healthy, answers=answers)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
    assert result.stderr == ""


@pytest.mark.parametrize(
    "healthy",
    ["qa", "Dev", "", "dev; rm -rf /", "my-service-dev", "staging\nprod"],
    ids=["unknown", "case", "empty", "injection", "namespace", "newline"],
)
def test_an_unknown_environment_exits_2_naming_it(project: Path, healthy: str) -> None:
    result = next_environment(project, healthy, answers=COPIER_ANSWERS)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{healthy!r} is not one of the environments dev, staging, prod" in result.stderr


@pytest.mark.parametrize("healthy", ["-h", "--help", "-dev", "--answers"])
def test_an_option_like_environment_exits_2_and_prints_nothing(project: Path, healthy: str) -> None:
    result = next_environment(project, healthy, answers=COPIER_ANSWERS)
    assert result.returncode == 2
    assert result.stdout == ""


def test_reads_the_answers_file_it_is_given(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "platform-answers.yml"
    other.write_text(FLOW_ANSWERS, encoding="utf-8")
    result = next_environment(project, "test", "--answers", str(other), answers=COPIER_ANSWERS)
    assert result.stdout == "qa\n"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (None, "cannot read .copier-answers.yml"),
        ("owner: acme\n", ".copier-answers.yml lists no environments"),
    ],
    ids=["no-answers-file", "no-environments"],
)
def test_without_environments_it_exits_2(project: Path, answers: str | None, message: str) -> None:
    result = next_environment(project, "dev", answers=answers)
    assert result.returncode == 2
    assert message in result.stderr


def test_agrees_with_the_generated_answers(default_project: Path) -> None:
    result = next_environment(default_project, "staging")
    assert (result.returncode, result.stdout) == (0, "prod\n")
