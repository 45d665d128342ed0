"""The generated Node.js job: its pnpm workspace, Makefile and Dockerfile, and the job contract.

One project (kind=job, language=node, trigger=s3) is rendered and copied once per module; the
job's own `make lint test` runs in the copy. The contract (tests/jobs/contract.py) runs against
the image as the Dockerfile builds it, replayed natively (`pnpm deploy --prod` output, the final
stage's environment and ENTRYPOINT), and against one moto S3 server for the module. Every pnpm
command shares this machine's pnpm store, so packages download once.
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
import yaml

from tests.helpers import load_yaml_documents, render, run
from tests.jobs import contract
from tests.monorepo import add_service, build_monorepo
from tests.services.contract import (
    Reports,
    Stage,
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

Tool = Callable[[str], str]
THRESHOLD = 80  # coverage_threshold's default
JOB = "partner-import"
SDK = "@aws-sdk/client-s3"
# Registry hosts and the URL shapes a lockfile would use to name one.
REGISTRY_ADDRESS = re.compile(r"registry\.npmjs\.org|registry\.yarnpkg\.com|npmmirror|://|tarball")


def dockerfile_of(job_dir: Path) -> list[Stage]:
    return parse_dockerfile((job_dir / "Dockerfile").read_text(encoding="utf-8"))


def workspace_lock(project: Path) -> dict[str, Any]:
    """The document of pnpm-lock.yaml that pins the workspace (the first one pins pnpm)."""
    _, workspace = load_yaml_documents((project / "pnpm-lock.yaml").read_text(encoding="utf-8"))
    return workspace


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
    """A project whose first application is a Node.js job; read only."""
    return render(copie_session, language="node", kind="job", trigger="s3", project_name=JOB)


@pytest.fixture(scope="module")
def project(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy that the Makefiles may write into."""
    destination = tmp_path_factory.mktemp("node-job") / "project"
    shutil.copytree(rendered, destination)
    return destination


@pytest.fixture(scope="module")
def job(project: Path, tool: Tool) -> Path:
    """The copied job with the workspace installed from the lockfile (`make install`)."""
    for name in ("make", "node", "pnpm"):
        tool(name)
    job_dir = service_of(project)
    run(["make", "install"], cwd=job_dir)
    return job_dir


@pytest.fixture(scope="module")
def s3() -> Iterator[contract.S3]:
    with contract.s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def image(rendered: Path, tmp_path_factory: pytest.TempPathFactory, tool: Tool) -> Path:
    """The Dockerfile's build stage replayed natively; the final stage's WORKDIR, as built."""
    tool("pnpm")
    stages = dockerfile_of(service_of(rendered))
    build, final = stage_running(stages, "pnpm fetch"), stages[-1]
    root = tmp_path_factory.mktemp("node-job-image") / "image"
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
                origin = rendered / source
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
    return app


@pytest.fixture(scope="module")
def run_image(rendered: Path, image: Path) -> contract.Runner:
    """Run the image's ENTRYPOINT with the workflow step's arguments and the event's env."""
    final = dockerfile_of(service_of(rendered))[-1]
    entrypoint = json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT"))
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(image),
        # The image has no AWS configuration files; nor does this run read the machine's.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **final_env,
    }

    def run_step(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*entrypoint, *args],
            cwd=image,
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
        assert {"time", "level", "logger", "message", "source"} <= entry.keys()
        assert entry["logger"] == JOB
        assert entry["source"] == f"s3://{contract.BUCKET}/incoming/acme/logs.csv"


@pytest.mark.slow
def test_image_holds_the_built_job_and_production_dependencies_only(image: Path) -> None:
    installed = {
        entry.name[: entry.name.index("@", 1)]
        for entry in (image / "node_modules" / ".pnpm").iterdir()
        if "@" in entry.name[1:]
    }
    assert {"@aws-sdk+client-s3", "pino"} <= installed
    assert not {"vitest", "typescript", "eslint", "prettier", "fastify"} & installed
    assert (image / "dist" / "main.js").is_file()
    assert (image / "node_modules" / "@repo" / "logger" / "dist" / "index.js").is_file()
    assert not (image / "src").exists()


# --- make lint / test / lock ---------------------------------------------------------------------


@pytest.mark.slow
def test_root_make_lint_and_test_pass_with_coverage_over_the_threshold(
    project: Path, job: Path
) -> None:
    reports, _ = make_lint_and_test_of(project, job)
    assert reports.tests >= 40
    assert reports.line_rate * 100 >= THRESHOLD
    assert {"job.ts", "storage.ts", "config.ts", "cli.ts"} <= {
        Path(name).name for name in reports.covered_files()
    }


@pytest.mark.slow
def test_make_test_fails_below_the_coverage_threshold(job: Path) -> None:
    body = "".join(f"  if (n === {index}) {{\n    return {index};\n  }}\n" for index in range(300))
    untested = f"export function untested(n: number): number {{\n{body}  return -1;\n}}\n"
    with edited(job / "src" / "untested.ts", lambda _: untested):
        result = run(["make", "test"], cwd=job, check=False)
    assert result.returncode != 0
    assert "Coverage for lines" in result.stdout + result.stderr
    assert f"threshold ({THRESHOLD}%)" in result.stdout + result.stderr


