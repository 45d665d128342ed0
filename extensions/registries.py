"""Container registries: image path conventions and how CI authenticates, per CI provider.

Credentials never reach a file of the repository: CI reads them from its own secret store or
exchanges the job's OIDC token for a short-lived one, and writes kaniko's config at run time.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from copier_template_extensions import ContextHook
from jinja2 import Environment


@dataclass(frozen=True)
class Secret:
    """A CI secret or variable the user creates; `secret` ones are masked/protected."""

    name: str
    description: str
    secret: bool = True


@dataclass(frozen=True)
class Registry:
    key: str
    title: str
    host: str  # default registry_host; {owner} is the owner without punctuation
    repository: str  # default image_repository; {owner}, {slug}
    # How kaniko gets credentials: "basic" (user + password/token in config.json),
    # "ecr" / "gcr" / "acr" (kaniko's built-in credential helper fed by an OIDC token).
    kaniko_auth: str
    # Pods need an imagePullSecret (private by default, no cloud identity on the nodes).
    pull_secret: bool
    auth: dict[str, str] = field(default_factory=dict)  # ci_provider -> how CI logs in
    secrets: dict[str, list[Secret]] = field(default_factory=dict)  # ci_provider -> to create
    cluster_pull: str = ""
    # `host` is only an example, no one's registry (an account id, example.com): the question
    # has no default, and the example is refused (check_registry_host); `host_form` shows the
    # shape of a real one.
    placeholder: bool = False
    host_form: str = ""


def basic_login(user: str, password: str) -> list[Secret]:
    """The user (a variable) and password or token (a secret) of a registry login."""
    return [Secret("REGISTRY_USER", user, secret=False), Secret("REGISTRY_PASSWORD", password)]


def on_both(secrets: list[Secret]) -> dict[str, list[Secret]]:
    """The same secrets to create whichever CI provider runs the build."""
    return {"github": secrets, "gitlab": secrets}


GITHUB_OIDC = "the job's OIDC token (`id-token: write`)"
GITLAB_OIDC = "the job's OIDC token (`id_tokens`)"

REGISTRIES: dict[str, Registry] = {
    registry.key: registry
    for registry in [
        Registry(
            key="ghcr",
            title="GitHub Container Registry",
            host="ghcr.io",
            repository="{owner}/{slug}",
            kaniko_auth="basic",
            pull_secret=True,
            auth={
                "github": "the job's `GITHUB_TOKEN` with `packages: write`",
                "gitlab": "a GitHub token with `write:packages` in CI variables",
            },
            secrets={
                "github": [],
                "gitlab": basic_login(
                    "GitHub user owning the token", "GitHub token with write:packages"
                ),
            },
            cluster_pull="the pull secret `registry-credentials` unless the package is public",
        ),
        Registry(
            key="dockerhub",
            title="Docker Hub",
            host="docker.io",
            repository="{owner}/{slug}",
            kaniko_auth="basic",
            pull_secret=False,
            auth={
                "github": "a Docker Hub access token in repository secrets",
                "gitlab": "a Docker Hub access token in CI variables",
            },
            secrets=on_both(
                basic_login(
                    "Docker Hub user or organisation", "Docker Hub access token (read & write)"
                )
            ),
            cluster_pull="nothing for public repositories; an image pull secret otherwise",
        ),
        Registry(
            key="harbor",
            title="Harbor",
            host="harbor.example.com",
            repository="{owner}/{slug}",
            kaniko_auth="basic",
            pull_secret=True,
            auth={
                "github": "a Harbor robot account in repository secrets",
                "gitlab": "a Harbor robot account in CI variables",
            },
            secrets=on_both(
                basic_login(
                    "robot account name, e.g. robot$project+ci",
                    "robot account secret (push to the project)",
                )
            ),
            cluster_pull="an image pull secret with a pull-only robot account",
            placeholder=True,
            host_form="harbor.<your domain>",
        ),
        Registry(
            key="ecr",
            title="Amazon ECR",
            host="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            repository="{slug}",
            kaniko_auth="ecr",
            pull_secret=False,
            auth={"github": GITHUB_OIDC, "gitlab": GITLAB_OIDC},
            secrets=on_both(
                [
                    Secret("AWS_ROLE_ARN", "IAM role CI assumes with OIDC (ecr push)", False),
                    Secret("AWS_REGION", "region of the registry", secret=False),
                ]
            ),
            cluster_pull="the node role (AmazonEC2ContainerRegistryReadOnly)",
            placeholder=True,
            host_form="<account id>.dkr.ecr.<region>.amazonaws.com",
        ),
        Registry(
            key="gar",
            title="Google Artifact Registry",
            host="europe-west1-docker.pkg.dev",
            repository="{owner}/containers/{slug}",
            kaniko_auth="gcr",
            pull_secret=False,
            auth={"github": GITHUB_OIDC, "gitlab": GITLAB_OIDC},
            secrets=on_both(
                [
                    Secret(
                        "GCP_WORKLOAD_IDENTITY_PROVIDER",
                        "projects/<number>/locations/global/workloadIdentityPools/<pool>/"
                        "providers/<provider>",
                        secret=False,
                    ),
                    Secret(
                        "GCP_SERVICE_ACCOUNT",
                        "service account CI impersonates (Artifact Registry Writer)",
                        secret=False,
                    ),
                ]
            ),
            cluster_pull="the nodes' service account (Artifact Registry Reader)",
        ),
        Registry(
            key="acr",
            title="Azure Container Registry",
            host="{owner}.azurecr.io",
            repository="{slug}",
            kaniko_auth="acr",
            pull_secret=False,
            auth={"github": GITHUB_OIDC, "gitlab": GITLAB_OIDC},
            secrets=on_both(
                [
                    Secret(
                        "AZURE_CLIENT_ID", "app registration with a federated credential", False
                    ),
                    Secret("AZURE_TENANT_ID", "tenant of the app registration", secret=False),
                ]
            ),
            cluster_pull="the kubelet identity with AcrPull (`az aks update --attach-acr`)",
        ),
        Registry(
            key="gitlab",
            title="GitLab Container Registry",
            host="registry.gitlab.com",
            repository="{owner}/{slug}",
            kaniko_auth="basic",
            pull_secret=True,
            auth={
                "github": "a GitLab deploy token with `write_registry` in repository secrets",
                "gitlab": "the job's `CI_REGISTRY_USER` / `CI_REGISTRY_PASSWORD`",
            },
            secrets={
                "github": basic_login(
                    "GitLab deploy token user name", "GitLab deploy token (write_registry)"
                ),
                "gitlab": [],
            },
            cluster_pull="an image pull secret with a deploy token (read_registry)",
        ),
    ]
}


# The registry a CI provider brings along: the default answer to `registry`.
DEFAULT_REGISTRY = {"github": "ghcr", "gitlab": "gitlab"}
# An AWS account id that is nobody's (the documentation's own example).
EXAMPLE_ACCOUNT = "123456789012"


def default_registry(ci_provider: str) -> str:
    """The registry of the CI provider itself (its job token can push there)."""
    return DEFAULT_REGISTRY.get(ci_provider, "ghcr")


def check_registry_host(value: object, question: str, registry: str) -> str:
    """Require a host where the registry has no default, and refuse the example hosts (a
    validator: '' when the answer is fine)."""
    host = str(value).strip()
    chosen = REGISTRIES.get(registry)
    form = f", e.g. {chosen.host_form}" if chosen and chosen.host_form else ""
    if not host:
        title = chosen.title if chosen else "the registry"
        return (
            f"{question}: required with {title}: give your registry's host name{form}"
            f" (--data {question}=<host>)."
        )
    examples = {entry.host for entry in REGISTRIES.values() if entry.placeholder}
    if host in examples or EXAMPLE_ACCOUNT in host.split(".", 1)[0]:
        return (
            f"{question}: {host!r} is an example host, no one's registry; give your registry's"
            f" host name{form} (--data {question}=<host>)."
        )
    return ""


def default_registry_host(registry: str, owner: str = "") -> str:
    """The registry's public host, or '' where only the user knows it (a required answer)."""
    if REGISTRIES[registry].placeholder:
        return ""
    host = REGISTRIES[registry].host
    return host.format(owner=re.sub(r"[^a-z0-9]", "", owner.lower()) or "myregistry")


