#!/usr/bin/env python3
"""The services of this repository, read from their descriptors at a git revision.

    python3 scripts/ci/services.py list [REV]            every service at REV (default HEAD)
    python3 scripts/ci/services.py affected BASE HEAD    the services a change selects

A service is a folder apps/<name>/ with a descriptor, apps/<name>/catalog-info.yaml (a
Backstage Component; the template writes it). Both commands print one line of JSON, an array
of objects {name, language, build_context, dockerfile, image, chart} sorted by name, that CI
uses as a job matrix.

What a change selects, comparing HEAD with its merge base with BASE:
- a path under one of a service's `devops-template/watch` paths (its app folder, its chart,
  its language's shared files such as the pnpm workspace) selects that service;
- a platform file (CI definitions, scripts/, the root Makefile, .copier-answers.yml) selects
  every service;
- anything else (docs/, README.md, deploy/argocd/ ...) selects none.
Every service is selected when BASE is empty or all zeros (a manual run, a new branch), not in
this clone (a force push, a shallow clone) or shares no history with HEAD. A service deleted
by the change has nothing to build and is not listed.

Service names end up in image, job and Kubernetes names: a folder whose name is not a
DNS-1123 label is ignored with a message. Exit codes: 0, 1 for an unreadable descriptor,
2 for bad arguments. Python 3.11 standard library and git only, as on any CI runner.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence

PROG = "services.py"
DESCRIPTOR = "catalog-info.yaml"
ANNOTATION = "devops-template/"
# Changes to these paths select every service: they define how every service is built.
PLATFORM_PATHS = (
    ".github/",
    ".gitlab-ci.yml",
    ".gitlab/",
    "scripts/",
    "Makefile",
    ".copier-answers.yml",
)
# A service's own GitLab CI file (.gitlab/ci/services/<name>.yml) selects only that service.
SERVICE_CI_FILE = re.compile(r"^\.gitlab/ci/services/(?P<name>[^/]+)\.yml$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LANGUAGE = re.compile(r"^[a-z][a-z0-9]*$")
# registry host[:port]/repository path, lowercase, no tag or digest.
IMAGE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)+$")
RELATIVE_PATH = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")
ZERO_SHA = re.compile(r"^0+$")
# Quoted scalars, with the comment that may follow them.
DOUBLE_QUOTED = re.compile(r"""^("(?:[^"\\]|\\.)*")\s*(?:#.*)?$""")
SINGLE_QUOTED = re.compile(r"""^('(?:[^']|'')*')\s*(?:#.*)?$""")
# `key: value` or `key:` with a plain, single- or double-quoted key.
KEY_VALUE = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#'"][^:#]*?)\s*:(?:\s+(.*))?$""")


class DescriptorError(Exception):
    """A descriptor that this script cannot read or whose values are unsafe."""


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    language: str
    build_context: str
    dockerfile: str
    image: str
    chart: str
    watch: tuple[str, ...]

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "language": self.language,
            "build_context": self.build_context,
            "dockerfile": self.dockerfile,
            "image": self.image,
            "chart": self.chart,
        }

    def watches(self, path: str) -> bool:
        """Whether a change to `path` selects this service."""
        return any(matches(path, watched) for watched in self.watch)


def matches(path: str, pattern: str) -> bool:
    """`pattern` ending in / is a folder and matches what is below it; else the path itself."""
    return path.startswith(pattern) if pattern.endswith("/") else path == pattern


# --- The descriptor: a small reader for the YAML the template writes ----------------------------


def scalar(raw: str, where: str) -> str:
    """A plain, single-quoted or double-quoted YAML scalar on one line (a comment may follow)."""
    value = raw.strip()
    double = DOUBLE_QUOTED.match(value)
    if double:
        try:
            decoded: str = json.loads(double.group(1))
        except json.JSONDecodeError as error:
            raise DescriptorError(f"{where}: unreadable double-quoted value {value}") from error
        return decoded
    single = SINGLE_QUOTED.match(value)
    if single:
        return single.group(1)[1:-1].replace("''", "'")
    if value[:1] in {"|", ">", "[", "{", "&", "*", "!", "'", '"'}:
        raise DescriptorError(f"{where}: write the value on one line, plain or quoted: {value}")
    return re.split(r"\s+#", value, maxsplit=1)[0].rstrip()


