"""The generated Node.js service: its pnpm workspace, Makefile and Dockerfile, run for real.

One project is rendered with language=node per test worker and copied once for the tests that run
make in it. Every pnpm command shares this machine's pnpm store, so packages download once. The
Dockerfile builds from the repository root (the pnpm workspace), not from the service folder.
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
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT, load_yaml_documents, run
from tests.services.contract import (
    Stage,
    assert_graceful_stop,
    assert_json_logs,
    assert_metrics_contract,
    assert_probe_bodies,
    assert_probes_answer,
    descendants,
    edited,
    env_pairs,
    free_port,
    get,
    kaniko_ready_dockerfile,
    make_lint_and_test,
    only,
    parse_dockerfile,
    read_reports,
    recipe_commands,
    run_commands,
    service_of,
    stage_running,
    start,
    wait_for_health,
)

Tool = Callable[[str], str]

# Registry hosts and the URL shapes a lockfile would use to name one.
REGISTRY_ADDRESS = re.compile(r"registry\.npmjs\.org|registry\.yarnpkg\.com|npmmirror|://|tarball")
# Files of the workspace at the repository root (node only), besides packages/ and the service.
ROOT_FILES = (
    "package.json",
    "pnpm-workspace.yaml",
    "pnpm-lock.yaml",
    "tsconfig.base.json",
    "eslint.config.js",
    ".prettierrc.json",
)
PRODUCTION = {"@repo/logger", "fastify", "prom-client"}
DEVELOPMENT = {"@types/node", "@vitest/coverage-v8", "eslint", "prettier", "typescript", "vitest"}

LANGUAGE = "node"  # the services/conftest.py fixtures render this language


# --- helpers -------------------------------------------------------------------------------------


@cache
def pins() -> dict[str, Any]:
    with (REPO_ROOT / "extensions" / "versions.yaml").open(encoding="utf-8") as handle:
        node: dict[str, Any] = yaml.safe_load(handle)["node"]
    return node


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def lockfile(project: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """pnpm-lock.yaml: the document that pins pnpm itself, then the one of the workspace."""
    documents = load_yaml_documents((project / "pnpm-lock.yaml").read_text(encoding="utf-8"))
    manager, workspace = documents
    return manager, workspace


def dockerfile_of(project: Path) -> list[Stage]:
    return parse_dockerfile((service_of(project) / "Dockerfile").read_text(encoding="utf-8"))


def satisfies(version: tuple[int, ...], requirement: str) -> bool:
    """`version` against an engines range of `^x.y.z` and `>=x` alternatives joined by `||`."""
    for alternative in requirement.split("||"):
        match = re.fullmatch(r"\s*(\^|>=)(\d+(?:\.\d+)*)\s*", alternative)
        assert match, f"unexpected engines range {alternative!r}"
        wanted = tuple(int(part) for part in match[2].split("."))
        if version >= wanted and (match[1] == ">=" or version[0] == wanted[0]):
            return True
    return False


def version_of(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def node_process(parent: int) -> int:
    """The service's node process under `parent` (make runs `node dist/main.js` as its child)."""
    for pid in descendants(parent):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if Path(command[0].decode()).name == "node" and b"dist/main.js" in command:
            return pid
    raise AssertionError(f"no node process under {parent}")


def junit_totals(path: Path) -> tuple[int, int]:
    """Tests and failures of a vitest JUnit report."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites", root.tag
    return int(root.attrib["tests"]), int(root.attrib["failures"])


def with_test_delay(text: str) -> str:
    """app.ts with the contract tests' delay hook, the first onRequest hook of the app."""
    hook = (
        '  app.addHook("onRequest", async (request) => {\n'
        '    const seconds = Number(request.headers["x-test-delay"] ?? 0);\n'
        "    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));\n"
        "  });\n\n"
    )
    anchor = '  app.addHook("onReady",'
    assert anchor in text
    return text.replace(anchor, hook + anchor, 1)


def serve_built(
    service: Path, port: int, started: list[subprocess.Popen[str]], **env: str
) -> subprocess.Popen[str]:
    """`make build`, then `node dist/main.js` as `make run` and the image start it."""
    run(["make", "build"], cwd=service)
    environment = {**os.environ, "PORT": str(port), **env}
    process = start(["node", "dist/main.js"], service, environment, started)
    wait_for_health(port, process)
    return process


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(project_copy: Path, tool: Tool) -> Path:
    """The copied service with the workspace installed from the lockfile (`make install`)."""
    for name in ("make", "node", "pnpm"):
        tool(name)
    service_dir = service_of(project_copy)
    run(["make", "install"], cwd=service_dir)
    return service_dir


