"""The generated Go service: its Makefile, its Dockerfile and the service itself, run for real.

One project is rendered with language=go per test worker and copied once for the tests that run
make in it. Every go command shares this machine's module and build caches (GOMODCACHE, GOCACHE),
so the tools pinned in go.mod and the race-instrumented packages are built once.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import run
from tests.services.contract import (
    TEST_DELAY_HEADER,
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
    run_commands,
    service_of,
    stage_running,
    start,
    wait_for_health,
)

Tool = Callable[[str], str]

# Hosts that would route module downloads or checksums around the defaults: none may be named.
REGISTRY_HOSTS = ("proxy.golang.org", "sum.golang.org", "goproxy", "gocenter", "athens")
GO_SUM_LINE = re.compile(r"^\S+ v\S+?(/go\.mod)? h1:[A-Za-z0-9+/]{43}=$")

LANGUAGE = "go"  # the services/conftest.py fixtures render this language


# --- helpers -------------------------------------------------------------------------------------


def before_output(command: list[str]) -> list[str]:
    """A `go build` command up to its `-o` flag (the output path differs, the rest may not)."""
    return command[: command.index("-o")]


def service_process(parent: int, binary: str) -> int:
    """The service's process under `parent` (make runs the built binary as its child)."""
    for pid in descendants(parent):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if Path(command[0].decode()).name == binary:
            return pid
    raise AssertionError(f"no {binary} process under {parent}")


@dataclass
class Elf:
    """What a 64-bit little-endian ELF file says about how it was linked."""

    interpreter: bytes | None  # PT_INTERP: the dynamic loader; None for a static binary
    sections: set[str]

    @classmethod
    def read(cls, path: Path) -> Elf:
        data = path.read_bytes()
        assert data[:4] == b"\x7fELF", f"{path}: not an ELF file"
        assert data[4:6] == b"\x02\x01", f"{path}: not 64-bit little-endian"
        (phoff, shoff) = struct.unpack_from("<QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
        interpreter = None
        for index in range(phnum):
            header = phoff + index * phentsize
            if struct.unpack_from("<I", data, header)[0] == 3:  # PT_INTERP
                offset, _, _, size = struct.unpack_from("<QQQQ", data, header + 8)
                interpreter = data[offset : offset + size]
        names_offset = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
        sections = set()
        for index in range(shnum):
            name = struct.unpack_from("<I", data, shoff + index * shentsize)[0]
            end = data.index(b"\0", names_offset + name)
            sections.add(data[names_offset + name : end].decode())
        return cls(interpreter, sections)


def with_test_delay(text: str) -> str:
    """server.go with the contract tests' delay hook at the start of every request."""
    head = "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n"
    assert head in text
    hook = (
        f'\tif delay, err := time.ParseDuration(r.Header.Get("{TEST_DELAY_HEADER}") + "s"); '
        "err == nil {\n\t\ttime.Sleep(delay)\n\t}\n"
    )
    return text.replace(head, head + hook)


def junit_suites(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    return [root] if root.tag == "testsuite" else root.findall("testsuite")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(project_copy: Path, tool: Tool) -> Path:
    """The copied service with its modules downloaded (`make deps`) into the shared cache."""
    for name in ("make", "go", "gcc"):  # gcc: `go test -race` needs cgo
        tool(name)
    service_dir = service_of(project_copy)
    run(["make", "deps"], cwd=service_dir)
    return service_dir


# --- make lint / test / run ----------------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_and_leave_reports(
    project_copy: Path, service: Path, schemas_dir: Path
) -> None:
    reports, _ = make_lint_and_test(project_copy, service, schemas_dir)
    files = {"main.go", "internal/server/server.go", "internal/config/config.go"}
    assert files <= reports.covered_files()
    assert reports.tests >= 30
    assert {s.attrib["name"].rsplit("/", 1)[-1] for s in reports.suites} >= {"server", "config"}


@pytest.mark.slow
def test_make_test_fails_on_a_failing_test_and_reports_it(service: Path) -> None:
    failing = service / "internal" / "config" / "zz_failing_test.go"
    failing.write_text(
        'package config\n\nimport "testing"\n\n'
        'func TestDeliberatelyFailing(t *testing.T) {\n\tt.Fatal("fails on purpose")\n}\n',
        encoding="utf-8",
    )
    try:
        result = run(["make", "test"], cwd=service, check=False)
    finally:
        failing.unlink()

    assert result.returncode != 0
    failed = [
        case.attrib["name"]
        for suite in junit_suites(service / "junit.xml")
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    ]
    assert failed == ["TestDeliberatelyFailing"]
    assert not (service / "coverage.xml").exists(), "a failed run left a coverage report"


def new_file(text: str) -> Callable[[str], str]:
    return lambda _: text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("relative", "edit", "finding"),
    [
        pytest.param(
            "internal/config/zz_lint.go",
            new_file("package config\n\nconst Spaced=1\n"),
            "internal/config/zz_lint.go",
            id="gofmt",
        ),
        pytest.param(
            "internal/config/zz_lint.go",
            new_file(
                'package config\n\nimport "fmt"\n\n'
                'func Describe() string {\n\treturn fmt.Sprintf("%d", "x")\n}\n'
            ),
            "fmt.Sprintf format %d has arg",
            id="go-vet",
        ),
        pytest.param(
            "internal/config/zz_lint.go",
            new_file("package config\n\nfunc unused() {}\n"),
            "func unused is unused (U1000)",
            id="staticcheck",
        ),
        pytest.param(
            "go.mod",
            lambda text: re.sub(r" // indirect$", "", text, count=1, flags=re.M),
            "go.mod",
            id="go-mod-tidy",
        ),
    ],
)
def test_make_lint_fails_on_what_each_linter_finds(
    service: Path, relative: str, edit: Callable[[str], str], finding: str
) -> None:
    with edited(service / relative, edit):
        result = run(["make", "lint"], cwd=service, check=False)

    assert result.returncode != 0
    assert finding in result.stdout + result.stderr


