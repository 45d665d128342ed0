"""A template repository with two releases, built once per test worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.update.gitrepo import commit_all, snapshot_template

CHANGES = """## [0.2.0] - 2026-11-25

### Changed
- yamllint allows 130 characters a line.
- Per-environment values moved to `env/<env>.yaml` (a migration moves yours).
"""
MIGRATION = """
_migrations:
  - version: v0.2.0
    when: "{{ _stage == 'before' }}"
    command: >-
      sh -c 'for f in deploy/charts/*/values-*.yaml; do
      [ -e "$f" ] || continue;
      mkdir -p "$(dirname "$f")/env";
      git mv "$f" "$(dirname "$f")/env/$(basename "$f" | sed "s/^values-//")";
      done'
"""


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def release_v2(template: Path) -> None:
    """Change the template the way a real release does, then tag it."""
    # 1. a fix in a template-owned file
    replace_in(template / "template/.yamllint.yaml", "max: 120", "max: 130")
    # 1b. a fix in a service's image build (template-owned) and a change to the service's own
    #     Makefile (user-owned: it must not reach existing projects)
    service = template / "template/apps/{% if language == 'python' %}{{ project_slug }}{% endif %}"
    with (service / "Dockerfile.jinja").open("a", encoding="utf-8") as dockerfile:
        dockerfile.write("# fixed in v0.2.0\n")
    with (service / "Makefile").open("a", encoding="utf-8") as makefile:
        makefile.write("# changed in v0.2.0\n")
    # 2. a new file
    (template / "template/docs/runbook.md.jinja").write_text(
        "# Runbook of {{ project_name }}\n", encoding="utf-8"
    )
    # 3. a user-owned file moves: values-<env>.yaml -> env/<env>.yaml, with a migration
    chart = template / "template/deploy/charts/{{ project_slug }}"
    old = chart / "{% yield env from environments %}values-{{ env }}{% endyield %}.yaml.jinja"
    (chart / "env").mkdir()
    old.rename(chart / "env/{% yield env from environments %}{{ env }}{% endyield %}.yaml.jinja")
    replace_in(template / "extensions/context.py", 'f"values-{env}.yaml"', 'f"env/{env}.yaml"')
    replace_in(
        template / "copier.yml", '"deploy/charts/*/values-*.yaml"', '"deploy/charts/*/env/*.yaml"'
    )
    with (template / "copier.yml").open("a", encoding="utf-8") as config:
        config.write(MIGRATION)
    replace_in(template / "CHANGELOG.md", "## [Unreleased]\n", f"## [Unreleased]\n\n{CHANGES}")
    commit_all(template, "template v0.2.0", "v0.2.0")


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    release_v2(template)
    return template
