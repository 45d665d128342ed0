"""docs/jobs.md of a generated project: its diagram draws, its versions and commands are real."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from extensions.context import TRIGGERS
from tests.conftest import missing
from tests.helpers import REPO_ROOT, copy_template
from tests.repository.test_docs_site import (
    MERMAID_FENCE,
    MERMAID_JS,
    STANDALONE,
    chromium_command,
    dump_dom,
)

PINS = yaml.safe_load((REPO_ROOT / "extensions/versions.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    project = copy_template(tmp_path_factory.mktemp("jobs-docs") / "project")
    return (project / "docs/jobs.md").read_text(encoding="utf-8")


def test_the_event_flow_diagram_parses_and_draws(
    page: str, tool: Callable[[str], str], tmp_path: Path
) -> None:
    if not MERMAID_JS.is_file():
        missing(f"{MERMAID_JS} is missing; run scripts/bootstrap dev")
    (fence,) = MERMAID_FENCE.findall(page)
    folder = tmp_path / "page"
    folder.mkdir()
    (folder / "mermaid.min.js").write_bytes(MERMAID_JS.read_bytes())
    block = f'<pre class="mermaid">{html.escape(fence)}</pre>'
    (folder / "index.html").write_text(STANDALONE.format(blocks=block), encoding="utf-8")

    dom = dump_dom(chromium_command(tool, tmp_path / "profile"), (folder / "index.html").as_uri())

    assert 'data-done="yes"' in dom
    assert re.findall(r'data-error="([^"]*)"', dom) == []
    (drawn,) = re.findall(r'<pre class="mermaid"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    assert drawn.lstrip().startswith("<svg")
    for label in ("EventSource", "EventBus default", "Sensor", "validate", "load", "jobs-ENV"):
        assert label in drawn, label


def test_the_page_names_the_pinned_versions_and_the_documented_commands(page: str) -> None:
    assert f"| {PINS['argo']['events']} |" in page
    assert f"| {PINS['argo']['workflows']} |" in page
    assert PINS["argo"]["jetstream"] in page
    for trigger in TRIGGERS:
        assert f"| `{trigger}` |" in page, trigger
    assert "make add-service NAME=partner-import LANGUAGE=python KIND=job TRIGGER=s3" in page
    assert "argo submit -n jobs-<env> --from workflowtemplate/<job>" in page
    assert "templateReferencing: Strict" in page
