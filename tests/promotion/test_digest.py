"""The digest CI pushed and signed is what every environment runs, on every deploy target.

`make promote` (scripts/promote.py) writes image.tag and image.digest together; the GitOps flow
carries both from the first environment to production; the helm deploy target promotes by
commit and deploys the committed values file, with no --set that would override it. The
monorepo of two services is built by the documented commands (tests/promotion/conftest.py); the
workflow steps run as the runner runs them (tests/promotion/test_flow.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run
from tests.promotion.test_flow import github_runner, image_digests, step
from tests.promotion.test_promote import promote
from tests.update.gitrepo import commit_all, git

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32


def image(project: Path, service: str, env: str, ref: str | None = None) -> dict[str, str]:
    relative = f"deploy/charts/{service}/values-{env}.yaml"
    if ref is None:
        text = (project / relative).read_text(encoding="utf-8")
    else:
        text = git(project, "show", f"{ref}:{relative}")
    found = (yaml.safe_load(text) or {}).get("image") or {}
    return {"tag": str(found.get("tag", "")), "digest": str(found.get("digest", ""))}


@pytest.fixture
def monorepo(monorepo_factory: Callable[..., Path], tmp_path: Path) -> Path:
    return monorepo_factory(tmp_path / "shop")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_promotion_writes_the_digest_with_the_tag_and_the_next_environment_takes_both(
    monorepo: Path,
) -> None:
    out = ok(promote(monorepo, "--env", "dev", "--tag", "abc1", "--digest", DIGEST_A))
    assert f"image.tag -> abc1, image.digest -> {DIGEST_A}" in out
    assert image(monorepo, "api", "dev") == {"tag": "abc1", "digest": DIGEST_A}
    commit_all(monorepo, "dev")
    ok(promote(monorepo, "--env", "staging", "--service", "worker"))
    assert image(monorepo, "worker", "staging") == {"tag": "abc1", "digest": DIGEST_A}
    assert image(monorepo, "api", "staging") == {"tag": "", "digest": ""}  # not asked for


def test_a_tag_without_a_digest_clears_the_digest_of_the_image_before(monorepo: Path) -> None:
    ok(promote(monorepo, "--env", "dev", "--tag", "abc1", "--digest", DIGEST_A))
    ok(promote(monorepo, "--env", "dev", "--tag", "hotfix"))
    # A stale digest would pin the old image under the new tag.
    assert image(monorepo, "api", "dev") == {"tag": "hotfix", "digest": ""}


def test_a_rollback_restores_the_previous_tag_with_its_own_digest(monorepo: Path) -> None:
    ok(promote(monorepo, "--env", "dev", "--tag", "one", "--digest", DIGEST_A))
    commit_all(monorepo, "one")
    ok(promote(monorepo, "--env", "dev", "--tag", "two", "--digest", DIGEST_B))
    commit_all(monorepo, "two")
    ok(promote(monorepo, "--env", "dev", "--rollback", "--service", "api"))
    assert image(monorepo, "api", "dev") == {"tag": "one", "digest": DIGEST_A}
    assert image(monorepo, "worker", "dev") == {"tag": "two", "digest": DIGEST_B}


def test_a_rollback_says_in_words_when_there_is_nothing_to_roll_back_to(monorepo: Path) -> None:
    never = promote(monorepo, "--env", "prod", "--rollback", "--service", "api")
    assert never.returncode == 2
    assert (
        "deploy/charts/api/values-prod.yaml sets no image.tag: api has never been promoted to"
        " prod, so there is nothing to roll back to; nothing changed"
    ) in never.stderr
    assert "None" not in never.stderr
    ok(promote(monorepo, "--env", "prod", "--tag", "first", "--service", "api"))
    commit_all(monorepo, "first prod")
    once = promote(monorepo, "--env", "prod", "--rollback", "--service", "api")
    assert once.returncode == 2
    assert "api has run only first in prod (git history has no earlier image)" in once.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--digest", DIGEST_A], "DIGEST names the image of a TAG: give TAG=<tag> DIGEST="),
        (["--tag", "x", "--digest", "sha256:abc"], "DIGEST=sha256:abc: not an image digest"),
        (["--tag", "x", "--digest", "md5:" + "a" * 64], "not an image digest"),
    ],
    ids=["digest-without-tag", "short-digest", "other-algorithm"],
)
def test_a_digest_that_is_not_one_is_refused_and_nothing_changes(
    monorepo: Path, args: list[str], message: str
) -> None:
    before = image(monorepo, "api", "dev")
    refused = promote(monorepo, "--env", "dev", *args)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert image(monorepo, "api", "dev") == before


def test_the_chart_runs_the_promoted_image_by_digest(monorepo: Path, tool: Any) -> None:
    ok(promote(monorepo, "--env", "dev", "--tag", "abc1", "--digest", DIGEST_A))
    chart = monorepo / "deploy/charts/api"
    rendered = run(
        [
            tool("helm"),
            "template",
            "api",
            chart,
            "-f",
            chart / "values.yaml",
            "-f",
            chart / "values-dev.yaml",
        ]
    ).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/my-org/api:abc1@{DIGEST_A}"


@pytest.mark.slow
def test_the_gitops_flow_carries_the_signed_digest_to_production(
    monorepo_factory: Callable[..., Path], tmp_path: Path, tool: Any
) -> None:
    origin, clone, runner, _ = github_runner(monorepo_factory(tmp_path / "shop"), tmp_path, tool)
    ci = clone / ".github/workflows/ci.yml"
    workflow = clone / ".github/workflows/promote.yml"
    digest = image_digests(clone.parent, "api", "worker")
    runner(
        step(ci, "promote-dev", "Promote, commit and push"),
        SERVICES='[{"name": "api"}, {"name": "worker"}]',
        IMAGE_TAG="3f2c1d9",
    )
    expected = {"tag": "3f2c1d9", "digest": digest}
    assert image(origin, "api", "dev", "main") == expected
    for target, ref in (("staging", "main"), ("prod", "promote/api-prod-3f2c1d9")):
        runner(
            step(workflow, "promote", "Promote, commit and push"),
            SERVICE="api",
            TARGET=target,
            GITOPS_URL=str(origin),
        )
        assert image(origin, "api", target, ref) == expected, target


@pytest.mark.slow
def test_helm_deploys_promote_by_commit_and_deploy_the_committed_image(
    monorepo_factory: Callable[..., Path], tmp_path: Path, tool: Any
) -> None:
    project = monorepo_factory(tmp_path / "shop", deploy_target="helm")
    origin, clone, runner, _ = github_runner(project, tmp_path, tool)
    ci = clone / ".github/workflows/ci.yml"
    jobs = yaml.safe_load(ci.read_text(encoding="utf-8"))["jobs"]
    kubeconfig = clone.parent / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    digest = image_digests(clone.parent, "api")
    (clone.parent / "image").mkdir()
    shutil.copy(clone.parent / "images/image-api/digest", clone.parent / "image/digest")

    def deploy(env: str, event: str = "push") -> str:
        """The job's promotion step, then its helm command as `helm template` (no cluster)."""
        outputs = runner(
            step(ci, f"deploy-{env}", f"Promote to {env}"),
            EVENT_NAME=event,
            SERVICE="api",
            IMAGE_TAG="3f2c1d9",
            GITOPS_URL=str(origin),
        )
        helm = step(ci, f"deploy-{env}", "helm upgrade")
        assert "--set" not in helm["run"]
        command = helm["run"].replace("helm upgrade --install", f"{tool('helm')} template")
        rendered = run(
            ["bash", "-eo", "pipefail", "-c", command],
            cwd=clone,
            env={
                "PATH": "/usr/bin:/bin",
                "SERVICE": "api",
                "DIR": outputs["dir"],
                "RUNNER_TEMP": str(clone.parent),
            },
        ).stdout
        deployment = next(
            d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"
        )
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    running = deploy("dev")
    assert running == f"ghcr.io/my-org/api:3f2c1d9@{digest}"
    assert image(origin, "api", "dev", "main") == {"tag": "3f2c1d9", "digest": digest}
    assert "[skip ci]" in git(origin, "log", "-1", "--format=%s", "main")
    assert deploy("staging") == running  # staging takes the image dev runs, by commit
    assert image(origin, "api", "staging", "main") == {"tag": "3f2c1d9", "digest": digest}
    # `make promote ENV=staging ROLLBACK=1`, committed: what the next deploy runs. A manual run
    # (workflow_dispatch) promotes nothing and deploys the committed values as they are.
    git(clone, "pull", "-q", "origin", "main")
    ok(promote(clone, "--env", "staging", "--tag", "older", "--service", "api"))
    commit_all(clone, "Roll staging back")
    git(clone, "push", "-q", "origin", "HEAD:main")
    assert deploy("staging", event="workflow_dispatch") == "ghcr.io/my-org/api:older"
    assert jobs["deploy-dev"]["permissions"] == {"contents": "write"}
