"""The generated Go job: its Makefile, go.mod and Dockerfile, and the job contract, for real.

One project (kind=job, language=go, trigger=s3) is rendered and copied once per module; the job's
own `make lint test` runs in the copy. The contract (tests/jobs/contract.py) runs against the
binary the Dockerfile builds, its build stage replayed natively, started as the final stage's
ENTRYPOINT with nothing from this machine, against one moto S3 server for the module. Every go
command shares this machine's module and build caches.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from extensions.context import load_pins
from tests.helpers import render, run
from tests.jobs import contract
from tests.services.contract import (
    dockerignore_and_copies,
    edited,
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
from tests.services.test_go_service import GO_SUM_LINE, REGISTRY_HOSTS, Elf, before_output

Tool = Callable[[str], str]
THRESHOLD = 80  # coverage_threshold's default


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(copie_session: Any) -> Path:
    """The default project with a Go job as its first application; read only."""
    return render(copie_session, language="go", kind="job", trigger="s3")


@pytest.fixture(scope="module")
def job(rendered: Path, tmp_path_factory: pytest.TempPathFactory, tool: Tool) -> Path:
    """A private copy of the job that make may write into, its modules downloaded (`make deps`)."""
    for name in ("make", "go", "gcc"):  # gcc: `go test -race` needs cgo
        tool(name)
    destination = tmp_path_factory.mktemp("go-job") / "project"
    shutil.copytree(rendered, destination)
    job_dir = service_of(destination)
    run(["make", "deps"], cwd=job_dir)
    return job_dir


@pytest.fixture(scope="module")
def s3() -> Iterator[contract.S3]:
    with contract.s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def image(rendered: Path, tmp_path_factory: pytest.TempPathFactory, tool: Tool) -> Path:
    """The Dockerfile's build stage replayed natively (the image's `/` in a temporary folder),
    then the final stage's COPY: returns that root, with the binary where the image has it."""
    go = tool("go")
    job_dir = service_of(rendered)
    stages = parse_dockerfile((job_dir / "Dockerfile").read_text(encoding="utf-8"))
    build, final = stage_running(stages, "go mod download"), stages[-1]
    root = tmp_path_factory.mktemp("go-job-image")
    # What .dockerignore keeps out of the context below the copied folders (`**/<name>`).
    ignored = shutil.ignore_patterns(
        *(
            line.strip().removeprefix("**/").rstrip("/")
            for line in (job_dir / ".dockerignore").read_text(encoding="utf-8").splitlines()
            if line.strip().startswith("**/")
        )
    )

    def inside(path: str, workdir: Path) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    workdir, env = root, dict(os.environ)
    for instruction in build.instructions:
        keyword, value = instruction.keyword, instruction.value
        if keyword == "ENV":
            env.update(env_pairs(value))
        elif keyword == "WORKDIR":
            workdir = inside(value, workdir)
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, destination = shlex.split(value)
            target = inside(destination, workdir)
            for origin in (match for source in sources for match in job_dir.glob(source)):
                if origin.is_dir():  # like docker: the directory's contents, not the directory
                    shutil.copytree(origin, target, ignore=ignored, dirs_exist_ok=True)
                elif origin.name not in ignored(str(job_dir), [origin.name]):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif keyword == "RUN":
            words = shlex.split(value)
            while "=" in words[0]:  # `NAME=value command`: the command's environment
                name, _, setting = words.pop(0).partition("=")
                env[name] = setting
            command = [
                str(inside(word, workdir)) if word.startswith("/") else word for word in words
            ]
            run([go if command[0] == "go" else command[0], *command[1:]], cwd=workdir, env=env)
    # The build had no test file, as in the image: it needed none.
    assert list(root.rglob("*.go"))
    assert not list(root.rglob("*_test.go"))
    (copied,) = final.values("COPY")
    built, installed = shlex.split(copied.removeprefix("--from=build "))
    (root / installed.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / built.lstrip("/"), root / installed.lstrip("/"))
    return root


@pytest.fixture(scope="module")
def entrypoint(rendered: Path) -> list[str]:
    final = parse_dockerfile((service_of(rendered) / "Dockerfile").read_text("utf-8"))[-1]
    command: list[str] = json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT"))
    return command


