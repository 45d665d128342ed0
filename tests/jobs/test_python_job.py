"""The generated Python job: its Makefile, lockfiles and Dockerfile, and the job contract, for real.

One project (kind=job, language=python, trigger=s3) is rendered and copied once per module; the
job's own `make lint test` runs in the copy. The contract (tests/jobs/contract.py) runs against
the image as the Dockerfile builds it, replayed natively (production lockfile only, the final
stage's environment and ENTRYPOINT), and against one moto S3 server for the module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import render, run
from tests.jobs import contract
from tests.services.contract import (
    Reports,
    dockerignore_and_copies,
    env_pairs,
    kaniko_ready_dockerfile,
    only,
    parse_dockerfile,
    read_reports,
    recipe_commands,
    run_commands,
    service_of,
    stage_running,
)
from tests.services.test_python_service import NativeImage, lock_blocks

Tool = Callable[[str], str]
THRESHOLD = 80  # coverage_threshold's default


def make_lint_and_test_of(
    project: Path, job_dir: Path
) -> tuple[Reports, subprocess.CompletedProcess[str]]:
    """The root `make lint` and `make test` of this application, as CI runs them per service."""
    for report in ("coverage.xml", "junit.xml"):
        (job_dir / report).unlink(missing_ok=True)
    run(["make", "lint", f"SERVICE={job_dir.name}"], cwd=project)
    result = run(["make", "test", f"SERVICE={job_dir.name}"], cwd=project)
    reports = read_reports(job_dir)
    assert reports.failed == 0
    return reports, result


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(copie_session: Any) -> Path:
    """The default project with a Python job as its first application; read only."""
    return render(copie_session, language="python", kind="job", trigger="s3")


@pytest.fixture(scope="module")
def project(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy that the Makefiles may write into."""
    destination = tmp_path_factory.mktemp("python-job") / "project"
    shutil.copytree(rendered, destination)
    return destination


@pytest.fixture(scope="module")
def job(project: Path, tool: Tool) -> Path:
    """The job folder with its .venv synced from requirements-dev.txt (`make venv`)."""
    tool("make")
    tool("uv")
    job_dir = service_of(project)
    run(["make", "venv"], cwd=job_dir)
    return job_dir


@pytest.fixture(scope="module")
def s3() -> Iterator[contract.S3]:
    with contract.s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def image(rendered: Path, tmp_path_factory: pytest.TempPathFactory, tool: Tool) -> NativeImage:
    """The Dockerfile's build stage replayed natively, then its final stage's settings."""
    tool("uv")
    job_dir = service_of(rendered)
    stages = parse_dockerfile((job_dir / "Dockerfile").read_text(encoding="utf-8"))
    build, final = stage_running(stages, "pip sync"), stages[-1]
    root = tmp_path_factory.mktemp("python-job-image") / "image"
    builder = NativeImage(root=root, context=job_dir, workdir=root)
    for instruction in build.instructions:
        builder.apply(instruction, run_commands=True)
    runtime = NativeImage(root=root, context=job_dir, workdir=root)
    # The final stage's RUN removes pip from the base image's Python: not replayed here.
    for instruction in final.instructions:
        runtime.apply(instruction, run_commands=False)
    return runtime


@pytest.fixture(scope="module")
def entrypoint(rendered: Path) -> list[str]:
    final = parse_dockerfile((service_of(rendered) / "Dockerfile").read_text("utf-8"))[-1]
    command: list[str] = json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT"))
    return command


