"""The CI jobs `lint-deploy` of a generated monorepo (a Python service, a Go job), run for real.

GitLab: gitlab-ci-local runs the job of .gitlab-ci.yml with its shell executor (no Docker: the
job's image is not pulled; this machine has what its before_script checks for). GitHub has no
runner here: the `run:` steps of the job are executed in order with bash (github_job below).

Offline, as a runner whose image has the tools: the tools scripts/bootstrap installs on PATH,
and the knobs the jobs honour set (as CI/CD variables on GitLab, in the runner's environment on
GitHub): LINT_PYTHON, this Python, which has kubernetes-validate (`make tools` then installs
nothing), LINT_DEPLOY_CRDS, the upstream CRDs of ../shared/schemas, and LINT_DEPLOY_CACHE, the
suite's cache of converted schemas. Without the knobs (real CI) `make tools` installs the pinned
tools into .tools/, which both CI providers cache on scripts/ci/install-tools: the last test
checks that part, which needs the network to run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.gitlab_local import gitlab_ci_local, with_gitlab_origin
from tests.helpers import run
from tests.monorepo import build_monorepo, lint_deploy_env, make, tool_env
from tests.update.gitrepo import commit_all, git, snapshot_template

Tool = Callable[[str], str]
# The checks of each provider, in the order the script runs them.
COMMON_CHECKS = ("helm", "kubeconform", "kube-score", "hadolint", "yamllint", "shellcheck")
GITLAB_CHECKS = (*COMMON_CHECKS, "gitlab-ci", "gitleaks")
GITHUB_CHECKS = (*COMMON_CHECKS, "actionlint", "zizmor", "gitleaks")
KNOBS = ("LINT_PYTHON", "LINT_DEPLOY_CRDS", "LINT_DEPLOY_CACHE")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# What copies of a project leave out: gitlab-ci-local's work folder.
IGNORED = shutil.ignore_patterns(".gitlab-ci-local")


def job_monorepo(template: Path, destination: Path, ci_provider: str) -> Path:
    """`copier copy` with the service api (Python), then `make add-service` of a Go s3 job."""
    project = build_monorepo(
        template, destination, services=[("api", "python")], ci_provider=ci_provider
    )
    make(
        project,
        "add-service",
        "NAME=importer",
        "LANGUAGE=go",
        "KIND=job",
        "TRIGGER=s3",
        "COPIER_ARGS=--defaults",
    )
    commit_all(project, "Add the job importer")
    return project


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def offline(schemas_dir: Path) -> dict[str, str]:
    """tool_env() with the bootstrapped tools checked and the offline knobs set."""
    return lint_deploy_env(schemas_dir)


@pytest.fixture(scope="module")
def gitlab_monorepo(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("gitlab")
    project = job_monorepo(template_repo, where / "project", "gitlab")
    return with_gitlab_origin(project, where / "origin.git")


@pytest.fixture(scope="module")
def github_monorepo(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return job_monorepo(template_repo, tmp_path_factory.mktemp("github") / "project", "github")


def copy(project: Path, tmp_path: Path) -> Path:
    """A copy of a module's project (git history and origin included) for a test to change."""
    destination = tmp_path / "project"
    shutil.copytree(project, destination, symlinks=True, ignore=IGNORED)
    return destination


def checks_run(output: str, prefix: str = "") -> list[str]:
    """The checks the script started, in order (its `== <check>` lines)."""
    return re.findall(rf"^{re.escape(prefix)}== ([\w-]+)$", output, flags=re.MULTILINE)


# --- GitLab: the job under gitlab-ci-local -------------------------------------------------------


def gitlab_job(
    project: Path, tool: Tool, offline: dict[str, str], *variables: str
) -> subprocess.CompletedProcess[str]:
    """`gitlab-ci-local lint-deploy` with the shell executor, the knobs as CI/CD variables."""
    knobs = [f"--variable={name}={offline[name]}" for name in KNOBS]
    pipeline = [f"--variable={variable}" for variable in variables]
    return gitlab_ci_local(
        project,
        tool,
        "--force-shell-executor",
        *knobs,
        *pipeline,
        "lint-deploy",
        path=offline["PATH"],
        check=False,
    )


