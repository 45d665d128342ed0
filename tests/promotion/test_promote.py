"""`make promote`: one command that edits one environment's values files, round-trip.

The single-service tests use the default project; the monorepo tests a repository of two services
built by the documented commands (tests/promotion/conftest.py), where promoting one service must
leave the other's files byte for byte as they were.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.helpers import run
from tests.monorepo import make
from tests.promotion.conftest import SERVICES
from tests.update.gitrepo import GIT_ENV, commit_all, git

CHART = Path("deploy/charts/my-service")


@pytest.fixture
def project(default_project: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(default_project, copy)
    git(copy, "init", "-q", "-b", "main")
    commit_all(copy, "generated")
    return copy


def promote(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The script as `make promote` runs it, with this suite's Python (it has ruamel.yaml)."""
    return subprocess.run(
        [sys.executable, "scripts/promote.py", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin"},
    )


def tag_of(project: Path, env: str) -> str:
    values = yaml.safe_load((project / CHART / f"values-{env}.yaml").read_text("utf-8"))
    return str(values["image"]["tag"])


def snapshot(project: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((project / CHART).glob("values*.yaml"))}


def test_setting_a_tag_changes_one_line_of_one_file(project: Path) -> None:
    before = snapshot(project)
    result = promote(project, "--env", "dev", "--tag", "3f2c1d9")
    assert result.returncode == 0, result.stderr
    after = snapshot(project)
    changed = [path for path in before if before[path] != after[path]]
    assert changed == [str(project / CHART / "values-dev.yaml")]
    diff = git(project, "diff", "--unified=0", "--", str(CHART / "values-dev.yaml"))
    assert [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"
    ] == [
        '-  tag: ""',
        '+  tag: "3f2c1d9"',
    ]


def test_a_digest_goes_right_below_the_tag_and_every_comment_stays_where_it_was(
    project: Path,
) -> None:
    """The first promotion with a digest adds one line below `tag:`; the comment above the next key
    (after the image block) stays above that key, not above the new digest."""
    values = project / CHART / "values-dev.yaml"
    original = values.read_text(encoding="utf-8")
    digest = "sha256:" + "a" * 64
    assert promote(project, "--env", "dev", "--tag", "3f2c1d9", "--digest", digest).returncode == 0
    assert values.read_text(encoding="utf-8") == original.replace(
        'tag: ""\n', f'tag: "3f2c1d9"\n  digest: {digest}\n', 1
    )
    # An end-of-line comment on tag stays on tag (ruamel.yaml keeps its column when it can).
    values.write_text(original.replace('tag: ""', 'tag: ""          # set by CI'), "utf-8")
    assert promote(project, "--env", "dev", "--tag", "3f2c1d9", "--digest", digest).returncode == 0
    assert values.read_text(encoding="utf-8") == original.replace(
        'tag: ""\n', f'tag: "3f2c1d9"   # set by CI\n  digest: {digest}\n', 1
    )


def test_promoting_without_a_tag_takes_the_previous_environments_tag(project: Path) -> None:
    assert promote(project, "--env", "dev", "--tag", "v1.2.3").returncode == 0
    assert promote(project, "--env", "staging").returncode == 0
    assert tag_of(project, "staging") == "v1.2.3"
    assert promote(project, "--env", "prod").returncode == 0
    assert tag_of(project, "prod") == "v1.2.3"


def test_promoting_twice_changes_nothing_the_second_time(project: Path) -> None:
    assert promote(project, "--env", "dev", "--tag", "abc").returncode == 0
    before = snapshot(project)
    again = promote(project, "--env", "dev", "--tag", "abc")
    assert again.returncode == 0
    assert "already at abc" in again.stdout
    assert snapshot(project) == before


def test_comments_and_other_keys_are_kept(project: Path) -> None:
    values = project / CHART / "values-prod.yaml"
    original = values.read_text(encoding="utf-8")
    assert promote(project, "--env", "prod", "--tag", "abc").returncode == 0
    assert values.read_text(encoding="utf-8") == original.replace('tag: ""', 'tag: "abc"')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "qa", "--tag", "abc"], "ENV=qa: not one of the environments dev, staging, prod"),
        (["--env", "dev", "--tag=-abc"], "TAG=-abc: not a valid image tag"),
        (["--env", "dev", "--tag", "a" * 129], "not a valid image tag"),
        (["--env", "dev", "--tag", "a:b"], "not a valid image tag"),
        (["--env", "dev"], "ENV=dev is the first environment: give TAG"),
        (
            ["--env", "staging"],
            "deploy/charts/my-service/values-dev.yaml sets no image.tag to promote from dev",
        ),
        (["--env", "prod", "--tag", "abc", "--rollback"], "either TAG or ROLLBACK"),
        (["--env", "prod", "--rollback"], "has never been promoted to prod, so there is nothing"),
        (
            ["--env", "dev", "--tag", "abc", "--service", "nope"],
            "SERVICE=nope: no chart deploy/charts/nope/ (services: my-service)",
        ),
    ],
    ids=[
        "unknown-env",
        "tag-starts-with-dash",
        "tag-too-long",
        "tag-with-colon",
        "first-env-needs-tag",
        "previous-env-unset",
        "tag-and-rollback",
        "rollback-without-history",
        "unknown-service",
    ],
)
def test_refusals_exit_2_with_a_message_and_change_nothing(
    project: Path, args: list[str], message: str
) -> None:
    before = snapshot(project)
    result = promote(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "nothing changed" in result.stderr
    assert snapshot(project) == before


def test_rollback_restores_the_tag_before_the_last_promotion(project: Path) -> None:
    for tag in ("v1", "v2"):
        assert promote(project, "--env", "prod", "--tag", tag).returncode == 0
        commit_all(project, f"Promote {tag} to prod")
    result = promote(project, "--env", "prod", "--rollback")
    assert result.returncode == 0, result.stderr
    assert tag_of(project, "prod") == "v1"


def test_custom_environment_order_is_read_from_the_answers(
    make_project: Callable[..., Path],
) -> None:
    project = make_project(environments=["test", "live"])
    assert promote(project, "--env", "test", "--tag", "t1").returncode == 0
    assert promote(project, "--env", "live").returncode == 0
    assert tag_of(project, "live") == "t1"


@pytest.mark.slow
def test_make_promote_runs_the_script_with_uv(project: Path, tool: Callable[[str], str]) -> None:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(tool('uv')).parent}:/usr/bin:/bin"}
    run(["make", "promote", "ENV=dev", "TAG=3f2c1d9"], cwd=project, env=env)
    assert tag_of(project, "dev") == "3f2c1d9"
    refused = run(["make", "promote", "ENV=nope", "TAG=x"], cwd=project, env=env, check=False)
    assert refused.returncode != 0
    assert "ENV=nope" in refused.stderr


