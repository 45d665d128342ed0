"""The generated GitHub Actions workflow: linted by actionlint and zizmor, least privilege, and the
run scripts of its steps executed with bash the way the runner executes them."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import render, run

WORKFLOW = Path(".github/workflows/ci.yml")
PINNED_USES = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+(\.\d+)*$")
CUSTOM = {
    "project_name": "Web API",
    "owner": "Acme",
    "image_repository": "acme/team/web-api",
    "deploy_target": "helm",
    "environments": ["qa", "pre-prod", "live"],
    "coverage_threshold": 65,
}
# deploy_target variants, and one with every answer that shapes the workflow changed.
VARIANTS: dict[str, dict[str, Any]] = {
    "argocd": {},
    "helm": {"deploy_target": "helm"},
    "none": {"deploy_target": "none"},
    "custom": CUSTOM,
}


@dataclass(frozen=True)
class Rendered:
    name: str
    answers: dict[str, Any]
    project: Path

    @property
    def path(self) -> Path:
        return self.project / WORKFLOW

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def workflow(self) -> dict[Any, Any]:
        data: dict[Any, Any] = yaml.safe_load(self.text)
        return data

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        jobs: dict[str, dict[str, Any]] = self.workflow["jobs"]
        return jobs

    @property
    def deploy_target(self) -> str:
        return str(self.answers.get("deploy_target", "argocd"))


@pytest.fixture(scope="module")
def rendered(copie_session: Any) -> Callable[[str], Rendered]:
    """Render each variant once per module and worker."""
    cache: dict[str, Rendered] = {}

    def get(name: str) -> Rendered:
        if name not in cache:
            answers = VARIANTS[name]
            cache[name] = Rendered(name, answers, render(copie_session, **answers))
        return cache[name]

    return get


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, rendered: Callable[[str], Rendered]) -> Rendered:
    return rendered(str(request.param))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = job["steps"]
    return result


def all_steps(variant: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in variant.jobs.items():
        for step in steps(job):
            yield name, step


def step_named(job: dict[str, Any], prefix: str) -> dict[str, Any]:
    matches = [step for step in steps(job) if str(step.get("name", "")).startswith(prefix)]
    assert len(matches) == 1, (
        f"expected one step named {prefix!r}: {[s.get('name') for s in steps(job)]}"
    )
    return matches[0]


def run_step(
    step: dict[str, Any],
    env: dict[str, str],
    cwd: Path,
    path_prefix: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a `run:` script as the runner does for `shell: bash` (bash -eo pipefail)."""
    script = cwd / ".step.sh"
    script.write_text(step["run"], encoding="utf-8")
    search_path = os.environ["PATH"]
    if path_prefix is not None:
        search_path = f"{path_prefix}{os.pathsep}{search_path}"
    base = {"PATH": search_path, "HOME": os.environ.get("HOME", str(cwd))}
    try:
        return run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
            cwd=cwd,
            env={**base, **env},
            check=False,
            timeout=60,
        )
    finally:
        script.unlink()


# --- Linters -------------------------------------------------------------------------------------


