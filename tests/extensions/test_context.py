"""Unit tests of the context hook's derived values."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from extensions.context import ContextUpdater, derive, load_pins, repo_host, repo_path


def test_derive_names_environments_in_promotion_order() -> None:
    derived = derive("shop", "ghcr.io", "acme/shop", ("dev", "staging", "prod"))
    assert derived.image == "ghcr.io/acme/shop"
    assert derived.chart_dir == "deploy/charts/shop"
    assert derived.prod_env == "prod"
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


def render_with(context: dict[str, Any]) -> dict[str, Any]:
    environment = Environment(extensions=[ContextUpdater])
    hook = environment.extensions[ContextUpdater.identifier]
    assert isinstance(hook, ContextUpdater)
    hook.hook(context)
    return context


def test_hook_adds_only_pins_while_questions_are_being_asked() -> None:
    context = render_with({"project_slug": "shop"})
    assert "pins" in context
    assert "image" not in context


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


def test_repo_host_of_https_and_ssh_urls() -> None:
    assert repo_host("https://gitlab.example.com/acme/shop.git") == "gitlab.example.com"
    assert repo_host("git@github.com:acme/shop.git") == "github.com"
    assert repo_host("ssh://git@git.acme.io/acme/shop.git") == "git.acme.io"


def test_template_cache_compiles_each_source_once_and_renders_any_context() -> None:
    from extensions.cache import TemplateCache

    environment = Environment(extensions=[TemplateCache])
    first = environment.from_string("{{ name }}-{{ env }}")
    assert environment.from_string("{{ name }}-{{ env }}") is first
    assert first.render(name="a", env="dev") == "a-dev"
    assert environment.from_string("{{ name }}-{{ env }}").render(name="b", env="prod") == "b-prod"
    assert environment.from_string("{{ other }}") is not first


def test_repo_path_of_https_and_ssh_urls() -> None:
    assert repo_path("https://github.com/acme/shop-gitops.git") == "acme/shop-gitops"
    assert repo_path("git@gitlab.example.com:group/sub/shop.git") == "group/sub/shop"
    assert repo_path("https://gitlab.example.com/group/shop") == "group/shop"
