"""The generated Java job: its Makefile, pom.xml and Dockerfile, and the job contract, for real.

One project (kind=job, language=java, trigger=s3) is rendered and copied once per module; the
job's own `make lint test` runs in the copy with JDK 25 (the services' `jdk` discovery). The
contract (tests/jobs/contract.py) runs against the image as the Dockerfile builds it, each stage
replayed natively (Maven with this machine's ~/.m2), started as the final stage's ENTRYPOINT with
the final stage's environment, against one moto S3 server for the module.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from extensions.context import load_pins
from tests.conftest import missing
from tests.helpers import REPO_ROOT, render, run
from tests.jobs import contract
from tests.services.conftest import JAVA_VERSION, JDK_ROOTS, jdk_version
from tests.services.contract import (
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
from tests.services.test_java_service import POM, REGISTRY, make_test_only

Tool = Callable[[str], str]
THRESHOLD = 80  # coverage_threshold's default


@dataclass
class NativeImage:
    """The final stage replayed in a folder: its root, working directory and environment."""

    root: Path
    workdir: Path
    env: dict[str, str]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def java_env(tool: Tool) -> dict[str, str]:
    """JDK 25 first on PATH and in JAVA_HOME, as CI's setup step does (the services' discovery)."""
    tool("make")
    tool("mvn")
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    candidates += sorted(path for root in JDK_ROOTS if root.is_dir() for path in root.iterdir())
    home = next((path for path in candidates if jdk_version(path) == JAVA_VERSION), None)
    if home is None:
        missing(f"no JDK {JAVA_VERSION} in JAVA_HOME or {', '.join(map(str, JDK_ROOTS))}")
        raise AssertionError  # unreachable: missing() raises
    return {
        **os.environ,
        "JAVA_HOME": str(home),
        "PATH": f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def rendered(copie_session: Any) -> Path:
    """The default project with a Java job as its first application; read only."""
    return render(copie_session, language="java", kind="job", trigger="s3")


@pytest.fixture(scope="module")
def job(rendered: Path, tmp_path_factory: pytest.TempPathFactory, java_env: dict[str, str]) -> Path:
    """A private copy of the job with every dependency and plugin in ~/.m2 (`make deps`).

    One Maven at a time fills the local repository (the lock the service tests take too).
    """
    destination = tmp_path_factory.mktemp("java-job") / "project"
    shutil.copytree(rendered, destination)
    job_dir = service_of(destination)
    lock = Path(tempfile.gettempdir()) / "devops-template-maven.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run(["make", "deps"], cwd=job_dir, env=java_env)
    return job_dir


@pytest.fixture(scope="module")
def s3() -> Iterator[contract.S3]:
    with contract.s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def image(
    rendered: Path, tmp_path_factory: pytest.TempPathFactory, java_env: dict[str, str], job: Path
) -> NativeImage:
    """Each stage of the Dockerfile replayed in its own root; COPY --from reads the named stage."""
    context = service_of(rendered)
    stages = parse_dockerfile((context / "Dockerfile").read_text(encoding="utf-8"))
    base = tmp_path_factory.mktemp("java-job-image")
    roots: dict[str, Path] = {}
    root = workdir = base
    image_env: dict[str, str] = {}

    def inside(root: Path, path: str, workdir: Path) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    for index, stage in enumerate(stages):
        root = base / (stage.name or f"stage-{index}")
        roots[stage.name or str(index)] = root
        workdir = root
        image_env = {}
        for item in stage.instructions:
            if item.keyword == "ENV":
                image_env.update(env_pairs(item.value))
            elif item.keyword == "WORKDIR":
                workdir = inside(root, item.value, workdir)
                workdir.mkdir(parents=True, exist_ok=True)
            elif item.keyword == "COPY":
                words = shlex.split(item.value)
                source_root = context
                if words[0].startswith("--from="):
                    source_root = roots[words.pop(0).removeprefix("--from=")]
                *sources, destination = words
                for source in sources:
                    origin = inside(source_root, source, source_root)
                    target = inside(root, destination, workdir)
                    if origin.is_dir():  # like docker: the directory's contents
                        shutil.copytree(origin, target, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target / origin.name)
            elif item.keyword == "RUN":
                # The build stage's Maven and java: this machine's, with the shared ~/.m2.
                run(["sh", "-c", item.value], cwd=workdir, env={**java_env, **image_env})
    return NativeImage(root, workdir, image_env)


@pytest.fixture(scope="module")
def run_image(image: NativeImage, rendered: Path, java_env: dict[str, str]) -> contract.Runner:
    """Run the image's ENTRYPOINT with the step's arguments, the image's and the event's env."""
    final = parse_dockerfile((service_of(rendered) / "Dockerfile").read_text("utf-8"))[-1]
    java, *arguments = json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT"))
    # The image's `java` is the JDK's; its paths are inside the image's root.
    command = [
        str(Path(java_env["JAVA_HOME"]) / "bin" / java),
        *(
            str(image.root / word.lstrip("/")) if word.startswith("/") else word
            for word in arguments
        ),
    ]
    base = {
        "PATH": "/nonexistent",
        "HOME": str(image.workdir),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def run_step(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            cwd=image.workdir,
            env={**base, **image.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
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
    # stderr has the JVM's note of the image's options, and nothing from the SDK.
    assert [line for line in done.stderr.splitlines() if "JAVA_TOOL_OPTIONS" not in line] == []


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
        lines = [line for line in failed.stderr.splitlines() if "JAVA_TOOL_OPTIONS" not in line]
        assert len(lines) == 1, failed.stderr
        assert named in lines[0]


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
    # Temporary: the workflow retries it.
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert contract.log_events(failed.stdout) == ["failed"]
    assert "Connection refused" in failed.stdout


@pytest.mark.slow
def test_the_image_has_the_url_connection_client_and_no_netty_or_apache(
    image: NativeImage,
) -> None:
    jars = {path.name for path in (image.workdir / "lib").glob("*.jar")}
    assert any(name.startswith("url-connection-client-") for name in jars), jars
    assert any(name.startswith("s3-") for name in jars), jars
    assert not [name for name in jars if re.match(r"(netty|apache|httpclient|junit)", name)]
    assert {path.name for path in image.workdir.iterdir()} == {"lib", "my-service.jar"}


# --- make lint / test / run ----------------------------------------------------------------------


@pytest.mark.slow
def test_make_lint_and_test_pass_with_coverage_over_the_threshold(
    job: Path, java_env: dict[str, str]
) -> None:
    for report in ("coverage.xml", "junit.xml"):
        (job / report).unlink(missing_ok=True)
    run(["make", "lint"], cwd=job, env=java_env)
    result = run(["make", "test"], cwd=job, env=java_env)
    reports = read_reports(job)
    assert reports.failed == 0
    assert reports.tests >= 40
    assert reports.line_rate * 100 >= THRESHOLD
    assert "coverage.xml: " in result.stdout
    # The job's logic is measured, not only its entry point.
    assert {"Main.java", "Job.java", "S3Store.java", "Settings.java", "Csv.java"} <= {
        Path(name).name for name in reports.covered_files()
    }


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(job: Path, java_env: dict[str, str]) -> None:
    """The real `make test` at the default threshold, with Surefire running one test class (the
    Makefile's own MVN and -Dtest): SettingsTest alone covers Settings.java only, far below 80%,
    and passes, so only the coverage gate can fail the run. The coverage is this run's alone,
    whatever ran in the folder before (the full run of the test above, in module order)."""
    makefile = (job / "Makefile").read_text(encoding="utf-8")
    assert f"COVERAGE_THRESHOLD ?= {THRESHOLD}\n" in makefile
    result = run(make_test_only("SettingsTest", job), cwd=job, env=java_env, check=False)
    assert result.returncode != 0
    assert f"is below COVERAGE_THRESHOLD ({THRESHOLD}%)" in result.stderr
    assert "test(s) failed" not in result.stderr  # the tests passed: coverage failed the run
    reports = read_reports(job)
    assert reports.failed == 0
    assert reports.line_rate * 100 < THRESHOLD
    assert [suite.attrib["name"].rsplit(".", 1)[-1] for suite in reports.suites] == ["SettingsTest"]


@pytest.mark.slow
def test_make_run_processes_the_event_in_the_environment(
    job: Path, s3: contract.S3, java_env: dict[str, str]
) -> None:
    event = s3.put("incoming/acme/make-run.csv", contract.GOOD)
    env = {**java_env, **s3.env, **event}
    result = run(["make", "--silent", "run"], cwd=job, env=env)
    assert contract.log_events(result.stdout) == ["validated", "loaded"]


def test_job_targets_are_the_service_targets_with_the_coverage_gate(rendered: Path) -> None:
    """CI and the root Makefile run the same targets in every application."""
    job_dir = service_of(rendered)
    makefile = (job_dir / "Makefile").read_text(encoding="utf-8")
    phony = only(re.findall(r"^\.PHONY:(.*)$", makefile, re.M), ".PHONY line").split()
    assert set(phony) == {"help", "lint", "format", "test", "run", "deps"}
    assert f"COVERAGE_THRESHOLD ?= {THRESHOLD}\n" in makefile
    reports = only(recipe_commands(makefile, "TestReports"), "TestReports in make test")
    assert reports[-2:] == ["tools/TestReports.java", str(THRESHOLD)]  # $(COVERAGE_THRESHOLD)
    # The service's report converter and gate, unchanged: both render the one shared source.
    assert (job_dir / "tools" / "TestReports.java").read_text(encoding="utf-8") == (
        REPO_ROOT / "template/_partials/java/TestReports.java"
    ).read_text(encoding="utf-8")


def test_pom_pins_the_jdk_and_names_no_registry(rendered: Path) -> None:
    job_dir = service_of(rendered)
    for path in (path for path in job_dir.rglob("*") if path.is_file()):
        assert not REGISTRY.search(path.read_text(encoding="utf-8")), path
    pom = ET.parse(job_dir / "pom.xml").getroot()
    assert pom.find(f"{POM}parent") is None, "a plain Java program: no framework parent"
    assert pom.find(f"{POM}repositories") is None
    assert pom.find(f"{POM}pluginRepositories") is None
    assert pom.findtext(f"{POM}properties/{POM}java.version") == JAVA_VERSION
    artifacts = {
        node.findtext(f"{POM}artifactId")
        for node in pom.iterfind(f"{POM}dependencies/{POM}dependency")
    }
    assert {"s3", "url-connection-client"} <= artifacts
    excluded = {node.text for node in pom.iterfind(f".//{POM}exclusion/{POM}artifactId")}
    assert {"netty-nio-client", "apache-client", "apache5-client"} <= excluded


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_clean_under_the_repository_hadolint_config(
    rendered: Path, tool: Tool
) -> None:
    dockerfile = service_of(rendered) / "Dockerfile"
    # hadolint finds .hadolint.yaml in the directory it runs from: the repository root.
    run([tool("hadolint"), dockerfile.relative_to(rendered)], cwd=rendered)


def test_dockerfile_runs_the_job_unprivileged_with_the_step_as_arguments(rendered: Path) -> None:
    job_dir = service_of(rendered)
    stages = kaniko_ready_dockerfile(job_dir)
    final = stages[-1]
    assert stages[0].image == load_pins()["java"]["image"]
    assert final.image == load_pins()["java"]["runtime_image"]
    assert not final.values("RUN")
    # ENTRYPOINT in exec form: the WorkflowTemplate's args (`validate /tmp/...`) follow it.
    entrypoint = json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT"))
    assert entrypoint == ["java", "-jar", "/app/my-service.jar"]
    assert json.loads(only(final.values("CMD"), "CMD")) == ["run"]
    assert final.values("EXPOSE") == []
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert "PORT" not in final_env
    # No hsperfdata file: the workflow's pods have a read-only root file system.
    assert {"-XX:MaxRAMPercentage=75", "-XX:-UsePerfData"} <= set(
        final_env["JAVA_TOOL_OPTIONS"].split()
    )
    # The dependency layer first, the job's own jar last.
    assert [value.split()[1] for value in final.values("COPY")] == [
        "/app/target/lib/",
        "/app/target/my-service.jar",
    ]


def test_dockerfile_resolves_dependencies_like_the_makefile_before_the_sources(
    rendered: Path,
) -> None:
    job_dir = service_of(rendered)
    stages = parse_dockerfile((job_dir / "Dockerfile").read_text(encoding="utf-8"))
    makefile = (job_dir / "Makefile").read_text(encoding="utf-8")
    build = stage_running(stages, "dependency:go-offline")
    docker_deps = only(run_commands(build, "dependency:go-offline"), "go-offline in the image")
    make_deps = only(recipe_commands(makefile, "dependency:go-offline"), "go-offline in make")
    assert docker_deps == make_deps
    (package,) = run_commands(build, " package")
    assert package[: len(docker_deps) - 1] == docker_deps[:-1]
    assert "-Dmaven.test.skip=true" in package
    steps = [(item.keyword, item.value) for item in build.instructions]
    deps_index = next(i for i, (_, value) in enumerate(steps) if "go-offline" in value)
    assert [value for keyword, value in steps[:deps_index] if keyword == "COPY"] == ["pom.xml ./"]
    assert [value for keyword, value in steps[deps_index:] if keyword == "COPY"] == [
        "src/main/ src/main/"
    ]


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(rendered: Path) -> None:
    allowed, sources = dockerignore_and_copies(service_of(rendered))
    assert allowed == sources == {"pom.xml", "src/main"}
