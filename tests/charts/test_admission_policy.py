"""The Kyverno admission policy of generated projects: strictly valid against Kyverno's upstream
CRD (../shared/schemas/kyverno, v1.19.0), and naming this repository's CI as the only signer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.crd_schema import validate_custom_resource

POLICY = Path("deploy") / "policies" / "verify-images.yaml"
# (answers, image prefix, signing subject, issuer)
IDENTITIES: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "github": (
        {},
        "ghcr.io/my-org/*",
        "https://github.com/my-org/my-service/.github/workflows/ci.yml@refs/heads/main",
        "https://token.actions.githubusercontent.com",
    ),
    "github-enterprise": (
        {"owner": "acme", "repo_url": "https://github.example.com/platform/shop.git"},
        "ghcr.io/acme/*",
        "https://github.example.com/platform/shop/.github/workflows/ci.yml@refs/heads/main",
        "https://github.example.com/_services/token",
    ),
    "gitlab-helm": (
        {
            "ci_provider": "gitlab",
            "deploy_target": "helm",
            "owner": "acme/platform",
            "registry": "gitlab",
            "environments": ["dev", "live"],
        },
        "registry.gitlab.com/acme/platform/*",
        "https://gitlab.com/acme/platform/my-service//*@refs/heads/main",
        "https://gitlab.com",
    ),
}


def crd_files(schemas_dir: Path) -> list[Path]:
    return sorted((schemas_dir / "kyverno").glob("*.yaml"))


@pytest.mark.parametrize("variant", IDENTITIES)
def test_policy_admits_only_images_signed_by_this_repository_s_ci(
    make_project: Callable[..., Path], schemas_dir: Path, variant: str
) -> None:
    answers, images, subject, issuer = IDENTITIES[variant]
    project = make_project(**answers)
    (policy,) = list(yaml.safe_load_all((project / POLICY).read_text(encoding="utf-8")))
    assert validate_custom_resource(policy, crd_files(schemas_dir)) == []
    (rule,) = policy["spec"]["rules"]
    last = (answers.get("environments") or ["prod"])[-1]
    assert rule["match"]["any"][0]["resources"]["namespaces"] == [f"*-{last}"]
    (verify,) = rule["verifyImages"]
    assert verify["imageReferences"] == [images]
    assert verify["failureAction"] == "Enforce"
    assert verify["verifyDigest"] is True
    keyless = [entry["keyless"] for entry in verify["attestors"][0]["entries"]]
    assert [(k["subject"], k["issuer"]) for k in keyless] == [(subject, issuer)]
    # The provenance attestation must come from the same identity.
    (attestation,) = verify["attestations"]
    assert attestation["type"] == "https://slsa.dev/provenance/v1"
    assert attestation["attestors"][0]["entries"][0]["keyless"] == keyless[0]
    assert policy["spec"]["failurePolicy"] == "Fail"


def test_strict_validation_rejects_a_misspelt_field(
    make_project: Callable[..., Path], schemas_dir: Path
) -> None:
    """The CRD check is strict: what Kyverno would silently prune is an error here."""
    policy = yaml.safe_load((make_project() / POLICY).read_text(encoding="utf-8"))
    policy["spec"]["rules"][0]["verifyImages"][0]["verifyDigests"] = True
    errors = validate_custom_resource(policy, crd_files(schemas_dir))
    assert any("verifyDigests" in error for error in errors), errors


def test_no_policy_without_a_cluster(make_project: Callable[..., Path]) -> None:
    project = make_project(deploy_target="none")
    assert not (project / "deploy" / "policies").exists()


def test_documented_key_based_fallback_is_a_valid_policy(
    make_project: Callable[..., Path], schemas_dir: Path
) -> None:
    """docs/checks.md's `keys:` attestor, put in place of `keyless:`, still validates."""
    project = make_project()
    docs = (project / "docs" / "checks.md").read_text(encoding="utf-8")
    snippet = docs.split("**Key-based fallback**", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    attestors = yaml.safe_load(snippet)["attestors"]
    assert "keys" in attestors[0]["entries"][0]
    policy = yaml.safe_load((project / POLICY).read_text(encoding="utf-8"))
    verify = policy["spec"]["rules"][0]["verifyImages"][0]
    verify["attestors"] = attestors
    verify["attestations"][0]["attestors"] = attestors
    assert validate_custom_resource(policy, crd_files(schemas_dir)) == []
