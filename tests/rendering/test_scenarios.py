"""Named answer sets: every scenario renders clean, parseable, lint-free files.

A scenario is the platform plus its first service (`copier copy`), or a monorepo grown by the
documented commands (`copier copy`, then `make add-service` for three more services of other
languages). Every check runs over every file of the repository.
"""

from __future__ import annotations

import filecmp
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import markupsafe
import pytest
import yaml

from extensions.context import LANGUAGES
from tests.helpers import copy_template, project_files, run, yaml_files
from tests.monorepo import FOUR_SERVICES, build_monorepo

TRICKY_TEXT = 'Shop: "quoted" # not a comment {{ raw }} {% tag %} ünïcødé — ✓'

# The platform and its first service, from `copier copy --defaults` plus these answers.
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
        "registry_host": "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
    },
    "gitops-separate-gitlab": {"ci_provider": "gitlab", "gitops_repo": "separate"},
    "previews-gitlab-registry": {
        "ci_provider": "gitlab",
        "registry": "gitlab",
        "preview_environments": True,
    },
    "github-enterprise-repository": {
        "owner": "acme",
        "project_name": "shop",
        "repo_url": "https://github.example.com/platform/shop-mono.git",
        "preview_environments": True,
    },
}
# Monorepos of four services (python api first, then go, node and java by `make add-service`).
MONOREPOS: dict[str, dict[str, Any]] = {
    "monorepo-github": {"project_name": "shop"},
    "monorepo-gitlab": {"project_name": "shop", "ci_provider": "gitlab"},
}

# Jinja syntax left in a rendered file. Not Jinja: GitHub expressions (${{ }}) and the Go
# templates of Argo CD ApplicationSets and notifications, whose actions read a field
# ({{ .number }}, {{ index .metadata.annotations "x" }}, {{- if .production }}) or close a block
# ({{- else }}, {{- end }}).
GO_TEMPLATE_ACTION = r"-?\s*(?:\.|[a-z]\w*\s[^}]*\.|(?:else|end)\s*-?\}\})"
JINJA_LEFTOVER = re.compile(rf"(?<!\$)\{{\{{(?!{GO_TEMPLATE_ACTION})|\{{%|%\}}|\{{#")
# In Python, {{ and }} are f-string braces: only Jinja's statements and comments count there.
JINJA_LEFTOVER_IN_PYTHON = re.compile(r"\{%|%\}|\{#")
# Package registries must never be named in a generated file (lockfiles included).
REGISTRY_ADDRESS = re.compile(
    r"pypi\.org|pythonhosted\.org|registry\.npmjs\.org|registry\.yarnpkg\.com|"
    r"proxy\.golang\.org|repo1?\.maven\.(?:org|apache\.org)|crates\.io|deb\.debian\.org"
)


def text_files(project: Path) -> list[Path]:
    return [
        project / relative
        for relative in project_files(project)
        if relative.suffix not in {".png", ".ico", ".jar"}
    ]


def is_helm_template(path: Path) -> bool:
    return "templates" in path.parts and "charts" in path.parts


def is_python(path: Path, text: str) -> bool:
    """A Python module, or a script whose shebang runs Python (scripts/ci/next-environment)."""
    return path.suffix == ".py" or (text.startswith("#!") and "python" in text.split("\n", 1)[0])


@pytest.fixture(scope="module", params=[*SCENARIOS, *MONOREPOS])
def scenario(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_snapshot: Path,
) -> Path:
    """The rendered repository of one scenario, built once per module and worker."""
    name: str = request.param
    destination = tmp_path_factory.mktemp("scenario") / name
    if name in MONOREPOS:
        return build_monorepo(template_snapshot, destination, **MONOREPOS[name])
    return copy_template(destination, **SCENARIOS[name])


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
        pattern = JINJA_LEFTOVER_IN_PYTHON if is_python(path, text) else JINJA_LEFTOVER
        leftovers += [f"{relative}: {match.group()}" for match in pattern.finditer(text)]
    assert leftovers == []


def test_every_data_file_parses(scenario: Path) -> None:
    for path in yaml_files(scenario):
        if ".git" in path.relative_to(scenario).parts:
            continue
        list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for path in text_files(scenario):
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))


def test_yamllint_passes_with_the_projects_own_config(
    scenario: Path, tool: Callable[[str], str]
) -> None:
    run([tool("yamllint"), "--strict", "."], cwd=scenario)


def test_python_files_pass_the_projects_ruff_lint_and_format(
    scenario: Path, tool: Callable[[str], str]
) -> None:
    run([tool("ruff"), "check", "--no-cache", "."], cwd=scenario)
    run([tool("ruff"), "format", "--no-cache", "--check", "."], cwd=scenario)


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
        litter = "\n\n\n\n" if is_python(path, text) else "\n\n\n"
        if litter in text or text.startswith("\n") or (text and not text.endswith("\n")):
            offenders.append(str(path.relative_to(scenario)))
        elif re.search(r"[ \t]+$", text, re.MULTILINE):
            offenders.append(f"{path.relative_to(scenario)} (trailing whitespace)")
    assert offenders == []


