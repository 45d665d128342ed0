"""`make lint-deploy` of generated projects: passes on what the template generates, fails on
each seeded defect, with the real tools (helm, kubeconform, kube-score, hadolint, yamllint,
shellcheck, actionlint, zizmor, check-jsonschema, gitleaks).

The tools are the ones scripts/bootstrap installs (the generated `make tools` pins the same
versions into the project's .tools/); custom resources are checked against the upstream CRDs of
../shared/schemas, which the generated `make tools` downloads at the same release tags.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, render, run
from tests.monorepo import tool_env
from tests.update.gitrepo import commit_all, git

# Schemas converted once for the whole suite (the generated project keeps them in .tools/cache).
CACHE = REPO_ROOT / ".tools" / "cache" / "lint-deploy"
# Every tool the script runs, per provider: a missing one skips locally and fails in CI.
TOOLS = ["helm", "kubeconform", "kube-score", "hadolint", "yamllint", "shellcheck", "gitleaks"]
GITHUB_TOOLS = ["actionlint", "zizmor"]
GITLAB_TOOLS = ["check-jsonschema"]
# A made-up AWS access key pair (AWS's documented example with its EXAMPLE marker changed, which
# gitleaks allowlists as an example otherwise).
FAKE_AWS_KEY = "AKIA" + "QYLPMN5HHHFPZAM2"
FAKE_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9zKEYq1xT"


def lint_deploy(
    project: Path, schemas: Path, *checks: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    """`make lint-deploy CHECKS=...` with the test suite's tools (no `make tools` download)."""
    env = {**tool_env(), "LINT_DEPLOY_CRDS": str(schemas), "LINT_DEPLOY_CACHE": str(CACHE)}
    command = ["make", "lint-deploy", f"LINT_PYTHON={sys.executable}", f"CHECKS={' '.join(checks)}"]
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == (expect == 0), output
    if expect == 1:
        # make reports the script's failure as its own exit code 2; the script says which check.
        assert "lint-deploy: failed:" in output, output
    return result


@pytest.fixture(scope="module")
def tools(tool: Callable[[str], str]) -> None:
    for name in [*TOOLS, *GITHUB_TOOLS, *GITLAB_TOOLS]:
        tool(name)


def committed(source: Path, destination: Path) -> Path:
    """A copy of a rendered project as a git repository with one commit (gitleaks reads git)."""
    shutil.copytree(source, destination)
    git(destination, "init", "--quiet", "--initial-branch=main")
    commit_all(destination, "Initial commit from devops-template")
    return destination


@pytest.fixture(scope="module")
def github_project(copie_session: object, tools: None) -> Path:
    return render(copie_session)


@pytest.fixture(scope="module")
def gitlab_helm_project(copie_session: object, tools: None) -> Path:
    return render(copie_session, ci_provider="gitlab", deploy_target="helm")


@pytest.fixture
def github(github_project: Path, tmp_path: Path) -> Path:
    return committed(github_project, tmp_path / "github")


@pytest.fixture
def gitlab_helm(gitlab_helm_project: Path, tmp_path: Path) -> Path:
    return committed(gitlab_helm_project, tmp_path / "gitlab")


# --- What the template generates passes -----------------------------------------------------------


def test_default_github_argocd_project_passes_every_check(github: Path, schemas_dir: Path) -> None:
    output = lint_deploy(github, schemas_dir).stdout
    for check in ("helm", "kubeconform", "kube-score", "hadolint", "yamllint", "shellcheck"):
        assert f"== {check}\n" in output
    for check in ("actionlint", "zizmor", "gitleaks"):
        assert f"== {check}\n" in output
    # Every object was checked against a schema: the charts' per environment, Argo CD's, the
    # admission policy (custom resources against their upstream CRDs).
    summary = re.search(r"Summary: (\d+) resources .* Errors: 0, Skipped: 0", output)
    assert summary, output
    assert int(summary.group(1)) > 20, output
    assert "deploy/policies/verify-images.yaml" in output
    assert "deploy/argocd/applicationset.yaml" in output
    for env in ("dev", "staging", "prod"):
        assert f"kube-score my-service-{env}.yaml: 0 critical" in output
    assert "lint-deploy: every check passed" in output


