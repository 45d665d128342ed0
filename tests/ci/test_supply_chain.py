"""Supply chain of the generated project: SBOM, vulnerability gate, signature, provenance.

The signing tests run the generated scripts (scripts/ci/sign, attest, verify, provenance.py,
secure-image) for real against a real OCI registry (distribution's `registry serve`) on
127.0.0.1, with an image pushed by crane (no Docker daemon), cosign in key mode and no
transparency log (nothing here reaches Sigstore). Keyless mode cannot run here: its wiring is
checked by reading the rendered CI files (and actionlint, zizmor and the GitLab schema).

The SBOM is syft's, by the generated scripts/ci/sbom, of the pushed image by digest. The
vulnerability scan is grype's, by the generated scripts/ci/scan, on a database that
tests/ci/grypedb writes with grype's own database package (the real one cannot be downloaded
here): one advisory, fixable and critical, for the package syft finds in the test image. The
gate's waiver rules are also tested on reports written here in grype's output format.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.supply_chain import (
    FIXED_PACKAGE,
    PACKAGE,
    PINS,
    grype_database,
    push_image,
    serve_registry,
)
from tests.helpers import REPO_ROOT, render, run

Tool = Callable[[str], str]
PASSWORD = "not-a-secret-test-password"


# --- a registry on loopback, an image in it ------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tool: Tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a distribution registry serving from a temporary folder."""
    with serve_registry(tool, tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def project(copie_session: Any) -> Path:
    return render(copie_session)


@pytest.fixture(scope="module")
def signing(
    project: Path, tool: Tool, registry: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A key pair, an image pushed to the loopback registry, and the scripts' environment."""
    work = tmp_path_factory.mktemp("signing")
    cosign = tool("cosign")
    home = work / "home"
    home.mkdir()
    tools = os.pathsep.join(
        dict.fromkeys(str(Path(tool(name)).parent) for name in ("cosign", "crane", "syft", "grype"))
    )
    env = {
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "COSIGN_PASSWORD": PASSWORD,
        "COSIGN_YES": "true",
        "COSIGN_TLOG": "false",
        "REGISTRY_INSECURE": "true",
        "TMPDIR": str(work),
        "GIT_CEILING_DIRECTORIES": str(work),
    }
    run([cosign, "generate-key-pair"], cwd=work, env={**os.environ, **env})
    image = f"{registry}/shop/api"
    digest = push_image(tool("crane"), f"{image}:0123abc", work, PACKAGE)
    return {
        "work": work,
        "env": env,
        "image": image,
        "digest": digest,
        "ref": f"{image}@{digest}",
        "key": work / "cosign.key",
        "pub": work / "cosign.pub",
    }


def script(
    project: Path, signing: dict[str, Any], *args: str | Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """A generated scripts/ci command, run from the project as CI runs it."""
    command = [str(arg) for arg in args]
    if command[0].endswith(".py"):
        command = ["python3", *command]
    return subprocess.run(
        command,
        cwd=project,
        env={**signing["env"], **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def sbom_of(project: Path, signing: dict[str, Any], ref: str = "", form: str = "spdx-json") -> Path:
    """The generated scripts/ci/sbom's SBOM of an image digest (the signed one by default)."""
    ref = ref or signing["ref"]
    out: Path = signing["work"] / f"sbom-{ref.rsplit(':', 1)[1][:12]}.{form}.json"
    if not out.exists():
        result = script(project, signing, "scripts/ci/sbom", ref, out, SBOM_FORMAT=form)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"sbom: {form} of {ref} in {out}" in result.stdout
    return out


def payloads(output: str) -> list[dict[str, Any]]:
    """The in-toto statements of `cosign verify-attestation` output."""
    statements = []
    for line in output.splitlines():
        if line.startswith("{"):
            envelope = json.loads(line)
            statements.append(json.loads(base64.b64decode(envelope["payload"])))
    return statements


# --- signing end to end, key mode -----------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(project: Path, signing: dict[str, Any]) -> dict[str, Any]:
    """The image signed and attested by the generated scripts, as the CI job does it."""
    key = {"COSIGN_KEY": str(signing["key"])}
    sbom = sbom_of(project, signing)
    provenance = signing["work"] / "provenance.json"
    steps = [
        ("scripts/ci/provenance.py", signing["ref"], "--output", provenance),
        ("scripts/ci/sign", signing["ref"]),
        ("scripts/ci/attest", signing["ref"], sbom, provenance),
    ]
    for step in steps:
        result = script(project, signing, *step, **key)
        assert result.returncode == 0, f"{step[0]}: {result.stdout}{result.stderr}"
    return signing


def verify(project: Path, signing: dict[str, Any], ref: str, pub: Path) -> Any:
    return script(project, signing, "scripts/ci/verify", ref, COSIGN_PUBLIC_KEY=str(pub))


def test_a_signed_image_verifies_its_signature_sbom_and_provenance(
    project: Path, signed: dict[str, Any]
) -> None:
    result = verify(project, signed, signed["ref"], signed["pub"])
    assert result.returncode == 0, result.stdout + result.stderr
    for what in ("signature", "SBOM attestation", "SLSA provenance"):
        assert f"verify: {what} of {signed['ref']}: ok" in result.stdout


def test_the_attested_sbom_and_provenance_name_the_signed_digest(
    project: Path, signed: dict[str, Any], tool: Tool
) -> None:
    cosign = tool("cosign")
    common = ["--key", str(signed["pub"]), "--insecure-ignore-tlog=true", "--allow-http-registry"]
    sbom = run(
        [cosign, "verify-attestation", *common, "--type", "spdxjson", signed["ref"]],
        env={**os.environ, **signed["env"]},
    )
    (statement,) = payloads(sbom.stdout)
    assert statement["subject"][0]["digest"] == {"sha256": signed["digest"].split(":")[1]}
    names = {(p["name"], p.get("versionInfo")) for p in statement["predicate"]["packages"]}
    assert ("requests", "2.31.0") in names
    provenance = run(
        [cosign, "verify-attestation", *common, "--type", "slsaprovenance1", signed["ref"]],
        env={**os.environ, **signed["env"]},
    )
    (statement,) = payloads(provenance.stdout)
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["image"] == signed["ref"]
    assert definition["resolvedDependencies"][0]["digest"]["gitCommit"]


def test_the_sbom_is_the_pushed_images_by_digest_in_both_formats(
    project: Path, signing: dict[str, Any]
) -> None:
    spdx = json.loads(sbom_of(project, signing).read_text(encoding="utf-8"))
    assert spdx["spdxVersion"].startswith("SPDX-2.")
    (image,) = [p for p in spdx["packages"] if p.get("primaryPackagePurpose") == "CONTAINER"]
    assert (image["name"], image["versionInfo"]) == (signing["image"], signing["digest"])
    purls = {ref["referenceLocator"] for p in spdx["packages"] for ref in p.get("externalRefs", [])}
    assert "pkg:pypi/requests@2.31.0" in purls
    # The SBOM names the syft that wrote it (go install leaves the version out without -X).
    syft_version = PINS["supply_chain"]["syft"].rsplit("@v", 1)[1]
    assert f"Tool: syft-{syft_version}" in spdx["creationInfo"]["creators"]
    cyclonedx = json.loads(
        sbom_of(project, signing, form="cyclonedx-json").read_text(encoding="utf-8")
    )
    assert cyclonedx["bomFormat"] == "CycloneDX"
    component = cyclonedx["metadata"]["component"]
    assert (component["name"], component["version"]) == (signing["image"], signing["digest"])
    assert "pkg:pypi/requests@2.31.0" in {c.get("purl") for c in cyclonedx["components"]}


def test_a_cyclonedx_sbom_is_attested_and_verified_as_cyclonedx(
    project: Path, signing: dict[str, Any], tool: Tool
) -> None:
    image = signing["image"].replace("/api", "/worker")
    ref = f"{image}@{push_image(tool('crane'), f'{image}:0123abc', signing['work'], PACKAGE)}"
    sbom = sbom_of(project, signing, ref, "cyclonedx-json")
    provenance = signing["work"] / "provenance-worker.json"
    key = {"COSIGN_KEY": str(signing["key"])}
    for step in (
        ("scripts/ci/provenance.py", ref, "--output", provenance),
        ("scripts/ci/sign", ref),
        ("scripts/ci/attest", ref, sbom, provenance),
    ):
        result = script(project, signing, *step, **key)
        assert result.returncode == 0, f"{step[0]}: {result.stdout}{result.stderr}"
    assert f"attest: cyclonedx SBOM attached to {ref}" in result.stdout
    pub = {"COSIGN_PUBLIC_KEY": str(signing["pub"])}
    result = script(project, signing, "scripts/ci/verify", ref, SBOM_TYPE="cyclonedx", **pub)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"verify: SBOM attestation of {ref}: ok" in result.stdout
    # An SPDX attestation is what it does not have.
    result = script(project, signing, "scripts/ci/verify", ref, **pub)
    assert result.returncode == 1
    assert f"verify: SBOM attestation of {ref}: FAILED" in result.stderr


def test_a_tampered_image_an_unsigned_one_and_another_key_fail_verification(
    project: Path, signed: dict[str, Any], tool: Tool
) -> None:
    crane = tool("crane")
    # Tampered: the signed image with one label more is another digest, signed by nobody.
    tampered = run(
        [crane, "mutate", "--insecure", "--label", "tampered=yes", signed["ref"]],
        env={**os.environ, **signed["env"]},
    ).stdout.strip()
    tampered_digest = run([crane, "digest", "--insecure", tampered]).stdout.strip()
    assert tampered_digest != signed["digest"]
    # Unsigned: pushed to the same repository, never signed.
    unsigned = push_image(
        crane, f"{signed['image']}:unsigned", signed["work"], {"app/other.py": "print(1)\n"}
    )
    for digest in (tampered_digest, unsigned):
        result = verify(project, signed, f"{signed['image']}@{digest}", signed["pub"])
        assert result.returncode == 1, result.stdout
        assert f"verify: signature of {signed['image']}@{digest}: FAILED" in result.stderr
    # Another key: the signed digest does not verify against a key that did not sign it.
    other = signed["work"] / "other"
    other.mkdir()
    run([tool("cosign"), "generate-key-pair"], cwd=other, env={**os.environ, **signed["env"]})
    result = verify(project, signed, signed["ref"], other / "cosign.pub")
    assert result.returncode == 1
    assert f"verify: signature of {signed['ref']}: FAILED" in result.stderr


def test_scripts_refuse_a_tag_instead_of_a_digest(project: Path, signing: dict[str, Any]) -> None:
    tag = f"{signing['image']}:0123abc"
    for command in ("scripts/ci/sign", "scripts/ci/verify"):
        result = script(project, signing, command, tag, COSIGN_PUBLIC_KEY="x")
        assert result.returncode == 2
        assert "not pinned by digest" in result.stderr
    result = script(project, signing, "scripts/ci/sbom", tag, signing["work"] / "tag.json")
    assert result.returncode == 2
    assert "not pinned by digest" in result.stderr
    digest_file = signing["work"] / "not-a-digest"
    digest_file.write_text("latest\n", encoding="utf-8")
    result = script(project, signing, "scripts/ci/secure-image", signing["image"], digest_file, "x")
    assert result.returncode == 2
    assert "holds no sha256 digest" in result.stderr


def test_verify_needs_a_key_or_a_keyless_identity(project: Path, signing: dict[str, Any]) -> None:
    result = script(project, signing, "scripts/ci/verify", signing["ref"])
    assert result.returncode == 2
    assert "set COSIGN_PUBLIC_KEY, or CERTIFICATE_IDENTITY and CERTIFICATE_OIDC_ISSUER" in (
        result.stderr
    )


# --- vulnerability scan, grype on a database written here ---------------------------------------

FUTURE = (date.today() + timedelta(days=30)).isoformat()
PAST = (date.today() - timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def grype_db(signing: dict[str, Any], tool: Tool) -> dict[str, str]:
    """grype's environment for a scan on a database of ADVISORIES only, imported by grype."""
    return grype_database(tool, signing["work"] / "grype", signing["env"])


def scan(
    project: Path, signing: dict[str, Any], grype_db: dict[str, str], sbom: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The generated scripts/ci/scan of an SBOM; its result and grype's JSON report."""
    report = sbom.with_suffix(".grype.json")
    result = script(project, signing, "scripts/ci/scan", sbom, report, **grype_db, **env)
    return result, json.loads(report.read_text(encoding="utf-8"))


def test_a_fixable_critical_vulnerability_in_the_image_fails_the_scan(
    project: Path, signing: dict[str, Any], grype_db: dict[str, str]
) -> None:
    result, report = scan(project, signing, grype_db, sbom_of(project, signing))
    assert result.returncode == 1, result.stdout + result.stderr
    found = {(m["vulnerability"]["id"], m["artifact"]["name"]) for m in report["matches"]}
    assert found == {("GHSA-test-crit-0001", "requests"), ("GHSA-test-high-0002", "requests")}
    assert "scan-gate: 2 findings; gate on fixable Critical/High" in result.stdout
    blocking = [line for line in result.stdout.splitlines() if "BLOCKING" in line]
    assert blocking == [
        "  BLOCKING Critical GHSA-test-crit-0001    requests 2.31.0 (fixed in 2.32.0)"
    ]
    assert "scan-gate: failed" in result.stderr


def test_a_waiver_lets_the_scanned_finding_through(
    project: Path, signing: dict[str, Any], grype_db: dict[str, str], tmp_path: Path
) -> None:
    waivers = tmp_path / "waivers.toml"
    waivers.write_text(
        f'[[waiver]]\nid = "GHSA-test-crit-0001"\npackage = "requests"\n'
        f'reason = "The image never sends requests"\nexpires = {FUTURE}\n',
        encoding="utf-8",
    )
    sbom = sbom_of(project, signing)
    result, _ = scan(project, signing, grype_db, sbom, WAIVERS_FILE=str(waivers))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waived   Critical GHSA-test-crit-0001" in result.stdout
    assert "scan-gate: passed" in result.stdout


def test_the_image_with_the_fixed_version_passes_the_scan(
    project: Path, signing: dict[str, Any], grype_db: dict[str, str], tool: Tool
) -> None:
    digest = push_image(
        tool("crane"), f"{signing['image']}:upgraded", signing["work"], FIXED_PACKAGE
    )
    sbom = sbom_of(project, signing, f"{signing['image']}@{digest}")
    result, report = scan(project, signing, grype_db, sbom)
    assert result.returncode == 0, result.stdout + result.stderr
    # The unfixed high finding is still reported, and does not block.
    assert [m["vulnerability"]["id"] for m in report["matches"]] == ["GHSA-test-high-0002"]
    assert "scan-gate: 1 findings" in result.stdout
    assert "scan-gate: passed" in result.stdout


# --- vulnerability gate on recorded reports: the waiver rules -----------------------------------


def grype_report(*matches: tuple[str, str, str, list[str]]) -> dict[str, Any]:
    """A grype --output json report: (id, severity, package, fixed versions) per match."""
    return {
        "matches": [
            {
                "vulnerability": {
                    "id": vulnerability,
                    "severity": severity,
                    "fix": {"versions": fixed, "state": "fixed" if fixed else "not-fixed"},
                },
                "relatedVulnerabilities": [{"id": f"GHSA-{vulnerability[-4:]}-xxxx-yyyy"}],
                "artifact": {"name": package, "version": "1.0.0", "type": "python"},
            }
            for vulnerability, severity, package, fixed in matches
        ],
        "source": {"type": "image"},
        "descriptor": {"name": "grype"},
    }


def gate(
    project: Path, tmp_path: Path, report: dict[str, Any], waivers: str | None = None
) -> subprocess.CompletedProcess[str]:
    report_file = tmp_path / "grype.json"
    report_file.write_text(json.dumps(report), encoding="utf-8")
    waivers_file = project / ".vulnerability-waivers.toml"
    if waivers is not None:
        waivers_file = tmp_path / "waivers.toml"
        waivers_file.write_text(waivers, encoding="utf-8")
    return subprocess.run(
        ["python3", "scripts/ci/scan_gate.py", report_file, "--waivers", waivers_file],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


VULNERABLE = grype_report(
    ("CVE-2024-0001", "High", "requests", ["2.32.0"]),
    ("CVE-2024-0002", "Critical", "openssl", []),  # no fix yet: listed, not blocking
    ("CVE-2024-0003", "Medium", "urllib3", ["2.2.2"]),  # below the gate
)


def test_the_gate_fails_on_a_fixable_high_finding_and_passes_a_clean_report(
    project: Path, tmp_path: Path
) -> None:
    blocked = gate(project, tmp_path, VULNERABLE)
    assert blocked.returncode == 1, blocked.stdout
    assert "BLOCKING High     CVE-2024-0001" in blocked.stdout
    assert "requests 1.0.0 (fixed in 2.32.0)" in blocked.stdout
    assert "CVE-2024-0002" not in blocked.stdout.split("BLOCKING", 1)[1]
    clean = gate(project, tmp_path, grype_report(("CVE-2024-0003", "Medium", "urllib3", ["2"])))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "scan-gate: passed" in clean.stdout


def test_a_waiver_with_a_reason_and_a_future_expiry_lets_the_finding_through(
    project: Path, tmp_path: Path
) -> None:
    waivers = (
        f'[[waiver]]\nid = "CVE-2024-0001"\npackage = "requests"\n'
        f'reason = "Only reachable through proxies we never configure"\nexpires = {FUTURE}\n'
    )
    result = gate(project, tmp_path, VULNERABLE, waivers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waived   High     CVE-2024-0001" in result.stdout
    assert "Only reachable through proxies" in result.stdout
    # A waiver may name the finding by an alias (grype lists the GHSA of a CVE).
    alias = waivers.replace('id = "CVE-2024-0001"', 'id = "GHSA-0001-xxxx-yyyy"')
    assert gate(project, tmp_path, VULNERABLE, alias).returncode == 0
    # A waiver of another package does not cover it.
    other = waivers.replace('package = "requests"', 'package = "flask"')
    assert gate(project, tmp_path, VULNERABLE, other).returncode == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (f'id = "CVE-2024-0001"\nreason = "ok"\nexpires = {PAST}', f"expired on {PAST}"),
        (f'id = "CVE-2024-0001"\nexpires = {FUTURE}', "needs a reason"),
        ('id = "CVE-2024-0001"\nreason = "ok"', "needs an expiry date"),
        ('id = "CVE-2024-0001"\nreason = "ok"\nexpires = "soon"', "needs an expiry date"),
    ],
    ids=["expired", "no-reason", "no-expiry", "expiry-not-a-date"],
)
def test_an_expired_or_incomplete_waiver_fails_the_gate_by_itself(
    project: Path, tmp_path: Path, entry: str, message: str
) -> None:
    clean = grype_report()
    result = gate(project, tmp_path, clean, f"[[waiver]]\n{entry}\n")
    assert result.returncode == 1, result.stdout
    assert message in result.stdout


def test_the_waivers_file_is_the_users_and_ships_without_waivers(project: Path) -> None:
    waivers = project / ".vulnerability-waivers.toml"
    assert tomllib.loads(waivers.read_text(encoding="utf-8")) == {}
    skipped = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
    assert ".vulnerability-waivers.toml" in skipped["_skip_if_exists"]
    assert gate(project, project, grype_report()).returncode == 0


def test_unreadable_scanner_output_is_an_error_not_a_pass(project: Path, tmp_path: Path) -> None:
    result = gate(project, tmp_path, {"not": "grype"})
    assert result.returncode == 2
    assert "not a grype JSON report" in result.stderr


# --- CI wiring: both providers run the same scripts; keyless identity only where it signs ------


@pytest.fixture(scope="module")
def github(copie_session: Any) -> dict[str, Any]:
    project = render(copie_session, preview_environments=True)
    text = (project / ".github/workflows/ci.yml").read_text(encoding="utf-8")
    return {"project": project, "text": text, "workflow": yaml.safe_load(text)}


@pytest.fixture(scope="module")
def gitlab(copie_session: Any) -> dict[str, Any]:
    project = render(copie_session, ci_provider="gitlab", registry="gitlab")
    files = [project / ".gitlab-ci.yml", *sorted((project / ".gitlab/ci").rglob("*.yml"))]
    return {"project": project, "files": files, "text": "\n".join(f.read_text() for f in files)}


def test_only_the_signing_job_may_ask_github_for_an_oidc_token(github: dict[str, Any]) -> None:
    workflow = github["workflow"]
    assert workflow["permissions"] == {}
    with_token = sorted(
        name
        for name, job in workflow["jobs"].items()
        if (job.get("permissions") or {}).get("id-token") == "write"
    )
    assert with_token == ["sign"]
    sign = workflow["jobs"]["sign"]
    assert sign["needs"] == ["changes", "publish"]
    assert sign["if"].startswith("github.ref == 'refs/heads/main'")
    run_steps = [step.get("run", "") for step in sign["steps"]]
    assert any(step.startswith("scripts/ci/secure-image ") for step in run_steps)
    env = next(s["env"] for s in sign["steps"] if "secure-image" in s.get("run", ""))
    assert env["CERTIFICATE_OIDC_ISSUER"] == "https://token.actions.githubusercontent.com"
    assert env["COSIGN_PRIVATE_KEY"] == "${{ secrets.COSIGN_PRIVATE_KEY }}"


def test_github_workflows_pass_actionlint_and_zizmor(github: dict[str, Any], tool: Tool) -> None:
    project = github["project"]
    workflows = sorted((project / ".github/workflows").glob("*.yml"))
    run([tool("actionlint"), *workflows], cwd=project)
    run([tool("zizmor"), "--offline", "--quiet", *workflows], cwd=project)


def test_gitlab_signs_with_a_sigstore_token_in_one_job_template(
    gitlab: dict[str, Any], tool: Tool
) -> None:
    ci = yaml.safe_load((gitlab["project"] / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    assert ci[".sign"]["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
    assert "scripts/ci/secure-image" in "\n".join(ci[".sign"]["script"])
    holders = [name for name, job in ci.items() if isinstance(job, dict) and "id_tokens" in job]
    assert holders == [".sign"]
    service = yaml.safe_load(
        (gitlab["project"] / ".gitlab/ci/services/my-service.yml").read_text(encoding="utf-8")
    )
    assert service["sign:my-service"]["extends"][0] == ".sign"
    assert service["scan:my-service"]["extends"][0] == ".scan"
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *gitlab["files"]],
        cwd=gitlab["project"],
    )


def test_both_providers_call_the_scripts_and_keep_no_cosign_or_grype_inline(
    github: dict[str, Any], gitlab: dict[str, Any]
) -> None:
    for text in (github["text"], gitlab["text"]):
        for command in ("scripts/ci/secure-image", "scripts/ci/sbom", "scripts/ci/scan"):
            assert command in text
        inline = re.findall(r"^\s*(?:- )?(?:cosign|grype|syft)\s.*$", text, re.MULTILINE)
        assert inline == []


def test_kaniko_records_the_pushed_digest_on_both_providers(
    github: dict[str, Any], gitlab: dict[str, Any]
) -> None:
    publish = github["workflow"]["jobs"]["publish"]
    build = next(s for s in publish["steps"] if s.get("name", "").startswith("Build and push"))
    assert "--digest-file /image/digest" in build["run"]
    keep = next(s for s in publish["steps"] if s.get("name") == "Keep the image digest")
    assert keep["with"]["name"] == "image-${{ matrix.service.name }}"
    ci = yaml.safe_load((gitlab["project"] / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    script_text = "\n".join(ci[".build"]["script"])
    assert '--digest-file "$CI_PROJECT_DIR/image-digest"' in script_text
    assert "image-digest" in ci[".build"]["artifacts"]["paths"]


# --- holes of the independent review, one test each ----------------------------------------------


def test_previews_run_only_labelled_requests_with_the_chart_of_main(copie_session: Any) -> None:
    for provider, registry in (("github", "ghcr"), ("gitlab", "gitlab")):
        project = render(
            copie_session, ci_provider=provider, registry=registry, preview_environments=True
        )
        appset = yaml.safe_load(
            (project / "deploy/argocd/previews.yaml").read_text(encoding="utf-8")
        )
        pull_request, descriptors = appset["spec"]["generators"][0]["matrix"]["generators"]
        settings = pull_request["pullRequest"][provider]
        assert settings["labels"] == ["preview"], provider
        assert descriptors["git"]["revision"] == "main"
        source = appset["spec"]["template"]["spec"]["source"]
        assert source["targetRevision"] == "main"
        parameters = {p["name"]: p["value"] for p in source["helm"]["parameters"]}
        assert parameters["image.repository"].endswith("-preview")
        assert parameters["image.tag"] == "pr-{{ .number }}-{{ .head_sha }}"
        assert "head_sha" not in json.dumps(descriptors) + source["targetRevision"]


def test_previews_push_to_their_own_repository_and_cache(
    github: dict[str, Any], copie_session: Any
) -> None:
    jobs = github["workflow"]["jobs"]
    main = next(s for s in jobs["publish"]["steps"] if "kaniko" in s.get("name", ""))["run"]
    preview = next(s for s in jobs["publish-preview"]["steps"] if "kaniko" in s.get("name", ""))
    assert '--cache-repo "$IMAGE/cache"' in main
    assert '--destination "$IMAGE-preview:$IMAGE_TAG"' in preview["run"]
    assert '--cache-repo "$IMAGE-preview/cache"' in preview["run"]
    assert (
        "contains(github.event.pull_request.labels.*.name, 'preview')"
        in (jobs["publish-preview"]["if"])
    )
    project = render(
        copie_session, ci_provider="gitlab", registry="gitlab", preview_environments=True
    )
    build = "\n".join(
        yaml.safe_load((project / ".gitlab-ci.yml").read_text(encoding="utf-8"))[".build"]["script"]
    )
    assert 'repository="$IMAGE-preview"' in build
    assert '--cache-repo "$repository/cache"' in build
    assert "',preview,'" in build  # only a labelled merge request pushes a preview


def test_each_app_project_creates_only_the_namespaces_of_its_own_applications(
    copie_session: Any,
) -> None:
    project = render(copie_session, preview_environments=True)

    def creatable(file: str) -> Callable[[str], bool]:
        appproject = yaml.safe_load((project / "deploy/argocd" / file).read_text("utf-8"))
        whitelist = appproject["spec"]["clusterResourceWhitelist"]
        assert {item["kind"] for item in whitelist} == {"Namespace"}  # nothing else cluster-wide
        namespaces = [item["name"] for item in whitelist]
        assert namespaces
        assert all(namespaces)  # an entry without a name would admit any namespace
        return lambda name: any(fnmatch.fnmatchcase(name, pattern) for pattern in namespaces)

    environments, previews = creatable("project.yaml"), creatable("previews-project.yaml")
    for own in ("api-dev", "api-staging", "api-prod"):
        assert environments(own), own
        assert not previews(own), own
    for preview in ("api-pr-12", "worker-pr-7"):
        assert previews(preview), preview
        assert not environments(preview), preview
    for foreign in ("kube-system", "argocd", "default", "monitoring", "api-pr-x", "ingress-nginx"):
        assert not environments(foreign), foreign
        assert not previews(foreign), foreign


def test_the_smoke_test_pod_may_reach_only_its_service_and_dns(project: Path, tool: Tool) -> None:
    chart = project / "deploy/charts/my-service"
    rendered = run([tool("helm"), "template", "my-service", chart, "-f", chart / "values-dev.yaml"])
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    job = next(o for o in objects if o["kind"] == "Job" and "smoke" in o["metadata"]["name"])
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    service_labels = deployment["spec"]["template"]["metadata"]["labels"]
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ]
    assert len(policies) == 1, "exactly one NetworkPolicy selects the smoke-test pod"
    (policy,) = policies
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    to_service, to_dns = policy["spec"]["egress"]
    selector = to_service["to"][0]["podSelector"]["matchLabels"]
    assert selector.items() <= service_labels.items()
    assert to_service["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert {p["port"] for p in to_dns["ports"]} == {53}
    assert to_dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    # The service's own policy admits the smoke test (same namespace).
    service_policy = next(o for o in objects if o["kind"] == "NetworkPolicy" and o is not policy)
    assert {"podSelector": {}} in service_policy["spec"]["ingress"][0]["from"]


def test_images_that_hold_credentials_are_pinned_by_digest(
    project: Path, copie_session: Any
) -> None:
    pins = PINS
    credential_images = {
        "kaniko (registry login)": pins["kaniko"]["image"],
        "kaniko debug (GitLab, registry login)": pins["kaniko"]["debug_image"],
        "helm (kubeconfig)": pins["gitlab_ci"]["helm_image"],
        "GitLab promote (push token)": pins["gitlab_ci"]["promote_image"],
        "smoke test (in the cluster)": pins["smoke_test"]["image"],
    }
    pattern = re.compile(r"^[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
    for what, image in credential_images.items():
        assert pattern.match(image), f"{what}: {image} is not pinned as tag@sha256:<digest>"
    helm_project = render(copie_session, ci_provider="gitlab", deploy_target="helm")
    argocd_project = render(copie_session, ci_provider="gitlab", registry="gitlab")
    texts = {
        "ci.yml": (project / ".github/workflows/ci.yml").read_text("utf-8"),
        "helm .gitlab-ci.yml": (helm_project / ".gitlab-ci.yml").read_text("utf-8"),
        "promote.yml": (argocd_project / ".gitlab/ci/promote.yml").read_text("utf-8"),
        "values.yaml": (project / "deploy/charts/my-service/values.yaml").read_text("utf-8"),
    }
    assert pins["kaniko"]["image"] in texts["ci.yml"]
    assert pins["gitlab_ci"]["helm_image"] in texts["helm .gitlab-ci.yml"]
    assert pins["gitlab_ci"]["promote_image"] in texts["helm .gitlab-ci.yml"]
    assert pins["gitlab_ci"]["promote_image"] in texts["promote.yml"]
    assert pins["smoke_test"]["image"] in texts["values.yaml"]


def test_promotions_push_to_main_as_the_documented_bot(
    github: dict[str, Any], copie_session: Any
) -> None:
    project = github["project"]
    promote = yaml.safe_load((project / ".github/workflows/promote.yml").read_text("utf-8"))
    first = github["workflow"]["jobs"]["promote-dev"]
    for step in (
        next(s for s in first["steps"] if s.get("name") == "Promote, commit and push"),
        next(s for s in promote["jobs"]["promote"]["steps"] if "Promote" in s.get("name", "")),
    ):
        assert step["env"]["PUSH_TOKEN"] == "${{ secrets.PROMOTION_TOKEN || github.token }}"
    docs = (project / "docs/supply-chain.md").read_text(encoding="utf-8")
    assert "PROMOTION_TOKEN" in docs
    assert "bypass list" in docs
    assert "requires a pull request" in docs


def test_the_release_job_merges_only_promotion_requests(project: Path) -> None:
    requests = [
        {"number": 1, "body": "release-at: 2030-01-31T09:00Z", "reviewDecision": "APPROVED"},
        {
            "number": 2,
            "body": "release-at: 2030-01-31T09:00Z",
            "reviewDecision": "APPROVED",
            "headRefName": "promote/api-prod-3f2c1d9",
        },
        {"iid": 3, "description": "release-at: 2030-01-31T09:00Z", "approved": True},
        {
            "iid": 4,
            "description": "release-at: 2030-01-31T09:00Z",
            "approved": True,
            "source_branch": "promote/web-prod-abc",
        },
        {
            "number": 5,
            "body": "release-at: 2030-01-31T09:00Z",
            "reviewDecision": "APPROVED",
            "headRefName": "feature/promote/sneaky",
        },
    ]
    result = subprocess.run(
        ["python3", "scripts/ci/release_at.py", "due", "--now", "2030-02-01T00:00Z"],
        cwd=project,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["2", "4"]
    assert "#1: not a promotion request" in result.stderr
    assert "#5: not a promotion request" in result.stderr
    release = (project / ".github/workflows/release.yml").read_text(encoding="utf-8")
    assert "--json number,body,reviewDecision,headRefName" in release


def test_the_gitlab_trigger_token_travels_in_the_body_not_the_url(copie_session: Any) -> None:
    project = render(copie_session, ci_provider="gitlab", registry="gitlab")
    cm = yaml.safe_load(
        (project / "deploy/argocd/notifications/argocd-notifications-cm.yaml").read_text("utf-8")
    )
    services = {key: value for key, value in cm["data"].items() if key.startswith("service.")}
    (service,) = services.values()
    definition = yaml.safe_load(service)
    assert "token" not in definition["url"]
    assert "?" not in definition["url"]
    templates = [value for key, value in cm["data"].items() if key.startswith("template.")]
    body = yaml.safe_load(templates[0])["webhook"]
    (webhook,) = body.values()
    assert '"token": "{{ index .secrets "gitlab-promote-trigger-token" }}"' in webhook["body"]