@pytest.mark.parametrize("script", ["scripts/promote.py", "scripts/ci/next-environment"])
def test_promotion_scripts_are_formatted_linted_and_typed(
    default_project: Path, tool: Callable[[str], str], script: str
) -> None:
    path = default_project / script
    run([tool("ruff"), "format", "--check", "--diff", path], cwd=default_project)
    run([tool("ruff"), "check", path], cwd=default_project)
    run([tool("mypy"), "--strict", "--ignore-missing-imports", path], cwd=default_project)


# --- A monorepo: every service, or one ------------------------------------------------------------


def values_files(project: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted((project / "deploy/charts").glob("*/values*.yaml"))
    }


def service_tag(project: Path, service: str, env: str) -> str:
    values = project / "deploy/charts" / service / f"values-{env}.yaml"
    return str(yaml.safe_load(values.read_text(encoding="utf-8"))["image"]["tag"])


@pytest.fixture
def monorepo(monorepo_factory: Callable[..., Path], tmp_path: Path) -> Path:
    """Two services, each running its own image in dev (as CI's first promotion leaves them)."""
    project = monorepo_factory(tmp_path / "shop")
    for service, _ in SERVICES:
        result = promote(project, "--env", "dev", "--tag", f"{service}-1", "--service", service)
        assert result.returncode == 0, result.stderr
    commit_all(project, "Promote to dev")
    return project