def default_image_repository(registry: str, owner: str, slug: str) -> str:
    return REGISTRIES[registry].repository.format(owner=owner.lower(), slug=slug)


# Per kaniko_auth: the OIDC audience to request, and the variables kaniko's credential helper
# reads inside the kaniko container (credentials are mounted at /kaniko/.docker).
OIDC_AUDIENCE = {
    "ecr": "sts.amazonaws.com",
    "gcr": "https://iam.googleapis.com/{GCP_WORKLOAD_IDENTITY_PROVIDER}",
    "acr": "api://AzureADTokenExchange",
}
KANIKO_ENV = {
    "basic": [],
    "ecr": ["AWS_ROLE_ARN", "AWS_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE=/kaniko/.docker/oidc-token"],
    "gcr": ["GOOGLE_APPLICATION_CREDENTIALS=/kaniko/.docker/gcp-credentials.json"],
    "acr": [
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE=/kaniko/.docker/oidc-token",
    ],
}
# One-time cloud setup that lets CI's OIDC token in; {subject} is the token's subject.
TRUST_SETUP = {
    "ecr": (
        "Create an IAM OIDC identity provider for {issuer} and a role CI assumes with "
        "`sts:AssumeRoleWithWebIdentity`, trusted only for the subject `{subject}`, allowed to "
        "push to the repository (`ecr:GetAuthorizationToken`, `ecr:*LayerUpload*`, "
        "`ecr:PutImage`, `ecr:BatchCheckLayerAvailability`)."
    ),
    "gcr": (
        "Create a workload identity pool and an OIDC provider for {issuer} with an attribute "
        "condition on the subject `{subject}`, and let that principal impersonate a service "
        "account that has Artifact Registry Writer on the repository."
    ),
    "acr": (
        "Create an app registration with a federated credential for {issuer} and the subject "
        "`{subject}`, and give it AcrPush on the registry."
    ),
}
OIDC_ISSUER = {"github": "https://token.actions.githubusercontent.com", "gitlab": "your GitLab"}


