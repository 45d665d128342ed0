"""The generated Python service: its Makefile, its Dockerfile and the service itself, run for real.

The toolchain tests share one copy of the default project per test worker, with one virtual
environment that the service Makefile creates; nothing here writes into `default_project`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from tests.helpers import run
from tests.services.contract import (
    Instruction,
    Stage,
    assert_graceful_stop,
    assert_json_logs,
    assert_metrics_contract,
    assert_probe_bodies,
    assert_probes_answer,
    descendants,
    dockerignore_and_copies,
    edited,
    env_pairs,
    free_port,
    get,
    kaniko_ready_dockerfile,
    make_lint_and_test,
    only,
    parse_dockerfile,
    recipe_commands,
    service_of,
    start,
    wait_for_health,
)

Tool = Callable[[str], str]
T = TypeVar("T")

LANGUAGE = "python"  # the services/conftest.py fixtures render this language


# --- Dockerfile and Makefile, parsed just enough to check and replay them ------------------------


def install_stage(stages: list[Stage]) -> Stage:
    """The build stage: the one whose RUN installs the locked dependencies."""
    syncing = [s for s in stages if any("pip sync" in command for command in s.values("RUN"))]
    return only(syncing, "Dockerfile stage that runs `uv pip sync`")


def lock_blocks(text: str) -> dict[str, str]:
    """Requirement name -> its whole pinned block (version, markers and hashes)."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text.strip()):
        name = re.split(r"[=;\s]", block, maxsplit=1)[0].lower()
        blocks[name] = block
    return blocks


# --- running the service -------------------------------------------------------------------------


def python_process(parent: int) -> int:
    for pid in descendants(parent):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if Path(command[0].decode()).name.startswith("python"):
            return pid
    raise AssertionError(f"no python process under {parent}")


def with_test_delay(text: str) -> str:
    """app.py with the contract tests' delay hook, the outermost middleware of the app."""
    hook = (
        '    @app.middleware("http")\n'
        "    async def test_delay(request: Request, call_next):  # type: ignore[no-untyped-def]\n"
        "        import asyncio\n\n"
        '        await asyncio.sleep(float(request.headers.get("x-test-delay", "0")))\n'
        "        return await call_next(request)\n\n"
        "    return app\n"
    )
    assert text.endswith("    return app\n")
    return text.removesuffix("    return app\n") + hook


def serve(
    service: Path, port: int, started: list[subprocess.Popen[str]], **env: str
) -> subprocess.Popen[str]:
    """`python -m <package>` as `make run` and the image start it, from the service's .venv."""
    (package,) = (init.parent.name for init in (service / "src").glob("*/__init__.py"))
    environment = {**os.environ, "PYTHONPATH": "src", "PORT": str(port), **env}
    python = str(service / ".venv" / "bin" / "python")
    process = start([python, "-m", package], service, environment, started)
    wait_for_health(port, process)
    return process


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(project_copy: Path, tool: Tool) -> Path:
    """The copied service with its .venv synced from requirements-dev.txt (`make venv`)."""
    tool("make")
    tool("uv")
    service_dir = service_of(project_copy)
    run(["make", "venv"], cwd=service_dir)
    return service_dir


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_and_leave_reports(
    project_copy: Path, service: Path, schemas_dir: Path
) -> None:
    reports, _ = make_lint_and_test(project_copy, service, schemas_dir)
    assert reports.tests >= 20


