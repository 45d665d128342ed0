"""Unit tests of the context hook: derived names, the tables, the repository identity."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Environment

from extensions.context import (
    CI_PROVIDERS,
    LANGUAGES,
    PLATFORM_ANSWERS,
    PLATFORM_QUESTIONS,
    SERVICE_QUESTIONS,
    ContextUpdater,
    DeployEnvironment,
    Language,
    PlatformAnswers,
    answers_for_scope,
    default_repo_url,
    derive,
    load_pins,
    repo_host,
    repo_path,
    repository,
    service_descriptor,
)
from tests.helpers import REPO_ROOT

COPIER_YML: dict[str, Any] = yaml.safe_load((REPO_ROOT / "copier.yml").read_text("utf-8"))


def choices(question: str) -> list[str]:
    return list(COPIER_YML[question]["choices"].values())


# --- Derived names ------------------------------------------------------------------------------


def test_derive_names_environments_in_promotion_order() -> None:
    derived = derive("shop", "ghcr.io", "acme/shop", ("dev", "staging", "prod"))
    assert derived.image == "ghcr.io/acme/shop"
    assert derived.chart_dir == "deploy/charts/shop"
    assert derived.prod_env == "prod"
    assert all(isinstance(env, DeployEnvironment) for env in derived.envs)
    assert [(e.name, e.previous, e.is_prod) for e in derived.envs] == [
        ("dev", None, False),
        ("staging", "dev", False),
        ("prod", "staging", True),
    ]
    assert derived.envs[2].namespace == "shop-prod"
    assert derived.envs[2].values_file == "values-prod.yaml"


def test_a_single_environment_is_production() -> None:
    derived = derive("shop", "ghcr.io", "acme/shop", ("live",))
    assert derived.prod_env == "live"
    assert derived.envs[0].is_prod


def test_python_package_is_an_identifier() -> None:
    assert derive("my-shop-2", "h", "r", ("dev",)).python_package == "my_shop_2"


def test_pins_are_loaded_from_versions_yaml() -> None:
    pins = load_pins()
    checkout = pins["github_actions"]["checkout"]["uses"]
    assert checkout.startswith("actions/checkout@")
    assert len(checkout.split("@")[1]) == 40


# --- The tables match the questions -------------------------------------------------------------


def test_languages_table_has_an_entry_per_language_choice() -> None:
    assert list(LANGUAGES) == choices("language")
    for key, language in LANGUAGES.items():
        assert isinstance(language, Language)
        assert language.key == key
        assert language.stack
        assert language.requirements
        assert language.build_context in {".", "apps/$SERVICE"}
        # What the templates read (operations.md, the descriptor, CI caches).
        assert {"key", "stack", "requirements", "build_context", "shared_paths"} <= set(
            language.as_context()
        )


def test_lockfiles_key_each_languages_ci_cache_with_at_most_two_files() -> None:
    """GitLab's cache:key:files takes at most two files; $SERVICE is the service's name."""
    for key, language in LANGUAGES.items():
        assert 1 <= len(language.lockfiles) <= 2, key
        for path in language.lockfiles:
            assert not path.startswith("/"), path
            assert path.startswith("apps/$SERVICE/") or path in language.shared_paths, path


def test_ci_provider_table_has_an_entry_per_ci_provider_choice() -> None:
    assert list(CI_PROVIDERS) == choices("ci_provider")
    for key, provider in CI_PROVIDERS.items():
        assert provider.key == key
        context = provider.as_context()
        empty = [field for field, value in context.items() if value in ("", (), None)]
        assert empty == [], f"{key}: empty fields {empty}"
        assert provider.preview_generator == key  # Argo CD's pull request generator names


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        ("github", ("pull request", "PR", "comment", "workflow run", "repository secret")),
        ("gitlab", ("merge request", "MR", "note", "pipeline", "CI/CD variable")),
    ],
)
def test_ci_provider_words(provider: str, words: tuple[str, ...]) -> None:
    entry = CI_PROVIDERS[provider]
    assert (entry.request, entry.request_short, entry.comment, entry.run, entry.secret) == words


def test_ci_paths_are_where_each_provider_reads_its_definitions() -> None:
    assert CI_PROVIDERS["github"].ci_paths == (".github/",)
    assert CI_PROVIDERS["gitlab"].ci_paths == (".gitlab-ci.yml", ".gitlab/")


def test_questions_are_split_by_lifetime_without_overlap() -> None:
    asked = {name for name in COPIER_YML if not name.startswith("_")}
    platform, service = set(PLATFORM_QUESTIONS), set(SERVICE_QUESTIONS)
    assert not platform & service
    assert platform | service | {"scope"} == asked
    # Platform questions are asked only in platform scope; service questions in both.
    for name in PLATFORM_QUESTIONS:
        assert COPIER_YML[name]["ask"] == "{{ scope == 'platform' }}", name
        assert f"platform.{name}" in COPIER_YML[name]["default"], name
    for name in SERVICE_QUESTIONS:
        assert "ask" not in COPIER_YML[name], name


def test_scope_is_never_asked_and_defaults_to_the_platform() -> None:
    scope = COPIER_YML["scope"]
    assert scope["ask"] is False
    assert scope["default"] == "platform"
    assert choices("scope") == ["platform", "service"]


# --- Repository identity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "provider", "expected"),
    [
        (
            "https://github.com/acme/shop.git",
            "github",
            {
                "host": "github.com",
                "path": "acme/shop",
                "name": "shop",
                "web_url": "https://github.com/acme/shop",
                "api_url": "https://api.github.com",
                "path_encoded": "acme%2Fshop",
                "artifact_attestations": True,
            },
        ),
        (
            "https://github.example.com/platform/shop-mono.git",
            "github",
            {
                "host": "github.example.com",
                "path": "platform/shop-mono",
                "name": "shop-mono",
                "web_url": "https://github.example.com/platform/shop-mono",
                "api_url": "https://github.example.com/api/v3",
                "path_encoded": "platform%2Fshop-mono",
                # GitHub Enterprise Server has no artifact attestations.
                "artifact_attestations": False,
            },
        ),
        (
            "git@github.com:acme/shop.git",
            "github",
            {
                "host": "github.com",
                "path": "acme/shop",
                "web_url": "https://github.com/acme/shop",
                "api_url": "https://api.github.com",
            },
        ),
        (
            "https://gitlab.com/acme/shop.git",
            "gitlab",
            {
                "host": "gitlab.com",
                "path": "acme/shop",
                "api_url": "https://gitlab.com/api/v4",
                "path_encoded": "acme%2Fshop",
                "artifact_attestations": False,
            },
        ),
        (
            "https://gitlab.example.com/acme/team/sub/shop.git",
            "gitlab",
            {
                "host": "gitlab.example.com",
                "path": "acme/team/sub/shop",
                "name": "shop",
                "web_url": "https://gitlab.example.com/acme/team/sub/shop",
                "api_url": "https://gitlab.example.com/api/v4",
                "path_encoded": "acme%2Fteam%2Fsub%2Fshop",
            },
        ),
        (
            "git@gitlab.example.com:acme/team/shop.git",
            "gitlab",
            {
                "host": "gitlab.example.com",
                "path": "acme/team/shop",
                "api_url": "https://gitlab.example.com/api/v4",
                "path_encoded": "acme%2Fteam%2Fshop",
            },
        ),
        (
            "ssh://git@git.acme.io/acme/shop.git",
            "gitlab",
            {
                "host": "git.acme.io",
                "path": "acme/shop",
                "web_url": "https://git.acme.io/acme/shop",
                "api_url": "https://git.acme.io/api/v4",
            },
        ),
    ],
    ids=[
        "github.com",
        "github-enterprise",
        "github-ssh",
        "gitlab.com",
        "gitlab-self-managed-nested-groups",
        "gitlab-ssh-nested",
        "ssh-scheme",
    ],
)
def test_repository_identity(url: str, provider: str, expected: dict[str, object]) -> None:
    identity = repository(url, provider).as_context()
    assert identity["url"] == url
    assert {key: identity[key] for key in expected} == expected


def test_repository_identity_ignores_the_owner_answer() -> None:
    """Issue #9: with owner=acme, a repository elsewhere is still the one everything targets."""
    identity = repository("https://github.example.com/platform/shop-mono.git", "github")
    assert "acme" not in str(identity.as_context())