def test_gitlab_lint_deploy_job_passes_offline_under_gitlab_ci_local(
    gitlab_monorepo: Path, tool: Tool, offline: dict[str, str]
) -> None:
    result = gitlab_job(gitlab_monorepo, tool, offline, "CI_PIPELINE_SOURCE=web")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "PASS  lint-deploy" in result.stdout
    # The job's own commands ran: its before_script's make tools installed nothing (LINT_PYTHON).
    assert "lint-deploy $ make tools" in result.stdout
    assert "lint-deploy > tools: LINT_PYTHON is set" in result.stdout
    assert "install-tools:" not in output
    assert not (gitlab_monorepo / ".tools").exists()
    # A branch pipeline without a previous commit checks everything.
    assert "scripts/ci/lint-deploy --since" not in result.stdout
    assert checks_run(result.stdout, "lint-deploy > ") == list(GITLAB_CHECKS)
    # The Go job's chart was rendered and scored for each environment, and every object checked
    # against a schema (its Argo Events and Argo Workflows kinds against the upstream ones).
    for env in ("dev", "staging", "prod"):
        assert f"kube-score importer-{env}.yaml: 0 critical" in result.stdout
    assert re.search(r"Summary: \d+ resources .* Errors: 0, Skipped: 0", result.stdout), output
    assert "lint-deploy > lint-deploy: every check passed" in result.stdout


def test_gitlab_lint_deploy_job_fails_a_merge_request_with_an_unknown_values_key(
    gitlab_monorepo: Path, tool: Tool, offline: dict[str, str], tmp_path: Path
) -> None:
    project = copy(gitlab_monorepo, tmp_path)
    base = git(project, "rev-parse", "origin/main").strip()
    git(project, "switch", "--quiet", "-c", "job-retries")
    values = project / "deploy" / "charts" / "importer" / "values-prod.yaml"
    values.write_text(values.read_text(encoding="utf-8") + "retrys: 3\n", encoding="utf-8")
    commit_all(project, "Retry the importer")

    result = gitlab_job(
        project,
        tool,
        offline,
        "CI_PIPELINE_SOURCE=merge_request_event",
        f"CI_MERGE_REQUEST_DIFF_BASE_SHA={base}",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "FAIL  lint-deploy" in result.stdout
    # Only what the merge request changed since its base: a values file, so every check.
    assert f"scripts/ci/lint-deploy --since={base}" in result.stdout
    assert "retrys" in output
    assert "lint-deploy > lint-deploy: failed: helm, kubeconform, kube-score" in result.stdout


# --- GitHub: the job's run steps with bash -------------------------------------------------------


def github_job(
    project: Path, job: dict[str, Any], contexts: dict[str, str], runner_env: dict[str, str]
) -> tuple[list[str], list[subprocess.CompletedProcess[str]]]:
    """Run the `run:` steps of a GitHub Actions job in order, as the runner runs them.

    Each script runs with `bash --noprofile --norc -eo pipefail` (the runner's `shell: bash`) in
    the project, with `runner_env`, then the job's `env:`, then the step's `env:`, where every
    `${{ expression }}` must be one of `contexts` (anything else fails the test, as does a key
    this helper does not implement: `if`, `shell` other than bash, `working-directory`). It stops
    at the first failing step, as the runner does. `uses:` steps are not run: their names are
    returned, so a test says what stood in for each.
    """

    def resolve(value: object) -> str:
        def lookup(match: re.Match[str]) -> str:
            assert match[1] in contexts, f"no value for the expression {match[0]}"
            return contexts[match[1]]

        return EXPRESSION.sub(lookup, str(value))

    unsupported = {"if", "working-directory", "container", "services", "strategy", "defaults"}
    assert not unsupported & set(job), f"github_job does not implement {unsupported & set(job)}"
    job_env = {name: resolve(value) for name, value in job.get("env", {}).items()}
    skipped, results = [], []
    for step in job["steps"]:
        if "uses" in step:
            skipped.append(str(step["uses"]).partition("@")[0])
            continue
        assert not {"if", "working-directory"} & set(step), f"github_job cannot run {step}"
        assert step.get("shell", "bash") == "bash", step
        assert not EXPRESSION.search(step["run"]), f"an expression in a run script: {step}"
        step_env = {name: resolve(value) for name, value in step.get("env", {}).items()}
        script = project.parent / "step.sh"
        script.write_text(step["run"], encoding="utf-8")
        result = run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
            cwd=project,
            env={**runner_env, **job_env, **step_env},
            timeout=600,
            check=False,
        )
        results.append(result)
        if result.returncode != 0:
            break
    return skipped, results


