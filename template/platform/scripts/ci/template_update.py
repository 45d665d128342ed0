#!/usr/bin/env python3
"""Update this repository from its Copier template (the scheduled template-update job).

    python3 scripts/ci/template_update.py --body update.md [--output "$GITHUB_OUTPUT"]

Runs `copier check-update`; when a newer template version exists, runs
`copier update --trust --defaults --conflict inline` and writes:
- `--body`: the pull request text, with the template's changelog for the new versions
  and the files that need a person (conflict markers, `.rej` files, unmerged paths);
- `--output`: `updated=true|false`, `conflicts=true|false`, `version=<new version>`.
Copier exits 0 even when it leaves conflicts, so this script looks for them itself.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CONFLICT_START = re.compile(r"^<{7} ", re.MULTILINE)
CONFLICT_END = re.compile(r"^>{7} ", re.MULTILINE)
SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\]", re.MULTILINE)
GIT_PREFIXES = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/"}


def run(*command: str, cwd: Path | None = None) -> str:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr.strip()}")
    return completed.stdout


def check_update(project: Path) -> dict[str, object]:
    output = run("copier", "check-update", "--output-format", "json", str(project))
    result: dict[str, object] = json.loads(output)
    return result


def find_conflicts(project: Path) -> list[str]:
    """Unmerged paths, `.rej` files and changed files holding conflict markers."""
    found = set(run("git", "diff", "--name-only", "--diff-filter=U", cwd=project).split())
    status = run("git", "status", "--porcelain", "-z", "--untracked-files=all", cwd=project)
    for entry in filter(None, status.split("\0")):
        path = entry[3:]
        if path.endswith(".rej"):
            found.add(path)
            continue
        file = project / path
        if file.is_file():
            text = file.read_text(encoding="utf-8", errors="replace")
            if CONFLICT_START.search(text) and CONFLICT_END.search(text):
                found.add(path)
    return sorted(found)


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


def template_changelog(source: str, version: str) -> str:
    """CHANGELOG.md of the template at `version` (tag `v<version>` or `<version>`)."""
    for prefix, url in GIT_PREFIXES.items():
        if source.startswith(prefix):
            source = url + source.removeprefix(prefix)
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


def answers_source(project: Path) -> str:
    for line in (project / ".copier-answers.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("_src_path:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise SystemExit(".copier-answers.yml has no _src_path: was this project made by Copier?")


def pull_request_body(current: str, latest: str, changelog: str, conflicts: list[str]) -> str:
    lines = [f"Updates the project from devops-template {current} to {latest}.", ""]
    if conflicts:
        lines += [
            "**Needs attention:** the update met local changes in these files.",
            "Resolve the conflict markers (`<<<<<<<`, `>>>>>>>`) or `.rej` files",
            "before merging:",
            "",
            *[f"- `{path}`" for path in conflicts],
            "",
        ]
    lines += ["## Template changelog", "", changelog or "_No changelog entries found._"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--body", type=Path, required=True, help="pull request body to write")
    parser.add_argument("--output", type=Path, help="file to append key=value results to")
    args = parser.parse_args(argv)

    status = check_update(args.project)
    current, latest = str(status["current_version"]), str(status["latest_version"])
    results = {"updated": "false", "conflicts": "false", "version": latest}
    if status["update_available"]:
        run(
            "copier",
            "update",
            "--trust",
            "--defaults",
            "--conflict",
            "inline",
            str(args.project),
            cwd=args.project,
        )
        conflicts = find_conflicts(args.project)
        changelog = changelog_excerpt(
            template_changelog(answers_source(args.project), latest), current, latest
        )
        args.body.write_text(pull_request_body(current, latest, changelog, conflicts), "utf-8")
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
