"""What the docs claim, checked against what the template generates, where a program can check it.

Each test names a claim of a docs page (docs/*.md, README.md) or of a generated page
(docs/operations.md) and reads the rendered project or the template's sources to decide it, so a
change to either side that makes the claim false fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import LANGUAGES
from tests.helpers import REPO_ROOT, copy_template

DOCS = REPO_ROOT / "docs"
SERVICE = "my-service"
# Files of a service, chart and workspace; everything else a project holds is the platform's.
OUTSIDE_PAGE = ("apps/", "deploy/charts/", ".git/")
SCENARIOS: dict[str, dict[str, Any]] = {
    "github": {"preview_environments": True},
    "gitlab": {
        "ci_provider": "gitlab",
        "registry": "gitlab",
        "gitops_repo": "separate",
        "language": "node",
        "environments": ["dev", "qa", "prod"],
    },
    "github-helm": {"deploy_target": "helm", "environments": ["test", "live"]},
}
MERMAID = re.compile(r"^```mermaid\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHA = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("claims")
    return {name: copy_template(root / name, **answers) for name, answers in SCENARIOS.items()}


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_template(tmp_path_factory.mktemp("claims-defaults") / "project")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_spans(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def platform_files(project: Path) -> set[str]:
    files = set()
    for path in project.rglob("*"):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not relative.startswith(OUTSIDE_PAGE):
            files.add(relative.replace(SERVICE, "<service>"))
    return files


def final_stage(dockerfile: str) -> tuple[str, list[str]]:
    """The base of the last stage (a `pins.x.y` path) and its RUN instructions."""
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)
    last = stages[-1]
    expression = re.match(r"\{\{\s*(pins\.[\w.]+)\s*\}\}", last)
    assert expression, f"the final stage's base is not a pin: {last.splitlines()[0]}"
    base = expression.group(1)
    runs = re.findall(r"^RUN ((?:[^\n]*\\\n)*[^\n]*)", last, flags=re.MULTILINE)
    return base, runs


def pin(path: str) -> str:
    value: Any = yaml.safe_load((REPO_ROOT / "extensions/versions.yaml").read_text("utf-8"))
    for key in path.split(".")[1:]:
        value = value[key]
    return str(value)


def test_generated_project_page_lists_every_platform_file_and_no_other(
    projects: dict[str, Path],
) -> None:
    listed = code_spans(page("generated-project.md"))
    generated = set().union(*(platform_files(project) for project in projects.values()))

    missing = sorted(
        path
        for path in generated
        if path not in listed and not (path.startswith("packages/") and "packages/" in listed)
    )
    assert missing == [], f"docs/generated-project.md does not list: {missing}"
    platform_roots = (".github/", ".gitlab", "scripts/", "deploy/argocd/", ".copier-answers")
    names = {
        path.name for project in projects.values() for path in project.rglob("*") if path.is_file()
    }
    stale = sorted(
        span
        for span in listed
        if (span.startswith(platform_roots) and not span.endswith("/") and span not in generated)
        or (re.fullmatch(r"\.[\w.-]+", span) and span not in names)  # a dot file of any folder
    )
    assert stale == [], f"docs/generated-project.md lists files no project gets: {stale}"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_final_stage_table_says_what_each_image_holds(language: str) -> None:
    """docs/generated-project.md: a shell and a package manager only where the image has them."""
    rows = {
        cells[0].strip("`"): cells
        for cells in (
            [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in page("generated-project.md").splitlines()
            if line.startswith("  | `")
        )
    }
    _, stage, shell, manager = rows[language]
    condition = f"{{% if language == '{language}' and kind == 'service' %}}"
    folder = condition + "{{ project_slug }}{% endif %}"
    dockerfile = (REPO_ROOT / "template/service/apps" / folder / "Dockerfile.jinja").read_text()
    base, runs = final_stage(dockerfile)
    image = pin(base)

    if "distroless" in image:
        assert "distroless" in stage
        assert (shell, manager) == ("none", "none")
    else:
        assert "slim" in image
        assert "Debian slim" in stage
        assert shell != "none", "a Debian slim image has sh"
        assert manager != "none", "a Debian slim image has apt"
        # Each tool the docs say is removed is removed by the final stage.
        removed = re.search(r"Debian slim, (.*) removed", stage)
        assert removed, stage
        for tool in re.split(r", | and ", removed.group(1)):
            assert any(tool in command for command in runs), f"{language}: {tool} is not removed"


def test_no_page_promises_choices_marked_coming() -> None:
    options = page("options.md")
    texts = [(REPO_ROOT / "README.md").read_text("utf-8")] + [
        path.read_text("utf-8") for path in DOCS.glob("*.md")
    ]
    if "(coming)" not in options:  # no choice is marked coming in copier.yml
        assert not any('marked "coming"' in text for text in texts)


def test_promotion_examples_use_the_tag_format_ci_produces(projects: dict[str, Path]) -> None:
    # CI tags every image with the full commit SHA, on both providers.
    github = (projects["github"] / ".github/workflows/ci.yml").read_text("utf-8")
    gitlab = (projects["gitlab"] / ".gitlab-ci.yml").read_text("utf-8")
    assert "IMAGE_TAG: ${{ github.sha }}" in github
    assert "tag=$CI_COMMIT_SHA" in gitlab
    sources = [REPO_ROOT / "README.md", *DOCS.glob("*.md")]
    sources += [
        project / "docs" / name
        for project in projects.values()
        for name in ("operations.md", "services.md")
    ]
    examples = [
        (path.name, tag)
        for path in sources
        if path.is_file()
        for tag in re.findall(r"\bTAG=([^\s`\]|]+)", path.read_text("utf-8"))
        if not tag.startswith(("<", "$", '"$'))
    ]
    assert examples, "no promotion example found: the pattern is out of date"
    assert [(name, tag) for name, tag in examples if not SHA.match(tag)] == []


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_answers_file_headers_show_the_trusted_update_command(
    projects: dict[str, Path], name: str
) -> None:
    for answers in (".copier-answers.yml", f".copier-answers.{SERVICE}.yml"):
        text = (projects[name] / answers).read_text("utf-8")
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        assert "copier update --trust" in header, answers


def test_getting_started_installs_the_extensions_plugin_beside_copier(
    projects: dict[str, Path],
) -> None:
    text = page("getting-started.md")
    assert "pipx inject copier copier-template-extensions" in text
    assert "uv tool install copier --with copier-template-extensions" in text
    # The template-update job installs the same plugin next to Copier.
    workflow = (projects["github"] / ".github/workflows/template-update.yml").read_text("utf-8")
    assert 'pipx inject copier "copier-template-extensions==' in workflow


def argocd_sources(project: Path) -> set[str]:
    """The repositories Argo CD reads: the AppProject's sources and the generators' repoURLs."""
    urls: set[str] = set()
    for path in (project / "deploy/argocd").glob("*.yaml"):
        text = path.read_text("utf-8")
        urls.update(url.strip("\"'") for url in re.findall(r"repoURL: (\S+)", text))
        for document in yaml.safe_load_all(text):
            if document and document.get("kind") == "AppProject":
                urls.update(document["spec"]["sourceRepos"])
    return {url for url in urls if not url.startswith("{{")}


@pytest.mark.parametrize("name", ["github", "gitlab"])
def test_operations_page_gives_argo_cd_a_labelled_credential_for_each_repository_it_reads(
    projects: dict[str, Path], name: str
) -> None:
    project = projects[name]
    operations = (project / "docs/operations.md").read_text("utf-8")
    section = operations[operations.index("### Repository credentials") :]
    section = section[: section.index("\n### ", 1)]
    commands = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    urls = argocd_sources(project)
    assert len(urls) == (2 if name == "gitlab" else 1)  # a separate configuration repository
    credentialed = set()
    for command in commands:
        assert "--namespace argocd" in command
        assert "argocd.argoproj.io/secret-type=repository" in command
        assert "--from-file=password=" in command  # by reference: no token in the text
        credentialed.update(re.findall(r"--from-literal=url=(\S+)", command))
    assert credentialed == urls


def test_argo_cd_namespaces_enforce_restricted_pod_security(projects: dict[str, Path]) -> None:
    """docs: "Namespaces are created by Argo CD with the restricted Pod Security level enforced"."""
    # The ApplicationSet holds Go templates: read the block as text.
    appset = (projects["github"] / "deploy/argocd/applicationset.yaml").read_text("utf-8")
    assert "- CreateNamespace=true" in appset
    block = appset[appset.index("managedNamespaceMetadata:") :].split("retry:")[0]
    assert "pod-security.kubernetes.io/enforce: restricted" in block


def test_helm_deploys_are_preceded_by_labelled_namespaces_in_the_docs(
    projects: dict[str, Path],
) -> None:
    project = projects["github-helm"]
    workflow = (project / ".github/workflows/ci.yml").read_text("utf-8")
    assert "helm upgrade --install" in workflow
    operations = (project / "docs/operations.md").read_text("utf-8")
    if "--create-namespace" in workflow:
        # helm would create a namespace without labels: the docs have them created first.
        loop = re.search(r"for env in (.*); do\n(.*?)done", operations, re.DOTALL)
        assert loop, "docs/operations.md does not create the namespaces"
        assert loop.group(1).split() == SCENARIOS["github-helm"]["environments"]
        assert 'kubectl create namespace "$service-$env"' in loop.group(2)
        assert "pod-security.kubernetes.io/enforce=restricted" in loop.group(2)


def test_site_diagrams_are_the_ones_a_default_project_draws(defaults: Path) -> None:
    layout, flow = MERMAID.findall((defaults / "docs/operations.md").read_text("utf-8"))
    assert MERMAID.findall(page("promotion.md")) == [flow]
    assert MERMAID.findall(page("generated-project.md")) == [layout]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_operations_diagrams_follow_the_answers(projects: dict[str, Path], name: str) -> None:
    answers = {"environments": ["dev", "staging", "prod"], **SCENARIOS[name]}
    project = projects[name]
    layout, flow = MERMAID.findall((project / "docs/operations.md").read_text("utf-8"))
    copier_answers = yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))
    environments = answers["environments"]
    assert re.findall(r'subgraph env\d+\["([^"]+)"\]', flow) == environments
    assert copier_answers["registry_host"] in flow
    title = "GitLab CI" if answers.get("ci_provider") == "gitlab" else "GitHub Actions"
    assert f'ci["{title} on main' in flow
    for env in environments:
        assert f"values-{env}.yaml" in layout
    if answers.get("deploy_target", "argocd") == "argocd":
        request = "merge request" if answers.get("ci_provider") == "gitlab" else "pull request"
        assert f'["{request}:<br>tag in values-{environments[-1]}.yaml"]' in flow
        assert "deploy/argocd/" in layout
    else:
        assert "helm upgrade --install" in flow
        assert "Argo CD" not in flow
        assert "deploy/argocd/" not in layout


def released_sections() -> list[str]:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text("utf-8")
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)


def test_changelog_has_released_versions_below_unreleased() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text("utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    versions = released_sections()
    assert headings[1:] == versions
    assert len(versions) >= 2
    keys = [tuple(int(part) for part in version.split(".")) for version in versions]
    assert keys == sorted(keys, reverse=True)


def test_every_released_version_is_tagged() -> None:
    tags = subprocess.run(
        ["git", "tag", "--list", "v*"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tags:
        pytest.skip("a checkout without tags (CI clones shallow): nothing to compare")
    assert {f"v{version}" for version in released_sections()} <= set(tags)
    # The platform engineers' page says how a fork cuts one.
    text = page("platform-engineers.md")
    assert "git tag -a v" in text
    assert "## [Unreleased]" in text


@pytest.mark.parametrize("name", ["github", "gitlab"])
def test_operations_page_names_the_secret_the_template_update_job_reads(
    projects: dict[str, Path], name: str
) -> None:
    project = projects[name]
    operations = (project / "docs/operations.md").read_text("utf-8")
    script = (project / "scripts/ci/template_update.py").read_text("utf-8")
    assert 'TOKEN_VARIABLE = "TEMPLATE_REPOSITORY_TOKEN"' in script
    assert "`TEMPLATE_REPOSITORY_TOKEN`" in operations
    assert "`TEMPLATE_REPOSITORY_USER`" in operations
    if name == "github":
        workflow = (project / ".github/workflows/template-update.yml").read_text("utf-8")
        job = yaml.safe_load(workflow)["jobs"]["update"]
        assert job["environment"] == "template-update"
        assert "`template-update` environment" in operations
        step = next(step for step in job["steps"] if step.get("id") == "update")
        assert (
            step["env"]["TEMPLATE_REPOSITORY_TOKEN"] == "${{ secrets.TEMPLATE_REPOSITORY_TOKEN }}"
        )