def test_default_gitlab_helm_project_passes_every_check(
    gitlab_helm: Path, schemas_dir: Path
) -> None:
    output = lint_deploy(gitlab_helm, schemas_dir).stdout
    assert "== gitlab-ci\n" in output
    assert "== zizmor" not in output
    assert "lint-deploy: every check passed" in output


def test_root_lint_runs_lint_deploy_but_not_for_one_service(github: Path) -> None:
    everything = run(["make", "-n", "lint", "LINT_PYTHON=python3"], cwd=github).stdout
    assert "python3 scripts/ci/lint-deploy" in everything
    one = run(["make", "-n", "lint", "SERVICE=my-service", "LINT_PYTHON=python3"], cwd=github)
    assert "lint-deploy" not in one.stdout


def test_an_unknown_check_name_is_refused(github: Path, schemas_dir: Path) -> None:
    result = lint_deploy(github, schemas_dir, "kube-linter", expect=2)
    assert "unknown check ['kube-linter']" in result.stderr


# --- Each seeded defect fails, in the check that owns it ------------------------------------------


def test_unknown_key_in_an_environment_values_file_fails_helm_lint(
    github: Path, schemas_dir: Path
) -> None:
    values = github / "deploy" / "charts" / "my-service" / "values-prod.yaml"
    values.write_text(values.read_text(encoding="utf-8") + "replicaCont: 3\n", encoding="utf-8")
    result = lint_deploy(github, schemas_dir, "helm", expect=1)
    assert "replicaCont" in result.stdout + result.stderr
    assert "lint-deploy: failed: helm" in result.stdout
    # A check of the rendered objects, run on its own, fails too: it has nothing to score.
    alone = lint_deploy(github, schemas_dir, "kube-score", expect=1)
    assert "lint-deploy: failed: kube-score" in alone.stdout


def test_deployment_without_resources_fails_kube_score(github: Path, schemas_dir: Path) -> None:
    deployment = github / "deploy" / "charts" / "my-service" / "templates" / "deployment.yaml"
    text = deployment.read_text(encoding="utf-8")
    without = re.sub(
        r"\n +resources:\n +\{\{- toYaml \.Values\.resources \| nindent 12 \}\}", "", text
    )
    assert without != text
    deployment.write_text(without, encoding="utf-8")
    # Still a valid Kubernetes object: only the policy check sees the defect.
    lint_deploy(github, schemas_dir, "kubeconform")
    result = lint_deploy(github, schemas_dir, "kube-score", expect=1)
    assert "[CRITICAL] my-service apps/v1/Deployment: (my-service) Memory limit is not set" in (
        result.stdout
    )
    assert "lint-deploy: failed: kube-score" in result.stdout


def test_dockerfile_running_as_root_fails_hadolint(github: Path, schemas_dir: Path) -> None:
    dockerfile = github / "apps" / "my-service" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text(encoding="utf-8") + "USER root\n", encoding="utf-8")
    result = lint_deploy(github, schemas_dir, "hadolint", expect=1)
    assert "DL3002" in result.stdout


def test_unpinned_action_fails_zizmor_even_for_github_s_own(
    github: Path, schemas_dir: Path
) -> None:
    workflow = github / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")
    unpinned = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v5", text, count=1)
    assert unpinned != text
    workflow.write_text(unpinned, encoding="utf-8")
    result = lint_deploy(github, schemas_dir, "zizmor", expect=1)
    assert "unpinned-uses" in result.stdout + result.stderr