@pytest.fixture(scope="module")
def run_image(
    image: Path, entrypoint: list[str], tmp_path_factory: pytest.TempPathFactory
) -> contract.Runner:
    """Run the image's ENTRYPOINT with the workflow step's arguments and the event's env only."""
    binary, *arguments = entrypoint
    home = tmp_path_factory.mktemp("go-job-home")
    base = {
        # Nothing from this machine: no tools on PATH, no AWS configuration files.
        "PATH": "/nonexistent",
        "HOME": str(home),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def run_step(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(image / binary.lstrip("/")), *arguments, *args],
            cwd=home,
            env={**base, **env},
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
def test_a_log_line_per_step_is_json_with_the_event(
    run_image: contract.Runner, s3: contract.S3
) -> None:
    event = s3.put("incoming/acme/logs.csv", contract.GOOD)
    done = run_image(["run"], {**s3.env, **event})
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    assert [entry["event"] for entry in entries] == ["validated", "loaded"]
    for entry in entries:
        assert {"time", "level", "logger", "message", "source", "etag"} <= entry.keys()
        assert entry["source"] == f"s3://{contract.BUCKET}/incoming/acme/logs.csv"


@pytest.mark.slow
def test_invalid_settings_and_arguments_exit_2_with_one_line_naming_them(
    run_image: contract.Runner, s3: contract.S3
) -> None:
    event = {**s3.env, "EVENT_BUCKET": contract.BUCKET, "EVENT_KEY": "a.csv"}
    cases = [
        (["run"], {**event, "EVENT_SIZE": "-3"}, "EVENT_SIZE"),
        (["run"], {**event, "S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL"),
        (["validate"], event, "usage: my-service validate ARTIFACT"),
    ]
    for args, env, named in cases:
        failed = run_image(args, env)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert failed.stdout == ""
        (line,) = failed.stderr.splitlines()
        assert named in line


@pytest.mark.slow
def test_an_unreachable_server_fails_the_step_with_exit_3_and_a_log_line(
    run_image: contract.Runner, s3: contract.S3
) -> None:
    env = {
        **s3.env,
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{contract.free_port()}",
        "EVENT_BUCKET": contract.BUCKET,
        "EVENT_KEY": "incoming/acme/day-1.csv",
        "AWS_MAX_ATTEMPTS": "1",
    }
    failed = run_image(["run"], env)
    assert failed.returncode == 3  # temporary: the workflow retries it
    assert contract.log_events(failed.stdout) == ["failed"]
    assert "connection refused" in failed.stdout


# --- make lint / test / run ----------------------------------------------------------------------


@pytest.mark.slow
def test_make_lint_and_test_pass_with_coverage_over_the_threshold(job: Path) -> None:
    for report in ("coverage.xml", "junit.xml"):
        (job / report).unlink(missing_ok=True)
    run(["make", "lint"], cwd=job)
    result = run(["make", "test"], cwd=job)
    reports = read_reports(job)
    assert reports.failed == 0
    assert reports.tests >= 40
    assert reports.line_rate * 100 >= THRESHOLD
    assert f"(minimum {THRESHOLD}%)" in result.stdout
    # The job's logic is measured, not only its entry point.
    assert {"main.go", "internal/job/job.go", "internal/storage/s3.go"} <= {
        name.split("/apps/my-service/", 1)[-1] for name in reports.covered_files()
    }


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(job: Path) -> None:
    body = "".join(f"\tif n == {index} {{\n\t\treturn {index}\n\t}}\n" for index in range(400))
    untested = (
        "package job\n\n// Untested is never called.\n"
        f"func Untested(n int) int {{\n{body}\treturn -1\n}}\n"
    )
    with edited(job / "internal" / "job" / "untested.go", lambda _: untested):
        result = run(["make", "test"], cwd=job, check=False)
    assert result.returncode != 0
    assert "coverage is below COVERAGE_THRESHOLD" in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "finding"),
    [
        pytest.param("package job\n\nconst Spaced=1\n", "internal/job/zz_lint.go", id="gofmt"),
        pytest.param(
            'package job\n\nimport "fmt"\n\n'
            'func Describe() string {\n\treturn fmt.Sprintf("%d", "x")\n}\n',
            "fmt.Sprintf format %d has arg",
            id="go-vet",
        ),
        pytest.param(
            "package job\n\nfunc unused() {}\n", "func unused is unused (U1000)", id="staticcheck"
        ),
    ],
)
def test_make_lint_fails_on_what_each_linter_finds(job: Path, text: str, finding: str) -> None:
    with edited(job / "internal" / "job" / "zz_lint.go", lambda _: text):
        result = run(["make", "lint"], cwd=job, check=False)
    assert result.returncode != 0
    assert finding in result.stdout + result.stderr


@pytest.mark.slow
def test_make_run_processes_the_event_in_the_environment(job: Path, s3: contract.S3) -> None:
    event = s3.put("incoming/acme/make-run.csv", contract.GOOD)
    env = {**os.environ, **s3.env, **event}
    result = run(["make", "--silent", "run"], cwd=job, env=env)
    assert contract.log_events(result.stdout) == ["validated", "loaded"]
    again = run(["make", "--silent", "run"], cwd=job, env=env)
    assert contract.log_events(again.stdout) == ["skipped"]


def test_job_targets_are_the_service_targets(rendered: Path) -> None:
    """CI and the root Makefile run the same targets in every application."""
    makefile = (service_of(rendered) / "Makefile").read_text(encoding="utf-8")
    phony = only(re.findall(r"^\.PHONY:(.*)$", makefile, re.M), ".PHONY line").split()
    assert set(phony) == {"help", "lint", "format", "test", "run", "build", "deps"}
    gotestsum = only(recipe_commands(makefile, "gotestsum"), "gotestsum")
    assert gotestsum[6:8] == ["-race", "-covermode=atomic"]
    assert f"COVERAGE_THRESHOLD ?= {THRESHOLD}\n" in makefile


