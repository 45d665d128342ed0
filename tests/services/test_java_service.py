"""The generated Java service: its Makefile, its Dockerfile and the service itself, run for real.

One project is rendered with language=java per test worker and copied once for the tests that run
make in it. Maven keeps what it downloads in its default local repository (~/.m2), shared by every
run on this machine; the first resolve is serialised across test workers, later ones read it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from extensions.context import load_pins
from tests.helpers import run
from tests.services.contract import (
    TEST_DELAY_HEADER,
    KeepAliveLoad,
    Output,
    all_descendants,
    assert_graceful_stop,
    assert_json_logs,
    assert_metrics_contract,
    assert_probe_bodies,
    dockerignore_and_copies,
    edited,
    env_pairs,
    free_port,
    get,
    kaniko_ready_dockerfile,
    make_lint_and_test,
    makefile_recipes,
    only,
    parse_dockerfile,
    recipe_commands,
    run_commands,
    service_of,
    stage_running,
    start,
    wait_for_health,
)

Tool = Callable[[str], str]

JAVA_VERSION = str(load_pins()["java"]["version"])
POM = "{http://maven.apache.org/POM/4.0.0}"
# Package registries, and the Maven wrapper whose properties would name one.
REGISTRY = re.compile(r"repo1?\.maven\.(org|apache\.org)|plugins\.gradle\.org|maven-wrapper")
# Debian's Maven 3.8 writes terminal resets around its own output, --batch-mode or not.
ANSI_RESET = re.compile(r"\x1b\[[0-9;]*m")

LANGUAGE = "java"  # the services/conftest.py fixtures render this language


# --- helpers -------------------------------------------------------------------------------------


@contextmanager
def added(path: Path, text: str) -> Iterator[None]:
    """A file that exists for the duration of the block."""
    path.write_text(text, encoding="utf-8")
    try:
        yield
    finally:
        path.unlink()


def java_package(service_dir: Path) -> Path:
    """The one package directory under src/main/java."""
    (application,) = (service_dir / "src" / "main" / "java").glob("*/Application.java")
    return application.parent


def service_process(parent: int, main_class: str) -> int:
    """The JVM that runs the service, below `make run` and Maven's own JVM."""
    for pid in all_descendants(parent):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if main_class.encode() in command:
            return pid
    raise AssertionError(f"no JVM running {main_class} under {parent}")


def make_test_only(test_class: str, service_dir: Path) -> list[str]:
    """`make test` running one test class: the Makefile's own MVN, with Surefire's -Dtest."""
    variables, _ = makefile_recipes((service_dir / "Makefile").read_text(encoding="utf-8"))
    return ["make", "test", f"MVN={variables['MVN']} -Dtest={test_class}"]


