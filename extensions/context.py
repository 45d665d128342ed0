"""Context hook: every derived name and flag the templates read.

Templates only read these values; the logic that computes them lives here, typed and unit
tested (tests/extensions/). Copier creates a Jinja context for every file and path it renders, so
`derive` is memoised on the answers it depends on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from copier_template_extensions import ContextHook
from jinja2 import Environment

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
DEFAULT_PORT = 8080
# Probe paths every service implements, whatever its language (the service contract).
PROBES = {"liveness": "/healthz", "readiness": "/readyz", "metrics": "/metrics"}


# --- Languages: what a developer needs locally, how CI builds the image, what a change affects -


@dataclass(frozen=True)
class Sizing:
    """Resources of a service's container and the runtime settings that fit them.

    Derived from the generated service measured under load (docs/performance.md); the chart's
    values.yaml starts from them.
    """

    cpu_request: str
    memory_request: str
    memory_limit: str
    # Environment variables that size the runtime to memory_limit (heap, GC), name -> value.
    runtime_env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Language:
    key: str
    stack: str
    requirements: str
    # Build context of the image: the service folder, or the repository root for a pnpm
    # workspace that shares packages/ ($SERVICE is the service's name).
    build_context: str
    # Shared files outside apps/<service>/ that the service's build and tests read: a change to
    # one of them selects every service of this language (scripts/ci/services.py affected).
    shared_paths: tuple[str, ...] = ()
    # Files that pin the service's dependencies (at most two: GitLab's cache:key:files): CI
    # caches keyed on them are downloaded again only when they change.
    lockfiles: tuple[str, ...] = ()
    # Default requests, limits and runtime settings of the service's container.
    sizing: Sizing = Sizing(cpu_request="100m", memory_request="128Mi", memory_limit="256Mi")

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


LANGUAGES: dict[str, Language] = {
    "python": Language(
        key="python",
        stack=(
            "FastAPI on uvicorn, dependencies locked with uv (requirements*.txt with hashes), "
            "pytest with pytest-cov, ruff for lint and format"
        ),
        requirements="GNU make, Python 3.11+ and [uv](https://docs.astral.sh/uv/)",
        build_context="apps/$SERVICE",
        shared_paths=("ruff.toml",),
        lockfiles=("apps/$SERVICE/requirements-dev.txt", "apps/$SERVICE/requirements.txt"),
        # One uvicorn process; CPython has no heap setting to size.
        sizing=Sizing(cpu_request="100m", memory_request="64Mi", memory_limit="192Mi"),
    ),
    "node": Language(
        key="node",
        stack=(
            "TypeScript on Fastify in a pnpm workspace (shared code in packages/), prom-client, "
            "vitest with v8 coverage, eslint with typescript-eslint, prettier, tsc"
        ),
        requirements=(
            "GNU make, Node.js 20.19+ (the image runs Node.js 24 LTS) and pnpm through "
            "corepack (`corepack enable pnpm`)"
        ),
        build_context=".",
        shared_paths=(
            "packages/",
            "package.json",
            "pnpm-lock.yaml",
            "pnpm-workspace.yaml",
            "tsconfig.base.json",
            "eslint.config.js",
            ".prettierrc.json",
        ),
        lockfiles=("pnpm-lock.yaml",),
        # V8's old space capped well below the limit: the rest is code, buffers and new space.
        sizing=Sizing(
            cpu_request="100m",
            memory_request="128Mi",
            memory_limit="256Mi",
            runtime_env=(("NODE_OPTIONS", "--max-old-space-size=160"),),
        ),
    ),
    "go": Language(
        key="go",
        stack=(
            "net/http with log/slog and the Prometheus client, go vet and staticcheck, "
            "go test -race through gotestsum, a static binary on distroless"
        ),
        requirements=(
            "GNU make, Go 1.21+ (it fetches the toolchain go.mod names) and a C compiler for "
            "`go test -race`"
        ),
        build_context="apps/$SERVICE",
        lockfiles=("apps/$SERVICE/go.mod", "apps/$SERVICE/go.sum"),
        # GOMEMLIMIT at ~80% of the limit: the GC works harder before the kernel OOM-kills.
        sizing=Sizing(
            cpu_request="50m",
            memory_request="32Mi",
            memory_limit="128Mi",
            runtime_env=(("GOMEMLIMIT", "100MiB"),),
        ),
    ),
    "java": Language(
        key="java",
        stack=(
            "Spring Boot with Actuator (probes and Prometheus), Maven, JUnit 5 with JaCoCo, "
            "Spotless with google-java-format, a layered jar on a distroless JRE"
        ),
        requirements="GNU make, JDK 25 (set JAVA_HOME) and Maven 3.8+",
        build_context="apps/$SERVICE",
        lockfiles=("apps/$SERVICE/pom.xml",),
        # Container-aware heap at 50% of the limit (metaspace, code cache and thread stacks
        # need the rest) and the serial GC: the smallest footprint, and the most requests/s of
        # serial, G1 and parallel on two cores (docs/services.md).
        sizing=Sizing(
            cpu_request="250m",
            memory_request="256Mi",
            memory_limit="512Mi",
            runtime_env=(
                ("JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=50 -XX:+UseSerialGC -Xss512k"),
            ),
        ),
    ),
}

# Answers of the platform application (.copier-answers.yml). A service records them too (so its
# own updates replay what it was rendered with); `make update` passes the platform's current
# ones on. Every other question is the service's own.
PLATFORM_QUESTIONS = (
    "project_name",
    "owner",
    "ci_provider",
    "repo_url",
    "registry",
    "registry_host",
    "deploy_target",
    "gitops_repo",
    "gitops_repo_url",
    "preview_environments",
    "environments",
    "coverage_threshold",
)
PLATFORM_ANSWERS = ".copier-answers.yml"
SERVICE_QUESTIONS = (
    "project_slug",
    "description",
    "language",
    "kind",
    "trigger",
    "bucket",
    "prefix",
    "object_key",
    "schedule",
    "timezone",
    "event_bus",
    "image_repository",
)


# --- Job triggers: the Argo Events EventSource per trigger, and what its event gives the job ----


@dataclass(frozen=True)
class EventField:
    """One workflow parameter and where the Sensor reads it in the event (Argo Events)."""

    # Workflow parameter, and the environment variable of the job's containers (the job contract).
    parameter: str
    env: str
    # Path in the event's data (dataKey) or its CloudEvents context (contextKey).
    data_key: str = ""
    context_key: str = ""
    # Value when the event lacks the field (optional fields of the contract); None: required.
    default: str | None = None


# The job contract's optional event fields: when absent, the job reads the object's own.
OPTIONAL = ""


@dataclass(frozen=True)
class Trigger:
    key: str
    title: str
    # Field of the EventSource spec (Argo Events calls S3-compatible notifications `minio`).
    event_source: str
    # What the Sensor passes on to the workflow; the rest comes from the chart's values.
    fields: tuple[EventField, ...]
    # Service questions this trigger asks (copier.yml `when`).
    questions: tuple[str, ...]
    # Go template (sprig) over the event that gives the object's lock key (bucket/key), or ""
    # when the object is fixed by the values (calendar): the chart hashes it then.
    lock_template: str = ""

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


TRIGGERS: dict[str, Trigger] = {
    "s3": Trigger(
        key="s3",
        title="S3-compatible bucket notifications (MinIO)",
        event_source="minio",
        fields=(
            EventField("bucket", "EVENT_BUCKET", data_key="notification.0.s3.bucket.name"),
            EventField("key", "EVENT_KEY", data_key="notification.0.s3.object.key"),
            EventField(
                "etag", "EVENT_ETAG", data_key="notification.0.s3.object.eTag", default=OPTIONAL
            ),
            EventField(
                "size", "EVENT_SIZE", data_key="notification.0.s3.object.size", default=OPTIONAL
            ),
            EventField(
                "event-time", "EVENT_TIME", data_key="notification.0.eventTime", default=OPTIONAL
            ),
        ),
        questions=("bucket", "prefix"),
        lock_template=(
            '{{ $record := index .Input.notification 0 }}{{ printf "%s/%s" '
            "$record.s3.bucket.name $record.s3.object.key | sha256sum | trunc 32 }}"
        ),
    ),
    "calendar": Trigger(
        key="calendar",
        title="A schedule (cron with a time zone)",
        event_source="calendar",
        # The event's data says `eventTime` in Go's time.String() form ("2026-12-01 02:00:00
        # +0100 CET m=+..."), not RFC 3339; the CloudEvents context's `time` is RFC 3339.
        fields=(EventField("event-time", "EVENT_TIME", context_key="time", default=OPTIONAL),),
        questions=("bucket", "object_key", "schedule", "timezone"),
    ),
    "webhook": Trigger(
        key="webhook",
        title="An HTTP webhook (JSON body naming the object)",
        event_source="webhook",
        fields=(
            EventField("bucket", "EVENT_BUCKET", data_key="body.bucket"),
            EventField("key", "EVENT_KEY", data_key="body.key"),
            EventField("etag", "EVENT_ETAG", data_key="body.etag", default=OPTIONAL),
            EventField("size", "EVENT_SIZE", data_key="body.size", default=OPTIONAL),
            EventField("event-time", "EVENT_TIME", context_key="time", default=OPTIONAL),
        ),
        questions=(),
        lock_template=(
            '{{ printf "%s/%s" .Input.body.bucket .Input.body.key | sha256sum | trunc 32 }}'
        ),
    ),
}
# Every event field of the job contract, in the order the workflow's containers list them.
EVENT_FIELDS = ("bucket", "key", "etag", "size", "event-time")
# Namespace of every job of an environment: the jobs share the environment's EventBus, and
# Argo Events connects EventSources and Sensors only to an EventBus of their own namespace.
JOBS_NAMESPACE = "jobs"


@functools.cache
def other_jobs(destination: Path, service: str) -> tuple[str, ...]:
    """Jobs of the repository at `destination` besides `service` (their descriptors say so)."""
    names = []
    for descriptor in sorted(destination.glob("apps/*/catalog-info.yaml")):
        try:
            document = yaml.safe_load(descriptor.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        name = str(document.get("metadata", {}).get("name", ""))
        if document.get("spec", {}).get("type") == "job" and name != service:
            names.append(name)
    return tuple(names)


# --- CI providers: words and behaviours per provider, in one table ------------------------------
@dataclass(frozen=True)
class CIProvider:
    key: str
    title: str
    # Where a repository lives when the user gives no URL.
    default_host: str
    # Change request and the comment CI keeps on it.
    request: str
    request_short: str
    comment: str
    # What CI calls a pipeline run and a stored credential.
    run: str
    secret: str
    # Where the CI definitions live, for docs and change detection. (OIDC issuers and subjects
    # are in extensions/registries.py, beside the registries that use them.)
    ci_paths: tuple[str, ...]
    # Argo CD's pull-request generator for preview environments.
    preview_generator: str
    # Secret in the argocd namespace that the notification and preview generator read.
    token_secret: str

    def api_url(self, host: str) -> str:
        """REST API root of the provider on `host` (public or self-managed)."""
        if self.key == "github":
            return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
        return f"https://{host}/api/v4"

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


CI_PROVIDERS: dict[str, CIProvider] = {
    "github": CIProvider(
        key="github",
        title="GitHub Actions",
        default_host="github.com",
        request="pull request",
        request_short="PR",
        comment="comment",
        run="workflow run",
        secret="repository secret",
        ci_paths=(".github/",),
        preview_generator="github",
        token_secret="github-token",
    ),
    "gitlab": CIProvider(
        key="gitlab",
        title="GitLab CI",
        default_host="gitlab.com",
        request="merge request",
        request_short="MR",
        comment="note",
        run="pipeline",
        secret="CI/CD variable",
        ci_paths=(".gitlab-ci.yml", ".gitlab/"),
        preview_generator="gitlab",
        token_secret="gitlab-token",
    ),
}


def default_repo_url(ci_provider: str, owner: str, name: str) -> str:
    """https URL of the repository when the user gives none."""
    return f"https://{CI_PROVIDERS[ci_provider].default_host}/{owner}/{name}.git"


@dataclass(frozen=True)
class Repository:
    """One identity of the repository, derived from repo_url and used everywhere."""

    url: str
    host: str
    path: str
    name: str
    web_url: str
    api_url: str
    path_encoded: str
    # GitHub's artifact attestations (`actions/attest-build-provenance`, `gh attestation
    # verify`) exist on github.com only, not on GitHub Enterprise Server.
    artifact_attestations: bool

    def go_module(self, service: str) -> str:
        """Go module path of a service: the repository path plus apps/<service>."""
        return f"{self.host}/{self.path}/apps/{service}"

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


def repository(repo_url: str, ci_provider: str) -> Repository:
    """Identity of the repository at `repo_url` (https or ssh) on `ci_provider`."""
    host, path = repo_host(repo_url), repo_path(repo_url)
    return Repository(
        url=repo_url,
        host=host,
        path=path,
        name=path.rsplit("/", 1)[-1],
        web_url=f"https://{host}/{path}",
        api_url=CI_PROVIDERS[ci_provider].api_url(host),
        path_encoded=quote(path, safe=""),
        artifact_attestations=ci_provider == "github" and host == "github.com",
    )


@functools.cache
def load_pins() -> dict[str, Any]:
    """Pinned versions of images, tools and actions (extensions/versions.yaml)."""
    with VERSIONS_FILE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@dataclass(frozen=True)
class DeployEnvironment:
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
    envs: list[DeployEnvironment] = field(default_factory=list)

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
        DeployEnvironment(
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


class PlatformAnswers(Mapping[str, Any]):
    """The platform's answers, read from .copier-answers.yml only when a default needs one.

    Copier's `_external_data` is lazy too; reading it only on access keeps Copier quiet in the
    temporary copies an update renders, where the file does not exist.
    """

    def __init__(self, external: Mapping[str, Any], answers_file: Path) -> None:
        self._external = external
        self._answers_file = answers_file
        self._answers: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._answers is None:
            exists = self._answers_file.is_file()
            loaded = (self._external.get("platform") if exists else None) or {}
            self._answers = {
                key: value for key, value in dict(loaded).items() if key in PLATFORM_QUESTIONS
            }
        return self._answers

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def answers_for_scope(answers: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """What an answers file records: the platform drops the first service's answers."""
    if scope != "platform":
        return dict(answers)
    return {key: value for key, value in answers.items() if key not in SERVICE_QUESTIONS}


