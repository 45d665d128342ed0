"""Write the generated tables of the docs: options from copier.yml, registries from extensions.

    python scripts/options_doc.py          rewrite README.md, docs/options.md, docs/registries.md
    python scripts/options_doc.py --check  exit 1 if any of them is out of date

tests/repository/test_tooling.py runs the check, so the tables cannot drift from their source.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extensions.context import CI_PROVIDERS  # noqa: E402
from extensions.registries import REGISTRIES  # noqa: E402

TARGETS = {
    "options": [ROOT / "README.md", ROOT / "docs" / "options.md"],
    "registries": [ROOT / "docs" / "registries.md"],
}


# A platform question's default in a service is the platform's answer, else the template's.
PLATFORM_DEFAULT = re.compile(r"^\{\{ platform\.(?P<name>\w+) \| default\((?P<inner>.*)\) \}\}$")
ASKED_IN_PLATFORM = "{{ scope == 'platform' }}"


def questions(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def asked_cell(spec: dict[str, Any]) -> str:
    """When Copier asks the question: once for the repository, for each service, or never."""
    ask = spec.get("ask", True)
    if ask is False:
        return "never (`make add-service` sets it)"
    if ask == ASKED_IN_PLATFORM:
        return "once (platform)"
    return "per service"


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


def template_default(default: Any) -> Any:
    """The template's own default: a platform question's fallback when there is no platform."""
    if not isinstance(default, str):
        return default
    match = PLATFORM_DEFAULT.match(default)
    if match is None:
        return default
    inner = match.group("inner")
    literal = {"false": "False", "true": "True"}.get(inner, inner)
    try:
        return ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return "{{ " + inner + " }}"


def default_cell(spec: dict[str, Any]) -> str:
    default = template_default(spec.get("default"))
    if isinstance(default, list):
        return "`[" + ", ".join(map(str, default)) + "]`"
    if isinstance(default, str) and "{{" in default:
        return "derived: `" + default.replace("|", "\\|") + "`"
    return f"`{default}`"


def table(config: dict[str, Any]) -> str:
    lines = [
        "| Question | Asked | Type | Default | Choices | What it sets |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, spec in questions(config).items():
        # A help text may name the CI provider's words ({{ ci.request }}): both, in the table.
        help_text = str(spec.get("help", "")).replace("{{ ci.request }}", "pull/merge request")
        help_text = help_text.replace("|", "\\|")
        if "when" in spec:
            help_text += " (asked only when it applies)"
        row = [
            f"`{name}`",
            asked_cell(spec),
            spec.get("type", "str"),
            default_cell(spec),
            choice_cell(spec),
            help_text,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def registries_table() -> str:
    lines = [
        "| Registry | `registry` | CI provider | How CI logs in | To create | Cluster pulls with |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for registry in REGISTRIES.values():
        for provider in ("github", "gitlab"):
            secrets = registry.secrets[provider]
            to_create = ", ".join(
                f"`{s.name}` ({'secret' if s.secret else 'variable'})" for s in secrets
            )
            row = [
                registry.title,
                f"`{registry.key}`",
                CI_PROVIDERS[provider].title,
                registry.auth[provider],
                to_create or "nothing",
                registry.cluster_pull,
            ]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def with_table(text: str, name: str, new_table: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    if not rest:
        raise SystemExit(f"markers {start} ... {end} are missing")
    return f"{head}{start}\n{new_table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    config = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    tables = {"options": table(config), "registries": registries_table()}
    stale = []
    for name, targets in TARGETS.items():
        for target in targets:
            current = target.read_text(encoding="utf-8")
            updated = with_table(current, name, tables[name])
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
