"""Write the options table of README.md and docs/options.md from copier.yml.

    python scripts/options_doc.py          rewrite both files
    python scripts/options_doc.py --check  exit 1 if either file is out of date

tests/rendering/test_docs.py runs the check, so the table cannot drift from copier.yml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- options:start -->", "<!-- options:end -->"
TARGETS = [ROOT / "README.md", ROOT / "docs" / "options.md"]


def questions(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def choice_cell(spec: dict[str, Any]) -> str:
    choices = spec.get("choices")
    if not choices:
        return ""
    cells = []
    for choice in choices.values():
        if isinstance(choice, dict):
            cells.append(f"~~`{choice['value']}`~~ (coming)")
        else:
            cells.append(f"`{choice}`")
    return ", ".join(cells)


def default_cell(spec: dict[str, Any]) -> str:
    default = spec.get("default")
    if isinstance(default, list):
        return "`[" + ", ".join(map(str, default)) + "]`"
    if isinstance(default, str) and "{{" in default:
        return "derived: `" + default.replace("|", "\\|") + "`"
    return f"`{default}`"


def table(config: dict[str, Any]) -> str:
    lines = [
        "| Question | Type | Default | Choices | What it sets |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, spec in questions(config).items():
        help_text = str(spec.get("help", "")).replace("|", "\\|")
        if "when" in spec:
            help_text += " (asked only when it applies)"
        row = [
            f"`{name}`",
            spec.get("type", "str"),
            default_cell(spec),
            choice_cell(spec),
            help_text,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def with_table(text: str, new_table: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"markers {START} ... {END} are missing")
    return f"{head}{START}\n{new_table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    config = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    new_table = table(config)
    stale = []
    for target in TARGETS:
        current = target.read_text(encoding="utf-8")
        updated = with_table(current, new_table)
        if updated != current:
            stale.append(target.relative_to(ROOT))
            if not args.check:
                target.write_text(updated, encoding="utf-8")
    if args.check and stale:
        print(f"out of date with copier.yml: {', '.join(map(str, stale))}; run {__file__}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