def test_committed_aws_key_fails_gitleaks_until_waived_with_a_reason(
    github: Path, schemas_dir: Path
) -> None:
    settings = github / "apps" / "my-service" / "settings.env"
    settings.write_text(
        f"AWS_ACCESS_KEY_ID={FAKE_AWS_KEY}\nAWS_SECRET_ACCESS_KEY={FAKE_AWS_SECRET}\n",
        encoding="utf-8",
    )
    commit_all(github, "Add settings")
    result = lint_deploy(github, schemas_dir, "gitleaks", expect=1)
    output = result.stdout + result.stderr
    assert "leaks found" in output
    assert FAKE_AWS_KEY not in output  # --redact: the log of CI never shows the secret
    # The documented waiver: the finding's fingerprint in .gitleaksignore, below its reason.
    report = github.parent / "report.json"
    run(
        [
            shutil.which("gitleaks") or "gitleaks",
            "git",
            "--no-banner",
            "--config",
            ".gitleaks.toml",
            "--exit-code",
            "0",
            "--report-format",
            "json",
            "--report-path",
            report,
            ".",
        ],
        cwd=github,
    )
    fingerprints = [finding["Fingerprint"] for finding in json.loads(report.read_text())]
    assert fingerprints
    ignore = github / ".gitleaksignore"
    waivers = "".join(f"# Test fixture, not a real key.\n{line}\n" for line in fingerprints)
    ignore.write_text(ignore.read_text(encoding="utf-8") + waivers, encoding="utf-8")
    lint_deploy(github, schemas_dir, "gitleaks")


def test_misspelt_field_in_an_argo_cd_object_fails_kubeconform(
    github: Path, schemas_dir: Path
) -> None:
    project = github / "deploy" / "argocd" / "project.yaml"
    text = project.read_text(encoding="utf-8")
    assert "\n  sourceRepos:" in text
    project.write_text(text.replace("\n  sourceRepos:", "\n  sourceRepo:", 1), encoding="utf-8")
    result = lint_deploy(github, schemas_dir, "kubeconform", expect=1)
    assert "sourceRepo" in result.stdout


def test_gitlab_pipeline_with_an_unknown_job_keyword_fails_the_gitlab_schema(
    gitlab_helm: Path, schemas_dir: Path
) -> None:
    pipeline = gitlab_helm / ".gitlab" / "ci" / "custom.yml"
    pipeline.write_text(
        pipeline.read_text(encoding="utf-8") + "typo-job:\n  script: [echo]\n  stagez: test\n",
        encoding="utf-8",
    )
    result = lint_deploy(gitlab_helm, schemas_dir, "gitlab-ci", expect=1)
    assert "custom.yml" in result.stdout + result.stderr


def test_shell_script_defect_fails_shellcheck(github: Path, schemas_dir: Path) -> None:
    script = github / "scripts" / "ci" / "gitops"
    script.write_text(script.read_text(encoding="utf-8") + "rm -rf $UNQUOTED/\n", encoding="utf-8")
    result = lint_deploy(github, schemas_dir, "shellcheck", expect=1)
    assert "SC2086" in result.stdout


def test_job_chart_argo_objects_are_checked_strictly(
    make_project: Callable[..., Path], schemas_dir: Path, tools: None, tmp_path: Path
) -> None:
    """An event-driven job's Sensor, EventSource and WorkflowTemplate are validated against the
    Argo Events / Argo Workflows schemas with unknown fields refused, like the built-in kinds."""
    project = committed(make_project(kind="job", project_slug="ingest"), tmp_path / "job")
    output = lint_deploy(project, schemas_dir, "kubeconform", "kube-score").stdout
    assert "Errors: 0, Skipped: 0" in output
    for env in ("dev", "staging", "prod"):
        assert f"kube-score ingest-{env}.yaml: 0 critical" in output
    sensor = project / "deploy" / "charts" / "ingest" / "templates" / "sensor.yaml"
    text = sensor.read_text(encoding="utf-8")
    assert "\n  eventBusName:" in text
    sensor.write_text(text.replace("\n  eventBusName:", "\n  eventBus:", 1), encoding="utf-8")
    result = lint_deploy(project, schemas_dir, "kubeconform", expect=1)
    assert "Sensor" in result.stdout
    assert "eventBus" in result.stdout
