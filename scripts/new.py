"""`make new`: generate a project from this checkout, one that `copier update` can update.

    .venv/bin/python scripts/new.py DEST [COPIER OPTIONS...]

The project records where its template is (`_src_path`) and at which version (`_commit`);
`copier update`, `make update` and the scheduled template-update job fetch that version from
there and, by default, move to the newest release tag. So this script:

- records the checkout's absolute path, never a relative one;
- renders the newest release tag at HEAD (what `copier copy gh:<org>/devops-template` renders),
  so a plain `copier update` later finds a newer release, never a "downgrade"; `REF=HEAD`
  (the environment) renders the checkout's HEAD commit instead, for template development;
- refuses what Copier could not find again: a checkout that is not a git repository (no version
  is recorded), and with `REF=HEAD` uncommitted changes (Copier would record a commit it makes in
  a temporary clone); `DRAFT=1` allows them, for a throwaway project.

A refused `--data` answer prints one line naming the question, not Copier's traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )


def release_ref(root: Path) -> str:
    """The version to render: REF from the environment, else the newest tag at HEAD."""
    ref = os.environ.get("REF", "")
    if ref:
        return ref
    newest = git(root, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD")
    return newest.stdout.strip() if newest.returncode == 0 else "HEAD"


def refusal(root: Path, ref: str) -> str:
    """Why a project generated from `root` at `ref` could not be updated, or ''."""
    inside = git(root, "rev-parse", "--show-toplevel")
    if inside.returncode != 0 or Path(inside.stdout.strip()).resolve() != root:
        return (
            f"{root} is not a git checkout of the template, so the project could record no"
            " version to update from; clone the template with git and run make new there"
        )
    if ref != "HEAD":
        return ""  # Copier renders the committed tag; uncommitted changes are left out
    status = git(root, "status", "--porcelain").stdout
    if status.strip() and os.environ.get("DRAFT") != "1":
        changed = ", ".join(line[3:] for line in status.splitlines()[:5])
        more = " ..." if len(status.splitlines()) > 5 else ""
        return (
            f"the template checkout has uncommitted changes ({changed}{more}); a project made"
            " from them records a commit that exists nowhere, and `copier update` could never"
            " run in it. Commit them first (or DRAFT=1 for a throwaway project)"
        )
    return ""


def copier_error(error: BaseException) -> str | None:
    """One line for an answer Copier refuses (Copier raises ValueError), else None."""
    if not isinstance(error, ValueError):
        return None
    message = str(error).strip()
    prefix = "Validation error for question "
    if message.startswith(prefix):
        # Our validators' messages start with the question's name already.
        _, _, message = message.partition("': ")
        return message
    if message.startswith(("Invalid choice for ", "Question ")):
        return message
    return None


def run_copier(argv: list[str], label: str) -> int:
    """Copier's command line in this interpreter; a refused answer is one line, no traceback."""
    from copier._cli import CopierApp

    try:
        CopierApp.run(["copier", *argv])  # exits with Copier's code
    except ValueError as error:
        line = copier_error(error)
        if line is None:
            raise
        print(f"{label}: {line}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: scripts/new.py DEST [COPIER OPTIONS...]", file=sys.stderr)
        return 2
    destination, copier_args = argv[0], argv[1:]
    ref = release_ref(ROOT)
    reason = refusal(ROOT, ref)
    if reason:
        print(f"make new: {reason}", file=sys.stderr)
        return 2
    if ref == "HEAD":
        print(
            "make new: rendering the checkout's HEAD commit; until a newer release tag exists,"
            " the project updates with `make update COPIER_ARGS=--vcs-ref=HEAD`",
            file=sys.stderr,
        )
    else:
        print(f"make new: rendering release {ref} (REF=HEAD renders this checkout's HEAD)")
    return run_copier(
        ["copy", "--trust", "--vcs-ref", ref, *copier_args, str(ROOT), destination], "make new"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