def read_mapping(text: str, source: str) -> dict[tuple[str, ...], str]:
    """Every `key: value` of the first YAML document, by its path of block-mapping keys.

    Enough for the descriptors the template writes (nested block mappings of scalars, plain ones
    possibly folded over several lines);
    sequences and anything else are skipped, and values are read only where the caller asks.
    """
    values: dict[tuple[str, ...], str] = {}
    parents: list[tuple[int, str]] = []
    continued: tuple[int, tuple[str, ...]] | None = None  # the plain scalar that may go on
    started = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped in {"---", "..."} or stripped.startswith("--- "):
            if started:
                break  # only the first document
            continue
        started = True
        indent = len(line) - len(line.lstrip(" "))
        if stripped.startswith("- ") or stripped == "-":
            continue  # a sequence item: no field we read is in one
        match = KEY_VALUE.match(stripped)
        if match is None:
            if continued is not None and indent > continued[0]:
                # A plain scalar folded over several lines: YAML joins them with spaces.
                values[continued[1]] = f"{values[continued[1]]} {stripped}".lstrip()
            continue
        key = scalar(match.group(1), f"{source}:{number}")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = (*(name for _, name in parents), key)
        raw = match.group(2)
        continued = None
        if raw is None or raw.strip().startswith("#"):
            parents.append((indent, key))
            # A nested mapping follows, or a plain scalar that starts on the next line.
            values[path] = ""
            continued = (indent, path)
        else:
            values[path] = raw
            if raw.strip()[:1] not in {"'", '"'} and " #" not in raw:
                continued = (indent, path)
    return values


def parse_descriptor(folder: str, text: str) -> Service:
    """The service described by apps/<folder>/catalog-info.yaml."""
    source = f"apps/{folder}/{DESCRIPTOR}"
    fields = read_mapping(text, source)

    def field(*path: str, default: str | None = None) -> str:
        raw = fields.get(path)
        if raw is None:
            if default is None:
                raise DescriptorError(f"{source}: {'.'.join(path)} is missing")
            return default
        return scalar(raw, f"{source}: {'.'.join(path)}")

    def annotation(name: str, default: str | None = None) -> str:
        return field("metadata", "annotations", ANNOTATION + name, default=default)

    name = field("metadata", "name")
    if name != folder:
        raise DescriptorError(
            f"{source}: metadata.name is {name!r}, not the folder name {folder!r}"
        )
    service = Service(
        name=name,
        language=annotation("language"),
        build_context=annotation("build-context", f"apps/{name}"),
        dockerfile=annotation("dockerfile", f"apps/{name}/Dockerfile"),
        image=annotation("image"),
        chart=annotation("chart", f"deploy/charts/{name}"),
        watch=(),
    )
    default_watch = f"apps/{name}/ {service.chart}/"
    watch = tuple(annotation("watch", default_watch).split())
    check(service, watch, source)
    return dataclasses.replace(service, watch=watch)


def check(service: Service, watch: Sequence[str], source: str) -> None:
    """Refuse values that would be unsafe in a job matrix, a shell command or an image name."""
    if not LANGUAGE.match(service.language):
        raise DescriptorError(f"{source}: language {service.language!r} is not a language key")
    if not IMAGE.match(service.image):
        raise DescriptorError(
            f"{source}: image {service.image!r} is not host/repository (lowercase, no tag)"
        )
    paths = {
        "build-context": service.build_context,
        "dockerfile": service.dockerfile,
        "chart": service.chart,
    }
    paths.update({f"watch {index + 1}": path for index, path in enumerate(watch)})
    for what, path in paths.items():
        parts = path.rstrip("/").split("/")
        if not RELATIVE_PATH.match(path) or ".." in parts or (path != "." and "." in parts):
            raise DescriptorError(f"{source}: {what} {path!r} is not a path inside the repository")


