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

from extensions.context import LANGUAGES, load_pins
from tests.helpers import render, run
from tests.monorepo import build_monorepo, tool_env
from tests.update.gitrepo import GIT_ENV, git, snapshot_template

WORKFLOWS = Path(".github/workflows")
WORKFLOW = WORKFLOWS / "ci.yml"
PINNED_USES = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+(\.\d+)*$")
CUSTOM = {
    "project_name": "Web API",
    "project_slug": "web-api",
    "owner": "Acme",
    "repo_url": "https://github.example.com/platform/shop-mono.git",
    "image_repository": "acme/team/web-api",
    "deploy_target": "helm",
    "environments": ["qa", "pre-prod", "live"],
    "coverage_threshold": 65,
}
# deploy_target variants, previews and a separate GitOps repository, and one with every answer
# that shapes the workflows changed.
VARIANTS: dict[str, dict[str, Any]] = {
    "argocd": {},
    "helm": {"deploy_target": "helm"},
    "none": {"deploy_target": "none"},
    "previews": {"preview_environments": True, "gitops_repo": "separate"},
    "custom": CUSTOM,
}
PINS = load_pins()["github_actions"]
# What every job may do with the token: the same as with one service, nothing more.
READ = {"contents": "read"}
PERMISSIONS: dict[str, dict[str, str]] = {
    "changes": READ,
    "lint": READ,
    "lint-deploy": READ,
    "test": READ,
    "coverage-comment": {"contents": "read", "pull-requests": "write"},
    "build": READ,
    "publish": {"contents": "read", "packages": "write"},
    "publish-preview": {"contents": "read", "packages": "write"},
    "summary": {},
}
# Jobs that run a service's code or build, push or deploy its image: one matrix entry per service.
SERVICE_JOBS = ("lint", "test", "build", "publish")
AFFECTED = "${{ fromJSON(needs.changes.outputs.services) }}"


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
        return load_workflow(self.path)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        jobs: dict[str, dict[str, Any]] = self.workflow["jobs"]
        return jobs

    @property
    def deploy_target(self) -> str:
        return str(self.answers.get("deploy_target", "argocd"))

    @property
    def environments(self) -> list[str]:
        return list(self.answers.get("environments", ["dev", "staging", "prod"]))

    @property
    def workflow_files(self) -> list[Path]:
        return sorted((self.project / WORKFLOWS).glob("*.yml"))


def on_github_com(variant: Rendered) -> bool:
    """GitHub's artifact attestations exist on github.com, not on GitHub Enterprise Server."""
    return str(variant.answers.get("repo_url", "https://github.com/")).startswith(
        "https://github.com/"
    )