@pytest.mark.slow
def test_make_lock_leaves_the_lockfile_unchanged(project: Path, job: Path) -> None:
    before = (project / "pnpm-lock.yaml").read_text(encoding="utf-8")
    run(["make", "lock"], cwd=job)
    after = (project / "pnpm-lock.yaml").read_text(encoding="utf-8")
    assert after == before, "package.json files and pnpm-lock.yaml disagree: run `make lock`"


def test_lockfile_pins_the_sdk_for_the_job_and_nothing_of_the_http_service(
    rendered: Path,
) -> None:
    text = (rendered / "pnpm-lock.yaml").read_text(encoding="utf-8")
    assert not REGISTRY_ADDRESS.search(text)
    workspace = workspace_lock(rendered)
    importers = workspace["importers"]
    assert set(importers) == {".", f"apps/{JOB}", "packages/logger"}
    job_importer = importers[f"apps/{JOB}"]
    assert set(job_importer["dependencies"]) == {SDK, "@repo/logger"}
    manifest = json.loads((rendered / "apps" / JOB / "package.json").read_text(encoding="utf-8"))
    assert job_importer["dependencies"][SDK]["specifier"] == manifest["dependencies"][SDK]
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["dependencies"][SDK]), "an exact version"
    # The HTTP service's packages are not in a job's workspace.
    assert not [name for name in workspace["packages"] if name.startswith(("fastify@", "prom-"))]
    for name, package in workspace["packages"].items():
        assert set(package["resolution"]) == {"integrity"}, name
    # Catalog entries in the lockfile are those of pnpm-workspace.yaml that the job uses.
    catalog = yaml.safe_load((rendered / "pnpm-workspace.yaml").read_text(encoding="utf-8"))
    locked = workspace["catalogs"]["default"]
    assert {name: entry["specifier"] for name, entry in locked.items()} == {
        name: str(catalog["catalog"][name]) for name in locked
    }


def test_job_targets_are_the_service_targets(rendered: Path) -> None:
    """CI and the root Makefile run the same targets in every application."""
    makefile = (service_of(rendered) / "Makefile").read_text(encoding="utf-8")
    phony = only(re.findall(r"^\.PHONY:(.*)$", makefile, re.M), ".PHONY line").split()
    assert {"lint", "test", "format", "build", "run", "lock", "install", "help"} <= set(phony)
    assert only(recipe_commands(makefile, "dist/main.js"), "make run") == [
        "node",
        "dist/main.js",
        "run",
    ]


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
    # ENTRYPOINT in exec form: the WorkflowTemplate's args (`validate /tmp/...`) follow it.
    assert json.loads(only(final.values("ENTRYPOINT"), "ENTRYPOINT")) == ["node", "dist/main.js"]
    assert json.loads(only(final.values("CMD"), "CMD")) == ["run"]
    assert final.values("EXPOSE") == []
    final_env = dict(pair for value in final.values("ENV") for pair in env_pairs(value))
    assert final_env == {"NODE_ENV": "production"}
    assert final.values("COPY") == ["--from=build /deploy/ ./"]
    (removal,) = final.values("RUN")
    assert {"/usr/local/bin/npm", "/usr/local/bin/npx", "/usr/local/bin/corepack"} <= set(
        shlex.split(removal)
    )
    # The build stage installs like `make install`, offline from what `pnpm fetch` stored.
    build = stage_running(stages, "pnpm fetch")
    docker_install = only(run_commands(build, "pnpm install"), "`pnpm install`")
    makefile = (job_dir / "Makefile").read_text(encoding="utf-8")
    make_install = only(recipe_commands(makefile, "pnpm install --frozen"), "`make install`")
    assert docker_install[:3] == make_install[:3] == ["pnpm", "install", "--frozen-lockfile"]
    assert docker_install[3:] == ["--offline", "--filter", f"{JOB}..."]
    deploy = only(run_commands(build, "deploy"), "`pnpm deploy`")
    assert deploy[:3] == ["pnpm", "--filter", JOB]
    assert {"deploy", "--prod", "--offline"} <= set(deploy)


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(rendered: Path) -> None:
    job_dir = service_of(rendered)
    text = (job_dir / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    patterns = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    sources = {
        source.rstrip("/")
        for stage in dockerfile_of(job_dir)
        for value in stage.values("COPY")
        if not value.startswith("--from=")
        for source in shlex.split(value)[:-1]
    }
    assert patterns[0] == "*"
    assert {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")} == sources
    assert f"apps/{JOB}" in sources


# --- a job in a workspace that has an HTTP service -----------------------------------------------


@pytest.mark.slow
def test_a_job_added_to_a_node_service_workspace_installs_frozen(
    template_snapshot: Path, tmp_path: Path, tool: Tool
) -> None:
    """`make add-service ... KIND=job` locks the new importer (service_sync); CI's frozen
    install then works for the service and the job alike."""
    tool("pnpm")
    repository = build_monorepo(template_snapshot, tmp_path / "repo", services=(("web", "node"),))
    add_service(repository, JOB, "node", "--data", "kind=job", "--data", "trigger=s3")

    importers = workspace_lock(repository)["importers"]
    assert {"apps/web", f"apps/{JOB}"} <= importers.keys()
    assert SDK in importers[f"apps/{JOB}"]["dependencies"]
    assert "fastify" in importers["apps/web"]["dependencies"]
    run(["pnpm", "install", "--frozen-lockfile", "--offline"], cwd=repository)
    run(["pnpm", "--filter", JOB, "exec", "vitest", "run"], cwd=repository)
    run(["pnpm", "--filter", "web", "exec", "tsc", "--noEmit"], cwd=repository)