def test_every_service_has_its_answers_file_and_descriptor(scenario: Path) -> None:
    """A service is a folder with a descriptor, and a Copier application of its own."""
    platform = yaml.safe_load((scenario / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert platform["scope"] == "platform"
    services = sorted(path.parent.name for path in scenario.glob("apps/*/catalog-info.yaml"))
    answers = sorted(
        path.name.removeprefix(".copier-answers.").removesuffix(".yml")
        for path in scenario.glob(".copier-answers.*.yml")
    )
    assert services
    assert answers == services
    for service in services:
        recorded = yaml.safe_load(
            (scenario / f".copier-answers.{service}.yml").read_text(encoding="utf-8")
        )
        assert recorded["scope"] == "service"
        assert recorded["project_slug"] == service
        # The platform's answers, recorded so the service's update replays exactly.
        shared = {key: value for key, value in platform.items() if key != "scope"}
        assert {key: recorded.get(key) for key in shared} == shared
        descriptor = yaml.safe_load(
            (scenario / "apps" / service / "catalog-info.yaml").read_text(encoding="utf-8")
        )
        annotations = descriptor["metadata"]["annotations"]
        assert descriptor["metadata"]["name"] == service
        assert annotations["devops-template/language"] == recorded["language"]
        assert (scenario / annotations["devops-template/chart"] / "Chart.yaml").is_file()
        assert (scenario / annotations["devops-template/dockerfile"]).is_file()


def test_monorepo_holds_four_services_of_four_languages(
    tmp_path_factory: pytest.TempPathFactory, template_snapshot: Path
) -> None:
    project = build_monorepo(
        template_snapshot, tmp_path_factory.mktemp("monorepo") / "shop", project_name="shop"
    )
    languages = {}
    for service, _ in FOUR_SERVICES:
        descriptor = yaml.safe_load(
            (project / "apps" / service / "catalog-info.yaml").read_text(encoding="utf-8")
        )
        languages[service] = descriptor["metadata"]["annotations"]["devops-template/language"]
    assert languages == dict(FOUR_SERVICES)
    # The platform's answers file still knows no service: adding services did not rewrite it.
    platform = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert not {"project_slug", "language", "description", "image_repository"} & set(platform)


def test_free_text_survives_as_data(tmp_path: Path) -> None:
    project = copy_template(tmp_path / "tricky", **SCENARIOS["tricky-free-text"])
    platform = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert platform["project_name"] == TRICKY_TEXT
    slug = "shop-quoted-not-a-comment-raw-tag-unicde"
    service = yaml.safe_load((project / f".copier-answers.{slug}.yml").read_text("utf-8"))
    assert service["description"] == TRICKY_TEXT
    assert service["project_name"] == TRICKY_TEXT
    chart = yaml.safe_load((project / "deploy/charts" / slug / "Chart.yaml").read_text("utf-8"))
    assert chart["description"] == TRICKY_TEXT
    descriptor = yaml.safe_load((project / "apps" / slug / "catalog-info.yaml").read_text("utf-8"))
    assert descriptor["metadata"]["description"] == TRICKY_TEXT


# --- Platform files do not depend on the first service -------------------------------------------

# What belongs to a service: its folders, its answers file, the Node workspace it joins and the
# GitLab job file CI may keep per service. Everything else is the platform's.
SERVICE_PATHS = re.compile(
    r"^(?:apps/|deploy/charts/|\.copier-answers\.[^/]+\.yml$|\.gitlab/ci/services/|"
    + "|".join(
        re.escape(path) + ("" if path.endswith("/") else "$")
        for path in LANGUAGES["node"].shared_paths
    )
    + ")"
)
FIRST_SERVICES: dict[str, dict[str, Any]] = {
    "api-python": {"project_slug": "api", "language": "python"},
    "billing-go": {"project_slug": "billing", "language": "go", "description": "Billing"},
}
PLATFORMS: dict[str, dict[str, Any]] = {
    "github-argocd-previews": {"project_name": "shop", "preview_environments": True},
    "gitlab-argocd-previews": {
        "project_name": "shop",
        "ci_provider": "gitlab",
        "preview_environments": True,
    },
    "github-helm": {"project_name": "shop", "deploy_target": "helm"},
}


def platform_files(project: Path) -> set[Path]:
    return {path for path in project_files(project) if not SERVICE_PATHS.match(path.as_posix())}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_platform_files_do_not_depend_on_the_first_service(
    tmp_path: Path, template_snapshot: Path, platform: str
) -> None:
    """The same platform answers give the same platform, whichever service comes first."""
    (first_name, first), (second_name, second) = FIRST_SERVICES.items()
    one = copy_template(tmp_path / first_name, template_snapshot, **PLATFORMS[platform], **first)
    other = copy_template(
        tmp_path / second_name, template_snapshot, **PLATFORMS[platform], **second
    )
    files_one, files_other = platform_files(one), platform_files(other)
    differences = [f"only with {first_name}: {path}" for path in sorted(files_one - files_other)]
    differences += [f"only with {second_name}: {path}" for path in sorted(files_other - files_one)]
    for path in sorted(files_one & files_other):
        if not filecmp.cmp(one / path, other / path, shallow=False):
            differences.append(f"differs: {path}")
    assert differences == [], "platform files that depend on the first service:\n" + "\n".join(
        differences
    )