# --- make lint / test / run ----------------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_and_leave_reports(
    project_copy: Path, service: Path, schemas_dir: Path
) -> None:
    reports, _ = make_lint_and_test(project_copy, service, schemas_dir)
    files = {"src/app.ts", "src/config.ts", "src/metrics.ts", "src/server.ts"}
    assert files <= reports.covered_files()
    assert reports.tests >= 25
    # The service's `make test` also tests the workspace packages it uses, each in its folder.
    logger = read_reports(project_copy / "packages" / "logger")
    assert logger.failed == 0
    assert logger.line_rate >= 0.8


@pytest.mark.slow
def test_make_test_fails_on_a_failing_test_and_reports_it(service: Path) -> None:
    failing = service / "tests" / "zz-failing.test.ts"
    failing.write_text(
        'import { expect, it } from "vitest";\n\n'
        'it("fails on purpose", () => {\n  expect(1).toBe(2);\n});\n',
        encoding="utf-8",
    )
    try:
        result = run(["make", "test"], cwd=service, check=False)
    finally:
        failing.unlink()

    assert result.returncode != 0
    assert junit_totals(service / "junit.xml")[1] == 1
    failed = [
        case.attrib["name"]
        for case in ET.parse(service / "junit.xml").getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert failed == ["fails on purpose"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "old", "new", "finding"),
    [
        pytest.param(
            "src/config.ts",
            "const MAX_PORT = 65535;",
            "const MAX_PORT=65535;",
            "config.ts",
            id="prettier-formatting",
        ),
        pytest.param(
            "src/config.ts",
            "  return port;\n",
            "  return String(port);\n",
            "error TS2322",
            id="tsc-type-error",
        ),
        pytest.param(
            "src/metrics.ts",
            "export class HttpMetrics {",
            "const unused = 1;\n\nexport class HttpMetrics {",
            "no-unused-vars",
            id="eslint-rule",
        ),
    ],
)
def test_make_lint_catches_a_defect(
    service: Path, path: str, old: str, new: str, finding: str
) -> None:
    with edited(service / path, lambda text: text.replace(old, new, 1)):
        result = run(["make", "lint"], cwd=service, check=False)

    assert result.returncode != 0
    assert finding in result.stdout + result.stderr


@pytest.mark.slow
def test_workspace_files_at_the_root_pass_prettier_and_eslint(
    project_copy: Path, service: Path
) -> None:
    # `make lint` checks the service and packages/; the workspace's own files are checked here.
    files = [name for name in ROOT_FILES if name != "pnpm-lock.yaml"] + ["packages/README.md"]
    run(["pnpm", "exec", "prettier", "--check", *files], cwd=project_copy)
    run(["pnpm", "exec", "eslint", "--max-warnings=0", "eslint.config.js"], cwd=project_copy)


