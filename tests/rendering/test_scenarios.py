"""Named answer sets: every scenario renders clean, parseable, lint-free files."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import markupsafe
import pytest
import yaml

from tests.helpers import run, yaml_files

TRICKY_TEXT = 'Shop: "quoted" # not a comment {{ raw }} {% tag %} ünïcødé — ✓'

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "deploy-helm": {"deploy_target": "helm"},
    "deploy-none": {"deploy_target": "none"},
    "one-environment": {"environments": ["prod"]},
    "four-environments": {"environments": ["dev", "qa", "staging", "live"]},
    "tricky-free-text": {"project_name": TRICKY_TEXT, "description": TRICKY_TEXT},
    "longest-names": {"project_slug": "s" * 40, "environments": ["e" * 20]},
    "nested-gitlab-style-owner": {"owner": "Acme/Platform", "coverage_threshold": 0},
    "node": {"language": "node"},
    "go-gitlab": {"language": "go", "ci_provider": "gitlab"},
    "java-tricky-text": {"language": "java", "description": TRICKY_TEXT},
    "node-gitlab-helm-ecr": {
        "language": "node",
        "ci_provider": "gitlab",
        "deploy_target": "helm",
        "registry": "ecr",
    },
    "gitops-separate-gitlab": {"ci_provider": "gitlab", "gitops_repo": "separate"},
    "previews-gitlab-registry": {
        "ci_provider": "gitlab",
        "registry": "gitlab",
        "preview_environments": True,
    },
}

# Jinja syntax left in a rendered file. Not Jinja: GitHub expressions (${{ }}) and Go template
# field references ({{ .number }}) of Argo CD ApplicationSets and notifications.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?!\s*\.)|\{%|%\}|\{#")
# Package registries must never be named in a generated file (lockfiles included).
REGISTRY_ADDRESS = re.compile(
    r"pypi\.org|pythonhosted\.org|registry\.npmjs\.org|registry\.yarnpkg\.com|"
    r"proxy\.golang\.org|repo1?\.maven\.(?:org|apache\.org)|crates\.io|deb\.debian\.org"
)


def text_files(project: Path) -> list[Path]:
    return [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.parts and path.suffix not in {".png", ".ico"}
    ]


def is_helm_template(path: Path) -> bool:
    return "templates" in path.parts and "charts" in path.parts


@pytest.fixture(params=list(SCENARIOS), ids=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest, make_project: Callable[..., Path]) -> Path:
    answers = SCENARIOS[request.param]
    return make_project(**answers)


def test_no_jinja_is_left_in_rendered_files(scenario: Path) -> None:
    leftovers = []
    for path in text_files(scenario):
        if is_helm_template(path):
            continue
        text = path.read_text(encoding="utf-8")
        # The answer itself is data, rendered as given, as a quoted literal or XML-escaped.
        for form in (
            TRICKY_TEXT,
            json.dumps(TRICKY_TEXT, ensure_ascii=False)[1:-1],
            str(markupsafe.escape(TRICKY_TEXT)),  # Jinja's `e` filter, as in pom.xml
        ):
            text = text.replace(form, "")
        relative = path.relative_to(scenario)
        leftovers += [f"{relative}: {match.group()}" for match in JINJA_LEFTOVER.finditer(text)]
    assert leftovers == []


def test_every_data_file_parses(scenario: Path) -> None:
    for path in yaml_files(scenario):
        list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for path in scenario.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for path in scenario.rglob("*.toml"):
        tomllib.loads(path.read_text(encoding="utf-8"))


def test_yamllint_passes_with_the_projects_own_config(
    scenario: Path, tool: Callable[[str], str]
) -> None:
    run([tool("yamllint"), "--strict", "."], cwd=scenario)


def test_no_file_names_a_package_registry(scenario: Path) -> None:
    offenders = [
        str(path.relative_to(scenario))
        for path in text_files(scenario)
        if REGISTRY_ADDRESS.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


def test_no_blank_line_litter(scenario: Path) -> None:
    offenders = []
    for path in text_files(scenario):
        text = path.read_text(encoding="utf-8")
        # Python's own style puts two blank lines between top-level definitions.
        litter = "\n\n\n\n" if path.suffix == ".py" else "\n\n\n"
        if litter in text or text.startswith("\n") or (text and not text.endswith("\n")):
            offenders.append(str(path.relative_to(scenario)))
        elif re.search(r"[ \t]+$", text, re.MULTILINE):
            offenders.append(f"{path.relative_to(scenario)} (trailing whitespace)")
    assert offenders == []


def test_free_text_survives_as_data(make_project: Callable[..., Path]) -> None:
    project = make_project(**SCENARIOS["tricky-free-text"])
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["description"] == TRICKY_TEXT
    assert answers["project_slug"] == "shop-quoted-not-a-comment-raw-tag-unicde"
    chart = yaml.safe_load(
        (project / "deploy/charts" / answers["project_slug"] / "Chart.yaml").read_text("utf-8")
    )
    assert chart["description"] == TRICKY_TEXT
