"""The GitOps promotion flow, end to end on local repositories, with the scripts CI runs.

A bare repository stands in for GitHub or GitLab, and a monorepo of two services (built by the
documented commands) for the user's repository. The steps of the generated workflows are run as
the runner runs them (bash -eo pipefail): the first environment's bump after a main build, the
promotions Argo CD triggers with the notification payload {service, environment, revision} (or
PROMOTE_SERVICE and PROMOTE_ENVIRONMENT on GitLab), and the production pull request. `gh` is the
only stand-in: a script that records what it was asked to do.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run
from tests.update.gitrepo import GIT_ENV, commit_all, git

SHA = "0123456789abcdef0123456789abcdef01234567"  # the revision Argo CD reports healthy


def step(workflow: Path, job: str, name: str) -> dict[str, Any]:
    jobs = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]
    found: dict[str, Any] = next(
        s for s in jobs[job]["steps"] if s.get("name", "").startswith(name)
    )
    return found


class Runner:
    """Runs workflow steps in a clone of the project, with a bare 'origin' and a fake gh."""

    def __init__(self, clone: Path, bin_dir: Path, uv: str) -> None:
        self.clone = clone
        self.path = os.pathsep.join([str(bin_dir), str(Path(uv).parent), os.environ["PATH"]])

    def __call__(self, run_step: dict[str, Any], check: bool = True, **env: str) -> dict[str, str]:
        outputs = self.clone.parent / "github-output"
        outputs.write_text("", encoding="utf-8")
        script = self.clone.parent / "step.sh"
        script.write_text(run_step["run"], encoding="utf-8")
        shutil.rmtree(self.clone / "gitops", ignore_errors=True)  # each job starts clean
        completed = run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
            cwd=self.clone,
            env={
                **os.environ,
                **GIT_ENV,
                "PATH": self.path,
                "GITHUB_OUTPUT": str(outputs),
                "RUNNER_TEMP": str(self.clone.parent),
                "GH_TOKEN": "ghs_test",
                **env,
            },
            timeout=300,
            check=check,
        )
        if completed.returncode != 0:
            return {"exit": str(completed.returncode)}
        lines = outputs.read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines)


def image_digests(runner_temp: Path, *services: str) -> str:
    """The digest artifacts `publish` leaves for promote-dev, one per service; the digest."""
    digest = "sha256:" + "ab" * 32
    for service in services:
        folder = runner_temp / "images" / f"image-{service}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "digest").write_text(digest, encoding="utf-8")
    return digest


def remote_tag(origin: Path, ref: str, service: str, env: str) -> str:
    text = git(origin, "show", f"{ref}:deploy/charts/{service}/values-{env}.yaml")
    return str(yaml.safe_load(text)["image"]["tag"])


def remote_values(origin: Path, service: str) -> dict[str, str]:
    """Every values file of a service on origin's main, as text."""
    listed = git(origin, "ls-tree", "--name-only", f"main:deploy/charts/{service}").split()
    return {
        name: git(origin, "show", f"main:deploy/charts/{service}/{name}")
        for name in listed
        if name.startswith("values")
    }


def pushed(tree: Path, bare: Path, message: str) -> Path:
    """A new bare repository `bare` whose main holds a copy of `tree` (without its history)."""
    git(bare.parent, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = bare.with_suffix(".seed")
    shutil.copytree(tree, seed, ignore=shutil.ignore_patterns(".git"))
    git(seed, "init", "-q", "-b", "main")
    commit_all(seed, message)
    git(seed, "push", "-q", str(bare), "main")
    return bare


def github_runner(
    project: Path, tmp_path: Path, tool: Callable[[str], str]
) -> tuple[Path, Path, Runner, Path]:
    """The project pushed to a bare origin, a runner's clone of it, and a gh that logs calls."""
    origin = pushed(project, tmp_path / "origin.git", "generated")
    clone = tmp_path / "runner" / "work"
    clone.parent.mkdir()
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh_log = tmp_path / "gh.log"
    fake_gh = bin_dir / "gh"
    # `gh pr view` finds no pull request; everything else succeeds and is logged.
    fake_gh.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{gh_log}"\n'
        'if [ "$1 $2" = "pr view" ]; then exit 1; fi\n',
        encoding="utf-8",
    )
    fake_gh.chmod(fake_gh.stat().st_mode | stat.S_IEXEC)
    tool("jq")
    return origin, clone, Runner(clone, bin_dir, tool("uv")), gh_log


