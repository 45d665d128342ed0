"""scripts/ci/gitops push: concurrent promotions of different services both land."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run
from tests.monorepo import make, tool_env
from tests.promotion.test_flow import remote_tag
from tests.update.gitrepo import git


def clone(origin: Path, destination: Path) -> Path:
    """A shallow clone of main, as actions/checkout makes (file:// so that --depth applies)."""
    git(
        origin.parent,
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        "main",
        str(origin),
        str(destination),
    )
    return destination


def gitops_push(checkout: Path, message: str, check: bool = True) -> Any:
    return run(["scripts/ci/gitops", "push", message], cwd=checkout, env=tool_env(), check=check)


@pytest.fixture
def two_ci_jobs(monorepo_factory: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare origin and two shallow clones of it: two CI jobs started from the same commit."""
    repo = monorepo_factory(tmp_path / "shop")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    return origin, clone(origin, tmp_path / "first"), clone(origin, tmp_path / "second")


def test_a_promotion_rejected_by_a_concurrent_one_rebases_and_both_land(
    two_ci_jobs: tuple[Path, Path, Path],
) -> None:
    origin, first, second = two_ci_jobs
    make(first, "promote", "ENV=dev", "TAG=1111111", "SERVICE=api")
    make(second, "promote", "ENV=dev", "TAG=2222222", "SERVICE=worker")
    gitops_push(first, "Promote 1111111 to dev [skip ci]")
    pushed = gitops_push(second, "Promote 2222222 to dev [skip ci]")

    assert "rebasing" in pushed.stdout + pushed.stderr
    assert remote_tag(origin, "main", "api", "dev") == "1111111"
    assert remote_tag(origin, "main", "worker", "dev") == "2222222"
    subjects = git(origin, "log", "--format=%s", "-2", "main").splitlines()
    assert subjects == ["Promote 2222222 to dev [skip ci]", "Promote 1111111 to dev [skip ci]"]


def test_two_promotions_of_the_same_file_stop_with_an_error_instead_of_overwriting(
    two_ci_jobs: tuple[Path, Path, Path],
) -> None:
    origin, first, second = two_ci_jobs
    make(first, "promote", "ENV=dev", "TAG=1111111", "SERVICE=api")
    make(second, "promote", "ENV=dev", "TAG=2222222", "SERVICE=api")
    gitops_push(first, "Promote 1111111 to dev [skip ci]")
    completed = gitops_push(second, "Promote 2222222 to dev [skip ci]", check=False)

    assert completed.returncode != 0
    assert remote_tag(origin, "main", "api", "dev") == "1111111"
