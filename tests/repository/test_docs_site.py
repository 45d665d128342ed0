"""The Mermaid diagrams, drawn by a real browser: the docs site and a generated docs/operations.md.

`mkdocs build --strict` renders the site with mkdocs-material, which draws ```mermaid fences with
the Mermaid build that scripts/docs_hooks.py copies into the site (installed by
`scripts/bootstrap dev`: no CDN). Headless chromium then opens the pages from a server on
loopback; a probe script makes the diagrams' shadow roots readable and copies their SVG into the
page, which `--dump-dom` prints. A generated project's diagrams are drawn the way GitHub and
GitLab draw them: Mermaid's own parser, then `mermaid.run`, in a page of their own.

Screenshots of both are written next to the test's files (`*.png`), to look at after a change.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing
from tests.helpers import REPO_ROOT, copy_template, run

MERMAID_JS = REPO_ROOT / ".tools/mermaid/node_modules/mermaid/dist/mermaid.min.js"
MERMAID_FENCE = re.compile(r"^```mermaid\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGES = {
    "promotion/index.html": "promotion.md",
    "generated-project/index.html": "generated-project.md",
}

# Runs before mkdocs-material's bundle: shadow roots become open, and once the page's diagrams
# are drawn (or after 20 s of the page's time) their SVG is copied into a light-DOM element.
PROBE = """<script>
(() => {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    return attach.call(this, { ...init, mode: "open" });
  };
  const drawn = () => [...document.querySelectorAll("div.mermaid")]
    .map((host) => host.shadowRoot && host.shadowRoot.querySelector("svg"))
    .filter(Boolean);
  const expected = EXPECTED;
  let tries = 0;
  const timer = setInterval(() => {
    const svgs = drawn();
    if (svgs.length < expected && ++tries < 100) return;
    clearInterval(timer);
    const probe = document.createElement("div");
    probe.id = "diagram-probe";
    for (const svg of svgs) {
      const item = document.createElement("section");
      item.className = "diagram";
      item.innerHTML = svg.outerHTML;
      probe.appendChild(item);
    }
    document.body.appendChild(probe);
  }, 200);
})();
</script>"""

# A generated project's diagrams, as a forge draws them: parse (errors named), then render.
STANDALONE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="mermaid.min.js"></script></head>
<body>
{blocks}
<script>
mermaid.initialize({{ startOnLoad: false }});
(async () => {{
  for (const pre of document.querySelectorAll("pre.mermaid")) {{
    try {{ await mermaid.parse(pre.textContent); }}
    catch (error) {{ pre.setAttribute("data-error", String(error.message || error)); }}
  }}
  await mermaid.run({{ querySelector: "pre.mermaid:not([data-error])" }});
  document.body.setAttribute("data-done", "yes");
}})();
</script>
</body></html>
"""