def oidc_subject(ci_provider: str, repository_path: str) -> str:
    """The subject claim of a main-branch job's OIDC token (repository path: acme/shop)."""
    if ci_provider == "github":
        return f"repo:{repository_path}:ref:refs/heads/main"
    return f"project_path:{repository_path}:ref_type:branch:ref:main"


# Logins CI provides by itself: no secret to create.
BUILTIN_LOGIN = {
    ("ghcr", "github"): {
        "REGISTRY_USER": "${{ github.actor }}",
        "REGISTRY_PASSWORD": "${{ github.token }}",
    },
    ("gitlab", "gitlab"): {
        "REGISTRY_USER": "$CI_REGISTRY_USER",
        "REGISTRY_PASSWORD": "$CI_REGISTRY_PASSWORD",
    },
}


def login_env(registry: Registry, ci_provider: str) -> dict[str, str]:
    """Environment of the login step: variable -> CI expression that fills it."""
    builtin = BUILTIN_LOGIN.get((registry.key, ci_provider))
    if builtin is not None:
        return dict(builtin)
    if ci_provider == "github":
        return {
            secret.name: f"${{{{ {'secrets' if secret.secret else 'vars'}.{secret.name} }}}}"
            for secret in registry.secrets["github"]
        }
    # GitLab: project CI/CD variables are already in the job's environment.
    return {}


@functools.cache
def registry_context(registry: str, ci_provider: str, repository_path: str = "") -> dict[str, Any]:
    """What templates need about the chosen registry for the chosen CI provider."""
    chosen = REGISTRIES[registry]
    trust = TRUST_SETUP.get(chosen.kaniko_auth, "")
    return {
        "trust_setup": trust.format(
            issuer=OIDC_ISSUER[ci_provider], subject=oidc_subject(ci_provider, repository_path)
        ),
        "login_env": login_env(chosen, ci_provider),
        "kaniko_env": KANIKO_ENV[chosen.kaniko_auth],
        "oidc_audience": OIDC_AUDIENCE.get(chosen.kaniko_auth, "").format(
            GCP_WORKLOAD_IDENTITY_PROVIDER=(
                "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"
                if ci_provider == "github"
                else "$GCP_WORKLOAD_IDENTITY_PROVIDER"
            )
        ),
        "key": chosen.key,
        "title": chosen.title,
        "kaniko_auth": chosen.kaniko_auth,
        "pull_secret": chosen.pull_secret,
        "auth": chosen.auth[ci_provider],
        "secrets": [asdict(secret) for secret in chosen.secrets[ci_provider]],
        "cluster_pull": chosen.cluster_pull,
        "oidc": chosen.kaniko_auth in {"ecr", "gcr", "acr"},
    }


class RegistryExtension(ContextHook):
    """Filters for the registry defaults, and `registry_info` once the answers exist."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["default_registry"] = default_registry
        environment.filters["default_registry_host"] = default_registry_host
        environment.filters["check_registry_host"] = check_registry_host
        environment.filters["default_image_repository"] = default_image_repository

    def hook(self, context: dict[str, Any]) -> None:
        # Runs after ContextUpdater's hook (listed before it in copier.yml), which sets `repo`:
        # the repository identity whose path is the OIDC subject.
        registry, ci_provider = context.get("registry"), context.get("ci_provider")
        if registry in REGISTRIES and ci_provider in ("github", "gitlab"):
            repo = context.get("repo") or {}
            context["registry_info"] = registry_context(
                str(registry), str(ci_provider), str(repo.get("path", ""))
            )
