"""Context hook: every derived name and flag the templates read.

Templates only read these values; the logic that computes them lives here, typed and unit
tested (tests/extensions/). Copier creates a Jinja context for every file and path it renders, so
`derive` is memoised on the answers it depends on.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from copier_template_extensions import ContextHook

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
DEFAULT_PORT = 8080
# Probe paths every service implements, whatever its language (the service contract).
PROBES = {"liveness": "/healthz", "readiness": "/readyz", "metrics": "/metrics"}


# Per language: what a developer needs locally, and the build context of the image (the
# service folder, or the repository root for a pnpm workspace that shares packages/).
LANGUAGES: dict[str, dict[str, str]] = {
    "python": {
        "stack": (
            "FastAPI on uvicorn, dependencies locked with uv (requirements*.txt with hashes), "
            "pytest with pytest-cov, ruff for lint and format"
        ),
        "requirements": "GNU make, Python 3.11+ and [uv](https://docs.astral.sh/uv/)",
        "build_context": "apps/$SERVICE",
    },
    "node": {
        "stack": (
            "TypeScript on Fastify in a pnpm workspace (shared code in packages/), prom-client, "
            "vitest with v8 coverage, eslint with typescript-eslint, prettier, tsc"
        ),
        "requirements": (
            "GNU make, Node.js 20.19+ (the image runs Node.js 24 LTS) and pnpm through "
            "corepack (`corepack enable pnpm`)"
        ),
        "build_context": ".",
    },
    "go": {
        "stack": (
            "net/http with log/slog and the Prometheus client, go vet and staticcheck, "
            "go test -race through gotestsum, a static binary on distroless"
        ),
        "requirements": (
            "GNU make, Go 1.21+ (it fetches the toolchain go.mod names) and a C compiler for "
            "`go test -race`"
        ),
        "build_context": "apps/$SERVICE",
    },
    "java": {
        "stack": (
            "Spring Boot with Actuator (probes and Prometheus), Maven, JUnit 5 with JaCoCo, "
            "Spotless with google-java-format, a layered jar on a distroless JRE"
        ),
        "requirements": "GNU make, JDK 25 (set JAVA_HOME) and Maven 3.8+",
        "build_context": "apps/$SERVICE",
    },
}


@functools.cache
def load_pins() -> dict[str, Any]:
    """Pinned versions of images, tools and actions (extensions/versions.yaml)."""
    with VERSIONS_FILE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    values_file: str
    is_prod: bool
    previous: str | None


@dataclass(frozen=True)
class Derived:
    service: str
    python_package: str
    service_dir: str
    chart_dir: str
    image: str
    port: int
    probes: dict[str, str]
    prod_env: str
    envs: list[Environment] = field(default_factory=list)

    def as_context(self) -> dict[str, Any]:
        context = asdict(self)
        context["envs"] = [asdict(env) for env in self.envs]
        return context


@functools.cache
def derive(
    project_slug: str, registry_host: str, image_repository: str, environments: tuple[str, ...]
) -> Derived:
    """Compute the names the templates share from the answers."""
    prod_env = environments[-1]
    envs = [
        Environment(
            name=env,
            namespace=f"{project_slug}-{env}",
            values_file=f"values-{env}.yaml",
            is_prod=env == prod_env,
            previous=environments[index - 1] if index else None,
        )
        for index, env in enumerate(environments)
    ]
    return Derived(
        service=project_slug,
        python_package=project_slug.replace("-", "_"),
        service_dir=f"apps/{project_slug}",
        chart_dir=f"deploy/charts/{project_slug}",
        image=f"{registry_host}/{image_repository}",
        port=DEFAULT_PORT,
        probes=dict(PROBES),
        prod_env=prod_env,
        envs=envs,
    )


@functools.cache
def derived_context(
    project_slug: str, registry_host: str, image_repository: str, environments: tuple[str, ...]
) -> dict[str, Any]:
    """`derive` as template variables, built once per set of answers (templates only read it)."""
    return derive(project_slug, registry_host, image_repository, environments).as_context()


def repo_host(repo_url: str) -> str:
    """Host of an https:// or ssh git URL (the GitLab or GitHub server CI talks to)."""
    match = re.match(r"^(?:https://|ssh://git@|git@)([^/:]+)", repo_url)
    return match.group(1) if match else ""


def repo_path(repo_url: str) -> str:
    """Project path of a git URL, e.g. acme/shop-gitops (for gh -R and GitLab's API)."""
    match = re.match(r"^(?:https://[^/]+/|ssh://git@[^/]+/|git@[^:]+:)(.+?)(?:\.git)?/?$", repo_url)
    return match.group(1) if match else ""


class ContextUpdater(ContextHook):
    """Adds `pins` always, and the derived names once the answers they need exist."""

    def hook(self, context: dict[str, Any]) -> None:
        context["pins"] = load_pins()
        if context.get("language") in LANGUAGES:
            context["language_info"] = LANGUAGES[str(context["language"])]
        if "repo_url" in context:
            context["repo_host"] = repo_host(str(context["repo_url"]))
            # The repository Argo CD reads: this one, or the separate configuration repository.
            separate = context.get("gitops_repo") == "separate" and "gitops_repo_url" in context
            context["gitops_url"] = context["gitops_repo_url" if separate else "repo_url"]
            context["gitops_separate"] = separate
            context["gitops_path"] = repo_path(str(context["gitops_url"]))
        try:
            slug = context["project_slug"]
            host = context["registry_host"]
            repository = context["image_repository"]
            environments = context["environments"]
        except KeyError:
            return  # still asking questions: defaults and validators don't need derived values
        if not isinstance(environments, list) or not environments:
            return  # the environments validator reports this
        context.update(
            derived_context(str(slug), str(host), str(repository), tuple(map(str, environments)))
        )