# --- git ------------------------------------------------------------------------------------------


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def commit(revision: str) -> str | None:
    """The commit a revision names, or None when it names none in this clone."""
    if not revision or revision.startswith("-"):
        return None
    completed = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    return completed.stdout.strip() if completed.returncode == 0 else None


def warn(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def services_at(revision: str) -> list[Service]:
    """Every service whose descriptor exists at `revision`, sorted by name."""
    listed = git("ls-tree", "-r", "-z", "--name-only", revision, "--", "apps/")
    if listed.returncode != 0:
        raise DescriptorError(f"cannot list apps/ at {revision}: {listed.stderr.strip()}")
    services = []
    for path in sorted(filter(None, listed.stdout.split("\0"))):
        parts = path.split("/")
        if len(parts) != 3 or parts[2] != DESCRIPTOR:
            continue
        folder = parts[1]
        if not DNS_LABEL.match(folder):
            warn(
                f"ignoring apps/{folder}: a service name is a DNS-1123 label (lowercase letters, "
                "digits and '-', starting and ending with a letter or digit, at most 63 characters)"
            )
            continue
        shown = git("show", f"{revision}:{path}")
        if shown.returncode != 0:
            raise DescriptorError(f"cannot read {path} at {revision}: {shown.stderr.strip()}")
        services.append(parse_descriptor(folder, shown.stdout))
    return services


def changed_paths(base: str, head: str) -> list[str] | None:
    """Paths changed between the merge base of BASE and HEAD, and HEAD; None selects all."""
    if not base or ZERO_SHA.match(base):
        return None
    base_commit = commit(base)
    if base_commit is None:
        warn(f"BASE revision {base!r} is not in this clone; selecting every service")
        return None
    merge_base = git("merge-base", base_commit, head)
    if merge_base.returncode != 0:
        warn(f"{base!r} and HEAD share no history; selecting every service")
        return None
    diff = git("diff", "--name-only", "--no-renames", "-z", merge_base.stdout.strip(), head)
    if diff.returncode != 0:
        raise DescriptorError(f"git diff failed: {diff.stderr.strip()}")
    return [path for path in diff.stdout.split("\0") if path]


def affected(services: Sequence[Service], paths: Iterable[str] | None) -> list[Service]:
    """The services that the changed paths select (all of them for None)."""
    if paths is None:
        return list(services)
    selected: set[str] = set()
    for path in paths:
        own_ci_file = SERVICE_CI_FILE.match(path)
        if own_ci_file:
            selected.add(own_ci_file.group("name"))
            continue
        if any(matches(path, platform) for platform in PLATFORM_PATHS):
            return list(services)
        selected.update(service.name for service in services if service.watches(path))
    return [service for service in services if service.name in selected]


# --- Command line ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog=PROG, description="The services of this repository, as a JSON job matrix."
    )
    commands = parse.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every service at REV (default HEAD)")
    listing.add_argument("rev", nargs="?", default="HEAD", metavar="REV")
    change = commands.add_parser(
        "affected", help="the services a change selects (an empty BASE selects all)"
    )
    change.add_argument("base", metavar="BASE")
    change.add_argument("head", metavar="HEAD")
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser()
    args = parse.parse_args(argv)
    revision = args.rev if args.command == "list" else args.head
    head = commit(revision)
    if head is None:
        parse.error(f"revision {revision!r} is not a commit of this repository")
    try:
        services = services_at(head)
        if args.command == "affected":
            services = affected(services, changed_paths(args.base, head))
    except DescriptorError as error:
        warn(f"error: {error}")
        return 1
    print(json.dumps([service.as_json() for service in services], separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
