#!/usr/bin/env python3
"""Update this repository from its Copier template (the scheduled template-update job).

    python3 scripts/ci/template_update.py --body update.md [--output "$GITHUB_OUTPUT"]

Runs `copier check-update`; when a newer template version exists (or a service lags behind the
platform), updates every Copier application of the repository as `make update` does (the
platform, then each service with the platform's answers: scripts/fleet.py) and writes:
- `--body`: the pull request text, with the template's changelog for the new versions
  and, per application, the files that need a person (conflict markers, `.rej` files);
- `--output`: `updated=true|false`, `conflicts=true|false`, `version=<new version>`.
The changes are left uncommitted for the job to commit. This script needs only the standard
library: it runs scripts/fleet.py with the Python interpreter that runs Copier (the one on the
`copier` command's first line, e.g. pipx's), which has Copier and PyYAML.

A private template: with TEMPLATE_REPOSITORY_TOKEN (a read-only token) in the environment, every
git command this script and Copier run answers the template host's request for credentials
with it, through a credential helper that reads the variable when git asks (user name:
TEMPLATE_REPOSITORY_USER, default x-access-token). The token is never written into a URL, a
command line, a file or the output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFLICT_START = re.compile(r"^<{7} ", re.MULTILINE)
CONFLICT_END = re.compile(r"^>{7} ", re.MULTILINE)
SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\]", re.MULTILINE)
GIT_PREFIXES = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/"}
FLEET = Path("scripts/fleet.py")
SERVICE_ANSWERS = re.compile(r"^\.copier-answers\.[a-z][-a-z0-9]*\.yml$")
TOKEN_VARIABLE = "TEMPLATE_REPOSITORY_TOKEN"
# git runs the helper with `get`, `store` or `erase`; it answers `get` only, from the environment
# of the moment, so the token is in no configuration, argument or log.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    'echo "username=${TEMPLATE_REPOSITORY_USER:-x-access-token}"; '
    'echo "password=$TEMPLATE_REPOSITORY_TOKEN"; }; f'
)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def run(*command: str, cwd: Path | None = None) -> str:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr.strip()}")
    return completed.stdout


def check_update(project: Path) -> dict[str, object]:
    output = run("copier", "check-update", "--output-format", "json", str(project))
    result: dict[str, object] = json.loads(output)
    return result


def copier_python() -> str:
    """The interpreter of the `copier` command (pipx's, uv's or the system's): it has Copier."""
    command = shutil.which("copier")
    if command:
        with open(command, "rb") as script:
            first = script.readline().decode("utf-8", "replace").strip()
        if first.startswith("#!") and "python" in first:
            interpreter = first[2:].strip().split()[0]
            if Path(interpreter).is_file():
                return interpreter
    return sys.executable


def recorded_versions(project: Path) -> dict[str, str]:
    """`_commit` of every answers file of the repository (platform and services)."""
    versions = {}
    for path in sorted(project.glob(".copier-answers*.yml")):
        if path.name == ".copier-answers.yml" or SERVICE_ANSWERS.match(path.name):
            versions[path.name] = answers_value(path, "_commit")
    return versions


def update_all(project: Path) -> list[dict[str, Any]]:
    """scripts/fleet.py update: every application; its report of conflicts per application."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        completed = subprocess.run(
            [copier_python(), str(FLEET), "update", "--report", str(report)],
            cwd=project,
            check=False,
        )
        if completed.returncode not in (0, 1):  # 1: updated, with conflicts to resolve
            raise SystemExit(f"{FLEET} update failed (exit code {completed.returncode})")
        results: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))
    return results


def is_changed(project: Path) -> bool:
    return bool(run("git", "status", "--porcelain", "--untracked-files=all", cwd=project).strip())


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def changelog_excerpt(changelog: str, current: str, latest: str) -> str:
    """The `## [x.y.z]` sections newer than `current`, up to and including `latest`."""
    matches = list(SECTION.finditer(changelog))
    sections = []
    for index, match in enumerate(matches):
        version = match.group("version")
        if not re.match(r"v?\d", version):
            continue  # [Unreleased]
        if version_key(current) < version_key(version) <= version_key(latest):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(changelog)
            sections.append(changelog[match.start() : end].strip())
    return "\n\n".join(sections)


def git_url(source: str) -> str:
    """The URL git clones for Copier's `gh:`/`gl:` shortcuts and `git+` URLs; others as they are."""
    source = source.removeprefix("git+")
    for prefix, url in GIT_PREFIXES.items():
        if source.startswith(prefix):
            return url + source.removeprefix(prefix)
    return source


def credential_environment(source: str, environ: dict[str, str]) -> dict[str, str]:
    """Git configuration, as environment variables, that authenticates to the template's host.

    Empty without a token. Entries are added after any GIT_CONFIG_COUNT entries already set; the
    helper applies to the template's scheme and host only, after an empty value that drops
    helpers configured elsewhere for that host.
    """
    if not environ.get(TOKEN_VARIABLE):
        return {}
    url = urlsplit(git_url(source))
    secure = url.scheme == "https" or (url.scheme == "http" and url.hostname in LOOPBACK)
    if not secure or not url.hostname:
        raise SystemExit(
            f"{TOKEN_VARIABLE} is set, but the template source {source!r} is not an https URL: "
            "point the project at the template's https address (docs/operations.md)"
        )
    scope = f"{url.scheme}://{url.netloc.rpartition('@')[2]}"
    first = int(environ.get("GIT_CONFIG_COUNT") or "0")
    key = f"credential.{scope}.helper"
    entries = [(key, ""), (key, CREDENTIAL_HELPER)]
    result = {"GIT_CONFIG_COUNT": str(first + len(entries)), "GIT_TERMINAL_PROMPT": "0"}
    for index, (key, value) in enumerate(entries, start=first):
        result[f"GIT_CONFIG_KEY_{index}"] = key
        result[f"GIT_CONFIG_VALUE_{index}"] = value
    return result


def template_changelog(source: str, version: str) -> str:
    """CHANGELOG.md of the template at `version` (tag `v<version>` or `<version>`)."""
    source = git_url(source)
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "template"
        run("git", "clone", "--quiet", "--no-checkout", source, str(clone))
        for tag in (f"v{version}", version):
            shown = subprocess.run(
                ["git", "show", f"{tag}:CHANGELOG.md"],
                cwd=clone,
                capture_output=True,
                text=True,
                check=False,
            )
            if shown.returncode == 0:
                return shown.stdout
    return ""


def answers_value(path: Path, key: str) -> str:
    """A top-level scalar of an answers file (Copier writes `_commit` and `_src_path` plainly)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise SystemExit(f"{path.name} has no {key}: was this project made by Copier?")


def pull_request_body(
    current: str, latest: str, changelog: str, applications: list[dict[str, Any]]
) -> str:
    lines = [f"Updates the project from devops-template {current} to {latest}.", ""]
    names = ", ".join(f"{app['application']} (`{app['answers_file']}`)" for app in applications)
    lines += [f"Applications updated: {names}.", ""]
    conflicted = [app for app in applications if app["conflicts"]]
    if conflicted:
        lines += [
            "**Needs attention:** the update met local changes in these files.",
            "Resolve the conflict markers (`<<<<<<<`, `>>>>>>>`) or `.rej` files",
            "before merging:",
            "",
        ]
        for app in conflicted:
            lines.append(f"- {app['application']} (`{app['answers_file']}`):")
            lines += [f"  - `{path}`" for path in app["conflicts"]]
        lines.append("")
    lines += ["## Template changelog", "", changelog or "_No changelog entries found._"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--body", type=Path, required=True, help="pull request body to write")
    parser.add_argument("--output", type=Path, help="file to append key=value results to")
    args = parser.parse_args(argv)

    source = answers_value(args.project / ".copier-answers.yml", "_src_path")
    # Copier's git commands and ours inherit it.
    os.environ.update(credential_environment(source, dict(os.environ)))
    status = check_update(args.project)
    current, latest = str(status["current_version"]), str(status["latest_version"])
    results = {"updated": "false", "conflicts": "false", "version": latest}
    lagging = {
        name: version
        for name, version in recorded_versions(args.project).items()
        if version.removeprefix("v") != latest.removeprefix("v")
    }
    if status["update_available"] or lagging:
        applications = update_all(args.project)
        conflicts = [path for app in applications for path in app["conflicts"]]
        if is_changed(args.project):
            changelog = changelog_excerpt(template_changelog(source, latest), current, latest)
            body = pull_request_body(current, latest, changelog, applications)
            args.body.write_text(body, "utf-8")
            results.update(updated="true", conflicts=str(bool(conflicts)).lower())
        attention = ", ".join(conflicts) or "none"
        print(f"updated {current} -> {latest}; files needing attention: {attention}")
    else:
        print(f"up to date with template {current}")
    if args.output:
        with args.output.open("a", encoding="utf-8") as output:
            output.writelines(f"{key}={value}\n" for key, value in results.items())
    return 0


if __name__ == "__main__":
    sys.exit(main())