@pytest.fixture
def setup(
    monorepo_factory: Callable[..., Path], tmp_path: Path, tool: Callable[[str], str]
) -> tuple[Path, Path, Runner, Path]:
    return github_runner(monorepo_factory(tmp_path / "shop"), tmp_path, tool)


def healthy(runner: Runner, promote: Path, service: str, environment: str) -> dict[str, str]:
    """The promote workflow's first step for the payload of Argo CD's notification."""
    return runner(
        step(promote, "promote", "Check the service"),
        check=False,
        EVENT_NAME="repository_dispatch",
        PAYLOAD_SERVICE=service,
        PAYLOAD_ENVIRONMENT=environment,
        PAYLOAD_REVISION=SHA,
    )


@pytest.mark.slow
def test_a_healthy_service_walks_dev_staging_and_waits_for_approval_for_prod_alone(
    setup: tuple[Path, Path, Runner, Path],
) -> None:
    origin, clone, runner, gh_log = setup
    ci = clone / ".github/workflows/ci.yml"
    promote = clone / ".github/workflows/promote.yml"
    tag = "3f2c1d9e8b7a"

    # 1. main built both services: CI bumps the first environment of each and pushes to main.
    services = json.dumps([{"name": "api"}, {"name": "worker"}])
    image_digests(clone.parent, "api", "worker")
    runner(step(ci, "promote-dev", "Promote, commit and push"), SERVICES=services, IMAGE_TAG=tag)
    assert remote_tag(origin, "main", "api", "dev") == tag
    assert remote_tag(origin, "main", "worker", "dev") == tag
    worker = remote_values(origin, "worker")

    # 2. Argo CD reports api healthy in dev: the promote workflow moves api's tag to staging.
    target = healthy(runner, promote, "api", "dev")
    assert target == {"service": "api", "environment": "staging"}
    runner(
        step(promote, "promote", "Promote, commit and push"),
        SERVICE="api",
        TARGET="staging",
        GITOPS_URL=str(origin),
    )
    assert remote_tag(origin, "main", "api", "staging") == tag
    assert remote_tag(origin, "main", "api", "prod") == ""
    assert remote_values(origin, "worker") == worker  # the sibling nobody smoke-tested

    # 3. api healthy in staging: production gets a branch and a pull request, main is untouched.
    target = healthy(runner, promote, "api", "staging")
    assert target == {"service": "api", "environment": "prod"}
    runner(
        step(promote, "promote", "Promote, commit and push"),
        SERVICE="api",
        TARGET="prod",
        GITOPS_URL=str(origin),
    )
    assert remote_tag(origin, "main", "api", "prod") == ""
    assert remote_tag(origin, f"promote/api-prod-{tag}", "api", "prod") == tag
    assert remote_values(origin, "worker") == worker
    calls = gh_log.read_text(encoding="utf-8").splitlines()
    assert calls[-1].startswith(f"pr create --base main --head promote/api-prod-{tag}")

    # 4. Production is the last environment: its health promotes nothing.
    assert healthy(runner, promote, "api", "prod") == {"service": "api", "environment": ""}


@pytest.mark.parametrize(
    ("service", "environment"),
    [
        ("api", "qa"),
        ("billing", "dev"),
        ("api", "my-service-dev"),
        ("api", "dev; rm -rf /"),
        ("api; rm -rf /", "dev"),
        ("../api", "dev"),
        ("api", "-h"),
    ],
    ids=[
        "unknown-environment",
        "unknown-service",
        "namespace-instead-of-environment",
        "environment-injection",
        "service-injection",
        "service-path",
        "option-like-environment",
    ],
)
def test_a_payload_naming_no_service_or_environment_of_the_repository_promotes_nothing(
    setup: tuple[Path, Path, Runner, Path], service: str, environment: str
) -> None:
    _, clone, runner, _ = setup
    promote = clone / ".github/workflows/promote.yml"
    outcome = healthy(runner, promote, service, environment)
    assert outcome.get("environment", "") == ""
    assert "exit" in outcome  # the run fails, so that someone looks


def gitlab_job(pipeline_dir: Path, job: str) -> tuple[str, dict[str, str]]:
    """before_script of .promote-base and the job's script as one shell script, and variables."""
    jobs: dict[str, Any] = {}
    services = sorted((pipeline_dir / ".gitlab/ci/services").glob("*.yml"))
    for path in [pipeline_dir / ".gitlab/ci/promote.yml", *services]:
        jobs.update(yaml.safe_load(path.read_text(encoding="utf-8")))
    before = jobs[".promote-base"]["before_script"]
    extends = jobs[job].get("extends", [])
    variables: dict[str, str] = {}
    for parent in [extends] if isinstance(extends, str) else extends:
        variables.update(jobs[parent].get("variables", {}))
    variables.update(jobs[job].get("variables", {}))
    return "\n".join([*before, *jobs[job]["script"]]), variables


