"""The GitLab job that secures a service's image (sign:<service>), run for real.

gitlab-ci-local runs sign:my-service of a generated GitLab project (default answers,
ci_provider=gitlab) with its shell executor: the job's own before_script and script, so
scripts/ci/install-supply-chain-tools, kaniko-auth and secure-image (syft, grype, provenance,
cosign sign and attest, verify). As a runner would, with:

- the image kaniko pushed on main: a one-layer image pushed here with crane to a distribution
  registry on 127.0.0.1 that admits only one user (htpasswd). The build job cannot run here (no
  kaniko, no Docker), and gitlab-ci-local hands a needed job's artifacts only to a job it ran in
  the same pipeline: build's artifact, the digest file `image-digest`, is written into the
  project, where the shell executor runs the job.
- the supply-chain tools' cache restored: .supply-chain-tools holds cosign, syft and grype (the
  ones scripts/bootstrap installed, at the versions generated projects pin) with the stamps
  install-supply-chain-tools leaves, so it installs nothing.
- the CI/CD variables of key mode (docs/supply-chain.md), given as gitlab-ci-local variables:
  COSIGN_KEY=env://COSIGN_PRIVATE_KEY, COSIGN_PRIVATE_KEY and COSIGN_PASSWORD (a key pair
  generated here), COSIGN_PUBLIC_KEY=cosign.pub (committed to the project), COSIGN_TLOG=false (no
  Rekor here); GitLab's registry login CI_REGISTRY_USER and CI_REGISTRY_PASSWORD; REGISTRY and
  IMAGE naming the loopback registry instead of the answers' registry.gitlab.com (pipeline
  variables win over the job's, on GitLab too); REGISTRY_INSECURE=true (HTTP); grype's offline
  database (tests/ci/grypedb, as tests/ci/test_supply_chain.py builds it).
- CI_PROJECT_DIR set to the project: gitlab-ci-local gives a job with an image /builds/<path>
  even when its shell executor runs the job in the project itself.

Then the documented command, `COSIGN_PUBLIC_KEY=cosign.pub scripts/ci/verify IMAGE@DIGEST`,
checks what the job attached; a vulnerable image fails the job and is never signed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci.gitlab_local import as_gitlab_repository, gitlab_ci_local
from tests.ci.supply_chain import (
    FIXED_PACKAGE,
    PACKAGE,
    PINS,
    docker_config,
    grype_database,
    push_image,
    serve_registry,
)
from tests.helpers import render, run

Tool = Callable[[str], str]
SERVICE = "my-service"
JOB = f"sign:{SERVICE}"
# The registry's only user, and the signing key's password: test values, made up here.
USER = ("ci-pusher", "not-a-secret-registry-password")
COSIGN_PASSWORD = "not-a-secret-test-password"


@pytest.fixture(scope="module")
def registry(tool: Tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a loopback registry that admits USER only."""
    with serve_registry(tool, tmp_path_factory.mktemp("registry"), USER) as host:
        yield host


@pytest.fixture(scope="module")
def runner(tool: Tool, registry: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A key pair, grype's offline database, and the login of a person who verifies by hand."""
    work = tmp_path_factory.mktemp("gitlab-sign")
    home = work / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "DOCKER_CONFIG": str(docker_config(work / "docker", registry, USER)),
        "COSIGN_PASSWORD": COSIGN_PASSWORD,
    }
    run([tool("cosign"), "generate-key-pair"], cwd=work, env=env)
    return {
        "work": work,
        "env": env,
        "key": (work / "cosign.key").read_text(encoding="utf-8"),
        "pub": work / "cosign.pub",
        "grype": grype_database(tool, work / "grype", env),
        "image": f"{registry}/my-org/{SERVICE}",
    }


