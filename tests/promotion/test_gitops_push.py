"""scripts/ci/gitops push: concurrent promotions of different services both land."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def gitops_push(checkout: Path, message: str, check: bool = True) -> str:
    completed = run(
        ["scripts/ci/gitops", "push", message], cwd=checkout, env=tool_env(), check=check
    )
    return completed.stdout + completed.stderr


def test_a_promotion_rejected_by_a_concurrent_one_rebases_and_both_land(
    monorepo_factory: Callable[..., Path], tmp_path: Path
) -> None:
    repo = monorepo_factory(tmp_path / "shop")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    first, second = clone(origin, tmp_path / "first"), clone(origin, tmp_path / "second")

    # Two CI jobs start from the same commit and promote different services.
    make(first, "promote", "ENV=dev", "TAG=1111111", "SERVICE=api")
    make(second, "promote", "ENV=dev", "TAG=2222222", "SERVICE=worker")
    gitops_push(first, "Promote 1111111 to dev [skip ci]")
    output = gitops_push(second, "Promote 2222222 to dev [skip ci]")

    assert "rebasing" in output
    assert remote_tag(origin, "main", "api", "dev") == "1111111"
    assert remote_tag(origin, "main", "worker", "dev") == "2222222"
    subjects = git(origin, "log", "--format=%s", "-2", "main").splitlines()
    assert subjects == ["Promote 2222222 to dev [skip ci]", "Promote 1111111 to dev [skip ci]"]


def test_two_promotions_of_the_same_file_stop_with_an_error_instead_of_overwriting(
    monorepo_factory: Callable[..., Path], tmp_path: Path
) -> None:
    repo = monorepo_factory(tmp_path / "shop")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    first, second = clone(origin, tmp_path / "first"), clone(origin, tmp_path / "second")

    make(first, "promote", "ENV=dev", "TAG=1111111", "SERVICE=api")
    make(second, "promote", "ENV=dev", "TAG=2222222", "SERVICE=api")
    gitops_push(first, "Promote 1111111 to dev [skip ci]")
    completed = run(
        ["scripts/ci/gitops", "push", "Promote 2222222 to dev [skip ci]"],
        cwd=second,
        env=tool_env(),
        check=False,
    )

    assert completed.returncode != 0
    assert remote_tag(origin, "main", "api", "dev") == "1111111"