def test_promoting_one_service_leaves_the_others_values_files_byte_identical(
    monorepo: Path,
) -> None:
    before = values_files(monorepo)
    result = promote(monorepo, "--env", "staging", "--service", "worker")
    assert result.returncode == 0, result.stderr
    after = values_files(monorepo)
    changed = sorted(path for path in before if before[path] != after[path])
    assert changed == ["deploy/charts/worker/values-staging.yaml"]
    assert service_tag(monorepo, "worker", "staging") == "worker-1"
    assert git(monorepo, "status", "--porcelain").split() == [
        "M",
        "deploy/charts/worker/values-staging.yaml",
    ]


@pytest.mark.slow
def test_make_promote_without_service_promotes_every_service_from_its_own_tag(
    monorepo: Path,
) -> None:
    result = make(monorepo, "promote", "ENV=staging")
    assert service_tag(monorepo, "api", "staging") == "api-1"
    assert service_tag(monorepo, "worker", "staging") == "worker-1"
    assert "deploy/charts/api/values-staging.yaml: image.tag -> api-1" in result.stdout
    make(monorepo, "promote", "ENV=prod", "SERVICE=api")
    assert service_tag(monorepo, "api", "prod") == "api-1"
    assert service_tag(monorepo, "worker", "prod") == ""
    refused = make(monorepo, "promote", "ENV=prod", "SERVICE=billing", check=False)
    assert refused.returncode != 0
    assert "SERVICE=billing: no chart deploy/charts/billing/ (services: api, worker)" in (
        refused.stderr
    )


def test_promoting_every_service_skips_one_the_previous_environment_does_not_run_yet(
    monorepo: Path,
) -> None:
    (monorepo / "deploy/charts/worker/values-dev.yaml").write_text(
        (monorepo / "deploy/charts/worker/values-dev.yaml")
        .read_text(encoding="utf-8")
        .replace('tag: "worker-1"', 'tag: ""'),
        encoding="utf-8",
    )
    result = promote(monorepo, "--env", "staging")
    assert result.returncode == 0, result.stderr
    assert "deploy/charts/worker/values-dev.yaml sets no image.tag yet: worker skipped" in (
        result.stdout
    )
    assert service_tag(monorepo, "api", "staging") == "api-1"
    assert service_tag(monorepo, "worker", "staging") == ""
    # Asked for by name, the same service is a refusal.
    refused = promote(monorepo, "--env", "staging", "--service", "worker")
    assert refused.returncode == 2
    assert "values-dev.yaml sets no image.tag to promote from dev" in refused.stderr


def test_an_environment_a_service_has_no_values_file_for_is_named(monorepo: Path) -> None:
    answers = monorepo / ".copier-answers.yml"
    text = answers.read_text(encoding="utf-8")
    assert "- dev\n- staging\n" in text
    answers.write_text(text.replace("- dev\n- staging\n", "- dev\n- qa\n- staging\n"), "utf-8")
    chart = monorepo / "deploy/charts/api"
    (chart / "values-qa.yaml").write_bytes((chart / "values-staging.yaml").read_bytes())
    before = values_files(monorepo)
    result = promote(monorepo, "--env", "qa")
    assert result.returncode == 2
    assert (
        "deploy/charts/worker/values-qa.yaml does not exist: the service worker has no values"
        " for the environment qa (`make update` gives every service one)"
    ) in result.stderr
    assert values_files(monorepo) == before
    # The service that has one promotes.
    assert promote(monorepo, "--env", "qa", "--service", "api").returncode == 0
    assert service_tag(monorepo, "api", "qa") == "api-1"