def test_go_module_of_a_service_is_the_repository_path_plus_its_folder() -> None:
    identity = repository("git@gitlab.example.com:acme/team/shop.git", "gitlab")
    assert identity.go_module("worker") == "gitlab.example.com/acme/team/shop/apps/worker"


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ("github", "https://github.com/acme/shop.git"),
        ("gitlab", "https://gitlab.com/acme/shop.git"),
    ],
)
def test_default_repo_url_is_on_the_providers_public_host(provider: str, url: str) -> None:
    assert default_repo_url(provider, "acme", "shop") == url


def test_repo_host_of_https_and_ssh_urls() -> None:
    assert repo_host("https://gitlab.example.com/acme/shop.git") == "gitlab.example.com"
    assert repo_host("git@github.com:acme/shop.git") == "github.com"
    assert repo_host("ssh://git@git.acme.io/acme/shop.git") == "git.acme.io"


def test_repo_path_of_https_and_ssh_urls() -> None:
    assert repo_path("https://github.com/acme/shop-gitops.git") == "acme/shop-gitops"
    assert repo_path("git@gitlab.example.com:group/sub/shop.git") == "group/sub/shop"
    assert repo_path("https://gitlab.example.com/group/shop") == "group/shop"


# --- Answers by scope ---------------------------------------------------------------------------