def test_generated_go_is_gofmt_clean(rendered: Path, tool: Tool) -> None:
    result = run([tool("gofmt"), "-l", "."], cwd=service_of(rendered))
    assert result.stdout == "", f"gofmt would reformat:\n{result.stdout}"


# --- go.mod and go.sum ---------------------------------------------------------------------------


def test_go_mod_pins_the_toolchain_the_sdk_and_the_tools(rendered: Path) -> None:
    job_dir = service_of(rendered)
    go_mod = (job_dir / "go.mod").read_text(encoding="utf-8")
    assert re.search(r"^module github\.com/my-org/my-service/apps/my-service$", go_mod, re.M)
    assert f"\ntoolchain go{load_pins()['go']['version']}\n" in go_mod
    (direct,) = re.findall(r"^require \(\n(.*?)^\)", go_mod, re.M | re.S)[:1]
    modules = {line.split()[0] for line in direct.strip().splitlines()}
    assert {
        "github.com/aws/aws-sdk-go-v2/config",
        "github.com/aws/aws-sdk-go-v2/service/s3",
    } <= modules
    (tools,) = re.findall(r"^tool \(\n(.*?)^\)", go_mod, re.M | re.S)
    assert set(tools.split()) == {
        "github.com/boumenot/gocover-cobertura",
        "gotest.tools/gotestsum",
        "honnef.co/go/tools/cmd/staticcheck",
    }


def test_go_sum_has_only_hashes_and_no_file_names_a_registry(rendered: Path) -> None:
    job_dir = service_of(rendered)
    go_sum = (job_dir / "go.sum").read_text(encoding="utf-8").splitlines()
    assert go_sum, "go.sum is empty"
    assert [line for line in go_sum if not GO_SUM_LINE.match(line)] == []
    for path in job_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not [host for host in REGISTRY_HOSTS if host in text.lower()], path
            settings = re.findall(r"\bGO(?:PROXY|NOSUMDB|SUMDB|INSECURE|PRIVATE)\b", text)
            assert not settings, f"{path} changes where modules come from: {settings}"


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
    assert len(stages) == 2
    assert final.image == load_pins()["go"]["runtime_image"]
    assert final.image.endswith(":nonroot")
    assert final.values("RUN") == [], "the distroless stage has no shell to run anything"
    # ENTRYPOINT in exec form: the WorkflowTemplate's args (`validate /tmp/...`) follow it.
    assert entrypoint == ["/usr/local/bin/my-service"]
    assert json.loads(only(final.values("CMD"), "CMD")) == ["run"]
    assert final.values("EXPOSE") == []
    (copied,) = final.values("COPY")
    assert copied == "--from=build /out/job /usr/local/bin/my-service"


def test_dockerfile_downloads_and_builds_like_the_makefile(rendered: Path) -> None:
    job_dir = service_of(rendered)
    stages = parse_dockerfile((job_dir / "Dockerfile").read_text(encoding="utf-8"))
    makefile = (job_dir / "Makefile").read_text(encoding="utf-8")
    build = stage_running(stages, "go mod download")
    assert build.image == load_pins()["go"]["image"]
    docker_download = only(run_commands(build, "go mod download"), "`go mod download` in Docker")
    make_download = only(recipe_commands(makefile, "mod download"), "`go mod download` in make")
    assert docker_download == make_download == ["go", "mod", "download"]
    docker_build = only(run_commands(build, "go build"), "`go build` in the Dockerfile")
    make_build = only(recipe_commands(makefile, "go build"), "`go build` in the Makefile")
    assert before_output(docker_build) == before_output(make_build)
    assert docker_build[-1] == make_build[-1] == "."
    steps = [(item.keyword, item.value) for item in build.instructions]
    download_index = next(i for i, (_, value) in enumerate(steps) if "go mod download" in value)
    assert [value for keyword, value in steps[:download_index] if keyword == "COPY"] == [
        "go.mod go.sum ./"
    ]
    assert ("ENV", "GOTOOLCHAIN=local") in steps[:download_index]


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(rendered: Path) -> None:
    job_dir = service_of(rendered)
    allowed, sources = dockerignore_and_copies(job_dir)
    assert allowed == sources == {"go.mod", "go.sum", "*.go", "internal"}
    assert "**/*_test.go" in (job_dir / ".dockerignore").read_text(encoding="utf-8").split()


@pytest.mark.slow
def test_the_image_binary_is_static_and_stripped(image: Path, entrypoint: list[str]) -> None:
    elf = Elf.read(image / entrypoint[0].lstrip("/"))
    assert elf.interpreter is None, "the binary needs a dynamic loader: it is not static"
    assert not {".symtab", ".debug_info"} & elf.sections, "-ldflags='-s -w' strips these"
