#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = ["ruamel.yaml>=0.18"]
# ///
"""Promote an image (tag and digest) to an environment by editing its values files, only.

    make promote ENV=dev TAG=<sha> DIGEST=sha256:...  set both in each service's values-dev.yaml
    make promote ENV=staging               each service takes the image its previous env runs
    make promote ENV=prod ROLLBACK=1       go back to the image prod ran before the last change
    make promote ENV=staging SERVICE=api   the same for one service; the others are not touched

The image is image.tag and image.digest together: the digest (kaniko's --digest-file, the one CI
signed) pins the exact bytes; the tag names them for people. A promotion or rollback moves both;
TAG without DIGEST clears the digest, so a stale digest never pins another tag's image.

The services are the charts under deploy/charts/. The edit is a round trip: comments, key order
and formatting of the file are kept. Running it twice changes nothing the second time. Any refusal
exits 2 with a message and writes nothing. Promoting every service from the previous environment
skips, with a note, a service that environment does not run yet (a service added since).
"""

from __future__ import annotations

import argparse
import copy
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

# OCI distribution spec: a tag is at most 128 characters of [A-Za-z0-9_.-], not starting
# with '.' or '-'.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ANSWERS = Path(".copier-answers.yml")


class Refusal(Exception):
    """A reason not to promote; the message is shown as is."""


@dataclass(frozen=True)
class Image:
    """What an environment runs: the tag, and the digest when CI recorded it."""

    tag: str
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.tag}@{self.digest}" if self.digest else self.tag


def image_of(data: Any) -> Image | None:
    image = (data or {}).get("image") or {}
    tag = image.get("tag")
    if not tag:
        return None
    return Image(str(tag), str(image.get("digest")) if image.get("digest") else None)


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


def read_image(root: Path, values_file: Path) -> Image | None:
    if not values_file.is_file():
        env = values_file.stem.removeprefix("values-")
        raise Refusal(
            f"{values_file.relative_to(root)} does not exist: the service {values_file.parent.name}"
            f" has no values for the environment {env} (`make update` gives every service one)"
        )
    return image_of(yaml_round_trip().load(values_file.read_text(encoding="utf-8")))


def with_image(text: str, target: Image) -> str:
    """The values file text with image.tag and image.digest set, everything else kept as it was."""
    yaml = yaml_round_trip()
    data: Any = yaml.load(text)
    if data is None:
        data = CommentedMap()
    image = data.get("image")
    if image is None:
        image = CommentedMap()
        data["image"] = image
    image["tag"] = target.tag
    if target.digest or "digest" in image:
        if "digest" not in image:
            insert_after(image, "tag", "digest", target.digest or "")
        image["digest"] = target.digest or ""
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def insert_after(mapping: CommentedMap, key: str, new_key: str, value: str) -> None:
    """Insert new_key right after key. The comment lines after key's value belong to what follows
    it, so they move below the new line; an end-of-line comment on key stays there."""
    mapping.insert(list(mapping).index(key) + 1, new_key, value)
    tokens = mapping.ca.items.get(key)
    if not tokens or len(tokens) < 3 or tokens[2] is None:
        return
    comment = tokens[2]
    inline, _, following = comment.value.partition("\n")
    if not following.strip():
        return
    moved = copy.copy(comment)
    moved.value = "\n" + following
    mapping.ca.items[new_key] = [None, None, moved, None]
    if inline.strip():
        comment.value = inline + "\n"
    else:
        del mapping.ca.items[key]


def previous_image_in_history(root: Path, values_file: Path, current: Image | None) -> Image:
    """The last image the file held before `current`, from git history."""
    relative = str(values_file.relative_to(root))
    env = values_file.stem.removeprefix("values-")
    if current is None:
        raise Refusal(
            f"{relative} sets no image.tag: {values_file.parent.name} has never been promoted"
            f" to {env}, so there is nothing to roll back to"
        )
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
        earlier = image_of(yaml_round_trip().load(shown.stdout))
        if earlier is not None and earlier.tag != current.tag:
            return earlier
    raise Refusal(
        f"{relative}: {values_file.parent.name} has run only {current.tag} in {env} (git history"
        " has no earlier image), so there is nothing to roll back to"
    )


def plan(
    root: Path,
    env: str,
    tag: str | None,
    rollback: bool,
    service: str | None,
    answers_file: Path | None = None,
    digest: str | None = None,
) -> dict[Path, Image]:
    """Values file -> image to set, for every chart; raises Refusal before anything is written."""
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
    if digest is not None and tag is None:
        raise Refusal("DIGEST names the image of a TAG: give TAG=<tag> DIGEST=<digest>")
    if digest is not None and not DIGEST.match(digest):
        raise Refusal(f"DIGEST={digest}: not an image digest (sha256: and 64 hex digits)")
    index = order.index(env)
    if index == 0 and tag is None and not rollback:
        raise Refusal(f"ENV={env} is the first environment: give TAG=<image tag>")
    targets: dict[Path, Image] = {}
    unset: list[Path] = []
    for chart in charts(root, service):
        values_file = chart / f"values-{env}.yaml"
        current = read_image(root, values_file)
        if rollback:
            targets[values_file] = previous_image_in_history(root, values_file, current)
        elif tag is not None:
            targets[values_file] = Image(tag, digest)
        else:
            source = chart / f"values-{order[index - 1]}.yaml"
            previous = read_image(root, source)
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
    parser.add_argument("--digest", help="image digest (sha256:...) of TAG, from kaniko")
    parser.add_argument("--rollback", action="store_true", help="restore the image before")
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
            args.root,
            args.env,
            args.tag or None,
            args.rollback,
            args.service,
            args.answers,
            args.digest or None,
        )
    except Refusal as refusal:
        print(f"promote: {refusal}; nothing changed", file=sys.stderr)
        return 2
    for values_file, image in targets.items():
        text = values_file.read_text(encoding="utf-8")
        updated = with_image(text, image)
        relative = values_file.relative_to(args.root)
        if updated == text:
            print(f"{relative}: already at {image}")
            continue
        values_file.write_text(updated, encoding="utf-8")
        digest = f", image.digest -> {image.digest}" if image.digest else ""
        print(f"{relative}: image.tag -> {image.tag}{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
