#!/usr/bin/env python3
"""SLSA v1 provenance predicate of an image build, from the CI run's own variables.

    python3 scripts/ci/provenance.py IMAGE@sha256:... --output provenance.json

scripts/ci/attest attaches it (cosign attest --type slsaprovenance1), signed by the same CI
identity as the image, so `cosign verify-attestation --type slsaprovenance1` shows who built
what from which commit. The build type names the CI provider; the external parameters are the
repository, the commit and the workflow or pipeline; the run's address is the builder's
invocation id. Run outside CI it records the local git commit and builder id "local".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUILD_TYPE = "https://github.com/devops-template/slsa-buildtypes/kaniko/v1"


def commit() -> str:
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(name):
            return os.environ[name]
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def ci_fields(env: dict[str, str]) -> dict[str, Any]:
    """Repository, workflow, builder and run of the CI provider this runs on."""
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "")
        repository = f"{server}/{env.get('GITHUB_REPOSITORY', '')}"
        run = f"{repository}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        return {
            "provider": "github-actions",
            "repository": repository,
            "ref": env.get("GITHUB_REF", ""),
            "workflow": env.get("GITHUB_WORKFLOW_REF", ""),
            "builder": f"{server}/actions/runner/{env.get('RUNNER_ENVIRONMENT', 'github-hosted')}",
            "invocation": f"{run}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}",
        }
    if env.get("GITLAB_CI") == "true":
        return {
            "provider": "gitlab-ci",
            "repository": env.get("CI_PROJECT_URL", ""),
            "ref": env.get("CI_COMMIT_REF_NAME", ""),
            "workflow": f"{env.get('CI_PROJECT_PATH', '')}/.gitlab-ci.yml",
            "builder": f"{env.get('CI_SERVER_URL', '')}/runner/{env.get('CI_RUNNER_ID', '')}",
            "invocation": env.get("CI_JOB_URL", ""),
        }
    return {
        "provider": "local",
        "repository": "",
        "ref": "",
        "workflow": "",
        "builder": "local",
        "invocation": "",
    }


def predicate(image: str, env: dict[str, str], started: str | None) -> dict[str, Any]:
    fields = ci_fields(env)
    sha = commit()
    source = {"uri": f"git+{fields['repository']}@{fields['ref']}", "digest": {"gitCommit": sha}}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "ciProvider": fields["provider"],
                "repository": fields["repository"],
                "ref": fields["ref"],
                "workflow": fields["workflow"],
                "image": image,
            },
            "internalParameters": {},
            "resolvedDependencies": [source],
        },
        "runDetails": {
            "builder": {"id": fields["builder"]},
            "metadata": {
                "invocationId": fields["invocation"],
                "startedOn": started or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="the image, IMAGE@sha256:...")
    parser.add_argument("--output", type=Path, required=True, help="predicate file to write")
    parser.add_argument("--started", help="when the build started (RFC 3339)")
    args = parser.parse_args(argv)
    if "@sha256:" not in args.image:
        print(f"provenance: {args.image} is not pinned by digest", file=sys.stderr)
        return 2
    document = predicate(args.image, dict(os.environ), args.started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"provenance: SLSA v1 predicate of {args.image} in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
