"""Unit tests of the pure functions behind filters and validators."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import yaml

from extensions import filters
from extensions.registries import (
    REGISTRIES,
    default_image_repository,
    default_registry_host,
    oidc_subject,
    registry_context,
)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("my-service", "my-service"),
        ("My Service", "my-service"),
        ("Café  Übersicht!", "cafe-ubersicht"),
        ("42 answers", "answers"),
        ("***", "service"),
        ("a" * 60, "a" * 40),
        ("a" * 39 + " b", "a" * 39),
    ],
)
def test_slugify_makes_a_dns_label_of_at_most_40_characters(text: str, slug: str) -> None:
    assert filters.slugify(text) == slug
    assert filters.check_dns_label(filters.slugify(text), "project_slug", 40) == ""


@pytest.mark.parametrize(
    "text",
    ['He said: "hi" # {{ x }} {% y %}', "colon: here", "ünïcødé ✓", "back\\slash", "'single'"],
)
def test_quote_is_a_literal_in_yaml_json_toml_and_python(text: str) -> None:
    literal = filters.quote(text)
    assert yaml.safe_load(f"key: {literal}") == {"key": text}
    assert json.loads(literal) == text
    assert tomllib.loads(f"key = {literal}") == {"key": text}
    assert eval(literal) == text  # a Python string literal, nothing else


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["dev", "staging", "prod"], ""),
        ([], "at least one"),
        ("dev", "at least one"),
        (["dev", 3], "is not a name"),
        (["dev", "dev"], "listed twice"),
        (["Dev"], "DNS-1123"),
    ],
)
def test_check_environments(value: Any, message: str) -> None:
    result = filters.check_environments(value)
    assert (message in result) if message else result == ""
    if message:
        assert result.startswith("environments: ")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (100, True), ("80", True), (101, False), (-1, False), ("x", False), (True, False)],
)
def test_check_int_range(value: Any, ok: bool) -> None:
    result = filters.check_int_range(value, "coverage_threshold", 0, 100)
    assert (result == "") is ok
    assert ok or result.startswith("coverage_threshold: ")


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("owner", ["acme", "Acme-Corp", "acme/platform"], ["", "a b", "-x", "acme/"]),
        ("image_repository", ["acme/svc", "a/b/c", "svc_1"], ["Acme/svc", "a//b", "-a"]),
        ("registry_host", ["ghcr.io", "localhost:5000", "a.b.c"], ["https://x", "UP.io", "a_b"]),
        ("repo_url", ["https://x.io/a/b.git", "git@x.io:a/b.git"], ["http://x/a", "x", ""]),
    ],
)
def test_check_pattern(kind: str, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert filters.check_pattern(value, kind, kind) == "", value
    for value in bad:
        assert filters.check_pattern(value, kind, kind).startswith(f"{kind}: "), value


def test_check_text_refuses_empty_multiline_and_long_text() -> None:
    assert filters.check_text("fine: text # ok", "description") == ""
    assert "empty" in filters.check_text("  ", "description")
    assert "single line" in filters.check_text("a\nb", "description")
    assert "at most 5" in filters.check_text("abcdef", "description", 5)


@pytest.mark.parametrize("registry", sorted(REGISTRIES))
def test_registry_defaults_pass_their_own_validators(registry: str) -> None:
    host = default_registry_host(registry, "Acme.Corp")
    repository = default_image_repository(registry, "Acme", "svc")
    if REGISTRIES[registry].placeholder:
        assert host == ""  # no default: the user's own host is required
    else:
        assert filters.check_pattern(host, "registry_host", "registry_host") == ""
    assert filters.check_pattern(repository, "image_repository", "image_repository") == ""


@pytest.mark.parametrize(
    ("scope", "service", "path"),
    [
        ("platform", "api", ".copier-answers.yml"),
        ("service", "api", ".copier-answers.api.yml"),
        ("service", "billing-v2", ".copier-answers.billing-v2.yml"),
    ],
)
def test_answers_file_sits_at_the_repository_root_one_per_application(
    scope: str, service: str, path: str
) -> None:
    assert filters.answers_file(scope, service) == path
    assert "/" not in filters.answers_file(scope, service)


def test_answers_file_filter_is_what_copier_yml_renders() -> None:
    from jinja2 import Environment

    from tests.helpers import REPO_ROOT

    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
    environment = Environment(extensions=[filters.FiltersExtension])
    template = environment.from_string(config["_answers_file"])
    assert template.render(scope="service", project_slug="worker") == ".copier-answers.worker.yml"
    assert template.render(scope="platform", project_slug="worker") == ".copier-answers.yml"


def test_oidc_subject_names_the_main_branch_of_the_repository_path() -> None:
    assert oidc_subject("github", "acme/shop") == "repo:acme/shop:ref:refs/heads/main"
    assert (
        oidc_subject("gitlab", "acme/team/shop")
        == "project_path:acme/team/shop:ref_type:branch:ref:main"
    )


@pytest.mark.parametrize("registry", ["ecr", "gar", "acr"])
def test_cloud_trust_setup_names_the_repository_not_the_owner(registry: str) -> None:
    """Issue #9: the OIDC subject follows repo_url, wherever the repository lives."""
    setup = registry_context(registry, "github", "platform/shop-mono")["trust_setup"]
    assert "repo:platform/shop-mono:ref:refs/heads/main" in setup