@pytest.mark.slow
def test_make_run_serves_probes_logs_json_and_stops_on_sigterm(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    make = start(["make", "--silent", "run"], service, env, stop_on_exit)
    wait_for_health(port, make, timeout=90)

    assert_probes_answer(port)

    stopped_at = time.monotonic()
    os.kill(node_process(make.pid), signal.SIGTERM)
    stdout, stderr = make.communicate(timeout=10)
    assert make.returncode == 0, stderr
    assert time.monotonic() - stopped_at < 5
    # Only the service writes to stdout: pnpm reports on stderr.
    entries = assert_json_logs(stdout)
    assert any(entry.get("path") == "/readyz" and entry.get("status") == 200 for entry in entries)
    assert entries[-1]["message"] == "stopped"
    assert {entry["logger"] for entry in entries} == {service.name}


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_loses_no_request(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    with edited(service / "src" / "app.ts", with_test_delay):
        process = serve_built(service, port, stop_on_exit, SHUTDOWN_TIMEOUT="10")
    run(["make", "build"], cwd=service)  # dist/ without the hook again, for the other tests

    assert_graceful_stop(port, process.pid, process, drain_timeout=10)


@pytest.mark.slow
def test_live_metrics_and_probe_bodies_follow_the_shared_contract(
    service: Path, stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    serve_built(service, port, stop_on_exit)

    assert_probe_bodies(port)
    assert_metrics_contract(port)


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(project_copy: Path, service: Path) -> None:
    answers = (project_copy / ".copier-answers.yml").read_text(encoding="utf-8")
    (threshold,) = re.findall(r"^coverage_threshold: (\d+)$", answers, re.M)
    config = service / "vitest.config.ts"
    gate = f"thresholds: {{ lines: {threshold} }}"
    assert gate in config.read_text(encoding="utf-8")

    with edited(config, lambda text: text.replace(gate, "thresholds: { lines: 100 }")):
        failing = run(["make", "test"], cwd=service, check=False)

    assert failing.returncode != 0
    output = failing.stdout + failing.stderr
    assert "does not meet global threshold (100%)" in output, output[-3000:]


# --- lockfile and pins ---------------------------------------------------------------------------


def test_lockfile_pins_every_package_by_integrity_and_names_no_registry(
    language_project: Path,
) -> None:
    text = (language_project / "pnpm-lock.yaml").read_text(encoding="utf-8")
    assert not REGISTRY_ADDRESS.search(text)
    manager, workspace = lockfile(language_project)
    for document in (manager, workspace):
        assert document["lockfileVersion"] == "9.0"
        for name, package in document["packages"].items():
            assert set(package["resolution"]) == {"integrity"}, name
            assert package["resolution"]["integrity"].startswith("sha512-"), name

    importers = workspace["importers"]
    assert set(importers) == {".", f"apps/{service_of(language_project).name}", "packages/logger"}
    service = importers[f"apps/{service_of(language_project).name}"]
    assert set(service["dependencies"]) == PRODUCTION
    assert set(service["devDependencies"]) == DEVELOPMENT
    assert service["dependencies"]["@repo/logger"]["version"] == "link:../../packages/logger"
    # Every version comes from the catalog of pnpm-workspace.yaml, the one place to change one.
    catalog = yaml.safe_load(
        (language_project / "pnpm-workspace.yaml").read_text(encoding="utf-8")
    )["catalog"]
    locked = workspace["catalogs"]["default"]
    assert {name: entry["specifier"] for name, entry in locked.items()} == {
        name: str(version) for name, version in catalog.items()
    }
    for importer in importers.values():
        for group in ("dependencies", "devDependencies"):
            for name, entry in importer.get(group, {}).items():
                assert entry["specifier"] in {"catalog:", "workspace:*"}, name


def test_pnpm_is_pinned_alike_in_package_json_lockfile_dockerfile_and_ci(
    language_project: Path,
) -> None:
    version = pins()["pnpm"]
    package = read_json(language_project / "package.json")
    assert package["packageManager"] == f"pnpm@{version}+sha512.{pins()['pnpm_sha512']}"
    assert re.fullmatch(r"[0-9a-f]{128}", pins()["pnpm_sha512"])
    manager, _ = lockfile(language_project)
    assert manager["importers"]["."]["packageManagerDependencies"]["pnpm"] == {
        "specifier": version,
        "version": version,
    }
    build = stage_running(dockerfile_of(language_project), "pnpm fetch")
    assert only(run_commands(build, "npm install --global"), "npm install --global") == [
        "npm",
        "install",
        "--global",
        f"pnpm@{version}",
    ]
    # GitHub Actions: corepack runs the pnpm of packageManager, nothing installs another one.
    workflow = (language_project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert 'corepack enable --install-directory "$RUNNER_TEMP/corepack" pnpm' in workflow
    assert "npm install" not in workflow


def test_engines_admit_this_machine_and_the_image_node(language_project: Path, tool: Tool) -> None:
    image_major = int(pins()["version"])
    assert pins()["image"].startswith(f"node:{image_major}.")
    image_version = version_of(pins()["image"].split(":")[1].split("-")[0])
    local = run([tool("node"), "--version"]).stdout.strip().lstrip("v")
    local_version = version_of(local)
    for manifest in (
        language_project / "package.json",
        service_of(language_project) / "package.json",
    ):
        engines = read_json(manifest)["engines"]["node"]
        assert satisfies(image_version, engines), (manifest, engines)
        assert satisfies(local_version, engines), (manifest, engines, local)
        assert not satisfies((18, 20, 0), engines)


@pytest.mark.slow
def test_make_lock_leaves_the_lockfile_unchanged(project_copy: Path, service: Path) -> None:
    before = (project_copy / "pnpm-lock.yaml").read_text(encoding="utf-8")

    run(["make", "lock"], cwd=service)

    after = (project_copy / "pnpm-lock.yaml").read_text(encoding="utf-8")
    assert after == before, "package.json files and pnpm-lock.yaml disagree: run `make lock`"


def test_no_file_of_the_workspace_names_a_package_registry(language_project: Path) -> None:
    paths = [language_project / name for name in ROOT_FILES]
    for folder in (service_of(language_project), language_project / "packages"):
        paths += [path for path in folder.rglob("*") if path.is_file()]
    offenders = [
        str(path.relative_to(language_project))
        for path in paths
        if re.search(r"registry\.npmjs\.org|registry\.yarnpkg\.com", path.read_text("utf-8"))
    ]
    assert offenders == []
    assert len(paths) > 20


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_installs_the_lockfile_like_the_makefile(language_project: Path) -> None:
    service_dir = service_of(language_project)
    build = stage_running(dockerfile_of(language_project), "pnpm fetch")
    makefile = (service_dir / "Makefile").read_text(encoding="utf-8")

    docker_install = only(run_commands(build, "pnpm install"), "`pnpm install` in the Dockerfile")
    make_install = only(recipe_commands(makefile, "pnpm install --frozen"), "`make install`")
    assert docker_install[:3] == make_install[:3] == ["pnpm", "install", "--frozen-lockfile"]
    # The Dockerfile installs offline what `pnpm fetch` put in the store, for this service only.
    assert docker_install[3:] == ["--offline", "--filter", f"{service_dir.name}..."]
    assert make_install[3:] == ["--use-stderr"]
    # The dependency layer comes before the sources: only the lockfile (and the workspace list
    # that names the catalog) is copied before `pnpm fetch`.
    steps = [(item.keyword, item.value) for item in build.instructions]
    fetch = next(i for i, (keyword, value) in enumerate(steps) if "pnpm fetch" in value)
    assert [value for keyword, value in steps[:fetch] if keyword == "COPY"] == [
        "pnpm-lock.yaml pnpm-workspace.yaml ./"
    ]
    install = next(i for i, (keyword, value) in enumerate(steps) if "pnpm install" in value)
    assert fetch < install
    # Production dependencies only, with the built workspace packages: `pnpm deploy --prod`.
    deploy = only(run_commands(build, "deploy"), "`pnpm deploy`")
    assert deploy[:3] == ["pnpm", "--filter", service_dir.name]
    assert {"deploy", "--prod", "--offline"} <= set(deploy)


def test_dockerfile_builds_with_kaniko_and_runs_unprivileged(language_project: Path) -> None:
    stages = kaniko_ready_dockerfile(service_of(language_project))
    final = stages[-1]
    assert {stage.image for stage in stages} == {pins()["image"]}
    assert final.values("USER") == ["10001:10001"]
    (cmd,) = final.values("CMD")
    assert json.loads(cmd) == ["node", "dist/main.js"], "CMD in exec form, node as PID 1's child"
    (expose,) = final.values("EXPOSE")
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert expose == final_env["PORT"] == "8080"
    assert final_env["NODE_ENV"] == "production"
    # No package manager at run time: the one RUN removes npm, npx, corepack and yarn.
    (removal,) = final.values("RUN")
    words = shlex.split(removal)
    assert words[:2] == ["rm", "-rf"]
    assert {"/usr/local/lib/node_modules", "/usr/local/bin/npm", "/usr/local/bin/npx"} <= set(words)
    assert {"/usr/local/bin/corepack", "/usr/local/bin/yarn", "/opt/yarn-*"} <= set(words)
    # Only what `pnpm deploy --prod` wrote in the build stage gets into the image.
    assert final.values("COPY") == ["--from=build /deploy/ ./"]


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(language_project: Path) -> None:
    service_dir = service_of(language_project)
    # The context is the repository root: the ignore file that applies sits next to the
    # Dockerfile (docker with BuildKit and kaniko both read <Dockerfile>.dockerignore).
    assert not (service_dir / ".dockerignore").exists()
    text = (service_dir / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    patterns = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    sources = {
        source.rstrip("/")
        for stage in dockerfile_of(language_project)
        for value in stage.values("COPY")
        if not value.startswith("--from=")
        for source in shlex.split(value)[:-1]
    }

    assert patterns[0] == "*"
    assert {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")} == sources
    assert sources == {
        "package.json",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
        "tsconfig.base.json",
        "packages",
        f"apps/{service_dir.name}",
    }
    # Build outputs and installed packages of a developer's checkout stay out.
    assert {"**/node_modules", "**/dist", "**/coverage.xml", "**/junit.xml"} <= set(patterns)


@pytest.mark.slow
def test_dockerfile_build_commands_run_natively_and_the_cmd_serves(
    language_project: Path,
    tmp_path: Path,
    tool: Tool,
    stop_on_exit: list[subprocess.Popen[str]],
) -> None:
    tool("pnpm")
    stages = dockerfile_of(language_project)
    build, final = stage_running(stages, "pnpm fetch"), stages[-1]
    assert build.name == "build"
    root = tmp_path / "image"  # both stages share it, as COPY --from=build shares their files
    # What the final stage takes from the build stage, by its path in the build stage.
    exported = {
        shlex.split(value)[1].rstrip("/"): shlex.split(value)[2]
        for value in final.values("COPY")
        if value.startswith("--from=build ")
    }

    workdir = root
    for instruction in build.instructions:
        keyword, value = instruction.keyword, instruction.value
        if keyword == "WORKDIR":
            workdir = root / value.lstrip("/")
            workdir.mkdir(parents=True)
        elif keyword == "COPY":
            *sources, destination = shlex.split(value)
            for source in sources:  # the context is the rendered repository's root
                origin = language_project / source
                if origin.is_dir():
                    shutil.copytree(origin, workdir / destination, dirs_exist_ok=True)
                else:
                    shutil.copy2(origin, workdir / destination / origin.name)
        elif keyword == "RUN" and value.startswith("npm install --global pnpm@"):
            # The image installs pnpm; this machine has that version on PATH already.
            assert run(["pnpm", "--version"]).stdout.strip() == value.rsplit("@", 1)[1]
        elif keyword == "RUN":
            for path in exported:  # absolute paths of the image, under root here
                value = re.sub(rf"(?<=\s){re.escape(path)}\b", str(root / path.lstrip("/")), value)
            run(["sh", "-c", value], cwd=workdir)

    app = root / only(final.values("WORKDIR"), "WORKDIR of the final stage").lstrip("/")
    for path, destination in exported.items():
        shutil.copytree(root / path.lstrip("/"), app / destination, symlinks=True)
    # Production dependencies only, and the workspace package built, without its sources.
    installed = {
        entry.name[: entry.name.index("@", 1)]
        for entry in (app / "node_modules" / ".pnpm").iterdir()
        if "@" in entry.name[1:]
    }
    assert {"fastify", "prom-client", "pino"} <= installed
    assert not {"vitest", "typescript", "eslint", "prettier"} & installed
    assert (app / "node_modules" / "@repo" / "logger" / "dist" / "index.js").is_file()
    assert not (app / "node_modules" / "@repo" / "logger" / "src").exists()
    assert not (app / "src").exists()

    port = free_port()
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    command = json.loads(only(final.values("CMD"), "CMD"))
    process = start(command, app, {**os.environ, **final_env, "PORT": str(port)}, stop_on_exit)
    wait_for_health(port, process)
    assert get(port, "/readyz")[0] == 200
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert assert_json_logs(stdout)[-1]["message"] == "stopped"


# --- other answers and CI ------------------------------------------------------------------------


@pytest.mark.slow
def test_other_answers_render_a_working_service(
    make_project: Callable[..., Path], service: Path
) -> None:
    description = 'He said: "hi" # {{x}} ünï'
    project = make_project(
        language="node",
        project_name="Billing API",
        description=description,
        repo_url="https://github.com/acme/shop.git",
    )
    service_dir = service_of(project)
    assert service_dir.name == "billing-api"
    assert read_json(service_dir / "package.json")["description"] == description
    assert read_json(service_dir / "package.json")["name"] == "billing-api"
    # The workspace root is the repository's, shared by every Node service: no service in it.
    workspace = read_json(project / "package.json")
    assert workspace["name"] == "shop-workspace"
    assert "billing" not in json.dumps(workspace).lower()
    assert 'SERVICE_NAME = "billing-api";' in (service_dir / "src" / "config.ts").read_text("utf-8")

    # The lockfile names the service's folder: it still installs frozen, from the shared store.
    run(["pnpm", "install", "--frozen-lockfile", "--offline"], cwd=project)
    run(
        ["pnpm", "exec", "prettier", "--check", "package.json", "apps/billing-api/package.json"],
        cwd=project,
    )
    run(["pnpm", "--filter", "billing-api", "exec", "vitest", "run"], cwd=project)


def test_ci_sets_up_node_with_the_pinned_pnpm(
    language_project: Path, make_project: Callable[..., Path], tool: Tool
) -> None:
    workflow = language_project / ".github" / "workflows" / "ci.yml"
    run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", workflow])
    run([tool("zizmor"), "--offline", "--persona", "auditor", workflow], cwd=language_project)

    gitlab = make_project(language="node", ci_provider="gitlab", registry="gitlab")
    pipeline = yaml.safe_load((gitlab / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    toolchain = pipeline[".toolchain-node"]
    assert toolchain["image"] == pins()["image"]
    assert f"npm install --global pnpm@{pins()['pnpm']}" in toolchain["before_script"]
    assert toolchain["cache"]["paths"] == [".cache/pnpm-store/"]
    assert toolchain["variables"]["pnpm_config_store_dir"] == "$CI_PROJECT_DIR/.cache/pnpm-store"