def junit_root(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites", f"{path}: <{root.tag}>"
    return root


def assert_cobertura(path: Path, minimum: float) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "coverage"
    assert float(root.attrib["line-rate"]) >= minimum
    lines = root.findall("packages/package/classes/class/lines/line")
    covered = [line for line in lines if int(line.attrib["hits"]) > 0]
    assert (len(covered), len(lines)) == (
        int(root.attrib["lines-covered"]),
        int(root.attrib["lines-valid"]),
    )
    return root


# The contract tests' delay hook: a servlet filter inside HttpMetricsFilter (it runs after it).
TEST_DELAY_FILTER = """package {package};

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import org.springframework.stereotype.Component;

@Component
class TestDelayFilter implements Filter {{
  @Override
  public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
      throws IOException, ServletException {{
    String delay = ((HttpServletRequest) request).getHeader("{header}");
    if (delay != null) {{
      try {{
        Thread.sleep((long) (Double.parseDouble(delay) * 1000));
      }} catch (InterruptedException interrupted) {{
        Thread.currentThread().interrupt();
      }}
    }}
    chain.doFilter(request, response);
  }}
}}
"""
QUANTITY = re.compile(r"^(\d+)(Mi|Gi)$")


def chart_runtime(project: Path) -> tuple[dict[str, str], int]:
    """The runtime environment and the memory limit (bytes) the chart gives the container."""
    (values_file,) = (project / "deploy" / "charts").glob("*/values.yaml")
    values = yaml.safe_load(values_file.read_text(encoding="utf-8"))
    env = {item["name"]: item["value"] for item in values["runtimeEnv"]}
    match = QUANTITY.match(values["resources"]["limits"]["memory"])
    assert match, values["resources"]["limits"]["memory"]
    limit = int(match[1]) * {"Mi": 2**20, "Gi": 2**30}[match[2]]
    return env, limit


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(project_copy: Path, java_env: dict[str, str]) -> Path:
    """The copied service with every dependency and plugin in ~/.m2, lint and test ready.

    `make deps` resolves what the build needs; `make lint` adds the formatter. One test worker
    at a time: two Mavens filling the same local repository may trip over each other's files.
    """
    service_dir = service_of(project_copy)
    lock = Path(tempfile.gettempdir()) / "devops-template-maven.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run(["make", "deps"], cwd=service_dir, env=java_env)
        run(["make", "lint"], cwd=service_dir, env=java_env)
    return service_dir


@pytest.fixture(scope="module")
def delay_jar(
    service: Path, java_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The service's jar as `mvn package` builds it, with the contract tests' delay hook."""
    package = java_package(service)
    hook = TEST_DELAY_FILTER.format(package=package.name, header=TEST_DELAY_HEADER)
    with added(package / "TestDelayFilter.java", hook):
        run(
            ["mvn", "--batch-mode", "--quiet", "-Dmaven.test.skip=true", "package"],
            cwd=service,
            env=java_env,
        )
    jar = tmp_path_factory.mktemp("java-jar") / "service.jar"
    shutil.copy2(service / "target" / f"{service.name}.jar", jar)
    return jar


def java_command(java_env: dict[str, str], jar: Path) -> list[str]:
    return [f"{java_env['JAVA_HOME']}/bin/java", "-jar", str(jar)]


# --- make lint / test / run ----------------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_and_leave_reports(
    project_copy: Path, service: Path, java_env: dict[str, str], schemas_dir: Path
) -> None:
    reports, result = make_lint_and_test(project_copy, service, schemas_dir, env=java_env)
    assert reports.tests >= 15
    names = {suite.attrib["name"].rsplit(".", 1)[-1] for suite in reports.suites}
    assert {"ProbesTest", "MetricsTest", "LoggingTest", "ShutdownTest"} <= names
    assert "junit.xml: " in result.stdout
    assert "coverage.xml: " in result.stdout


@pytest.mark.slow
def test_make_test_fails_on_a_failing_test_and_still_reports(
    service: Path, java_env: dict[str, str]
) -> None:
    package = java_package(service)
    failing = (
        f"package {package.name};\n\n"
        "import static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
        "import org.junit.jupiter.api.Test;\n\n"
        "class DeliberatelyFailingTest {\n\n"
        "  @Test\n"
        "  void fails() {\n"
        "    assertEquals(1, 2);\n"
        "  }\n"
        "}\n"
    )
    test_dir = service / "src" / "test" / "java" / package.name
    with added(test_dir / "DeliberatelyFailingTest.java", failing):
        command = make_test_only("DeliberatelyFailingTest", service)
        result = run(command, cwd=service, env=java_env, check=False)

    assert result.returncode != 0
    assert "1 test(s) failed" in result.stderr
    suites = junit_root(service / "junit.xml")
    assert suites.attrib["failures"] == "1"
    (failed,) = [case for case in suites.iter("testcase") if case.find("failure") is not None]
    assert failed.attrib["name"] == "fails"
    # Maven went on to the coverage report: CI still gets both files.
    assert_cobertura(service / "coverage.xml", minimum=0.0)


@pytest.mark.slow
def test_make_lint_catches_unformatted_code(service: Path, java_env: dict[str, str]) -> None:
    application = java_package(service) / "Application.java"

    with edited(
        application,
        lambda text: text.replace("  public static void main", "public static void main"),
    ):
        result = run(["make", "lint"], cwd=service, env=java_env, check=False)

    assert result.returncode != 0
    assert "Application.java" in result.stdout + result.stderr


@pytest.mark.slow
def test_make_run_serves_probes_logs_json_and_stops_on_sigterm(
    service: Path, java_env: dict[str, str], stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = {**java_env, "PORT": str(port)}
    make = start(["make", "--silent", "run"], service, env, stop_on_exit)
    wait_for_health(port, make, timeout=120)

    assert get(port, "/healthz") == (200, "application/json", '{"status":"ok"}')
    assert get(port, "/readyz")[0] == 200
    status, content_type, body = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "# HELP http_requests_total " in body
    assert 'route="/healthz"' in body

    stopped_at = time.monotonic()
    os.kill(service_process(make.pid, f"{java_package(service).name}.Application"), signal.SIGTERM)
    stdout, stderr = make.communicate(timeout=30)
    assert make.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 10
    entries = assert_json_logs(ANSI_RESET.sub("", stdout))
    assert any(str(entry["message"]).startswith("Started Application") for entry in entries)
    assert any(entry["message"] == "Graceful shutdown complete" for entry in entries)


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_loses_no_request(
    delay_jar: Path,
    java_env: dict[str, str],
    tmp_path: Path,
    stop_on_exit: list[subprocess.Popen[str]],
) -> None:
    port = free_port()
    env = {**java_env, "PORT": str(port), "SHUTDOWN_TIMEOUT": "10"}
    process = start(java_command(java_env, delay_jar), tmp_path, env, stop_on_exit)
    wait_for_health(port, process, timeout=90)

    assert_graceful_stop(port, process.pid, process, drain_timeout=10)


@pytest.mark.slow
def test_under_load_with_the_chart_memory_settings_rss_stays_below_80_percent_of_the_limit(
    language_project: Path,
    delay_jar: Path,
    java_env: dict[str, str],
    tmp_path: Path,
    stop_on_exit: list[subprocess.Popen[str]],
) -> None:
    """The JVM options of the chart, with the memory limit a container gives the JVM (-XX:MaxRAM
    stands in for the cgroup limit here); the live /metrics and probes follow the contract."""
    runtime_env, limit = chart_runtime(language_project)
    options = f"{runtime_env['JAVA_TOOL_OPTIONS']} -XX:MaxRAM={limit}"
    port = free_port()
    env = {**java_env, **runtime_env, "JAVA_TOOL_OPTIONS": options, "PORT": str(port)}
    process = start(java_command(java_env, delay_jar), tmp_path, env, stop_on_exit)
    output = Output.read(process)
    wait_for_health(port, process, timeout=90)
    assert_probe_bodies(port)
    assert_metrics_contract(port)

    peak = rss_bytes(process.pid)
    with KeepAliveLoad(port) as load:
        until = time.monotonic() + 15
        while time.monotonic() < until:
            time.sleep(0.2)
            peak = max(peak, rss_bytes(process.pid))
    process.send_signal(signal.SIGTERM)
    _, stderr = output.wait(process, timeout=30)

    assert f"Picked up JAVA_TOOL_OPTIONS: {options}" in stderr
    assert load.failures == []
    assert load.answered > 1000
    assert peak < 0.8 * limit, f"RSS {peak / 2**20:.0f} MiB of a {limit / 2**20:.0f} MiB limit"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "abc", 'PORT must be a number from 1 to 65535, got "abc"'),
        ("PORT", "70000", 'PORT must be a number from 1 to 65535, got "70000"'),
        (
            "SHUTDOWN_TIMEOUT",
            "soon",
            'SHUTDOWN_TIMEOUT must be a number of seconds >= 0, got "soon"',
        ),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line_naming_the_value(
    delay_jar: Path,
    java_env: dict[str, str],
    tmp_path: Path,
    variable: str,
    value: str,
    message: str,
) -> None:
    env = {key: item for key, item in java_env.items() if key != "JAVA_TOOL_OPTIONS"}
    result = run(
        java_command(java_env, delay_jar), cwd=tmp_path, env={**env, variable: value}, check=False
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"configuration error: {message}"]
    assert result.stdout == ""


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(
    project_copy: Path, service: Path, java_env: dict[str, str]
) -> None:
    answers = (project_copy / ".copier-answers.yml").read_text(encoding="utf-8")
    (threshold,) = re.findall(r"^coverage_threshold: (\d+)$", answers, re.M)
    makefile = (service / "Makefile").read_text(encoding="utf-8")
    assert f"COVERAGE_THRESHOLD ?= {threshold}\n" in makefile

    command = [*make_test_only("SettingsTest", service), "COVERAGE_THRESHOLD=100"]
    result = run(command, cwd=service, env=java_env, check=False)

    assert result.returncode != 0
    assert "is below COVERAGE_THRESHOLD (100%)" in result.stderr
    assert "test(s) failed" not in result.stderr  # the tests passed: coverage failed the run


def test_pom_uses_no_wrapper_and_no_file_names_a_registry(language_project: Path) -> None:
    service_dir = service_of(language_project)
    files = [path for path in service_dir.rglob("*") if path.is_file()]

    assert not [path for path in files if path.name.startswith("mvnw") or ".mvn" in path.parts]
    for path in files:
        assert not REGISTRY.search(path.read_text(encoding="utf-8")), path
    pom = ET.parse(service_dir / "pom.xml").getroot()
    assert pom.find(f"{POM}repositories") is None
    assert pom.find(f"{POM}pluginRepositories") is None
    assert pom.findtext(f"{POM}properties/{POM}java.version") == JAVA_VERSION


def test_ci_sets_up_the_pinned_jdk_and_passes_actionlint_and_zizmor(
    language_project: Path, tool: Tool
) -> None:
    workflow = language_project / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")

    run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", workflow])
    zizmor = [tool("zizmor"), "--offline", "--persona=auditor", "--min-severity=informational"]
    run([*zizmor, "--min-confidence=low", workflow])
    # Both jobs that run make take the runner's Temurin JDK, no setup action.
    assert text.count(f"java_home=${{JAVA_HOME_{JAVA_VERSION}_X64:?") == 2
    assert text.count('echo "JAVA_HOME=$java_home" >>"$GITHUB_ENV"') == 2
    assert "setup-java" not in text


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_resolves_dependencies_like_the_makefile_before_the_sources(
    language_project: Path,
) -> None:
    service_dir = service_of(language_project)
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    makefile = (service_dir / "Makefile").read_text(encoding="utf-8")
    build = stage_running(stages, "dependency:go-offline")

    docker_deps = only(run_commands(build, "dependency:go-offline"), "go-offline in the image")
    make_deps = only(recipe_commands(makefile, "dependency:go-offline"), "go-offline in make")
    assert docker_deps == make_deps
    assert docker_deps[0] == "mvn"
    assert "--batch-mode" in docker_deps
    # The packaging runs with the same Maven options, tests left to CI.
    (package,) = run_commands(build, " package")
    assert package[: len(docker_deps) - 1] == docker_deps[:-1]
    assert "-Dmaven.test.skip=true" in package
    # The dependency layer comes before the sources: only pom.xml is copied before it.
    steps = [(item.keyword, item.value) for item in build.instructions]
    deps_index = next(i for i, (_, value) in enumerate(steps) if "go-offline" in value)
    assert [value for keyword, value in steps[:deps_index] if keyword == "COPY"] == ["pom.xml ./"]
    assert [value for keyword, value in steps[deps_index:] if keyword == "COPY"] == [
        "src/main/ src/main/"
    ]


def test_dockerfile_builds_with_kaniko_and_runs_unprivileged(language_project: Path) -> None:
    service_dir = service_of(language_project)
    stages = kaniko_ready_dockerfile(service_dir)
    final = stages[-1]
    assert stages[0].image == load_pins()["java"]["image"]
    # Distroless: a JRE without shell or package manager, and nothing run in it.
    assert final.image == load_pins()["java"]["runtime_image"]
    assert final.image.startswith("gcr.io/distroless/java")
    assert not final.values("RUN")
    (entrypoint,) = final.values("ENTRYPOINT")
    assert json.loads(entrypoint) == [], "the base image's `java -jar` entrypoint is reset"
    (cmd,) = final.values("CMD")
    assert json.loads(cmd) == ["java", "-jar", f"{service_dir.name}.jar"]
    (expose,) = final.values("EXPOSE")
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert expose == final_env["PORT"] == "8080"
    # The JVM settings of the chart's runtimeEnv, for a container run without the chart.
    runtime_env, _ = chart_runtime(language_project)
    assert final_env["JAVA_TOOL_OPTIONS"] == runtime_env["JAVA_TOOL_OPTIONS"]
    assert "-XX:MaxRAMPercentage=" in final_env["JAVA_TOOL_OPTIONS"]
    # The layers of the jar, least often changed first; the application's own jar last.
    copied = [value.split()[1] for value in final.values("COPY")]
    assert [Path(source).name for source in copied] == [
        "dependencies",
        "snapshot-dependencies",
        "application",
    ]


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(language_project: Path) -> None:
    allowed, sources = dockerignore_and_copies(service_of(language_project))
    assert allowed == sources
    assert sources == {"pom.xml", "src/main"}


@pytest.mark.slow
def test_dockerfile_build_commands_run_natively_and_the_cmd_serves(
    language_project: Path,
    tmp_path: Path,
    java_env: dict[str, str],
    service: Path,
    stop_on_exit: list[subprocess.Popen[str]],
) -> None:
    """Each stage replayed in its own root; COPY --from reads the named stage's root."""
    context = service_of(language_project)
    stages = parse_dockerfile((context / "Dockerfile").read_text(encoding="utf-8"))
    roots: dict[str, Path] = {}
    image_env: dict[str, str] = {}
    workdir = tmp_path

    def inside(root: Path, path: str, workdir: Path) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else workdir / path

    for index, stage in enumerate(stages):
        root = tmp_path / (stage.name or f"stage-{index}")
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
                    # Like docker: a directory's contents, not the directory.
                    target = inside(root, destination, workdir)
                    if origin.is_dir():
                        shutil.copytree(origin, target, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target / origin.name)
            elif item.keyword == "RUN":
                # The build stage's Maven and java: this machine's, with the shared ~/.m2.
                run(["sh", "-c", item.value], cwd=workdir, env={**java_env, **image_env})

    final_dir = workdir
    jar = f"{context.name}.jar"
    assert {path.name for path in final_dir.iterdir()} == {jar, "lib"}
    assert len(list((final_dir / "lib").glob("spring-boot-*.jar"))) > 5

    port = free_port()
    command = json.loads(only(stages[-1].values("CMD"), "CMD"))
    environment = {**java_env, **image_env, "PORT": str(port)}
    process = start(command, final_dir, environment, stop_on_exit)
    wait_for_health(port, process, timeout=60)
    assert get(port, "/readyz")[0] == 200
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert_json_logs(stdout)  # the jar alone: every line of stdout is JSON
    assert f"Picked up JAVA_TOOL_OPTIONS: {image_env['JAVA_TOOL_OPTIONS']}" in stderr


# --- other answers -------------------------------------------------------------------------------


@pytest.mark.slow
def test_other_answers_render_a_working_service(
    make_project: Callable[..., Path], service: Path, java_env: dict[str, str]
) -> None:
    description = 'He said: "hi" # {{x}} <ünï> & co'
    project = make_project(language="java", project_name="Billing API", description=description)
    service_dir = service_of(project)
    assert service_dir.name == "billing-api"
    pom = ET.parse(service_dir / "pom.xml").getroot()
    assert pom.findtext(f"{POM}artifactId") == "billing-api"
    assert pom.findtext(f"{POM}name") == "Billing API"
    assert pom.findtext(f"{POM}description") == description
    assert java_package(service_dir).name == "billing_api"
    properties = service_dir / "src" / "main" / "resources" / "application.properties"
    assert "spring.application.name=billing-api\n" in properties.read_text(encoding="utf-8")

    # The whole suite runs, as CI runs it: `make test` enforces coverage_threshold on the line
    # coverage of all the tests (one class alone covers about 65%), and every test must pass
    # with the renamed package. (Formatting does not depend on the names: google-java-format
    # never wraps package and import lines.)
    run(["make", "test"], cwd=service_dir, env=java_env)
    junit = junit_root(service_dir / "junit.xml")
    counts = {key: int(junit.attrib[key]) for key in ("tests", "failures", "errors")}
    assert counts["tests"] >= 15, counts
    assert counts["failures"] == counts["errors"] == 0, counts
    suites = {suite.attrib["name"].rsplit(".", 1)[-1] for suite in junit.iter("testsuite")}
    assert "ApplicationTest" in suites, suites
    assert_cobertura(service_dir / "coverage.xml", minimum=0.8)