def test_workflow_passes_actionlint_with_shellcheck_on_run_scripts(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", variant.path])


def test_workflow_has_no_zizmor_finding_even_for_the_auditor_persona(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    completed = run(
        [
            tool("zizmor"),
            "--offline",
            "--persona=auditor",
            "--min-severity=informational",
            "--min-confidence=low",
            "--format=json",
            variant.path,
        ],
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout) == []


def test_workflow_matches_the_github_workflow_schema(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    # The schema ships inside check-jsonschema: no network.
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", variant.path])


def test_workflow_passes_yamllint_with_the_project_configuration(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    run([tool("yamllint"), "--strict", "-c", variant.project / ".yamllint.yaml", variant.path])


def test_rendered_workflow_has_no_jinja_leftovers_or_blank_line_runs(variant: Rendered) -> None:
    text = variant.text
    assert "{%" not in text
    assert "{{" not in text.replace("${{", "")
    assert "\n\n\n" not in text
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    for line in text.splitlines():
        assert line == line.rstrip(), f"trailing whitespace: {line!r}"


# --- Triggers, permissions, pins -----------------------------------------------------------------


def test_runs_on_pull_requests_and_pushes_to_main_only(variant: Rendered) -> None:
    workflow = variant.workflow
    triggers: dict[str, Any] = workflow[True]  # YAML 1.1: PyYAML reads the key `on` as True
    assert set(triggers) == {"pull_request", "push", "workflow_dispatch"}
    assert triggers["push"] == {"branches": ["main"]}
    concurrency = workflow["concurrency"]
    assert concurrency["group"] == "${{ github.workflow }}-${{ github.ref }}"
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_token_has_no_permission_unless_a_job_asks_for_it(variant: Rendered) -> None:
    assert variant.workflow["permissions"] == {}
    granted = {name: job["permissions"] for name, job in variant.jobs.items()}
    writes = {
        (name, scope)
        for name, permissions in granted.items()
        for scope, level in permissions.items()
        if level != "read"
    }
    expected = {("publish", "packages"), ("coverage-comment", "pull-requests")}
    if variant.answers.get("deploy_target", "argocd") == "argocd":
        expected.add(("promote-dev", "contents"))  # commits the new tag to values-dev.yaml
    assert writes == expected
    for name, permissions in granted.items():
        assert set(permissions) <= {"contents", "packages", "pull-requests"}, name
    assert granted["summary"] == {}


def test_every_action_is_pinned_to_a_commit_with_its_version(variant: Rendered) -> None:
    uses_lines = [line.strip() for line in variant.text.splitlines() if "uses:" in line]
    assert uses_lines
    for line in uses_lines:
        reference = line.split("uses:", 1)[1].strip()
        assert PINNED_USES.match(reference), line
    parsed = [step["uses"] for _, step in all_steps(variant) if "uses" in step]
    assert len(parsed) == len(uses_lines)


def test_every_checkout_drops_the_token_after_cloning(variant: Rendered) -> None:
    checkouts = [
        (job, step)
        for job, step in all_steps(variant)
        if "actions/checkout@" in step.get("uses", "")
    ]
    assert {job for job, _ in checkouts} == set(variant.jobs) - {"summary"}
    for job, step in checkouts:
        assert step["with"]["persist-credentials"] is False, job


def test_no_expression_is_expanded_inside_a_run_script(variant: Rendered) -> None:
    for job, step in all_steps(variant):
        if "run" in step:
            assert "${{" not in step["run"], f"{job}: {step.get('name')}: pass it through env:"


def test_every_job_has_a_name_a_runner_and_a_timeout(variant: Rendered) -> None:
    for name, job in variant.jobs.items():
        assert job.get("name"), name
        assert job["runs-on"] == "ubuntu-24.04", name
        assert 0 < job["timeout-minutes"] <= 30, name


# --- Jobs ----------------------------------------------------------------------------------------


def test_lint_and_test_run_the_service_make_targets_per_changed_service(variant: Rendered) -> None:
    threshold = variant.answers.get("coverage_threshold", 80)
    for name in ("lint", "test"):
        job = variant.jobs[name]
        assert job["needs"] == "changes"
        assert job["if"] == "needs.changes.outputs.services != '[]'"
        matrix = job["strategy"]["matrix"]
        assert matrix == {"service": "${{ fromJSON(needs.changes.outputs.services) }}"}
        make = step_named(job, f"make {name}")
        assert make["run"] == f'make -C "apps/$SERVICE" {name}'
        assert make["env"] == {"SERVICE": "${{ matrix.service }}"}
        setup = step_named(job, "Install uv")
        assert "pipx install uv==0.13.8" in setup["run"]
    coverage = step_named(variant.jobs["test"], "Check line coverage")
    command = coverage["run"].split()
    assert command[:3] == [
        "python3",
        "scripts/ci/coverage_report.py",
        '"apps/$SERVICE/coverage.xml"',
    ]
    assert command[command.index("--threshold") + 1] == str(threshold)
    assert command[command.index("--service") + 1] == '"$SERVICE"'


def test_the_toolchain_setup_is_the_same_step_in_lint_and_test(variant: Rendered) -> None:
    setups = [step_named(variant.jobs[name], "Install uv") for name in ("lint", "test")]
    assert setups[0] == setups[1]


def test_summary_needs_every_other_job_and_always_runs(variant: Rendered) -> None:
    summary = variant.jobs["summary"]
    assert summary["name"] == "summary"
    assert summary["if"] == "always()"
    assert sorted(summary["needs"]) == sorted(set(variant.jobs) - {"summary"})


def test_helm_deploys_each_environment_in_order_and_only_with_helm(variant: Rendered) -> None:
    deploys = [name for name in variant.jobs if name.startswith("deploy-")]
    if variant.deploy_target != "helm":
        assert deploys == []
        assert "helm " not in variant.text
        assert "secrets." not in variant.text
        return
    environments = variant.answers.get("environments", ["dev", "staging", "prod"])
    assert deploys == [f"deploy-{env}" for env in environments]
    previous = "publish"
    for env in environments:
        job = variant.jobs[f"deploy-{env}"]
        assert job["environment"] == env
        assert job["needs"] == ["changes", previous]
        assert job["permissions"] == {"contents": "read"}
        secret = "KUBECONFIG_" + env.upper().replace("-", "_")
        write = step_named(job, "Write the kubeconfig")
        assert write["env"] == {"KUBECONFIG_DATA": f"${{{{ secrets.{secret} }}}}"}
        helm = step_named(job, "helm upgrade")
        command = " ".join(helm["run"].split())
        for expected in (
            'helm upgrade --install "$SERVICE" "$chart"',
            "--atomic --wait",
            f'--namespace "$SERVICE-{env}" --create-namespace',
            f'-f "$chart/values.yaml" -f "$chart/values-{env}.yaml"',
            '--set image.tag="$IMAGE_TAG"',
            '--kubeconfig "$RUNNER_TEMP/kubeconfig"',
        ):
            assert expected in command, expected
        assert helm["env"]["IMAGE_TAG"] == "${{ github.sha }}"
        previous = f"deploy-{env}"
    first = variant.jobs[f"deploy-{environments[0]}"]
    assert "github.ref == 'refs/heads/main'" in first["if"]
    # The last environment is production: the one a comment asks to protect with reviewers.
    assert f"give the `{environments[-1]}` environment required reviewers" in variant.text


def test_images_are_pushed_from_main_only_and_built_everywhere_else(variant: Rendered) -> None:
    build, publish = variant.jobs["build"], variant.jobs["publish"]
    assert build["if"].startswith("github.ref != 'refs/heads/main'")
    assert publish["if"].startswith("github.ref == 'refs/heads/main'")
    assert build["permissions"] == {"contents": "read"}
    assert publish["permissions"] == {"contents": "read", "packages": "write"}
    assert sorted(publish["needs"]) == ["changes", "lint", "test"]
    assert "--no-push" in step_named(build, "Build the image")["run"]
    assert "--no-push" not in step_named(publish, "Build and push")["run"]
    assert step_named(publish, "Write the registry credentials")
    assert not any("registry" in str(step.get("name")) for step in steps(build))


# --- Step scripts, executed ----------------------------------------------------------------------


@pytest.fixture
def fake_docker(tmp_path: Path) -> tuple[Path, Path]:
    """A `docker` that records its arguments: there is no Docker engine where the tests run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker-args.txt"
    docker = bin_dir / "docker"
    docker.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" >"{log}"\n', encoding="utf-8")
    docker.chmod(0o755)
    return bin_dir, log


@pytest.mark.parametrize("job_name", ["build", "publish"])
@pytest.mark.parametrize("name", ["argocd", "custom"])
def test_kaniko_builds_the_service_folder_and_names_the_image_after_it(
    rendered: Callable[[str], Rendered],
    fake_docker: tuple[Path, Path],
    tmp_path: Path,
    name: str,
    job_name: str,
) -> None:
    variant = rendered(name)
    job = variant.jobs[job_name]
    step = step_named(job, "Build")
    assert step["env"]["KANIKO_IMAGE"] == "ghcr.io/osscontainertools/kaniko:v1.28.3"
    default_service = "web-api" if name == "custom" else "my-service"
    default_image = "ghcr.io/acme/team/web-api" if name == "custom" else "ghcr.io/my-org/my-service"
    sibling_prefix = default_image.rsplit("/", 1)[0]
    bin_dir, log = fake_docker
    sha = "0123456789abcdef0123456789abcdef01234567"
    for service, image in (
        (default_service, default_image),
        ("billing", f"{sibling_prefix}/billing"),
    ):
        env = {
            **{key: value for key, value in step["env"].items() if not value.startswith("${{")},
            "SERVICE": service,
            "IMAGE_TAG": sha,
            "GITHUB_WORKSPACE": "/home/runner/work/repo",
            "RUNNER_TEMP": "/home/runner/temp",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/repo",
        }
        completed = run_step(step, env, tmp_path, path_prefix=bin_dir)
        assert completed.returncode == 0, completed.stderr
        args = log.read_text(encoding="utf-8").splitlines()
        assert args[:2] == ["run", "--rm"]
        kaniko_at = args.index("ghcr.io/osscontainertools/kaniko:v1.28.3")
        docker_args, kaniko_args = args[:kaniko_at], args[kaniko_at + 1 :]
        assert "/home/runner/work/repo:/workspace:ro" in docker_args
        assert kaniko_args[kaniko_args.index("--context") + 1] == f"dir:///workspace/apps/{service}"
        dockerfile = kaniko_args[kaniko_args.index("--dockerfile") + 1]
        assert dockerfile == f"/workspace/apps/{service}/Dockerfile"
        assert kaniko_args[kaniko_args.index("--destination") + 1] == f"{image}:{sha}"
        assert "org.opencontainers.image.source=https://github.com/acme/repo" in kaniko_args
        credentials = "/home/runner/temp/kaniko:/kaniko/.docker:ro"
        if job_name == "publish":
            assert credentials in docker_args
            assert "--cache=true" in kaniko_args
            assert kaniko_args[kaniko_args.index("--cache-repo") + 1] == f"{image}/cache"
            assert "--no-push" not in kaniko_args
        else:
            assert credentials not in docker_args
            assert "--no-push" in kaniko_args
            assert not any(arg.startswith("--cache") for arg in kaniko_args)


def test_registry_credentials_are_private_to_the_runner_user_and_never_printed(
    rendered: Callable[[str], Rendered], tmp_path: Path
) -> None:
    project = rendered("argocd").project
    step = step_named(rendered("argocd").jobs["publish"], "Write the registry credentials")
    assert step["env"]["REGISTRY_PASSWORD"] == "${{ github.token }}"
    token = "ghs_not-a-real-token-0123456789"
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    completed = run_step(
        step,
        {
            **step["env"],
            "REGISTRY_USER": "octocat",
            "REGISTRY_PASSWORD": token,
            "RUNNER_TEMP": str(runner_temp),
        },
        project,
    )
    assert completed.returncode == 0, completed.stderr
    assert token not in completed.stdout + completed.stderr
    config_dir = runner_temp / "kaniko"
    config = config_dir / "config.json"
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    auths = json.loads(config.read_text(encoding="utf-8"))["auths"]
    assert list(auths) == ["ghcr.io"]
    assert base64.b64decode(auths["ghcr.io"]["auth"]).decode() == f"octocat:{token}"


@pytest.mark.parametrize("kubeconfig", ["apiVersion: v1\nkind: Config\n", ""])
def test_kubeconfig_is_written_from_the_environment_secret_with_mode_0600(
    rendered: Callable[[str], Rendered], tmp_path: Path, kubeconfig: str
) -> None:
    job = rendered("custom").jobs["deploy-pre-prod"]
    step = step_named(job, "Write the kubeconfig")
    completed = run_step(
        step, {"KUBECONFIG_DATA": kubeconfig, "RUNNER_TEMP": str(tmp_path)}, tmp_path
    )
    written = tmp_path / "kubeconfig"
    if not kubeconfig:
        assert completed.returncode == 1
        assert "KUBECONFIG_PRE_PROD" in completed.stdout
        assert not written.exists()
        return
    assert completed.returncode == 0, completed.stderr
    assert written.read_text(encoding="utf-8").rstrip("\n") == kubeconfig.rstrip("\n")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "Config" not in completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        ({"changes": "success", "lint": "success", "build": "skipped"}, True),
        ({"changes": "success", "lint": "skipped", "test": "skipped"}, True),
        ({"changes": "success", "lint": "failure", "test": "success"}, False),
        ({"changes": "success", "publish": "cancelled"}, False),
    ],
)
def test_summary_fails_on_a_failed_or_cancelled_job_but_not_a_skipped_one(
    rendered: Callable[[str], Rendered],
    tmp_path: Path,
    tool: Callable[[str], str],
    results: dict[str, str],
    passes: bool,
) -> None:
    tool("jq")  # on every GitHub-hosted runner
    step = steps(rendered("argocd").jobs["summary"])[0]
    needs = {name: {"result": result, "outputs": {}} for name, result in results.items()}
    completed = run_step(step, {"NEEDS": json.dumps(needs)}, tmp_path)
    assert (completed.returncode == 0) is passes, completed.stdout + completed.stderr
    for name, result in results.items():
        assert f"{name}: {result}" in completed.stdout
    if not passes:
        assert "::error::" in completed.stdout


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_AUTHOR_NAME": "CI test",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "CI test",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return run(["git", *args], cwd=repo, env=env).stdout.strip()


@pytest.mark.parametrize(
    ("event", "expected"),
    [("pull_request", '["billing"]'), ("push", '["billing"]'), ("workflow_dispatch", None)],
)
def test_changes_step_feeds_the_matrix_from_the_event_refs(
    rendered: Callable[[str], Rendered], tmp_path: Path, event: str, expected: str | None
) -> None:
    variant = rendered("argocd")
    repo = tmp_path / "repo"
    repo.mkdir()
    for folder in ("apps", "scripts"):
        run(["cp", "-a", variant.project / folder, repo / folder])
    (repo / "apps" / "billing").mkdir()
    (repo / "apps" / "billing" / "Makefile").write_text("lint test:\n", encoding="utf-8")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "initial")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "apps" / "billing" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "billing")
    head = git(repo, "rev-parse", "HEAD")

    step = step_named(variant.jobs["changes"], "List the services")
    output = tmp_path / "github-output"
    env = {
        "EVENT_NAME": event,
        "PR_BASE_SHA": before if event == "pull_request" else "",
        "PUSH_BEFORE": before if event == "push" else "",
        "HEAD_SHA": head,
        "GITHUB_OUTPUT": str(output),
    }
    completed = run_step(step, env, repo)
    assert completed.returncode == 0, completed.stderr
    everything = '["billing","my-service"]'
    assert output.read_text(encoding="utf-8") == f"services={expected or everything}\n"
