"""Defaults follow earlier answers, example hosts are refused, help texts speak the provider's
words and point only at files the project has (issue #13, item 3)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

from extensions.registries import REGISTRIES
from tests.helpers import REPO_ROOT, copy_template

COPIER_YML = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))


def answers(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (project / ".copier-answers.yml").read_text(encoding="utf-8")
    )
    return loaded


@pytest.mark.parametrize(
    ("provider", "registry", "host"),
    [("github", "ghcr", "ghcr.io"), ("gitlab", "gitlab", "registry.gitlab.com")],
)
def test_default_registry_is_the_ci_providers_own(
    tmp_path: Path, provider: str, registry: str, host: str
) -> None:
    project = copy_template(tmp_path / "p", ci_provider=provider)
    recorded = answers(project)
    assert (recorded["registry"], recorded["registry_host"]) == (registry, host)
    operations = (project / "docs/operations.md").read_text(encoding="utf-8")
    # The provider's own job token pushes: nothing to create, no token of the other provider.
    assert "There is nothing to create for the registry." in operations
    assert "GitHub token" not in operations


@pytest.mark.parametrize("registry", sorted(k for k, r in REGISTRIES.items() if r.placeholder))
def test_registry_without_a_public_host_requires_one(tmp_path: Path, registry: str) -> None:
    with pytest.raises(ValueError, match=r"registry_host: required with .*--data registry_host="):
        copy_template(tmp_path / "p", registry=registry)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("registry", "host"),
    [
        ("harbor", "harbor.example.com"),
        ("ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
        ("ecr", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
    ],
)
def test_example_registry_hosts_are_refused_naming_the_question(
    tmp_path: Path, registry: str, host: str
) -> None:
    with pytest.raises(ValueError, match=r"registry_host: '.*' is an example host"):
        copy_template(tmp_path / "p", registry=registry, registry_host=host)


def test_a_real_host_of_such_a_registry_is_accepted(tmp_path: Path) -> None:
    host = "210987654321.dkr.ecr.eu-central-1.amazonaws.com"
    project = copy_template(tmp_path / "p", registry="ecr", registry_host=host)
    assert answers(project)["registry_host"] == host


def prompted_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **data: Any
) -> dict[str, str]:
    """Run Copier interactively, answering every prompt with its default; the messages shown."""
    import copier._main

    shown: dict[str, str] = {}

    def prompt(questions: list[dict[str, Any]], answers: dict[str, Any]) -> dict[str, Any]:
        question = questions[0]
        shown[question["name"]] = question["message"]
        return {question["name"]: answers[question["name"]]}

    monkeypatch.setattr(copier._main, "unsafe_prompt", prompt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(str(REPO_ROOT), tmp_path / "p", data=data, unsafe=True, vcs_ref="HEAD", quiet=True)
    return shown


@pytest.mark.parametrize(
    ("provider", "word"), [("github", "pull request"), ("gitlab", "merge request")]
)
def test_preview_question_names_the_providers_change_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str, word: str
) -> None:
    shown = prompted_messages(tmp_path, monkeypatch, ci_provider=provider)
    assert word in shown["preview_environments"]
    other = {"pull request", "merge request"} - {word}
    assert not any(o in text for text in shown.values() for o in other)


def test_help_texts_point_only_at_files_the_project_has(tmp_path: Path) -> None:
    project = copy_template(tmp_path / "p")
    mentioned = {
        (name, path)
        for name, spec in COPIER_YML.items()
        if isinstance(spec, dict)
        for path in re.findall(r"[\w./-]+\.(?:md|ya?ml|py|json|toml)\b", str(spec.get("help", "")))
    }
    assert mentioned, "no help text names a file: the check checks nothing"
    missing = sorted((name, path) for name, path in mentioned if not (project / path).exists())
    assert missing == []