def chromium_command(tool: Callable[[str], str], profile: Path) -> list[str]:
    return [
        tool("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,1800",
        "--virtual-time-budget=30000",
    ]


def dump_dom(chromium: list[str], url: str) -> str:
    completed = run([*chromium, "--dump-dom", url], timeout=180)
    return completed.stdout


def screenshot(chromium: list[str], url: str, path: Path) -> None:
    run([*chromium, f"--screenshot={path}", url], timeout=180)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mermaid_js() -> Path:
    if not MERMAID_JS.is_file():
        missing(f"{MERMAID_JS} is missing; run scripts/bootstrap dev")
    return MERMAID_JS


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[[Path], str]]:
    """Serve a folder on loopback; returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def start(root: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def diagrams(dom: str) -> list[str]:
    probe = dom[dom.index('<div id="diagram-probe">') :]
    return re.findall(r'<section class="diagram">(.*?)</section>', probe, re.DOTALL)


def test_the_docs_site_draws_its_mermaid_diagrams_from_the_local_copy(
    tool: Callable[[str], str],
    mermaid_js: Path,
    serve: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    run([tool("mkdocs"), "build", "--strict", "--site-dir", site], cwd=REPO_ROOT)
    local = site / "assets/javascripts/mermaid.min.js"
    assert local.read_bytes() == mermaid_js.read_bytes()
    for page, source in PAGES.items():
        fences = MERMAID_FENCE.findall((REPO_ROOT / "docs" / source).read_text("utf-8"))
        assert fences, f"docs/{source} has no diagram"
        built = site / page
        text = built.read_text(encoding="utf-8")
        assert 'src="../assets/javascripts/mermaid.min.js"' in text
        built.write_text(
            text.replace("<head>", "<head>" + PROBE.replace("EXPECTED", str(len(fences))), 1),
            encoding="utf-8",
        )
    base = serve(site)
    chromium = chromium_command(tool, tmp_path / "profile")

    for page, source in PAGES.items():
        fences = MERMAID_FENCE.findall((REPO_ROOT / "docs" / source).read_text("utf-8"))
        drawn = diagrams(dump_dom(chromium, base + page))
        assert len(drawn) == len(fences), f"{page}: {len(drawn)} of {len(fences)} diagrams drawn"
        for svg, fence in zip(drawn, fences, strict=True):
            assert svg.startswith("<svg"), svg[:200]
            assert "Syntax error" not in svg
            # Every node label of the source is text in the picture.
            for label in re.findall(r'\["([^"]+)"\]', fence):
                for part in label.split("<br>"):
                    assert html.escape(part, quote=False) in svg, f"{page}: {part!r} not drawn"
        screenshot(chromium, base + page, tmp_path / f"{source.removesuffix('.md')}.png")


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {
            "ci_provider": "gitlab",
            "registry": "gitlab",
            "environments": ["dev", "qa", "staging", "prod"],
        },
        {"deploy_target": "helm", "environments": ["test", "live"]},
    ],
    ids=["github-argocd", "gitlab-argocd-four-environments", "github-helm-two-environments"],
)
def test_generated_operations_page_diagrams_parse_and_draw_its_environments(
    tool: Callable[[str], str],
    mermaid_js: Path,
    serve: Callable[[Path], str],
    tmp_path: Path,
    answers: dict[str, Any],
) -> None:
    project = copy_template(tmp_path / "project", **answers)
    fences = MERMAID_FENCE.findall((project / "docs/operations.md").read_text("utf-8"))
    assert len(fences) == 2  # the layout and the promotion flow
    page = tmp_path / "page"
    page.mkdir()
    (page / "mermaid.min.js").write_bytes(mermaid_js.read_bytes())
    blocks = "\n".join(f'<pre class="mermaid">{html.escape(fence)}</pre>' for fence in fences)
    (page / "index.html").write_text(STANDALONE.format(blocks=blocks), encoding="utf-8")
    base = serve(page)
    chromium = chromium_command(tool, tmp_path / "profile")

    dom = dump_dom(chromium, base + "index.html")

    assert 'data-done="yes"' in dom
    assert re.findall(r'data-error="([^"]*)"', dom) == []
    drawn = re.findall(r'<pre class="mermaid"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    assert len(drawn) == 2
    assert all(svg.lstrip().startswith("<svg") for svg in drawn)
    flow = drawn[1]
    environments = answers.get("environments", ["dev", "staging", "prod"])
    assert isinstance(environments, list)
    for env in environments:
        assert f">{env}<" in flow, f"{env} is not drawn"
    # In promotion order: environment k of the answer is the k-th box, linked to the one before.
    boxes = re.findall(r'subgraph env(\d+)\["([^"]+)"\]', fences[1])
    assert boxes == [(str(k), env) for k, env in enumerate(environments, start=1)]
    links = re.findall(r"^  (\w+) -- \"\w+\" --> env(\d+)$", fences[1], re.MULTILINE)
    assert links == [
        ("registry" if k == 1 else f"env{k - 1}", str(k)) for k in range(1, len(boxes) + 1)
    ]
    screenshot(chromium, base + "index.html", tmp_path / "operations.png")


def test_chromium_sees_nothing_drawn_without_mermaid(
    tool: Callable[[str], str], serve: Callable[[Path], str], tmp_path: Path
) -> None:
    """The check can fail: the same page without Mermaid's script leaves the source as text."""
    page = tmp_path / "page"
    page.mkdir()
    blocks = '<pre class="mermaid">flowchart LR\n  a --> b</pre>'
    (page / "index.html").write_text(STANDALONE.format(blocks=blocks), encoding="utf-8")
    dom = dump_dom(chromium_command(tool, tmp_path / "profile"), serve(page) + "index.html")
    assert "<svg" not in dom
    assert 'data-done="yes"' not in dom