def github_lint_deploy(project: Path) -> dict[str, Any]:
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    job: dict[str, Any] = workflow["jobs"]["lint-deploy"]
    return job


def test_github_lint_deploy_steps_pass_offline_on_a_pull_request(
    github_monorepo: Path, offline: dict[str, str]
) -> None:
    """The pull request that added the job: base is the first commit. The two `uses:` steps are
    skipped: actions/checkout (fetch-depth 0; the project is already a clone with its whole
    history) and actions/cache of .tools (nothing to restore: LINT_PYTHON, the tools on PATH)."""
    base = git(github_monorepo, "rev-list", "--max-parents=0", "HEAD").strip()
    contexts = {
        "github.event_name": "pull_request",
        "github.event.pull_request.base.sha": base,
        "github.event.before": "",
    }
    skipped, results = github_job(
        github_monorepo, github_lint_deploy(github_monorepo), contexts, offline
    )
    assert skipped == ["actions/checkout", "actions/cache"]
    assert len(results) == 2, "make tools, then make lint-deploy"
    tools, lint = results
    assert tools.returncode == 0, tools.stdout + tools.stderr
    assert "tools: LINT_PYTHON is set" in tools.stdout
    assert not (github_monorepo / ".tools").exists()
    output = lint.stdout + lint.stderr
    assert lint.returncode == 0, output
    assert f"scripts/ci/lint-deploy --since={base}" in lint.stdout
    assert checks_run(lint.stdout) == list(GITHUB_CHECKS)
    for env in ("dev", "staging", "prod"):
        assert f"kube-score importer-{env}.yaml: 0 critical" in lint.stdout
    assert "lint-deploy: every check passed" in lint.stdout


def test_github_lint_deploy_steps_fail_a_push_of_a_dockerfile_running_as_root(
    github_monorepo: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    """The same steps (the same two `uses:` steps skipped) on a push to main."""
    project = copy(github_monorepo, tmp_path)
    before = git(project, "rev-parse", "HEAD").strip()
    dockerfile = project / "apps" / "importer" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text(encoding="utf-8") + "USER root\n", "utf-8")
    commit_all(project, "Run the importer as root")
    contexts = {
        "github.event_name": "push",
        "github.event.pull_request.base.sha": "",
        "github.event.before": before,
    }
    skipped, results = github_job(project, github_lint_deploy(project), contexts, offline)
    assert skipped == ["actions/checkout", "actions/cache"]
    assert [result.returncode == 0 for result in results] == [True, False]
    lint = results[-1]
    assert f"scripts/ci/lint-deploy --since={before}" in lint.stdout
    assert "DL3002" in lint.stdout
    assert "lint-deploy: failed: hadolint" in lint.stdout


# --- Real CI, without the knobs: the pinned tools, cached on their pins ---------------------------


def test_without_the_knobs_both_jobs_install_the_pinned_tools_cached_on_their_pins(
    gitlab_monorepo: Path, github_monorepo: Path
) -> None:
    env = {name: value for name, value in tool_env().items() if name not in KNOBS}
    for project in (gitlab_monorepo, github_monorepo):
        dry = run(["make", "-n", "tools"], cwd=project, env=env).stdout
        assert dry.strip() == "scripts/ci/install-tools", dry
        with_knob = run(["make", "-n", "tools", "LINT_PYTHON=python3"], cwd=project, env=env)
        assert "install-tools" not in with_knob.stdout
    pipeline = yaml.safe_load((gitlab_monorepo / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    gitlab = pipeline["lint-deploy"]
    assert gitlab["before_script"][-1] == "make tools"
    assert gitlab["cache"] == {
        "key": {"files": ["scripts/ci/install-tools"], "prefix": "lint-tools"},
        "paths": [".tools/"],
    }
    github = github_lint_deploy(github_monorepo)["steps"]
    cache = next(step for step in github if str(step.get("uses", "")).startswith("actions/cache@"))
    assert cache["with"] == {
        "path": ".tools",
        "key": "lint-tools-${{ runner.os }}-${{ hashFiles('scripts/ci/install-tools') }}",
    }
    assert github.index(cache) < github.index({"name": "make tools", "run": "make tools"})