ANSWERS: dict[str, Any] = {
    "_commit": "v0.2.0",
    "_src_path": "gh:acme/devops-template",
    "scope": "platform",
    "project_name": "shop",
    "owner": "acme",
    "environments": ["dev", "prod"],
    "project_slug": "api",
    "description": "The API",
    "language": "python",
    "image_repository": "acme/api",
}


def test_platform_answers_file_drops_the_first_services_answers() -> None:
    recorded = answers_for_scope(ANSWERS, "platform")
    assert not set(recorded) & set(SERVICE_QUESTIONS)
    assert recorded == {
        key: value for key, value in ANSWERS.items() if key not in SERVICE_QUESTIONS
    }
    assert recorded["_commit"] == "v0.2.0"  # what `copier update` needs stays


def test_service_answers_file_records_everything_including_the_platforms_answers() -> None:
    answers = {**ANSWERS, "scope": "service"}
    recorded = answers_for_scope(answers, "service")
    assert recorded == answers
    assert recorded is not answers


# --- Descriptor ---------------------------------------------------------------------------------


def descriptor_of(service: str, language: str) -> dict[str, Any]:
    return service_descriptor(
        {
            "project_slug": service,
            "language": language,
            "registry_host": "ghcr.io",
            "image_repository": f"acme/{service}",
        }
    )


@pytest.mark.parametrize(
    ("language", "build_context", "shared"),
    [
        ("python", "apps/api", ["ruff.toml"]),
        (
            "node",
            ".",
            [
                "packages/",
                "package.json",
                "pnpm-lock.yaml",
                "pnpm-workspace.yaml",
                "tsconfig.base.json",
                "eslint.config.js",
                ".prettierrc.json",
            ],
        ),
        ("go", "apps/api", []),
        ("java", "apps/api", []),
    ],
)
def test_descriptor_watches_the_service_its_chart_and_its_languages_shared_paths(
    language: str, build_context: str, shared: list[str]
) -> None:
    descriptor = descriptor_of("api", language)
    assert descriptor == {
        "name": "api",
        "language": language,
        "build_context": build_context,
        "dockerfile": "apps/api/Dockerfile",
        "image": "ghcr.io/acme/api",
        "chart": "deploy/charts/api",
        "watch": ["apps/api/", "deploy/charts/api/", *shared],
    }


def test_descriptors_of_two_services_share_only_language_paths() -> None:
    web, shop = descriptor_of("web", "node"), descriptor_of("shop", "node")
    shared = set(web["watch"]) & set(shop["watch"])
    assert shared == set(LANGUAGES["node"].shared_paths)
    assert not set(descriptor_of("api", "python")["watch"]) & set(descriptor_of("w", "go")["watch"])


# --- Platform answers, read lazily --------------------------------------------------------------


class CountingExternal(Mapping[str, Any]):
    """Stands for Copier's lazy `_external_data`: records every read."""

    def __init__(self, platform: dict[str, Any]) -> None:
        self.platform = platform
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.reads.append(key)
        if key != "platform":
            raise KeyError(key)
        return self.platform

    def __iter__(self) -> Iterator[str]:
        return iter(["platform"])

    def __len__(self) -> int:
        return 1


def test_platform_answers_read_nothing_until_a_key_is_needed(tmp_path: Path) -> None:
    (tmp_path / PLATFORM_ANSWERS).write_text("owner: acme\n", encoding="utf-8")
    external = CountingExternal({"owner": "acme", "_commit": "v1", "project_slug": "first"})
    answers = PlatformAnswers(external, tmp_path / PLATFORM_ANSWERS)
    assert external.reads == []
    assert answers["owner"] == "acme"
    assert external.reads == ["platform"]
    # Only platform questions come through: no internal keys, no service answers.
    assert dict(answers) == {"owner": "acme"}
    assert external.reads == ["platform"]  # read once


def test_platform_answers_are_empty_when_the_file_is_missing(tmp_path: Path) -> None:
    external = CountingExternal({"owner": "acme"})
    answers = PlatformAnswers(external, tmp_path / PLATFORM_ANSWERS)
    assert len(answers) == 0
    assert answers.get("owner", "my-org") == "my-org"
    assert external.reads == []  # Copier would warn about a missing file: never asked