@pytest.mark.slow
def test_gitlab_promotion_walks_the_same_path_one_service_at_a_time(
    monorepo_factory: Callable[..., Path], tmp_path: Path, tool: Callable[[str], str]
) -> None:
    project = monorepo_factory(tmp_path / "shop", ci_provider="gitlab")
    origin = pushed(project, tmp_path / "origin.git", "generated")
    clone = tmp_path / "job"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    sha = git(clone, "rev-parse", "HEAD").strip()
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": os.pathsep.join([str(Path(tool("uv")).parent), os.environ["PATH"]]),
        "CI_DEFAULT_BRANCH": "main",
        "CI_SERVER_HOST": "gitlab.example.com",
        "CI_PROJECT_PATH": "my-org/my-service",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_BEFORE_SHA": "0" * 40,
    }

    def job(name: str, **variables: str) -> str:
        script, defined = gitlab_job(clone, name)
        (tmp_path / "job.sh").write_text(script, encoding="utf-8")
        bash: list[str | Path] = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
        completed = run(
            [*bash, tmp_path / "job.sh"],
            cwd=clone,
            env={**env, **defined, **variables},
            timeout=300,
        )
        return completed.stdout

    job("promote:api:dev")
    job("promote:worker:dev")
    assert remote_tag(origin, "main", "api", "dev") == sha
    assert remote_tag(origin, "main", "worker", "dev") == sha
    worker = remote_values(origin, "worker")
    job("promote", PROMOTE_SERVICE="api", PROMOTE_ENVIRONMENT="dev")
    assert remote_tag(origin, "main", "api", "staging") == sha
    assert remote_values(origin, "worker") == worker
    out = job("promote", PROMOTE_SERVICE="api", PROMOTE_ENVIRONMENT="staging")
    assert remote_tag(origin, "main", "api", "prod") == ""
    assert remote_tag(origin, f"promote/api-prod-{sha}", "api", "prod") == sha
    assert "PROMOTE_TOKEN is not set, skipped" in out  # the merge request needs the token
    assert "nothing to promote" in job("promote", PROMOTE_SERVICE="api", PROMOTE_ENVIRONMENT="prod")
    assert remote_values(origin, "worker") == worker


@pytest.mark.slow
def test_with_a_separate_configuration_repository_promotions_land_there(
    monorepo_factory: Callable[..., Path], tmp_path: Path, tool: Callable[[str], str]
) -> None:
    project = monorepo_factory(tmp_path / "shop", gitops_repo="separate")
    appset = (project / "deploy/argocd/applicationset.yaml").read_text(encoding="utf-8")
    assert "https://github.com/my-org/my-service-gitops.git" in appset
    # The monorepo, and its deploy/ folder as the configuration repository, both pushed.
    origin, clone, runner, _ = github_runner(project, tmp_path, tool)
    (tmp_path / "config").mkdir()
    shutil.copytree(project / "deploy", tmp_path / "config" / "deploy")
    config = pushed(tmp_path / "config", tmp_path / "config.git", "configuration")
    ci = clone / ".github/workflows/ci.yml"
    promote = clone / ".github/workflows/promote.yml"
    tag = "5e6f7a8b9c0d"

    image_digests(clone.parent, "api", "worker")
    runner(
        step(ci, "promote-dev", "Promote, commit and push"),
        SERVICES=json.dumps([{"name": "api"}, {"name": "worker"}]),
        IMAGE_TAG=tag,
        GITOPS_URL=str(config),
    )
    assert remote_tag(config, "main", "api", "dev") == tag
    assert remote_tag(origin, "main", "api", "dev") == ""  # the monorepo is not touched

    promotion = step(promote, "promote", "Promote, commit")
    runner(promotion, SERVICE="worker", TARGET="staging", GITOPS_URL=str(config))
    assert remote_tag(config, "main", "worker", "staging") == tag
    assert remote_tag(config, "main", "api", "staging") == ""
    runner(promotion, SERVICE="worker", TARGET="prod", GITOPS_URL=str(config))
    assert remote_tag(config, "main", "worker", "prod") == ""
    assert remote_tag(config, f"promote/worker-prod-{tag}", "worker", "prod") == tag
