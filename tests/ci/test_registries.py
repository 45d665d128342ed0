"""Every (CI provider x registry) pair renders CI that its real validators accept."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.registries import REGISTRIES
from tests.ci.gitlab_local import as_gitlab_repository, gitlab_ci_local, listed_jobs
from tests.helpers import render, run
from tests.monorepo import build_monorepo
from tests.update.gitrepo import snapshot_template

PAIRS = [(provider, registry) for provider in ("github", "gitlab") for registry in REGISTRIES]
# Registries whose host only the user knows (no default): a real-looking answer for each.
OWN_HOSTS = {
    "harbor": "harbor.acme.internal",
    "ecr": "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
}
# Registries whose CI login is an OIDC token exchange (no stored secret).
OIDC = sorted(name for name, registry in REGISTRIES.items() if registry.kaniko_auth != "basic")
# What a leaked credential looks like: token prefixes and a basic-auth blob in a config.
CREDENTIAL = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20}|AKIA[0-9A-Z]{16}|"
    r'"auth"\s*:\s*"[A-Za-z0-9+/=]{8,}"|-----BEGIN [A-Z ]*PRIVATE KEY-----'
)


@pytest.fixture(scope="module", params=PAIRS, ids=[f"{p}-{r}" for p, r in PAIRS])
def pair(request: pytest.FixtureRequest, copie_session: Any) -> tuple[str, str, Path]:
    provider, registry = request.param
    hosts = {"registry_host": OWN_HOSTS[registry]} if registry in OWN_HOSTS else {}
    project = render(
        copie_session, ci_provider=provider, registry=registry, deploy_target="helm", **hosts
    )
    return provider, registry, project


def test_ci_of_every_pair_passes_its_validators(
    pair: tuple[str, str, Path], tool: Callable[[str], str], tmp_path: Path
) -> None:
    provider, _, project = pair
    if provider == "github":
        workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
        run([tool("actionlint"), "-shellcheck", tool("shellcheck"), *workflows], cwd=project)
        run([tool("zizmor"), "--offline", "--persona", "auditor", *workflows], cwd=project)
    else:
        schema = [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci"]
        files = [project / ".gitlab-ci.yml", *sorted((project / ".gitlab").rglob("*.yml"))]
        run([*schema, *files], cwd=project)
        repository = as_gitlab_repository(project, tmp_path)
        listed = gitlab_ci_local(repository, tool, "--list-all")
        assert any("my-service" in job for job in listed_jobs(listed.stdout))
    run([tool("yamllint"), "--strict", "."], cwd=project)


def test_chart_descriptor_and_ci_push_to_the_chosen_registry(pair: tuple[str, str, Path]) -> None:
    provider, registry, project = pair
    answers = yaml.safe_load((project / ".copier-answers.my-service.yml").read_text("utf-8"))
    image = f"{answers['registry_host']}/{answers['image_repository']}"
    values = yaml.safe_load((project / "deploy/charts/my-service/values.yaml").read_text("utf-8"))
    assert values["image"]["repository"] == image
    pulls = values["imagePullSecrets"]
    assert bool(pulls) is REGISTRIES[registry].pull_secret
    # CI reads the image from the service's descriptor at run time.
    descriptor = yaml.safe_load((project / "apps/my-service/catalog-info.yaml").read_text("utf-8"))
    assert descriptor["metadata"]["annotations"]["devops-template/image"] == image
    if provider == "github":
        text = (project / ".github/workflows/ci.yml").read_text(encoding="utf-8")
        assert "${{ matrix.service.image }}" in text
        assert f"REGISTRY: {answers['registry_host']}" in text
        assert image not in text


def test_ci_logs_in_the_modern_way_for_each_registry(pair: tuple[str, str, Path]) -> None:
    provider, registry, project = pair
    oidc = REGISTRIES[registry].kaniko_auth != "basic"
    if provider == "github":
        workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text("utf-8"))
        publish = workflow["jobs"]["publish"]
        permissions = publish["permissions"]
        assert ("id-token" in permissions) is oidc
        assert ("packages" in permissions) is (registry == "ghcr")
        login = next(s for s in publish["steps"] if "kaniko-auth" in s.get("run", ""))
        for name, value in login["env"].items():
            if name in {"REGISTRY_PASSWORD", "REGISTRY_USER", "AWS_ROLE_ARN"}:
                assert value.startswith("${{ "), f"{name} must come from CI, not the file"
        assert "environment" in publish or registry in {"ghcr", "ecr", "gar", "acr"}
    else:
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))
        build = pipeline[".build"]
        assert ("id_tokens" in build) is oidc
        assert build["image"]["entrypoint"] == [""]
        assert build["image"]["name"].startswith("ghcr.io/osscontainertools/kaniko:")
        reference, _, digest = build["image"]["name"].partition("@")
        assert reference.endswith("-debug"), "kaniko's debug image has the shell CI runs"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), "the kaniko image is pinned by digest"
        script = "\n".join(build["script"])
        assert "--digest-file" in script
        assert "--cache=true" in script
        assert "--no-push" in script
        if registry == "gitlab":
            assert build["variables"]["REGISTRY_PASSWORD"] == "$CI_REGISTRY_PASSWORD"


def test_no_rendered_file_holds_a_credential(pair: tuple[str, str, Path]) -> None:
    _, _, project = pair
    leaks = [
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and CREDENTIAL.search(path.read_text(encoding="utf-8", errors="ignore"))
    ]
    assert leaks == []


def test_operations_guide_lists_exactly_the_secrets_to_create(pair: tuple[str, str, Path]) -> None:
    provider, registry, project = pair
    guide = (project / "docs/operations.md").read_text(encoding="utf-8")
    for secret in REGISTRIES[registry].secrets[provider]:
        assert f"`{secret.name}`" in guide
    assert REGISTRIES[registry].auth[provider] in guide


@pytest.fixture(scope="module", params=OIDC)
def oidc_monorepo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-service monorepo on GitHub with a registry that CI logs in to with OIDC."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    destination = tmp_path_factory.mktemp("monorepo") / "shop"
    hosts: dict[str, Any] = (
        {"registry_host": OWN_HOSTS[request.param]} if request.param in OWN_HOSTS else {}
    )
    return build_monorepo(template, destination, registry=str(request.param), **hosts)


def test_four_service_monorepo_with_an_oidc_registry_passes_actionlint_and_zizmor(
    oidc_monorepo: Path, tool: Callable[[str], str]
) -> None:
    workflows = sorted((oidc_monorepo / ".github" / "workflows").glob("*.yml"))
    run([tool("actionlint"), "-shellcheck", tool("shellcheck"), *workflows], cwd=oidc_monorepo)
    run([tool("zizmor"), "--offline", "--persona", "auditor", *workflows], cwd=oidc_monorepo)
    publish = yaml.safe_load((oidc_monorepo / ".github/workflows/ci.yml").read_text("utf-8"))[
        "jobs"
    ]["publish"]
    assert publish["permissions"]["id-token"] == "write"
    assert publish["strategy"]["matrix"] == {
        "service": "${{ fromJSON(needs.changes.outputs.services) }}"
    }