def load_workflow(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


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


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-service monorepo (python, go, node, java), built once per module."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    return build_monorepo(template, tmp_path_factory.mktemp("monorepo") / "shop")


def listed_services(project: Path) -> list[dict[str, str]]:
    """What the `changes` job feeds the matrix with: scripts/ci/services.py list."""
    completed = run(["python3", "scripts/ci/services.py", "list"], cwd=project)
    services: list[dict[str, str]] = json.loads(completed.stdout)
    return services


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


# --- Linters: every workflow of every variant, and of the four-service monorepo ----------------


def actionlint(files: list[Path], tool: Callable[[str], str]) -> None:
    run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-no-color", *files])


def zizmor(files: list[Path], tool: Callable[[str], str]) -> None:
    completed = run(
        [
            tool("zizmor"),
            "--offline",
            "--persona=auditor",
            "--min-severity=informational",
            "--min-confidence=low",
            "--format=json",
            *files,
        ],
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout) == []


def test_workflows_pass_actionlint_with_shellcheck_on_run_scripts(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    actionlint(variant.workflow_files, tool)


def test_workflows_have_no_zizmor_finding_even_for_the_auditor_persona(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    zizmor(variant.workflow_files, tool)


def test_workflows_of_the_four_service_monorepo_pass_actionlint_zizmor_and_yamllint(
    monorepo: Path, tool: Callable[[str], str]
) -> None:
    files = sorted((monorepo / WORKFLOWS).glob("*.yml"))
    assert {path.name for path in files} >= {"ci.yml", "promote.yml", "template-update.yml"}
    actionlint(files, tool)
    zizmor(files, tool)
    run([tool("yamllint"), "--strict", "-c", monorepo / ".yamllint.yaml", *files])


def test_workflows_match_the_github_workflow_schema(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    # The schema ships inside check-jsonschema: no network.
    schema = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    run([*schema, *variant.workflow_files])


def test_workflows_pass_yamllint_with_the_project_configuration(
    variant: Rendered, tool: Callable[[str], str]
) -> None:
    config = variant.project / ".yamllint.yaml"
    run([tool("yamllint"), "--strict", "-c", config, *variant.workflow_files])


def test_rendered_workflows_have_no_jinja_leftovers_or_blank_line_runs(variant: Rendered) -> None:
    for path in variant.workflow_files:
        text = path.read_text(encoding="utf-8")
        assert "{%" not in text, path.name
        assert "{{" not in text.replace("${{", ""), path.name
        assert "\n\n\n" not in text, path.name
        assert "\n\n      - " not in text, f"{path.name}: a blank line between steps"
        assert text.endswith("\n")
        assert not text.endswith("\n\n")
        for line in text.splitlines():
            assert line == line.rstrip(), f"{path.name}: trailing whitespace: {line!r}"


def test_platform_workflows_name_no_service_of_the_first_answers(
    rendered: Callable[[str], Rendered],
) -> None:
    """Services are discovered at run time: the first service's answers are in no workflow."""
    variant = rendered("custom")
    text = "\n".join(path.read_text(encoding="utf-8") for path in variant.workflow_files)
    for value in ("web-api", "acme/team", "qa-", "Acme"):
        assert value not in text
    codeowners = (variant.project / ".github" / "CODEOWNERS").read_text(encoding="utf-8")
    # The teams live in the organisation of the repository, wherever that is.
    assert "* @platform/developers" in codeowners
    assert "@Acme" not in codeowners
    assert "/deploy/charts/*/values-live.yaml @platform/platform @platform/release-managers" in (
        codeowners
    )


# --- Triggers, permissions, pins -----------------------------------------------------------------


def test_runs_on_pull_requests_and_pushes_to_main_only(variant: Rendered) -> None:
    workflow = variant.workflow
    triggers: dict[str, Any] = workflow[True]  # YAML 1.1: PyYAML reads the key `on` as True
    assert set(triggers) == {"pull_request", "push", "workflow_dispatch"}
    assert triggers["push"] == {"branches": ["main"]}
    concurrency = workflow["concurrency"]
    assert concurrency["group"] == "${{ github.workflow }}-${{ github.ref }}"
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_no_job_has_more_permissions_than_with_one_service(variant: Rendered) -> None:
    assert variant.workflow["permissions"] == {}
    expected = dict(PERMISSIONS)
    if variant.deploy_target == "argocd":
        # Commits the new tags to values-<first>.yaml.
        expected[f"promote-{variant.environments[0]}"] = {"contents": "write"}
    for env in variant.environments:
        # Promotion by commit: each deploy commits its environment's image, then deploys it.
        expected[f"deploy-{env}"] = {"contents": "write"}
    # The only job with an OIDC token for Sigstore; it pushes signatures where publish pushed,
    # and on github.com stores GitHub's attestation of the digest.
    expected["sign"] = {**variant.jobs["publish"]["permissions"], "id-token": "write"}
    if on_github_com(variant):
        expected["sign"]["attestations"] = "write"
    granted = {name: job["permissions"] for name, job in variant.jobs.items()}
    assert granted == {name: expected[name] for name in granted}
    assert ("publish-preview" in granted) is bool(variant.answers.get("preview_environments"))


def test_every_action_is_pinned_to_a_commit_with_its_version(variant: Rendered) -> None:
    for path in variant.workflow_files:
        text = path.read_text(encoding="utf-8")
        uses_lines = [line.strip() for line in text.splitlines() if "uses:" in line]
        assert uses_lines, path.name
        for line in uses_lines:
            reference = line.split("uses:", 1)[1].strip()
            assert PINNED_USES.match(reference), line
        jobs = load_workflow(path)["jobs"].values()
        parsed = [step["uses"] for job in jobs for step in steps(job) if "uses" in step]
        assert len(parsed) == len(uses_lines), path.name


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
    for path in variant.workflow_files:
        for job in load_workflow(path)["jobs"].values():
            for step in steps(job):
                if "run" in step:
                    assert "${{" not in step["run"], f"{path.name}: {step.get('name')}: use env:"


def test_every_job_has_a_name_a_runner_and_a_timeout(variant: Rendered) -> None:
    for name, job in variant.jobs.items():
        assert job.get("name"), name
        assert job["runs-on"] == "ubuntu-24.04", name
        assert 0 < job["timeout-minutes"] <= 30, name


# --- Jobs: one matrix entry per affected service -------------------------------------------------


def test_every_job_that_runs_service_code_has_the_matrix_of_affected_services(
    variant: Rendered,
) -> None:
    changes = variant.jobs["changes"]
    assert changes["outputs"]["services"] == "${{ steps.detect.outputs.services }}"
    names = [*SERVICE_JOBS, *(f"deploy-{env}" for env in variant.environments)]
    for name in names:
        if name not in variant.jobs:
            assert name.startswith("deploy-")
            assert variant.deploy_target != "helm"
            continue
        job = variant.jobs[name]
        assert job["strategy"] == {"fail-fast": False, "matrix": {"service": AFFECTED}}, name
        needs = [job["needs"]] if isinstance(job["needs"], str) else job["needs"]
        assert "changes" in needs, name
        assert job["name"].endswith("(${{ matrix.service.name }})"), name
    for name in ("lint", "test", "build"):
        assert variant.jobs[name]["if"].endswith("needs.changes.outputs.services != '[]'")


def test_lint_and_test_run_the_service_make_targets(variant: Rendered) -> None:
    threshold = variant.answers.get("coverage_threshold", 80)
    for name in ("lint", "test"):
        job = variant.jobs[name]
        assert job["needs"] == "changes"
        make = step_named(job, f"make {name}")
        assert make["run"] == f'make -C "apps/$SERVICE" {name}'
        assert make["env"] == {"SERVICE": "${{ matrix.service.name }}"}
    coverage = step_named(variant.jobs["test"], "Check line coverage")
    command = coverage["run"].split()
    assert command[:3] == [
        "python3",
        "scripts/ci/coverage_report.py",
        '"apps/$SERVICE/coverage.xml"',
    ]
    assert command[command.index("--threshold") + 1] == str(threshold)
    assert command[command.index("--service") + 1] == '"$SERVICE"'
    upload = step_named(variant.jobs["test"], "Keep the coverage report")
    assert upload["with"]["name"] == "coverage-${{ matrix.service.name }}"


def toolchain_steps(job: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The steps of each language, by the language their `if` names."""
    by_language: dict[str, list[dict[str, Any]]] = {}
    for step in steps(job):
        match = re.fullmatch(r"matrix\.service\.language == '(\w+)'", str(step.get("if", "")))
        if match:
            by_language.setdefault(match.group(1), []).append(step)
    return by_language


CACHED_FOLDERS = {
    "python": "~/.cache/uv",
    "node": "~/.local/share/pnpm/store",
    "go": "~/go/pkg/mod",
    "java": "~/.m2/repository",
}


def test_each_language_installs_its_toolchain_only_for_its_services_with_a_pinned_cache(
    variant: Rendered,
) -> None:
    for name in ("lint", "test"):
        job = variant.jobs[name]
        by_language = toolchain_steps(job)
        assert set(by_language) == set(LANGUAGES), name
        # Between the checkout and `make`, every step belongs to one language.
        between = steps(job)[1 : steps(job).index(step_named(job, f"make {name}"))]
        assert between == [step for group in by_language.values() for step in group]
        for language, group in by_language.items():
            cache, setup = group
            assert cache["uses"] == f"{PINS['cache']['uses']}", language
            assert CACHED_FOLDERS[language] in cache["with"]["path"], language
            key = cache["with"]["key"]
            assert key.startswith(f"{language}-"), key
            assert "${{ github.job }}-${{ matrix.service.name }}-" in key
            for lockfile in LANGUAGES[language].lockfiles:
                pattern = lockfile.replace("$SERVICE", "{0}")
                assert f"'{pattern}'" in key, (language, lockfile)
            assert "hashFiles(" in key
            assert key.endswith(") }}")
            prefix = key.split("${{ github.job }}")[0]
            assert cache["with"]["restore-keys"].splitlines() == [
                f"{prefix}${{{{ github.job }}}}-${{{{ matrix.service.name }}}}-",
                f"{prefix}${{{{ github.job }}}}-",
            ]
            assert "run" in setup, language
    assert toolchain_steps(variant.jobs["lint"]) == toolchain_steps(variant.jobs["test"])
    for name in ("build", "publish", "changes"):
        assert toolchain_steps(variant.jobs[name]) == {}, f"{name} installs no toolchain"


def test_summary_needs_every_other_job_and_always_runs(variant: Rendered) -> None:
    summary = variant.jobs["summary"]
    assert summary["name"] == "summary"
    assert summary["if"] == "always()"
    assert sorted(summary["needs"]) == sorted(set(variant.jobs) - {"summary"})


def test_helm_deploys_each_service_to_each_environment_in_order(variant: Rendered) -> None:
    deploys = [name for name in variant.jobs if name.startswith("deploy-")]
    if variant.deploy_target != "helm":
        assert deploys == []
        assert "helm " not in variant.text
        assert "secrets.KUBECONFIG" not in variant.text
        return
    environments = variant.environments
    assert deploys == [f"deploy-{env}" for env in environments]
    previous = ["publish", "sign"]
    for env in environments:
        job = variant.jobs[f"deploy-{env}"]
        assert job["environment"] == env
        assert job["needs"] == ["changes", *previous]
        secret = "KUBECONFIG_" + env.upper().replace("-", "_")
        write = step_named(job, "Write the kubeconfig")
        assert write["env"] == {"KUBECONFIG_DATA": f"${{{{ secrets.{secret} }}}}"}
        helm = step_named(job, "helm upgrade")
        assert helm["env"]["SERVICE"] == "${{ matrix.service.name }}"
        assert helm["env"]["DIR"] == "${{ steps.promote.outputs.dir }}"
        command = " ".join(helm["run"].split())
        for expected in (
            'helm upgrade --install "$SERVICE" "$chart"',
            "--atomic --wait",
            f'--namespace "$SERVICE-{env}" --create-namespace',
            f'-f "$chart/values.yaml" -f "$chart/values-{env}.yaml"',
            '--kubeconfig "$RUNNER_TEMP/kubeconfig"',
        ):
            assert expected in command, expected
        # What runs is the committed values file (tests/promotion/test_digest.py).
        assert "--set" not in command
        previous = [f"deploy-{env}"]
    first = variant.jobs[f"deploy-{environments[0]}"]
    assert "github.ref == 'refs/heads/main'" in first["if"]
    # The last environment is production: the one a comment asks to protect with reviewers.
    assert f"give the `{environments[-1]}` environment required reviewers" in variant.text


def test_images_are_pushed_from_main_only_and_built_everywhere_else(variant: Rendered) -> None:
    build, publish = variant.jobs["build"], variant.jobs["publish"]
    assert build["if"].startswith("github.ref != 'refs/heads/main'")
    assert publish["if"].startswith("github.ref == 'refs/heads/main'")
    assert sorted(publish["needs"]) == ["changes", "lint", "test"]
    assert "--no-push" in step_named(build, "Build the image")["run"]
    assert "--no-push" not in step_named(publish, "Build and push")["run"]
    assert step_named(publish, "Write the registry credentials")
    assert not any("registry" in str(step.get("name")) for step in steps(build))
    for job in (build, publish):
        kaniko = step_named(job, "Build")
        assert kaniko["env"]["IMAGE"] == "${{ matrix.service.image }}"
        assert kaniko["env"]["BUILD_CONTEXT"] == "${{ matrix.service.build_context }}"
        assert kaniko["env"]["DOCKERFILE"] == "${{ matrix.service.dockerfile }}"


def test_previews_publish_an_image_of_every_service_not_only_the_affected_ones(
    rendered: Callable[[str], Rendered],
) -> None:
    variant = rendered("previews")
    job = variant.jobs["publish-preview"]
    assert variant.jobs["changes"]["outputs"]["all"] == "${{ steps.detect.outputs.all }}"
    matrix = {"service": "${{ fromJSON(needs.changes.outputs.all) }}"}
    assert job["strategy"] == {"fail-fast": False, "matrix": matrix}
    conditions = job["if"].split(" && ")
    assert conditions[0] == "!cancelled()"
    assert "github.event_name == 'pull_request'" in conditions
    assert "github.event.pull_request.head.repo.full_name == github.repository" in conditions
    assert "!contains(needs.*.result, 'failure')" in conditions
    tag = step_named(job, "Build and push")["env"]["IMAGE_TAG"]
    assert (
        tag
        == "pr-${{ github.event.pull_request.number }}-${{ github.event.pull_request.head.sha }}"
    )
    assert "publish-preview" not in rendered("argocd").jobs


# --- GitHub's artifact attestation of the signed digest ----------------------------------------

ATTEST = PINS["attest_build_provenance"]
# Pushes to main only, like the signature; a private repository needs GitHub Enterprise Cloud.
ATTEST_IF = "github.event.repository.visibility == 'public' || vars.ARTIFACT_ATTESTATIONS == 'true'"


def attest_steps(variant: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job, step)
        for job, step in all_steps(variant)
        if str(step.get("uses", "")).startswith("actions/attest-build-provenance@")
    ]


def test_the_signed_digest_is_attested_by_github_in_the_sign_job_only(variant: Rendered) -> None:
    granted = [
        name for name, job in variant.jobs.items() if "attestations" in job.get("permissions", {})
    ]
    if not on_github_com(variant):
        # GitHub Enterprise Server has no artifact attestations: no step, no permission.
        assert attest_steps(variant) == []
        assert granted == []
        assert "attest-build-provenance" not in variant.text
        return
    assert re.fullmatch(r"actions/attest-build-provenance@[0-9a-f]{40}", ATTEST["uses"])
    assert f"uses: {ATTEST['uses']} # {ATTEST['version']}\n" in variant.text
    ((job_name, step),) = attest_steps(variant)
    assert job_name == "sign"
    assert step["uses"] == ATTEST["uses"]
    assert granted == ["sign"]
    sign = variant.jobs["sign"]
    assert sign["permissions"]["attestations"] == "write"
    assert sign["permissions"]["id-token"] == "write"  # the action's Sigstore certificate
    assert sign["if"].startswith("github.ref == 'refs/heads/main' && ")
    assert step["if"] == ATTEST_IF
    # The digest kaniko pushed (--digest-file), read by the step before, after cosign signed it.
    subject = step_named(sign, "Read the digest to attest")
    order = steps(sign)
    secure = next(i for i, s in enumerate(order) if "secure-image" in s.get("run", ""))
    assert secure < order.index(subject) < order.index(step)
    assert subject["id"] == "subject"
    assert subject["if"] == ATTEST_IF
    assert '"$RUNNER_TEMP/image/digest"' in subject["run"]
    assert step_named(sign, "Download the image digest")["with"]["path"] == (
        "${{ runner.temp }}/image"
    )
    assert step["with"] == {
        "subject-name": "${{ steps.subject.outputs.name }}",
        "subject-digest": "${{ steps.subject.outputs.digest }}",
        "push-to-registry": True,
        "create-storage-record": False,
    }
    assert step["env"] == {"HOME": "${{ runner.temp }}/attestation"}


def subject_outputs(
    step: dict[str, Any], image: str, digest: str, auths: dict[str, Any], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], Path]:
    runner_temp = cwd / "runner-temp"
    (runner_temp / "image").mkdir(parents=True)
    (runner_temp / "image" / "digest").write_text(digest, encoding="utf-8")
    (runner_temp / "kaniko").mkdir()
    (runner_temp / "kaniko" / "config.json").write_text(json.dumps({"auths": auths}), "utf-8")
    output = cwd / "github-output"
    output.touch()
    completed = run_step(
        step,
        {"IMAGE": image, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(output)},
        cwd,
    )
    lines = output.read_text(encoding="utf-8").splitlines()
    return completed, dict(line.split("=", 1) for line in lines), runner_temp


@pytest.mark.parametrize(
    ("image", "registry", "api_host"),
    [
        ("ghcr.io/my-org/api", "ghcr.io", "ghcr.io"),
        ("harbor.acme.io:8443/shop/api", "harbor.acme.io:8443", "harbor.acme.io:8443"),
        # Docker Hub serves the registry API on index.docker.io only.
        ("docker.io/acme/api", "docker.io", "index.docker.io"),
    ],
)
def test_the_attestation_names_the_pushed_digest_and_logs_in_as_the_job_did(
    rendered: Callable[[str], Rendered],
    tmp_path: Path,
    image: str,
    registry: str,
    api_host: str,
) -> None:
    step = step_named(rendered("argocd").jobs["sign"], "Read the digest to attest")
    digest = "sha256:" + "ab" * 32
    auths = {registry: {"auth": base64.b64encode(b"robot:not-a-secret").decode()}}
    completed, outputs, runner_temp = subject_outputs(step, image, digest + "\n", auths, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert outputs == {"name": api_host + image.removeprefix(registry), "digest": digest}
    # The action reads $HOME/.docker/config.json; its step sets HOME to this folder.
    config = runner_temp / "attestation" / ".docker" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text(encoding="utf-8"))["auths"][api_host] == auths[registry]


@pytest.mark.parametrize("digest", ["", "latest", "sha256:abc", "sha512:" + "ab" * 64])
def test_no_attestation_without_a_sha256_digest(
    rendered: Callable[[str], Rendered], tmp_path: Path, digest: str
) -> None:
    step = step_named(rendered("argocd").jobs["sign"], "Read the digest to attest")
    auths = {"ghcr.io": {"auth": "eDp5"}}
    completed, outputs, _ = subject_outputs(step, "ghcr.io/my-org/api", digest, auths, tmp_path)
    assert completed.returncode != 0
    assert "no sha256 digest" in completed.stderr
    assert outputs == {}


def test_registries_logged_in_by_a_credential_helper_keep_the_attestation_on_github(
    copie: Any, tool: Callable[[str], str]
) -> None:
    answers = {"registry": "ecr", "registry_host": "111122223333.dkr.ecr.eu-west-1.amazonaws.com"}
    variant = Rendered("ecr", answers, render(copie, **answers))
    ((job_name, step),) = attest_steps(variant)
    assert job_name == "sign"
    assert step["with"]["push-to-registry"] is False
    assert step["with"]["subject-digest"] == "${{ steps.subject.outputs.digest }}"
    assert "env" not in step  # no registry login to hand over
    subject = step_named(variant.jobs["sign"], "Read the digest to attest")
    assert "config.json" not in subject["run"]
    actionlint(variant.workflow_files, tool)
    zizmor(variant.workflow_files, tool)


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
def test_kaniko_builds_each_service_as_its_descriptor_says(
    rendered: Callable[[str], Rendered],
    monorepo: Path,
    fake_docker: tuple[Path, Path],
    tmp_path: Path,
    job_name: str,
) -> None:
    step = step_named(rendered("argocd").jobs[job_name], "Build")
    kaniko_image = step["env"]["KANIKO_IMAGE"]
    assert kaniko_image.startswith("ghcr.io/osscontainertools/kaniko:v1.28.3@sha256:")
    bin_dir, log = fake_docker
    sha = "0123456789abcdef0123456789abcdef01234567"
    services = listed_services(monorepo)
    assert [service["name"] for service in services] == ["api", "ledger", "web", "worker"]
    for service in services:
        env = {
            "KANIKO_IMAGE": step["env"]["KANIKO_IMAGE"],
            "IMAGE": service["image"],
            "BUILD_CONTEXT": service["build_context"],
            "DOCKERFILE": service["dockerfile"],
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
        kaniko_at = args.index(kaniko_image)
        docker_args, kaniko_args = args[:kaniko_at], args[kaniko_at + 1 :]
        assert "/home/runner/work/repo:/workspace:ro" in docker_args
        # Node services build from the workspace root (shared packages), the others from apps/.
        context = "/workspace" if service["name"] == "web" else f"/workspace/apps/{service['name']}"
        assert kaniko_args[kaniko_args.index("--context") + 1] == f"dir://{context}"
        dockerfile = kaniko_args[kaniko_args.index("--dockerfile") + 1]
        assert dockerfile == f"/workspace/apps/{service['name']}/Dockerfile"
        assert (monorepo / dockerfile.removeprefix("/workspace/")).is_file()
        image = f"ghcr.io/my-org/{service['name']}"
        assert kaniko_args[kaniko_args.index("--destination") + 1] == f"{image}:{sha}"
        assert "org.opencontainers.image.source=https://github.com/acme/repo" in kaniko_args
        credentials = "/home/runner/temp/kaniko:/kaniko/.docker:ro"
        if job_name == "publish":
            assert credentials in docker_args
            assert "--cache=true" in kaniko_args
            assert kaniko_args[kaniko_args.index("--cache-repo") + 1] == f"{image}/cache"
            assert "--no-push" not in kaniko_args
            # The pushed digest, for signing and promotion.
            assert kaniko_args[kaniko_args.index("--digest-file") + 1] == "/image/digest"
        else:
            assert credentials not in docker_args
            assert "--no-push" in kaniko_args
            # The image, for the vulnerability gate.
            assert kaniko_args[kaniko_args.index("--tar-path") + 1] == "/image/image.tar"
            assert not any(arg.startswith("--cache") for arg in kaniko_args)
        assert "/home/runner/temp/image:/image" in docker_args


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


@pytest.fixture
def clone(monorepo: Path, tmp_path: Path) -> Path:
    """A clone of the monorepo whose origin is a bare copy (the remote CI pushes to)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(monorepo), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(origin), str(work))
    return work


def commit(repo: Path, files: dict[str, str]) -> str:
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "change")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("pull_request", ["worker"]),
        ("push", ["worker"]),
        ("workflow_dispatch", ["api", "ledger", "web", "worker"]),
    ],
)
def test_changes_step_feeds_the_matrix_from_the_event_refs(
    rendered: Callable[[str], Rendered],
    clone: Path,
    tmp_path: Path,
    event: str,
    expected: list[str],
) -> None:
    before = git(clone, "rev-parse", "HEAD").strip()
    head = commit(clone, {"apps/worker/main.go": "package main\n"})
    output = tmp_path / "github-output"
    for name in ("argocd", "previews"):
        output.write_text("", encoding="utf-8")
        step = step_named(rendered(name).jobs["changes"], "List the services")
        env = {
            **GIT_ENV,
            "EVENT_NAME": event,
            "PR_BASE_SHA": before if event == "pull_request" else "",
            "PUSH_BEFORE": before if event == "push" else "",
            "HEAD_SHA": head,
            "GITHUB_OUTPUT": str(output),
        }
        completed = run_step(step, env, clone)
        assert completed.returncode == 0, completed.stderr
        lines = dict(line.split("=", 1) for line in output.read_text("utf-8").splitlines())
        assert [service["name"] for service in json.loads(lines["services"])] == expected
        assert json.loads(lines["services"])[0]["language"]
        if name == "previews":
            assert json.loads(lines["all"]) == listed_services(clone)
        else:
            assert set(lines) == {"services"}


def test_the_first_environment_gets_exactly_the_affected_services(
    rendered: Callable[[str], Rendered], clone: Path, tmp_path: Path
) -> None:
    step = step_named(rendered("argocd").jobs["promote-dev"], "Promote, commit and push")
    services = [s for s in listed_services(clone) if s["name"] in {"web", "worker"}]
    sha = "0123456789abcdef0123456789abcdef01234567"
    digest = "sha256:" + "cd" * 32
    for service in services:  # the digest artifacts of `publish`
        folder = tmp_path / "images" / f"image-{service['name']}"
        folder.mkdir(parents=True)
        (folder / "digest").write_text(digest, encoding="utf-8")
    env = {
        **tool_env(),
        "RUNNER_TEMP": str(tmp_path),
        "SERVICES": json.dumps(services),
        "IMAGE_TAG": sha,
        "PUSH_TOKEN": "",
        "GIT_AUTHOR_NAME": "github-actions[bot]",
        "GIT_AUTHOR_EMAIL": "bot@example.com",
    }
    completed = run_step(step, env, clone)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    pushed = git(clone, "show", "--name-only", "--format=%s", "origin/main").split()
    assert pushed[:6] == ["Promote", sha, "to", "dev", "[skip", "ci]"]
    assert sorted(pushed[6:]) == [
        "deploy/charts/web/values-dev.yaml",
        "deploy/charts/worker/values-dev.yaml",
    ]
    pushed_values = git(clone, "show", "origin/main:deploy/charts/web/values-dev.yaml")
    assert f'digest: "{digest}"' in pushed_values or f"digest: {digest}" in pushed_values


# --- promote.yml: one service to the next environment --------------------------------------------


def promote_workflow(variant: Rendered) -> dict[Any, Any]:
    return load_workflow(variant.project / WORKFLOWS / "promote.yml")


@pytest.mark.parametrize("name", ["argocd", "previews"])
def test_promote_workflow_promotes_the_payload_service_with_least_privilege(
    rendered: Callable[[str], Rendered], name: str
) -> None:
    workflow = promote_workflow(rendered(name))
    assert workflow["permissions"] == {}
    triggers = workflow[True]
    assert triggers["repository_dispatch"] == {"types": ["environment-healthy"]}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["service"]["required"] is True
    assert inputs["environment"]["options"] == ["staging", "prod"]
    assert "client_payload.service" in workflow["concurrency"]["group"]
    job = workflow["jobs"]["promote"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    check = step_named(job, "Check the service")
    assert check["env"]["PAYLOAD_SERVICE"] == "${{ github.event.client_payload.service }}"
    promote = step_named(job, "Promote, commit and push")
    assert promote["env"]["SERVICE"] == "${{ steps.target.outputs.service }}"
    assert promote["env"]["TARGET"] == "${{ steps.target.outputs.environment }}"
    assert 'make promote ENV="$TARGET" SERVICE="$SERVICE" GITOPS_DIR="$dir"' in promote["run"]
    # The environment that holds the token: GITOPS_TOKEN of a separate repository, or the bot's.
    assert job["environment"] == ("gitops" if name == "previews" else "promotion")


@pytest.mark.parametrize(
    ("payload", "service", "environment"),
    [
        ({"service": "worker", "environment": "dev"}, "worker", "staging"),
        ({"service": "web", "environment": "staging", "revision": "a" * 40}, "web", "prod"),
        ({"service": "api", "environment": "prod"}, "api", ""),  # nothing after the last
        ({"service": "nope", "environment": "dev"}, None, None),
        ({"service": "../apps/api", "environment": "dev"}, None, None),
        ({"service": "api\nenvironment=prod", "environment": "dev"}, None, None),
        ({"service": "", "environment": "dev"}, None, None),
        ({"service": "api", "environment": "qa"}, None, None),
        ({"service": "api", "environment": "-h"}, None, None),
        ({"service": "api", "environment": "dev", "revision": "main; rm -rf /"}, None, None),
    ],
)
def test_promote_accepts_only_a_service_and_environment_of_the_repository(
    rendered: Callable[[str], Rendered],
    monorepo: Path,
    tmp_path: Path,
    payload: dict[str, str],
    service: str | None,
    environment: str | None,
) -> None:
    step = step_named(promote_workflow(rendered("argocd"))["jobs"]["promote"], "Check the service")
    output = tmp_path / "github-output"
    env = {
        "EVENT_NAME": "repository_dispatch",
        "PAYLOAD_SERVICE": payload["service"],
        "PAYLOAD_ENVIRONMENT": payload["environment"],
        "PAYLOAD_REVISION": payload.get("revision", ""),
        "GITHUB_OUTPUT": str(output),
    }
    completed = run_step(step, env, monorepo)
    if service is None:
        assert completed.returncode == 1
        assert "::error::" in completed.stdout
        assert not output.exists()
        return
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert output.read_text("utf-8") == f"service={service}\nenvironment={environment}\n"


@pytest.mark.parametrize(("chosen", "passes"), [("staging", True), ("dev", False), ("x", False)])
def test_a_manual_promotion_names_the_target_environment(
    rendered: Callable[[str], Rendered], monorepo: Path, tmp_path: Path, chosen: str, passes: bool
) -> None:
    step = step_named(promote_workflow(rendered("argocd"))["jobs"]["promote"], "Check the service")
    output = tmp_path / "github-output"
    env = {
        "EVENT_NAME": "workflow_dispatch",
        "CHOSEN_SERVICE": "ledger",
        "CHOSEN_ENVIRONMENT": chosen,
        "GITHUB_OUTPUT": str(output),
    }
    completed = run_step(step, env, monorepo)
    assert (completed.returncode == 0) is passes, completed.stdout + completed.stderr
    if passes:
        assert output.read_text("utf-8") == "service=ledger\nenvironment=staging\n"


def test_promote_changes_only_the_payload_service_and_retries_a_lost_push_race(
    rendered: Callable[[str], Rendered], clone: Path, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    commit(clone, {"deploy/charts/worker/values-dev.yaml": "image:\n  tag: 3f2c1d9\n"})
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    # The first push loses a race: the remote refuses it once, as when main moved on meanwhile.
    hook = origin / "hooks" / "pre-receive"
    marker = tmp_path / "refused-once"
    hook.write_text(
        f'#!/bin/sh\nif [ ! -e "{marker}" ]; then touch "{marker}"; exit 1; fi\n', "utf-8"
    )
    hook.chmod(0o755)
    before = git(clone, "rev-parse", "HEAD").strip()
    step = step_named(promote_workflow(rendered("argocd"))["jobs"]["promote"], "Promote, commit")
    env = {
        **tool_env(),
        "SERVICE": "worker",
        "TARGET": "staging",
        "GITOPS_URL": str(origin),
        "PUSH_TOKEN": "",
        "GIT_AUTHOR_NAME": "github-actions[bot]",
        "GIT_AUTHOR_EMAIL": "bot@example.com",
        "RUNNER_TEMP": str(tmp_path),
    }
    script = step["run"].replace("sleep $((attempt * 10))", "true")  # no waiting in the test
    completed = run_step({"run": script}, env, clone)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # scripts/ci/gitops push rebases onto the promotion that won the race and pushes again.
    assert "push rejected, rebasing on origin/main" in completed.stdout + completed.stderr
    git(clone, "fetch", "--quiet", "origin")
    log = git(clone, "log", "--format=%s", f"{before}..origin/main").splitlines()
    assert log == ["Promote worker 3f2c1d9 to staging [skip ci]"]
    changed = git(clone, "diff", "--name-only", before, "origin/main").split()
    assert changed == ["deploy/charts/worker/values-staging.yaml"]


def test_template_update_runs_the_fleet_update_script(
    rendered: Callable[[str], Rendered],
) -> None:
    workflow = load_workflow(rendered("argocd").project / WORKFLOWS / "template-update.yml")
    job = workflow["jobs"]["update"]
    update = step_named(job, "Update from the template")
    assert "python3 scripts/ci/template_update.py" in update["run"]
    assert '--body "$RUNNER_TEMP/body.md" --output "$GITHUB_OUTPUT"' in update["run"]
    push = step_named(job, "Open or refresh the pull request")
    assert "https://github.com" not in push["run"]  # GitHub Enterprise too
    assert "$GITHUB_SERVER_URL" in push["run"]
