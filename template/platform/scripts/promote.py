#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = ["ruamel.yaml>=0.18"]
# ///
"""Promote an image tag to an environment by editing its values file, and nothing else.

    make promote ENV=staging TAG=3f2c1d9   set that tag in every service's values-staging.yaml
    make promote ENV=staging               each service takes the tag its previous environment runs
    make promote ENV=prod ROLLBACK=1       go back to the tag prod ran before the last change
    make promote ENV=staging SERVICE=api   the same for one service; the others are not touched

The services are the charts under deploy/charts/. The edit is a round trip: comments, key order
and formatting of the file are kept. Running it twice changes nothing the second time. Any refusal
exits 2 with a message and writes nothing. Promoting every service from the previous environment
skips, with a note, a service that environment does not run yet (a service added since).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

# OCI distribution spec: a tag is at most 128 characters of [A-Za-z0-9_.-], not starting
# with '.' or '-'.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
ANSWERS = Path(".copier-answers.yml")


class Refusal(Exception):
    """A reason not to promote; the message is shown as is."""


def yaml_round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def environments(answers_file: Path) -> list[str]:
    answers = yaml_round_trip().load(answers_file.read_text(encoding="utf-8"))
    return [str(env) for env in answers["environments"]]


def charts(root: Path, service: str | None) -> list[Path]:
    found = sorted(path.parent for path in (root / "deploy" / "charts").glob("*/Chart.yaml"))
    if not found:
        raise Refusal("no chart found under deploy/charts/")
    if service:
        names = ", ".join(chart.name for chart in found)
        found = [chart for chart in found if chart.name == service]
        if not found:
            raise Refusal(
                f"SERVICE={service}: no chart deploy/charts/{service}/ (services: {names})"
            )
    return found


def read_tag(root: Path, values_file: Path) -> str | None:
    if not values_file.is_file():
        env = values_file.stem.removeprefix("values-")
        raise Refusal(
            f"{values_file.relative_to(root)} does not exist: the service {values_file.parent.name}"
            f" has no values for the environment {env} (`make update` gives every service one)"
        )
    data = yaml_round_trip().load(values_file.read_text(encoding="utf-8")) or {}
    tag = (data.get("image") or {}).get("tag")
    return str(tag) if tag else None


def with_tag(text: str, tag: str) -> str:
    """The values file text with image.tag set, everything else kept as it was."""
    yaml = yaml_round_trip()
    data: Any = yaml.load(text)
    if data is None:
        data = CommentedMap()
    image = data.get("image")
    if image is None:
        image = CommentedMap()
        data["image"] = image
    image["tag"] = tag
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def previous_tag_in_history(root: Path, values_file: Path, current: str | None) -> str:
    """The last tag the file held before `current`, from git history."""
    relative = str(values_file.relative_to(root))
    commits = subprocess.run(
        ["git", "log", "--format=%H", "--", relative],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for commit in commits:
        shown = subprocess.run(
            ["git", "show", f"{commit}:{relative}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            continue
        data = yaml_round_trip().load(shown.stdout) or {}
        tag = (data.get("image") or {}).get("tag")
        if tag and str(tag) != current:
            return str(tag)
    raise Refusal(f"{relative}: git history has no earlier tag than {current} to roll back to")


def plan(
    root: Path,
    env: str,
    tag: str | None,
    rollback: bool,
    service: str | None,
    answers_file: Path | None = None,
) -> dict[Path, str]:
    """Values file -> tag to set, for every chart; raises Refusal before anything is written."""
    order = environments(answers_file or root / ANSWERS)
    if env not in order:
        raise Refusal(f"ENV={env}: not one of the environments {', '.join(order)}")
    if tag is not None and not TAG.match(tag):
        raise Refusal(
            f"TAG={tag}: not a valid image tag (up to 128 letters, digits, '_', '.' and '-',"
            " not starting with '.' or '-')"
        )
    if tag is not None and rollback:
        raise Refusal("give either TAG or ROLLBACK, not both")
    index = order.index(env)
    if index == 0 and tag is None and not rollback:
        raise Refusal(f"ENV={env} is the first environment: give TAG=<image tag>")
    targets: dict[Path, str] = {}
    unset: list[Path] = []
    for chart in charts(root, service):
        values_file = chart / f"values-{env}.yaml"
        current = read_tag(root, values_file)
        if rollback:
            targets[values_file] = previous_tag_in_history(root, values_file, current)
        elif tag is not None:
            targets[values_file] = tag
        else:
            source = chart / f"values-{order[index - 1]}.yaml"
            previous = read_tag(root, source)
            if previous is None:
                unset.append(source)
            else:
                targets[values_file] = previous
    if unset and (service or not targets):
        raise Refusal(
            f"{unset[0].relative_to(root)} sets no image.tag to promote from {order[index - 1]}"
        )
    for source in unset:
        print(f"{source.relative_to(root)} sets no image.tag yet: {source.parent.name} skipped")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="environment to promote to")
    parser.add_argument("--tag", help="image tag; default: the previous environment's tag")
    parser.add_argument("--rollback", action="store_true", help="restore the tag before")
    parser.add_argument("--service", help="only this chart under deploy/charts/")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="repository holding deploy/charts: this one, or a clone of the configuration repo",
    )
    parser.add_argument(
        "--answers",
        type=Path,
        help="answers file with the environments (default: <root>/.copier-answers.yml)",
    )
    args = parser.parse_args(argv)
    try:
        targets = plan(
            args.root, args.env, args.tag or None, args.rollback, args.service, args.answers
        )
    except Refusal as refusal:
        print(f"promote: {refusal}; nothing changed", file=sys.stderr)
        return 2
    for values_file, tag in targets.items():
        text = values_file.read_text(encoding="utf-8")
        updated = with_tag(text, tag)
        relative = values_file.relative_to(args.root)
        if updated == text:
            print(f"{relative}: already at {tag}")
            continue
        values_file.write_text(updated, encoding="utf-8")
        print(f"{relative}: image.tag -> {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
