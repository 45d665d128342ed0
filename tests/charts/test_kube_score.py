"""kube-score on every chart x environment of every rendering scenario: no CRITICAL finding left.

kube-score runs as users' CI runs it: the generated `scripts/ci/lint-deploy` renders each chart
with each values-<env>.yaml (helm lint --strict, helm template) and scores the result, with the
waivers the charts carry (`kube-score/ignore` annotations, each with its reason) and the one
repository-wide choice (no CPU limit). The scenarios are tests/rendering/test_scenarios.py's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, copy_template, run
from tests.monorepo import build_monorepo, tool_env
from tests.rendering.test_scenarios import MONOREPOS, SCENARIOS


@pytest.fixture(scope="module", params=[*SCENARIOS, *MONOREPOS])
def scenario(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_snapshot: Path,
) -> Path:
    name: str = request.param
    destination = tmp_path_factory.mktemp("scenario") / name
    if name in MONOREPOS:
        return build_monorepo(template_snapshot, destination, **MONOREPOS[name])
    return copy_template(destination, **SCENARIOS[name])


def charts_and_environments(project: Path) -> list[str]:
    """<chart>-<env> of every chart and every values-<env>.yaml it has."""
    return sorted(
        f"{values.parent.name}-{values.stem.removeprefix('values-')}"
        for values in project.glob("deploy/charts/*/values-*.yaml")
    )


def test_kube_score_finds_no_critical_in_any_chart_and_environment(
    scenario: Path, tool: Callable[[str], str]
) -> None:
    for name in ("helm", "kube-score"):
        tool(name)
    expected = charts_and_environments(scenario)
    assert expected, "a scenario without any chart"
    result = run(
        [sys.executable, scenario / "scripts" / "ci" / "lint-deploy", "helm", "kube-score"],
        cwd=scenario,
        env={
            **tool_env(),
            "LINT_DEPLOY_CACHE": str(REPO_ROOT / ".tools" / "cache" / "lint-deploy"),
        },
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    scored = sorted(
        line.removeprefix("+ kube-score ").removesuffix(".yaml: 0 critical")
        for line in output.splitlines()
        if line.startswith("+ kube-score ")
    )
    assert scored == expected, output


def test_kube_score_reports_a_critical_finding_the_chart_does_not_waive(
    default_project: Path, tool: Callable[[str], str], tmp_path: Path
) -> None:
    """The waivers are per check: a container with a low user id is still CRITICAL."""
    tool("kube-score")
    project = tmp_path / "project"
    run(["cp", "-r", default_project, project])
    values = project / "deploy" / "charts" / "my-service" / "values-prod.yaml"
    values.write_text(
        values.read_text(encoding="utf-8") + "securityContext:\n  runAsUser: 1000\n",
        encoding="utf-8",
    )
    result = run(
        [sys.executable, project / "scripts" / "ci" / "lint-deploy", "kube-score"],
        cwd=project,
        env={
            **tool_env(),
            "LINT_DEPLOY_CACHE": str(REPO_ROOT / ".tools" / "cache" / "lint-deploy"),
        },
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kube-score my-service-prod.yaml: 0 critical" not in result.stdout
    assert "kube-score my-service-dev.yaml: 0 critical" in result.stdout
    assert "user" in result.stdout.lower()