@pytest.mark.slow
def test_service_make_test_fails_on_a_failing_test_and_reports_it(service: Path) -> None:
    failing = service / "tests" / "test_zz_deliberately_failing.py"
    failing.write_text("def test_fails() -> None:\n    assert 1 == 2\n", encoding="utf-8")
    try:
        result = run(["make", "test"], cwd=service, check=False)
    finally:
        failing.unlink()

    assert result.returncode != 0
    suite = ET.parse(service / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.attrib["failures"] == "1"


@pytest.mark.slow
def test_make_lint_catches_unformatted_code(service: Path) -> None:
    module = next((service / "src").glob("*/config.py"))
    original = module.read_text(encoding="utf-8")
    module.write_text(original.replace("MAX_PORT = 65535", "MAX_PORT=65535"), encoding="utf-8")
    try:
        result = run(["make", "lint"], cwd=service, check=False)
    finally:
        module.write_text(original, encoding="utf-8")

    assert result.returncode != 0
    assert "config.py" in result.stdout + result.stderr


def test_generated_python_is_ruff_clean_and_formatted(default_project: Path, tool: Tool) -> None:
    service_dir = service_of(default_project)
    ruff = tool("ruff")
    # --no-cache: the rendered default project is shared and stays as rendered.
    run([ruff, "check", "--no-cache", "."], cwd=service_dir)
    result = run([ruff, "format", "--no-cache", "--check", "--diff", "."], cwd=service_dir)
    assert "would reformat" not in result.stdout + result.stderr


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_loses_no_request(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    (app,) = service.glob("src/*/app.py")
    port = free_port()
    with edited(app, with_test_delay):
        process = serve(service, port, stop_on_exit, SHUTDOWN_TIMEOUT="10")

    assert_graceful_stop(port, process.pid, process, drain_timeout=10)


@pytest.mark.slow
def test_live_metrics_and_probe_bodies_follow_the_shared_contract(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    serve(service, port, stop_on_exit)

    assert_probe_bodies(port)
    assert_metrics_contract(port)


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(project_copy: Path, service: Path) -> None:
    answers = (project_copy / ".copier-answers.yml").read_text(encoding="utf-8")
    (threshold,) = re.findall(r"^coverage_threshold: (\d+)$", answers, re.M)
    assert f"fail_under = {threshold}\n" in (service / "pyproject.toml").read_text(encoding="utf-8")
    # A module no test runs, big enough to pull the total below the threshold.
    (package,) = service.glob("src/*/__init__.py")
    untested = "def untested() -> int:\n" + "    x = 1\n" * 400 + "    return x\n"

    with edited(package.parent / "untested.py", lambda _: untested):
        failing = run(["make", "test"], cwd=service, check=False)

    assert failing.returncode != 0
    assert re.search(rf"Required test coverage of {threshold}(\.0)?% not reached", failing.stdout)


@pytest.mark.slow
def test_make_run_serves_probes_logs_json_and_stops_on_sigterm(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    make = start(["make", "--silent", "run"], service, env, stop_on_exit)
    wait_for_health(port, make)

    assert_probes_answer(port)

    stopped_at = time.monotonic()
    os.kill(python_process(make.pid), signal.SIGTERM)
    stdout, stderr = make.communicate(timeout=10)
    assert make.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 5
    entries = assert_json_logs(stdout)
    assert any(entry.get("path") == "/readyz" and entry.get("status") == 200 for entry in entries)
    assert str(entries[-1]["message"]).startswith("Finished server process")


@pytest.mark.slow
def test_lockfiles_are_what_make_lock_produces(service: Path) -> None:
    before = {
        name: (service / name).read_text() for name in ("requirements.txt", "requirements-dev.txt")
    }

    run(["make", "lock"], cwd=service)

    after = {name: (service / name).read_text() for name in before}
    assert after == before, "pyproject.toml and requirements*.txt disagree: run `make lock`"


def test_lockfiles_pin_with_hashes_and_name_no_index(default_project: Path) -> None:
    service_dir = service_of(default_project)
    production = (service_dir / "requirements.txt").read_text(encoding="utf-8")
    development = (service_dir / "requirements-dev.txt").read_text(encoding="utf-8")
    for text in (production, development):
        assert "://" not in text
        assert not re.search(
            r"^\s*(-i|--index-url|--extra-index-url|-f|--find-links)\b", text, re.M
        )
        for block in lock_blocks(text).values():
            assert re.match(r"^[a-z0-9-]+==[\w.]+", block), block
            assert "--hash=sha256:" in block, block
    production_blocks = lock_blocks(production)
    assert {"fastapi", "uvicorn", "prometheus-client"} <= production_blocks.keys()
    assert "pytest" not in production_blocks
    # Tests run exactly what ships: every production pin, hashes included, is in the dev lockfile.
    development_blocks = lock_blocks(development)
    assert {name: development_blocks.get(name) for name in production_blocks} == production_blocks
    assert {"pytest", "pytest-cov", "ruff"} <= development_blocks.keys()


def test_dockerfile_installs_the_lockfile_like_the_makefile(default_project: Path) -> None:
    service_dir = service_of(default_project)
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    makefile = (service_dir / "Makefile").read_text(encoding="utf-8")
    build = install_stage(stages)

    docker_sync = only(
        [
            shlex.split(command)
            for run_value in build.values("RUN")
            for command in run_value.split("&&")
            if "pip sync" in command
        ],
        "`uv pip sync` in the Dockerfile",
    )
    make_sync = only(recipe_commands(makefile, "pip sync"), "`uv pip sync` in the Makefile")
    assert docker_sync[:-1] == make_sync[:-1] == ["uv", "pip", "sync", "--require-hashes"]
    assert docker_sync[-1] == "requirements.txt"
    assert make_sync[-1] == "requirements-dev.txt"
    # `make lock` writes the production lockfile the image installs, and pins dev to it.
    compiles = {
        command[command.index("-o") + 1]: command
        for command in recipe_commands(makefile, "pip compile")
    }
    assert set(compiles) == {"requirements.txt", "requirements-dev.txt"}
    assert compiles["requirements-dev.txt"][compiles["requirements-dev.txt"].index("-c") + 1] == (
        "requirements.txt"
    )
    # The dependency layer comes before the source: only the lockfile is copied before it.
    build_steps = [(item.keyword, item.value) for item in build.instructions]
    sync_index = next(i for i, (keyword, value) in enumerate(build_steps) if "pip sync" in value)
    copied_before = [value for keyword, value in build_steps[:sync_index] if keyword == "COPY"]
    assert [value for value in copied_before if not value.startswith("--from=")] == [
        "requirements.txt ./"
    ]


def test_dockerfile_builds_with_kaniko_and_runs_unprivileged(default_project: Path) -> None:
    final = kaniko_ready_dockerfile(service_of(default_project))[-1]
    (cmd,) = final.values("CMD")
    assert isinstance(json.loads(cmd), list), "CMD must be in exec form"
    (expose,) = final.values("EXPOSE")
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert expose == final_env["PORT"] == "8080"
    assert final_env["PYTHONDONTWRITEBYTECODE"] == final_env["PYTHONUNBUFFERED"] == "1"
    assert any("pip uninstall" in value for value in final.values("RUN"))
    assert not any(re.search(r"\b(apt-get|gcc|uv)\b", value) for value in final.values("RUN"))


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(default_project: Path) -> None:
    allowed, sources = dockerignore_and_copies(service_of(default_project))
    assert allowed == sources
    assert sources == {"requirements.txt", "src"}


@pytest.mark.parametrize(
    "dockerfile",
    [
        pytest.param(
            "FROM python:3.13.9-slim-bookworm\nLABEL Invalid..key=1\n", id="style-level-finding"
        ),
        pytest.param("FROM quay.io/acme/python:3.13\n", id="untrusted-registry"),
        pytest.param(
            "FROM python:3.13.9-slim-bookworm\nRUN echo a\n# hadolint ignore=DL3059\nRUN echo b\n",
            id="inline-ignore-pragma",
        ),
    ],
)
def test_hadolint_config_fails_what_the_defaults_let_through(
    dockerfile: str, default_project: Path, tmp_path: Path, tool: Tool
) -> None:
    hadolint = tool("hadolint")
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile, encoding="utf-8")
    isolated = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}

    assert run([hadolint, path], cwd=tmp_path, env=isolated, check=False).returncode == 0
    strict = run([hadolint, path], cwd=default_project, env=isolated, check=False)
    assert strict.returncode != 0, strict.stdout


@dataclass
class NativeImage:
    """Replays Dockerfile instructions on this machine, with the image's `/` under `root`."""

    root: Path
    context: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def path(self, container_path: str) -> Path:
        if container_path.startswith("/"):
            return self.root / container_path.lstrip("/")
        return self.workdir / container_path

    def setting(self, value: str) -> str:
        """An ENV value: container paths moved under root, then $VARIABLES expanded."""
        parts = []
        for part in value.split(":"):
            if part.startswith("/"):
                part = str(self.path(part))
            parts.append(
                re.sub(
                    r"\$\{?(\w+)\}?", lambda m: self.env.get(m[1], os.environ.get(m[1], "")), part
                )
            )
        return ":".join(parts)

    def apply(self, instruction: Instruction, run_commands: bool) -> None:
        keyword, value = instruction.keyword, instruction.value
        if keyword == "ENV":
            self.env.update((key, self.setting(setting)) for key, setting in env_pairs(value))
        elif keyword == "WORKDIR":
            self.workdir = self.path(value)
            self.workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY" and value.startswith("--from="):
            # From an earlier stage: replayed under the same root, so already in place. From an
            # image (the uv binary): the same tool is on this machine's PATH.
            pass
        elif keyword == "COPY":
            *sources, destination = shlex.split(value)
            target = self.path(destination)
            for source in sources:
                origin = self.context / source
                if origin.is_dir():  # like docker: the directory's contents, not the directory
                    shutil.copytree(origin, target, dirs_exist_ok=True)
                elif destination.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
                else:
                    shutil.copy2(origin, target)
        elif keyword == "RUN" and run_commands:
            environment = {**os.environ, **self.env}
            # The image build has no cache to reuse; here the cache only makes it faster.
            environment.pop("UV_NO_CACHE", None)
            run(["sh", "-c", value], cwd=self.workdir, env=environment)


@pytest.mark.slow
def test_dockerfile_build_commands_run_natively_and_the_cmd_serves(
    default_project: Path,
    tmp_path: Path,
    tool: Tool,
    stop_on_exit: list[subprocess.Popen[str]],
) -> None:
    tool("uv")
    service_dir = service_of(default_project)
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    build, final = install_stage(stages), stages[-1]
    root = tmp_path / "image"  # both stages share it, as COPY --from=build shares their files
    builder = NativeImage(root=root, context=service_dir, workdir=root)
    runtime = NativeImage(root=root, context=service_dir, workdir=root)

    for instruction in build.instructions:
        builder.apply(instruction, run_commands=True)
    # The final stage's RUN changes the base image's own Python (it removes pip): replaying it
    # would change this machine's. Its other instructions only set up paths and settings.
    for instruction in final.instructions:
        runtime.apply(instruction, run_commands=False)

    port = free_port()
    command = json.loads(only(final.values("CMD"), "CMD"))
    inherited = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environment = {**inherited, **runtime.env, "PORT": str(port)}
    process = start(command, runtime.workdir, environment, stop_on_exit)
    wait_for_health(port, process)
    assert get(port, "/readyz")[0] == 200
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert_json_logs(stdout)
    # The CMD's `python` is the one of the environment the build stage installed into.
    venv_python = Path(builder.env["VIRTUAL_ENV"]) / "bin" / "python"
    assert str(venv_python.parent) == environment["PATH"].split(os.pathsep)[0]
    pip = run([venv_python, "-m", "pip", "--version"], check=False)
    assert pip.returncode != 0, "the runtime environment should have no pip"


@pytest.mark.slow
def test_other_answers_render_a_working_service(
    make_project: Callable[..., Path], service: Path
) -> None:
    description = 'He said: "hi" # {{x}} ünï'
    project = make_project(project_name="Billing API", description=description)
    service_dir = service_of(project)
    assert service_dir.name == "billing-api"
    pyproject = tomllib.loads((service_dir / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == "billing-api"
    assert pyproject["project"]["description"] == description
    assert (service_dir / "src" / "billing_api" / "__main__.py").is_file()

    # The shared environment of the default project has the same locked dependencies.
    run([service / ".venv" / "bin" / "pytest", "-q", "-p", "no:cacheprovider"], cwd=service_dir)
    run([service / ".venv" / "bin" / "ruff", "check", "--no-cache", "."], cwd=service_dir)