@pytest.fixture(scope="module")
def gitlab_project(
    copie_session: Any, runner: dict[str, Any], tool: Tool, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The generated project with cosign.pub committed, as a clone whose origin is GitLab."""
    rendered = render(copie_session, ci_provider="gitlab")
    shutil.copy(runner["pub"], rendered / "cosign.pub")
    project = as_gitlab_repository(rendered, tmp_path_factory.mktemp("gitlab-project"))
    tools = project / ".supply-chain-tools"
    tools.mkdir()
    for name in ("cosign", "syft", "grype"):
        version = PINS["supply_chain"][name].rsplit("@", 1)[1]
        (tools / name).symlink_to(tool(name))
        (tools / f".{name}-{version}").touch()
    return project


def sign_job(
    project: Path, tool: Tool, runner: dict[str, Any], digest: str, **changed: str
) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local sign:my-service on a pipeline of main started by hand, for `digest`.

    `changed`: CI/CD variables to give other values.
    """
    (project / "image-digest").write_text(digest, encoding="utf-8")
    variables = {
        "CI_PIPELINE_SOURCE": "web",
        "CI_PROJECT_DIR": str(project),
        "REGISTRY": runner["image"].split("/", 1)[0],
        "IMAGE": runner["image"],
        "CI_REGISTRY_USER": USER[0],
        "CI_REGISTRY_PASSWORD": USER[1],
        "COSIGN_KEY": "env://COSIGN_PRIVATE_KEY",
        "COSIGN_PRIVATE_KEY": runner["key"],
        "COSIGN_PASSWORD": COSIGN_PASSWORD,
        "COSIGN_PUBLIC_KEY": "cosign.pub",
        "COSIGN_TLOG": "false",
        "REGISTRY_INSECURE": "true",
        "HOME": runner["env"]["HOME"],
        **runner["grype"],
        **changed,
    }
    return gitlab_ci_local(
        project,
        tool,
        "--force-shell-executor",
        "--ignore-predefined-vars=CI_PIPELINE_SOURCE,CI_PROJECT_DIR",
        *[f"--variable={name}={value}" for name, value in variables.items()],
        JOB,
        check=False,
    )


def verify(project: Path, runner: dict[str, Any], ref: str) -> subprocess.CompletedProcess[str]:
    """The documented command: COSIGN_PUBLIC_KEY=cosign.pub scripts/ci/verify IMAGE@DIGEST."""
    env = {
        **runner["env"],
        "COSIGN_PUBLIC_KEY": "cosign.pub",
        "COSIGN_TLOG": "false",
        "REGISTRY_INSECURE": "true",
    }
    return run(["scripts/ci/verify", ref], cwd=project, env=env, check=False)


def job_log(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the job's commands printed (gitlab-ci-local's `<job> > ` lines), without the prefix."""
    prefix = f"{JOB} > "
    lines = (result.stdout + result.stderr).splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def copy(project: Path, tmp_path: Path) -> Path:
    """A copy of the module's project as the clone was, before a job ran in it."""
    destination = tmp_path / "project"
    ran = shutil.ignore_patterns(".gitlab-ci-local", ".docker", "supply-chain", "image-digest")
    shutil.copytree(project, destination, symlinks=True, ignore=ran)
    return destination


def test_the_sign_job_signs_the_pushed_digest_with_its_sbom_and_provenance(
    gitlab_project: Path, runner: dict[str, Any], tool: Tool
) -> None:
    crane = tool("crane")
    digest = push_image(
        crane, f"{runner['image']}:main", runner["work"], FIXED_PACKAGE, runner["env"]
    )
    ref = f"{runner['image']}@{digest}"
    # The registry admits only its user: the job read and wrote it with the login it was given.
    anonymous = {**runner["env"], "DOCKER_CONFIG": str(runner["work"] / "nobody")}
    refused = run([crane, "digest", "--insecure", ref], env=anonymous, check=False)
    assert refused.returncode != 0
    assert "UNAUTHORIZED" in refused.stderr

    result = sign_job(gitlab_project, tool, runner, digest)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"PASS  {JOB}" in result.stdout
    assert "go install" not in output  # the tools came from the cache
    registry = runner["image"].split("/", 1)[0]
    docker = gitlab_project / ".docker"
    assert f"kaniko-auth: wrote basic credentials for {registry} to {docker}" in result.stdout
    log = job_log(result)
    assert f"sbom: spdx-json of {ref} in supply-chain/sbom.spdx.json" in log
    # The fixed version: the unfixed high finding is listed and lets the image through.
    assert "scan-gate: 1 findings; gate on fixable Critical/High" in log
    assert "scan-gate: passed" in log
    assert f"sign: signed {ref} (key env://COSIGN_PRIVATE_KEY)" in log
    assert f"attest: spdxjson SBOM attached to {ref}" in log
    assert f"attest: SLSA provenance attached to {ref}" in log
    for what in ("signature", "SBOM attestation", "SLSA provenance"):
        assert f"verify: {what} of {ref}: ok" in log
    assert f"secure-image: {ref} signed, with its SBOM and provenance attached" in log
    # The job's artifacts: the reference it secured, the SBOM and the provenance of that digest.
    artifacts = gitlab_project / "supply-chain"
    assert (artifacts / "image").read_text(encoding="utf-8").strip() == ref
    sbom = json.loads((artifacts / "sbom.spdx.json").read_text(encoding="utf-8"))
    assert ("requests", "2.32.0") in {(p["name"], p.get("versionInfo")) for p in sbom["packages"]}
    provenance = json.loads((artifacts / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["buildDefinition"]["externalParameters"]["image"] == ref

    # Anyone with cosign.pub and read access: the documented command.
    verified = verify(gitlab_project, runner, ref)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for what in ("signature", "SBOM attestation", "SLSA provenance"):
        assert f"verify: {what} of {ref}: ok" in verified.stdout


def test_the_sign_job_fails_an_image_with_a_fixable_critical_and_signs_nothing(
    gitlab_project: Path, runner: dict[str, Any], tool: Tool, tmp_path: Path
) -> None:
    project = copy(gitlab_project, tmp_path)
    crane = tool("crane")
    digest = push_image(crane, f"{runner['image']}:old", runner["work"], PACKAGE, runner["env"])
    ref = f"{runner['image']}@{digest}"

    result = sign_job(project, tool, runner, digest)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"FAIL  {JOB}" in result.stdout
    log = job_log(result)
    assert "  BLOCKING Critical GHSA-test-crit-0001    requests 2.31.0 (fixed in 2.32.0)" in log
    assert "scan-gate: failed" in output
    for step in ("provenance:", "sign:", "attest:", "secure-image:"):
        assert not [line for line in log if line.startswith(step)], step
    assert not (project / "supply-chain" / "image").exists()
    # Nothing was attached to the digest: no signature, no attestation, in the registry.
    tags = run([crane, "ls", "--insecure", runner["image"]], env=runner["env"]).stdout.split()
    assert not [tag for tag in tags if tag.startswith(digest.replace(":", "-"))], tags
    verified = verify(project, runner, ref)
    assert verified.returncode == 1, verified.stdout
    for what in ("signature", "SBOM attestation", "SLSA provenance"):
        assert f"verify: {what} of {ref}: FAILED" in verified.stderr


def test_the_sign_job_fails_saying_why_when_the_registry_refuses_its_login(
    gitlab_project: Path, runner: dict[str, Any], tool: Tool, tmp_path: Path
) -> None:
    project = copy(gitlab_project, tmp_path)
    digest = push_image(
        tool("crane"), f"{runner['image']}:login", runner["work"], FIXED_PACKAGE, runner["env"]
    )
    result = sign_job(project, tool, runner, digest, CI_REGISTRY_PASSWORD="a-wrong-password")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"FAIL  {JOB}" in result.stdout
    # The SBOM, the first step, could not read the image, and the job's log says so.
    assert "UNAUTHORIZED" in output
    assert not [line for line in job_log(result) if line.startswith(("sbom:", "sign:"))]
