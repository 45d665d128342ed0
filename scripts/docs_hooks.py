"""mkdocs hook: serve Mermaid from the site itself instead of mkdocs-material's CDN copy.

mkdocs-material renders ```mermaid fences with the global `mermaid` when a page already loaded
it, and fetches it from a CDN otherwise. `scripts/bootstrap dev` installs the pinned browser
build into .tools/mermaid (not committed: 3.5 MB); this hook copies it to the path that
mkdocs.yml's `extra_javascript` names. Without it, the site still works online (the browser
gets a 404 for the local copy and mkdocs-material falls back to its CDN).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MERMAID = ROOT / ".tools/mermaid/node_modules/mermaid/dist/mermaid.min.js"
TARGET = "assets/javascripts/mermaid.min.js"

log = logging.getLogger("mkdocs.hooks.mermaid")


def on_post_build(config: Any, **_: Any) -> None:
    if not MERMAID.is_file():
        log.info("no %s (scripts/bootstrap dev installs it): diagrams load from the CDN", MERMAID)
        return
    target = Path(config["site_dir"]) / TARGET
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MERMAID, target)
