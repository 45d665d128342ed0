"""What `copier update` tells the user when it finishes: the files it left with conflicts and
where the template's changelog is (`_message_after_update` in copier.yml).

Copier exits 0 even when it leaves conflicts, and its own message cannot know them: these
filters read the destination's git state when the message is rendered, after the update.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

CONFLICT_START = re.compile(rb"^<{7}( |$)", re.MULTILINE)
CONFLICT_END = re.compile(rb"^>{7}( |$)", re.MULTILINE)
# gh:owner/repo and gl:owner/repo, Copier's short forms of GitHub and GitLab URLs.
SHORT_FORMS = {"gh": "https://github.com/", "gl": "https://gitlab.com/"}
SSH_URL = re.compile(r"^(?:ssh://)?git@(?P<host>[^:/]+)[:/](?P<path>.+)$")
DESCRIBE = re.compile(r"^.+-\d+-g(?P<hash>[0-9a-f]{7,40})$")


def web_url(src_path: str) -> str:
    """https URL of a template repository given as Copier accepts it; '' for a local path."""
    src = src_path.strip()
    prefix, _, rest = src.partition(":")
    if prefix in SHORT_FORMS and rest and not rest.startswith("//"):
        src = SHORT_FORMS[prefix] + rest
    if src.startswith("git+"):
        src = src[len("git+") :]
    if match := SSH_URL.match(src):
        src = f"https://{match['host']}/{match['path']}"
    if not src.startswith("https://"):
        return ""
    return re.sub(r"(\.git)?/*$", "", src)


def changelog_url(src_path: str, commit: str = "") -> str:
    """Where the template's CHANGELOG.md is, at the version `commit` (a tag or a describe)."""
    url = web_url(src_path)
    if not url:
        return str(Path(src_path) / "CHANGELOG.md")  # a local checkout
    described = DESCRIBE.match(commit or "")
    ref = described["hash"] if described else (commit or "HEAD")
    separator = "/-/blob/" if "gitlab" in url.split("/")[2] else "/blob/"
    return f"{url}{separator}{ref}/CHANGELOG.md"


def git_lines(repository: str, *args: str) -> list[str]:
    completed = subprocess.run(
        ["git", "-C", repository, *args], capture_output=True, text=True, check=False
    )
    return completed.stdout.splitlines() if completed.returncode == 0 else []


def conflicted_files(dst_path: object) -> list[str]:
    """Files an update left to resolve: unmerged paths, `.rej` files, conflict markers."""
    repository = str(dst_path)
    found = set(git_lines(repository, "diff", "--name-only", "--diff-filter=U"))
    changed = git_lines(repository, "ls-files", "--modified", "--others", "--exclude-standard")
    for path in changed:
        if path.endswith(".rej"):
            found.add(path)
            continue
        file = Path(repository, path)
        if file.is_file():
            text = file.read_bytes()
            if CONFLICT_START.search(text) and CONFLICT_END.search(text):
                found.add(path)
    return sorted(found)


class UpdateReport(Extension):
    """Registers `changelog_url` and `conflicted_files` for the after-update message."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["changelog_url"] = changelog_url
        environment.filters["conflicted_files"] = conflicted_files