def service_descriptor(context: Mapping[str, Any]) -> dict[str, Any]:
    """What CI and Argo CD read about a service at run time (apps/<service>/catalog-info.yaml)."""
    service = str(context["project_slug"])
    language = LANGUAGES[str(context["language"])]
    return {
        "name": service,
        "language": language.key,
        "build_context": language.build_context.replace("$SERVICE", service),
        "dockerfile": f"apps/{service}/Dockerfile",
        "image": f"{context['registry_host']}/{context['image_repository']}",
        "chart": f"deploy/charts/{service}",
        "watch": [f"apps/{service}/", f"deploy/charts/{service}/", *language.shared_paths],
    }


class ContextUpdater(ContextHook):
    """Adds `pins` always, and the derived names once the answers they need exist."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["default_repo_url"] = default_repo_url
        environment.filters["answers_for_scope"] = answers_for_scope

    def hook(self, context: dict[str, Any]) -> None:
        context["pins"] = load_pins()
        context["languages"] = {key: lang.as_context() for key, lang in LANGUAGES.items()}
        context["service_questions"] = list(SERVICE_QUESTIONS)
        context["triggers"] = {key: trigger.as_context() for key, trigger in TRIGGERS.items()}
        if context.get("scope") == "service" and "_copier_conf" in context:
            # The first job of a repository creates the EventBus (the `event_bus` question).
            destination = Path(str(context["_copier_conf"]["dst_path"]))
            context["first_job"] = not other_jobs(destination, str(context.get("project_slug")))
        else:
            context["first_job"] = True
        if context.get("scope") == "service" and "_external_data" in context:
            answers_file = Path(str(context["_copier_conf"]["dst_path"])) / PLATFORM_ANSWERS
            context["platform"] = PlatformAnswers(context["_external_data"], answers_file)
        else:
            context["platform"] = {}
        if context.get("language") in LANGUAGES:
            context["language_info"] = LANGUAGES[str(context["language"])].as_context()
        if context.get("ci_provider") in CI_PROVIDERS:
            context["ci"] = CI_PROVIDERS[str(context["ci_provider"])].as_context()
        if "repo_url" in context and context.get("ci_provider") in CI_PROVIDERS:
            repo = repository(str(context["repo_url"]), str(context["ci_provider"]))
            context["repo"] = repo.as_context()
            context["repo_host"] = repo.host
            # The repository Argo CD reads: this one, or the separate configuration repository.
            separate = context.get("gitops_repo") == "separate" and "gitops_repo_url" in context
            context["gitops_url"] = context["gitops_repo_url" if separate else "repo_url"]
            context["gitops_separate"] = separate
            context["gitops_path"] = repo_path(str(context["gitops_url"]))
            if "project_slug" in context:
                context["go_module"] = repo.go_module(str(context["project_slug"]))
        try:
            slug = context["project_slug"]
            host = context["registry_host"]
            repository_path = context["image_repository"]
            environments = context["environments"]
        except KeyError:
            return  # still asking questions: defaults and validators don't need derived values
        if not isinstance(environments, list) or not environments:
            return  # the environments validator reports this
        context.update(
            derived_context(
                str(slug), str(host), str(repository_path), tuple(map(str, environments))
            )
        )
        if context.get("language") in LANGUAGES:
            context["descriptor"] = service_descriptor(context)
        context["jobs_namespace"] = JOBS_NAMESPACE
        if context.get("trigger") in TRIGGERS:
            context["trigger_info"] = TRIGGERS[str(context["trigger"])].as_context()
            context["event_fields"] = list(EVENT_FIELDS)
