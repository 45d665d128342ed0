"""Template repositories with two releases, and monorepos made from them, built once per worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.monorepo import build_monorepo
from tests.update.gitrepo import commit_all, snapshot_template

CHANGES = """## [0.2.0] - 2026-11-25

### Changed
- yamllint allows 130 characters a line.
- Per-environment values moved to `env/<env>.yaml` (a migration moves yours).
"""
# One more migration of the release, in the list the template's copier.yml already has.
MIGRATION = """\
  - version: v0.2.0
    when: "{{ _stage == 'before' }}"
    command: >-
      sh -c 'for f in deploy/charts/*/values-*.yaml; do
      [ -e "$f" ] || continue;
      mkdir -p "$(dirname "$f")/env";
      git mv "$f" "$(dirname "$f")/env/$(basename "$f" | sed "s/^values-//")";
      done'
"""
SERVICE_APPS = "template/service/apps"
SERVICE_CHART = (
    "template/service/deploy/charts/{% if kind == 'service' %}{{ project_slug }}{% endif %}"
)
JOB_CHART = "template/service/deploy/charts/{% if kind == 'job' %}{{ project_slug }}{% endif %}"
FIXED = "# fixed in v0.2.0\n"
CHANGED = "# changed in v0.2.0\n"


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def append_to(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def release_v2(template: Path, move_values: bool = True) -> None:
    """Change the template the way a real release does, then tag it v0.2.0."""
    # 1. a fix in a template-owned platform file
    replace_in(template / "template/platform/.yamllint.yaml", "max: 120", "max: 130")
    # 2. a fix in every language's image build (template-owned) and a change to every service's
    #    own Makefile (user-owned: it must not reach existing projects)
    for service in (template / SERVICE_APPS).glob("{% if language ==*"):
        append_to(service / "Dockerfile.jinja", FIXED)
        append_to(service / "Makefile", CHANGED)
    #    and in the job chart's templates (template-owned)
    append_to(template / JOB_CHART / "templates/workflowtemplate.yaml", FIXED)
    # 3. a new platform file
    (template / "template/platform/docs/runbook.md.jinja").write_text(
        "# Runbook of {{ project_name }}\n", encoding="utf-8"
    )
    # 4. a user-owned file moves: values-<env>.yaml -> env/<env>.yaml, with a migration
    if move_values:
        chart = template / SERVICE_CHART
        old = chart / "{% yield env from environments %}values-{{ env }}{% endyield %}.yaml.jinja"
        (chart / "env").mkdir()
        new = chart / "env/{% yield env from environments %}{{ env }}{% endyield %}.yaml.jinja"
        old.rename(new)
        replace_in(template / "extensions/context.py", 'f"values-{env}.yaml"', 'f"env/{env}.yaml"')
        replace_in(
            template / "copier.yml",
            '"deploy/charts/*/values-*.yaml"',
            '"deploy/charts/*/env/*.yaml"',
        )
        replace_in(template / "copier.yml", "\n_migrations:\n", f"\n_migrations:\n{MIGRATION}")
    replace_in(template / "CHANGELOG.md", "## [Unreleased]\n", f"## [Unreleased]\n\n{CHANGES}")
    commit_all(template, "template v0.2.0", "v0.2.0")


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v0.1.0 = the working tree; v0.2.0 = fixes, a new file and a moved user-owned file."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    release_v2(template)
    return template


@pytest.fixture(scope="session")
def fixes_template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v0.2.0 with the fixes only (values files stay where they are, so `make promote` works)."""
    template = snapshot_template(tmp_path_factory.mktemp("template-fixes"))
    release_v2(template, move_values=False)
    return template


@pytest.fixture(scope="session")
def built_monorepo(tmp_path_factory: pytest.TempPathFactory, fixes_template_repo: Path) -> Path:
    """The four-service monorepo at v0.1.0, built once by the documented commands."""
    return build_monorepo(
        fixes_template_repo, tmp_path_factory.mktemp("built") / "shop", vcs_ref="v0.1.0"
    )


@pytest.fixture
def monorepo(built_monorepo: Path, tmp_path: Path) -> Path:
    """A private copy of the four-service monorepo (with its git history) for one test."""
    copy = tmp_path / "shop"
    shutil.copytree(built_monorepo, copy, symlinks=True)
    return copy
