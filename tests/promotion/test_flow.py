"""The GitOps promotion flow, end to end on local repositories, with the scripts CI runs.

A bare repository stands in for GitHub. The steps of the generated workflows are run as the
runner runs them (bash -eo pipefail): the first environment's bump after a main build, the
promotions Argo CD triggers, and the production pull request. `gh` is the only stand-in: a
script that records what it was asked to do.
"""

from __future__ import annotations

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

CHART = Path("deploy/charts/my-service")


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

    def __call__(self, run_step: dict[str, Any], **env: str) -> dict[str, str]:
        outputs = self.clone.parent / "github-output"
        outputs.write_text("", encoding="utf-8")
        script = self.clone.parent / "step.sh"
        script.write_text(run_step["run"], encoding="utf-8")
        run(
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
        )
        lines = outputs.read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines)


def remote_tag(origin: Path, ref: str, env: str) -> str:
    text = git(origin, "show", f"{ref}:{CHART}/values-{env}.yaml")
    return str(yaml.safe_load(text)["image"]["tag"])


def pushed(tree: Path, bare: Path, message: str) -> Path:
    """A new bare repository `bare` whose main holds a copy of `tree`."""
    git(bare.parent, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = bare.with_suffix(".seed")
    shutil.copytree(tree, seed)
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
    fake_gh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{gh_log}"\n', encoding="utf-8")
    fake_gh.chmod(fake_gh.stat().st_mode | stat.S_IEXEC)
    tool("jq")
    return origin, clone, Runner(clone, bin_dir, tool("uv")), gh_log


@pytest.fixture
def setup(
    default_project: Path, tmp_path: Path, tool: Callable[[str], str]
) -> tuple[Path, Path, Runner, Path]:
    return github_runner(default_project, tmp_path, tool)


@pytest.mark.slow
def test_a_main_build_walks_dev_staging_and_waits_for_approval_for_prod(
    setup: tuple[Path, Path, Runner, Path],
) -> None:
    origin, clone, runner, gh_log = setup
    ci = clone / ".github/workflows/ci.yml"
    promote = clone / ".github/workflows/promote.yml"
    tag = "3f2c1d9e8b7a"

    # 1. main built the image: CI bumps the first environment and pushes to main.
    runner(
        step(ci, "promote-dev", "Promote, commit and push"),
        SERVICES='["my-service"]',
        IMAGE_TAG=tag,
    )
    assert remote_tag(origin, "main", "dev") == tag
    assert (
        git(origin, "log", "-1", "--format=%s", "main").strip() == f"Promote {tag} to dev [skip ci]"
    )

    # 2. Argo CD reports dev healthy: the promote workflow moves the tag to staging.
    git(clone, "pull", "-q", "--ff-only")
    target = runner(
        step(promote, "promote", "Work out"),
        EVENT_NAME="repository_dispatch",
        HEALTHY="my-service-dev",
    )
    assert target == {"environment": "staging"}
    runner(step(promote, "promote", "Promote, commit and push"), TARGET="staging")
    assert remote_tag(origin, "main", "staging") == tag
    assert remote_tag(origin, "main", "prod") == ""

    # 3. staging healthy: production gets a branch and a pull request, main is untouched.
    git(clone, "pull", "-q", "--ff-only")
    target = runner(
        step(promote, "promote", "Work out"),
        EVENT_NAME="repository_dispatch",
        HEALTHY="my-service-staging",
    )
    assert target == {"environment": "prod"}
    runner(step(promote, "promote", "Promote, commit and push"), TARGET="prod")
    assert remote_tag(origin, "main", "prod") == ""
    assert remote_tag(origin, f"promote/prod-{tag}", "prod") == tag
    (call,) = gh_log.read_text(encoding="utf-8").splitlines()
    assert call.startswith(f"pr create --base main --head promote/prod-{tag}")


@pytest.mark.parametrize("healthy", ["my-service-prod", "dev", "my-service-dev; rm -rf /"])
def test_only_known_environments_before_production_are_promoted(
    setup: tuple[Path, Path, Runner, Path], healthy: str
) -> None:
    _, clone, runner, _ = setup
    promote = clone / ".github/workflows/promote.yml"
    target = runner(
        step(promote, "promote", "Work out"), EVENT_NAME="repository_dispatch", HEALTHY=healthy
    )
    assert target == {"environment": ""}


def gitlab_job(pipeline_dir: Path, job: str) -> str:
    """before_script of .promote-base and the job's script, as one shell script."""
    jobs = yaml.safe_load((pipeline_dir / ".gitlab/ci/promote.yml").read_text(encoding="utf-8"))
    before = jobs[".promote-base"]["before_script"]
    return "\n".join([*before, *jobs[job]["script"]])


@pytest.mark.slow
def test_gitlab_promotion_walks_the_same_path(
    make_project: Callable[..., Path], tmp_path: Path, tool: Callable[[str], str]
) -> None:
    project = make_project(ci_provider="gitlab")
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
        script = tmp_path / "job.sh"
        script.write_text(gitlab_job(clone, name), encoding="utf-8")
        bash: list[str | Path] = ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
        return run(bash, cwd=clone, env={**env, **variables}, timeout=300).stdout

    job("promote:dev")
    assert remote_tag(origin, "main", "dev") == sha
    job("promote", PROMOTE_FROM="my-service-dev")
    assert remote_tag(origin, "main", "staging") == sha
    out = job("promote", PROMOTE_FROM="my-service-staging")
    assert remote_tag(origin, "main", "prod") == ""
    assert remote_tag(origin, f"promote/prod-{sha}", "prod") == sha
    assert "PROMOTE_TOKEN is not set, skipped" in out  # the merge request needs the token
    assert "nothing to promote" in job("promote", PROMOTE_FROM="my-service-prod")


@pytest.mark.slow
def test_with_a_separate_configuration_repository_promotions_land_there(
    make_project: Callable[..., Path], tmp_path: Path, tool: Callable[[str], str]
) -> None:
    project = make_project(gitops_repo="separate")
    applications = (project / "deploy/argocd/my-service-dev.yaml").read_text(encoding="utf-8")
    assert "https://github.com/my-org/my-service-gitops.git" in applications
    # The monorepo, and its deploy/ folder as the configuration repository, both pushed.
    origin, clone, runner, _ = github_runner(project, tmp_path, tool)
    (tmp_path / "config").mkdir()
    shutil.copytree(project / "deploy", tmp_path / "config" / "deploy")
    config = pushed(tmp_path / "config", tmp_path / "config.git", "configuration")
    ci = clone / ".github/workflows/ci.yml"
    promote = clone / ".github/workflows/promote.yml"
    tag = "5e6f7a8b9c0d"

    runner(
        step(ci, "promote-dev", "Promote, commit and push"),
        SERVICES='["my-service"]',
        IMAGE_TAG=tag,
        GITOPS_URL=str(config),
    )
    assert remote_tag(config, "main", "dev") == tag
    assert remote_tag(origin, "main", "dev") == ""  # the monorepo is not touched

    shutil.rmtree(clone / "gitops")
    runner(step(promote, "promote", "Promote, commit"), TARGET="staging", GITOPS_URL=str(config))
    assert remote_tag(config, "main", "staging") == tag
    shutil.rmtree(clone / "gitops")
    runner(step(promote, "promote", "Promote, commit"), TARGET="prod", GITOPS_URL=str(config))
    assert remote_tag(config, "main", "prod") == ""
    assert remote_tag(config, f"promote/prod-{tag}", "prod") == tag