def test_generated_go_is_gofmt_clean(language_project: Path, tool: Tool) -> None:
    result = run([tool("gofmt"), "-l", "."], cwd=service_of(language_project))
    assert result.stdout == "", f"gofmt would reformat:\n{result.stdout}"


@pytest.mark.slow
def test_make_run_serves_probes_logs_json_and_stops_on_sigterm(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    make = start(["make", "--silent", "run"], service, env, stop_on_exit)
    wait_for_health(port, make, timeout=120)  # builds the binary first

    assert_probes_answer(port)

    stopped_at = time.monotonic()
    os.kill(service_process(make.pid, service.name), signal.SIGTERM)
    stdout, stderr = make.communicate(timeout=10)
    assert make.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 5
    entries = assert_json_logs(stdout)
    assert any(entry.get("path") == "/readyz" and entry.get("status") == 200 for entry in entries)
    assert [entry["message"] for entry in entries][-2:] == [
        "stopping: not ready, waiting for the requests in flight",
        "stopped",
    ]


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_loses_no_request(
    service: Path, tool: Tool, tmp_path: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    binary = tmp_path / "service"
    with edited(service / "internal" / "server" / "server.go", with_test_delay):
        run([tool("go"), "build", "-o", str(binary), "."], cwd=service)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SHUTDOWN_TIMEOUT": "10"}
    process = start([str(binary)], tmp_path, env, stop_on_exit)
    wait_for_health(port, process)

    assert_graceful_stop(port, process.pid, process, drain_timeout=10)


@pytest.mark.slow
def test_live_metrics_and_probe_bodies_follow_the_shared_contract(
    service: Path, tool: Tool, tmp_path: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    binary = tmp_path / "service"
    run([tool("go"), "build", "-o", str(binary), "."], cwd=service)
    port = free_port()
    process = start([str(binary)], tmp_path, {**os.environ, "PORT": str(port)}, stop_on_exit)
    wait_for_health(port, process)

    assert_probe_bodies(port)
    assert_metrics_contract(port)


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(project_copy: Path, service: Path) -> None:
    answers = (project_copy / ".copier-answers.yml").read_text(encoding="utf-8")
    (threshold,) = re.findall(r"^coverage_threshold: (\d+)$", answers, re.M)
    makefile = (service / "Makefile").read_text(encoding="utf-8")
    assert f"COVERAGE_THRESHOLD ?= {threshold}\n" in makefile

    passing = run(["make", "test"], cwd=service)
    failing = run(["make", "test", "COVERAGE_THRESHOLD=100"], cwd=service, check=False)

    assert f"(minimum {threshold}%)" in passing.stdout
    assert failing.returncode != 0
    assert "coverage is below COVERAGE_THRESHOLD" in failing.stdout


# --- go.mod, go.sum and the CI setup -------------------------------------------------------------


def test_go_mod_pins_the_toolchain_and_the_tools(language_project: Path) -> None:
    service_dir = service_of(language_project)
    go_mod = (service_dir / "go.mod").read_text(encoding="utf-8")
    dockerfile = (service_dir / "Dockerfile").read_text(encoding="utf-8")

    assert re.search(r"^module github\.com/my-org/my-service/apps/my-service$", go_mod, re.M)
    (toolchain,) = re.findall(r"^toolchain go(\S+)$", go_mod, re.M)
    # The image that builds the service has the release that go.mod names.
    assert f"FROM golang:{toolchain}-" in dockerfile
    (tools,) = re.findall(r"^tool \(\n(.*?)^\)", go_mod, re.M | re.S)
    assert set(tools.split()) == {
        "github.com/boumenot/gocover-cobertura",
        "gotest.tools/gotestsum",
        "honnef.co/go/tools/cmd/staticcheck",
    }


def test_go_sum_has_only_hashes_and_no_file_names_a_registry(language_project: Path) -> None:
    service_dir = service_of(language_project)
    go_sum = (service_dir / "go.sum").read_text(encoding="utf-8").splitlines()

    assert go_sum, "go.sum is empty"
    assert [line for line in go_sum if not GO_SUM_LINE.match(line)] == []
    for path in service_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not [host for host in REGISTRY_HOSTS if host in text.lower()], path
            settings = re.findall(r"\bGO(?:PROXY|NOSUMDB|SUMDB|INSECURE|PRIVATE)\b", text)
            assert not settings, f"{path} changes where modules come from: {settings}"


def test_ci_sets_up_the_go_of_go_mod_and_passes_actionlint_and_zizmor(
    language_project: Path, tool: Tool
) -> None:
    workflow = language_project / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")

    run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", workflow])
    zizmor = [tool("zizmor"), "--offline", "--persona=auditor", "--min-severity=informational"]
    run([*zizmor, "--min-confidence=low", workflow])
    # Both jobs that run make use the runner's go with GOTOOLCHAIN=auto, no setup action.
    assert text.count('echo "GOTOOLCHAIN=auto" >>"$GITHUB_ENV"') == 2
    assert "setup-go" not in text


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_downloads_and_builds_like_the_makefile(language_project: Path) -> None:
    service_dir = service_of(language_project)
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    makefile = (service_dir / "Makefile").read_text(encoding="utf-8")
    build = stage_running(stages, "go mod download")

    docker_download = only(run_commands(build, "go mod download"), "`go mod download` in Docker")
    make_download = only(recipe_commands(makefile, "mod download"), "`go mod download` in make")
    assert docker_download == make_download == ["go", "mod", "download"]
    docker_build = only(run_commands(build, "go build"), "`go build` in the Dockerfile")
    make_build = only(recipe_commands(makefile, "go build"), "`go build` in the Makefile")
    assert before_output(docker_build) == before_output(make_build)
    assert before_output(docker_build) == [
        "CGO_ENABLED=0",
        "go",
        "build",
        "-trimpath",
        "-ldflags=-s -w",
    ]
    assert docker_build[-1] == make_build[-1] == "."
    # The module layer comes before the sources: only go.mod and go.sum are copied before it.
    steps = [(item.keyword, item.value) for item in build.instructions]
    download_index = next(i for i, (_, value) in enumerate(steps) if "go mod download" in value)
    assert [value for keyword, value in steps[:download_index] if keyword == "COPY"] == [
        "go.mod go.sum ./"
    ]
    assert ("ENV", "GOTOOLCHAIN=local") in steps[:download_index]


def test_dockerfile_builds_with_kaniko_and_runs_unprivileged(language_project: Path) -> None:
    stages = kaniko_ready_dockerfile(service_of(language_project))
    final = stages[-1]
    assert len(stages) == 2
    assert final.image.startswith("gcr.io/distroless/static-")
    assert final.image.endswith(":nonroot")
    assert final.values("RUN") == [], "the distroless stage has no shell to run anything"
    (cmd,) = final.values("CMD")
    command = json.loads(cmd)
    assert command == ["/usr/local/bin/my-service"], "CMD must be the binary, in exec form"
    (copied,) = final.values("COPY")
    assert copied == "--from=build /out/service /usr/local/bin/my-service"
    (expose,) = final.values("EXPOSE")
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert expose == final_env["PORT"] == "8080"


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(language_project: Path) -> None:
    service_dir = service_of(language_project)
    allowed, sources = dockerignore_and_copies(service_dir)
    assert allowed == sources
    assert sources == {"go.mod", "go.sum", "*.go", "internal"}
    # Tests stay out: changing one does not rebuild the image.
    assert "**/*_test.go" in (service_dir / ".dockerignore").read_text(encoding="utf-8").split()
    # The sources are the top-level Go files and internal/: every package of the module.
    packages = {path.parent.relative_to(service_dir) for path in service_dir.rglob("*.go")}
    assert {package.parts[0] for package in packages if package.parts} == {"internal"}


@pytest.mark.slow
def test_dockerfile_build_commands_run_natively_and_the_cmd_serves(
    language_project: Path, tmp_path: Path, tool: Tool, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    """The build stage's instructions replayed here, with the image's `/` under tmp_path."""
    go = tool("go")
    service_dir = service_of(language_project)
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    build, final = stage_running(stages, "go mod download"), stages[-1]
    root = tmp_path / "image"
    # What .dockerignore keeps out of the context below the copied folders (`**/<name>`).
    ignored = shutil.ignore_patterns(
        *(
            line.strip().removeprefix("**/").rstrip("/")
            for line in (service_dir / ".dockerignore").read_text(encoding="utf-8").splitlines()
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
            for origin in (match for source in sources for match in service_dir.glob(source)):
                if origin.is_dir():  # like docker: the directory's contents, not the directory
                    shutil.copytree(origin, target, ignore=ignored, dirs_exist_ok=True)
                elif origin.name not in ignored(str(service_dir), [origin.name]):
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
    binary = inside(installed, root)
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(inside(built, root), binary)
    elf = Elf.read(binary)
    assert elf.interpreter is None, "the binary needs a dynamic loader: it is not static"
    assert ".text" in elf.sections
    assert not {".symtab", ".debug_info"} & elf.sections, "-ldflags='-s -w' strips these"
    # go records the flags (not -ldflags under -trimpath) in the binary.
    info = run([go, "version", "-m", binary]).stdout
    assert "\tbuild\tCGO_ENABLED=0\n" in info
    assert "\tbuild\t-trimpath=true\n" in info

    port = free_port()
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    command = json.loads(only(final.values("CMD"), "CMD"))
    process = start(
        [str(inside(command[0], root)), *command[1:]],
        tmp_path,
        {"PATH": "/nonexistent", **final_env, "PORT": str(port)},  # nothing else from this host
        stop_on_exit,
    )
    wait_for_health(port, process)
    assert get(port, "/readyz")[0] == 200
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert assert_json_logs(stdout)[-1]["message"] == "stopped"


# --- other answers -------------------------------------------------------------------------------


@pytest.mark.slow
def test_other_answers_render_a_working_service(
    make_project: Callable[..., Path], service: Path, tool: Tool
) -> None:
    description = 'He said: "hi" # {{x}} ünï'
    project = make_project(
        language="go",
        project_name="Billing API",
        owner="Acme.Corp/platform",
        description=description,
    )
    service_dir = service_of(project)
    assert service_dir.name == "billing-api"
    go_mod = (service_dir / "go.mod").read_text(encoding="utf-8")
    assert go_mod.startswith("module github.com/Acme.Corp/platform/billing-api/apps/billing-api\n")
    assert json.loads(
        only(parse_dockerfile((service_dir / "Dockerfile").read_text())[-1].values("CMD"), "CMD")
    ) == ["/usr/local/bin/billing-api"]

    # The modules are in the cache that `make deps` of the default project filled.
    go = tool("go")
    run([go, "vet", "./..."], cwd=service_dir)
    run([go, "test", "-count=1", "./..."], cwd=service_dir)


@pytest.mark.slow
def test_module_path_follows_a_repository_on_a_custom_host_and_builds(
    make_project: Callable[..., Path], service: Path, tool: Tool, tmp_path: Path
) -> None:
    project = make_project(language="go", repo_url="https://git.example.com/platform/shop-mono.git")
    service_dir = service_of(project)
    module = "git.example.com/platform/shop-mono/apps/my-service"
    go_mod = (service_dir / "go.mod").read_text(encoding="utf-8")
    assert go_mod.startswith(f"module {module}\n")
    main = (service_dir / "main.go").read_text(encoding="utf-8")
    assert f'"{module}/internal/server"' in main

    # The module's own packages resolve locally: nothing is fetched from the custom host.
    go = tool("go")
    run([go, "build", "-o", str(tmp_path / "service"), "."], cwd=service_dir)
    run([go, "vet", "./..."], cwd=service_dir)
    assert (tmp_path / "service").is_file()