@pytest.fixture(scope="module")
def run_image(image: NativeImage, entrypoint: list[str]) -> contract.Runner:
    """Run the image's ENTRYPOINT with the workflow step's arguments and the event's env."""
    base = {
        "PATH": image.env["PATH"],
        "HOME": str(image.root),
        # The image has no AWS configuration files; nor does this run read the machine's.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    image_env = {key: value for key, value in image.env.items() if not key.startswith("UV_")}

    def run_step(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*entrypoint, *args],
            cwd=image.workdir,
            env={**base, **image_env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run_step


# --- the contract --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("check", contract.ALL_CHECKS, ids=lambda check: check.__name__)
def test_job_honours_the_contract(
    check: Callable[[contract.Runner, contract.S3], None],
    run_image: contract.Runner,
    s3: contract.S3,
) -> None:
    check(run_image, s3)


@pytest.mark.slow
def test_workflow_steps_pass_an_artifact(
    run_image: contract.Runner, s3: contract.S3, tmp_path: Path
) -> None:
    contract.check_steps_pass_an_artifact(run_image, s3, tmp_path)


@pytest.mark.slow
def test_image_runs_from_the_production_lockfile_only(image: NativeImage) -> None:
    site = next((image.root / "opt" / "venv" / "lib").glob("python*/site-packages"))
    installed = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert {"boto3", "botocore"} <= installed
    assert not {"pytest", "ruff", "coverage"} & installed


@pytest.mark.slow
def test_a_log_line_per_step_is_json_with_the_event(
    run_image: contract.Runner, s3: contract.S3
) -> None:
    event = s3.put("incoming/acme/logs.csv", contract.GOOD)
    done = run_image(["run"], {**s3.env, **event})
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    assert [entry["event"] for entry in entries] == ["validated", "loaded"]
    for entry in entries:
        assert {"time", "level", "logger", "message", "source"} <= entry.keys()
        assert entry["source"] == f"s3://{contract.BUCKET}/incoming/acme/logs.csv"


# --- make lint / test / run / lock ---------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_with_coverage_over_the_threshold(
    project: Path, job: Path
) -> None:
    reports, result = make_lint_and_test_of(project, job)
    assert reports.tests >= 40
    assert reports.line_rate * 100 >= THRESHOLD
    assert f"Required test coverage of {THRESHOLD}" in result.stdout
    # The job's logic is measured, not only its entry point.
    assert {"job.py", "storage.py", "config.py"} <= {
        Path(name).name for name in reports.covered_files()
    }


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(job: Path) -> None:
    package = next(path for path in (job / "src").iterdir() if path.is_dir())
    untested = package / "untested.py"
    lines = "\n".join(f"VALUE_{index} = {index}" for index in range(1000))
    untested.write_text(f'"""Never imported."""\n\n{lines}\n', encoding="utf-8")
    try:
        result = run(["make", "test"], cwd=job, check=False)
    finally:
        untested.unlink()
    assert result.returncode != 0
    assert "Coverage failure: total of" in result.stdout + result.stderr


@pytest.mark.slow
def test_make_run_processes_the_event_in_the_environment(job: Path, s3: contract.S3) -> None:
    event = s3.put("incoming/acme/make-run.csv", contract.GOOD)
    env = {**os.environ, **s3.env, **event}
    result = run(["make", "--silent", "run"], cwd=job, env=env)
    assert contract.log_events(result.stdout) == ["validated", "loaded"]
    again = run(["make", "--silent", "run"], cwd=job, env=env)
    assert contract.log_events(again.stdout) == ["skipped"]


@pytest.mark.slow
def test_lockfiles_are_what_make_lock_produces(job: Path) -> None:
    names = ("requirements.txt", "requirements-dev.txt")
    before = {name: (job / name).read_text(encoding="utf-8") for name in names}
    run(["make", "lock"], cwd=job)
    after = {name: (job / name).read_text(encoding="utf-8") for name in names}
    assert after == before, "pyproject.toml and requirements*.txt disagree: run `make lock`"


def test_lockfiles_pin_with_hashes_and_name_no_index(rendered: Path) -> None:
    job_dir = service_of(rendered)
    production = (job_dir / "requirements.txt").read_text(encoding="utf-8")
    development = (job_dir / "requirements-dev.txt").read_text(encoding="utf-8")
    for text in (production, development):
        assert "://" not in text
        index_options = r"^\s*(-i|--index-url|--extra-index-url|-f|--find-links)\b"
        assert not re.search(index_options, text, re.M)
        for block in lock_blocks(text).values():
            assert re.match(r"^[a-z0-9-]+==[\w.]+", block), block
            assert "--hash=sha256:" in block, block
    production_blocks = lock_blocks(production)
    assert {"boto3", "botocore", "s3transfer"} <= production_blocks.keys()
    assert not {"pytest", "ruff", "fastapi", "uvicorn"} & production_blocks.keys()
    development_blocks = lock_blocks(development)
    assert {name: development_blocks.get(name) for name in production_blocks} == production_blocks
    assert {"pytest", "pytest-cov", "ruff"} <= development_blocks.keys()


def test_job_targets_are_the_service_targets(rendered: Path) -> None:
    """CI and the root Makefile run the same targets in every application."""
    makefile = (service_of(rendered) / "Makefile").read_text(encoding="utf-8")
    phony = only(re.findall(r"^\.PHONY:(.*)$", makefile, re.M), ".PHONY line").split()
    assert {"lint", "test", "format", "run", "lock", "help"} <= set(phony)
    pytest_command = only(recipe_commands(makefile, "bin/pytest"), "pytest")
    assert pytest_command[1:3] == ["--cov", "--cov-report=term"]
    assert only(recipe_commands(makefile, "bin/python -m"), "make run")[-1] == "run"


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_clean_under_the_repository_hadolint_config(
    rendered: Path, tool: Tool
) -> None:
    dockerfile = service_of(rendered) / "Dockerfile"
    # hadolint finds .hadolint.yaml in the directory it runs from: the repository root.
    run([tool("hadolint"), dockerfile.relative_to(rendered)], cwd=rendered)


def test_dockerfile_runs_the_job_unprivileged_with_the_step_as_arguments(
    rendered: Path, entrypoint: list[str]
) -> None:
    job_dir = service_of(rendered)
    stages = kaniko_ready_dockerfile(job_dir)
    final = stages[-1]
    package = next(path.name for path in (job_dir / "src").iterdir() if path.is_dir())
    # ENTRYPOINT in exec form: the WorkflowTemplate's args (`validate /tmp/...`) follow it.
    assert entrypoint == ["python", "-m", package]
    assert json.loads(only(final.values("CMD"), "CMD")) == ["run"]
    assert final.values("EXPOSE") == []
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert "PORT" not in final_env
    assert final_env["PYTHONDONTWRITEBYTECODE"] == final_env["PYTHONUNBUFFERED"] == "1"
    assert any("pip uninstall" in value for value in final.values("RUN"))
    assert not any(re.search(r"\b(apt-get|gcc|uv)\b", value) for value in final.values("RUN"))
    # The dependency layer comes before the sources, with the Makefile's own sync command.
    build = stage_running(stages, "pip sync")
    sync = only(run_commands(build, "pip sync"), "`uv pip sync`")
    assert sync == ["uv", "pip", "sync", "--require-hashes", "requirements.txt"]
    makefile = (job_dir / "Makefile").read_text(encoding="utf-8")
    make_sync = only(recipe_commands(makefile, "pip sync"), "`uv pip sync` in the Makefile")
    assert make_sync[:-1] == sync[:-1]


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(rendered: Path) -> None:
    allowed, sources = dockerignore_and_copies(service_of(rendered))
    assert allowed == sources == {"requirements.txt", "src"}


def test_generated_python_is_ruff_clean_and_formatted(rendered: Path, tool: Tool) -> None:
    job_dir = service_of(rendered)
    ruff = tool("ruff")
    run([ruff, "check", "--no-cache", "."], cwd=job_dir)
    result = run([ruff, "format", "--no-cache", "--check", "--diff", "."], cwd=job_dir)
    assert "would reformat" not in result.stdout + result.stderr