def test_platform_answers_feed_jinja_defaults(tmp_path: Path) -> None:
    (tmp_path / PLATFORM_ANSWERS).write_text("owner: acme\n", encoding="utf-8")
    answers = PlatformAnswers(CountingExternal({"owner": "acme"}), tmp_path / PLATFORM_ANSWERS)
    template = Environment().from_string(
        "{{ platform.owner | default('my-org') }} {{ platform.registry | default('ghcr') }}"
    )
    assert template.render(platform=answers) == "acme ghcr"


# --- The hook -----------------------------------------------------------------------------------


def render_with(context: dict[str, Any]) -> dict[str, Any]:
    environment = Environment(extensions=[ContextUpdater])
    hook = environment.extensions[ContextUpdater.identifier]
    assert isinstance(hook, ContextUpdater)
    hook.hook(context)
    return context


def test_hook_adds_only_pins_and_tables_while_questions_are_being_asked() -> None:
    context = render_with({"project_slug": "shop"})
    assert "pins" in context
    assert set(context["languages"]) == set(LANGUAGES)
    assert context["platform"] == {}
    assert "image" not in context
    assert "descriptor" not in context


def test_hook_adds_derived_values_once_answers_exist() -> None:
    context = render_with(
        {
            "project_slug": "shop",
            "registry_host": "ghcr.io",
            "image_repository": "acme/shop",
            "environments": ["dev", "prod"],
        }
    )
    assert context["image"] == "ghcr.io/acme/shop"
    assert [env["name"] for env in context["envs"]] == ["dev", "prod"]
    assert context["envs"][1]["is_prod"] is True


def test_hook_leaves_invalid_environments_to_the_validator() -> None:
    context = render_with(
        {"project_slug": "s", "registry_host": "h", "image_repository": "r", "environments": []}
    )
    assert "envs" not in context


def test_hook_adds_provider_repository_and_descriptor_of_a_service() -> None:
    context = render_with(
        {
            "scope": "service",
            "project_slug": "worker",
            "language": "go",
            "ci_provider": "gitlab",
            "repo_url": "git@gitlab.example.com:acme/team/shop.git",
            "registry_host": "registry.gitlab.example.com",
            "image_repository": "acme/team/shop/worker",
            "environments": ["dev", "prod"],
            "gitops_repo": "same",
        }
    )
    assert context["ci"]["request"] == "merge request"
    assert context["repo"]["api_url"] == "https://gitlab.example.com/api/v4"
    assert context["repo_host"] == "gitlab.example.com"
    assert context["gitops_url"] == "git@gitlab.example.com:acme/team/shop.git"
    assert context["gitops_separate"] is False
    assert context["go_module"] == "gitlab.example.com/acme/team/shop/apps/worker"
    assert context["language_info"]["key"] == "go"
    assert context["descriptor"]["image"] == "registry.gitlab.example.com/acme/team/shop/worker"
    assert context["platform"] == {}  # no _external_data in this context


def test_hook_points_argo_cd_at_the_separate_configuration_repository() -> None:
    context = render_with(
        {
            "ci_provider": "github",
            "repo_url": "https://github.com/acme/shop.git",
            "gitops_repo": "separate",
            "gitops_repo_url": "https://github.com/acme/shop-config.git",
        }
    )
    assert context["gitops_separate"] is True
    assert context["gitops_url"] == "https://github.com/acme/shop-config.git"
    assert context["gitops_path"] == "acme/shop-config"


def test_hook_gives_a_service_the_platforms_answers_lazily(tmp_path: Path) -> None:
    (tmp_path / PLATFORM_ANSWERS).write_text("owner: acme\n", encoding="utf-8")
    external = CountingExternal({"owner": "acme"})
    context = render_with(
        {"scope": "service", "_external_data": external, "_copier_conf": {"dst_path": tmp_path}}
    )
    assert isinstance(context["platform"], PlatformAnswers)
    assert external.reads == []
    assert context["platform"]["owner"] == "acme"


def test_hook_gives_the_platform_no_platform_answers(tmp_path: Path) -> None:
    external = CountingExternal({"owner": "acme"})
    context = render_with(
        {"scope": "platform", "_external_data": external, "_copier_conf": {"dst_path": tmp_path}}
    )
    assert context["platform"] == {}
    assert external.reads == []


def test_template_cache_compiles_each_source_once_and_renders_any_context() -> None:
    from extensions.cache import TemplateCache

    environment = Environment(extensions=[TemplateCache])
    first = environment.from_string("{{ name }}-{{ env }}")
    assert environment.from_string("{{ name }}-{{ env }}") is first
    assert first.render(name="a", env="dev") == "a-dev"
    assert environment.from_string("{{ name }}-{{ env }}").render(name="b", env="prod") == "b-prod"
    assert environment.from_string("{{ other }}") is not first
