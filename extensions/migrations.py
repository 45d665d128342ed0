"""Copier migration from the single-service layout (v0.1.0) to the monorepo layout.

    python migrations.py before|after VERSION_TO

Copier runs it on every `copier update` of the platform (`_migrations` in copier.yml), in the
project's root; it does nothing unless .copier-answers.yml is a v0.1.0 one (it has no `scope`).

In v0.1.0 one application held everything: .copier-answers.yml had the platform's and the
service's answers, and the template rendered apps/<slug>/ and deploy/charts/<slug>/ beside the
platform's files. Now the platform and each service are applications of their own.

- before: .copier-answers.yml keeps the platform's answers (`scope: platform`, and `repo_url`,
  now asked for every deploy target, with v0.1.0's default when it was not asked);
  .copier-answers.<slug>.yml records the service's (`scope: service`, same `_src_path` and
  `_commit`, so the service updates from what it was rendered with); the user-owned
  .gitlab/ci/services.yml becomes .gitlab/ci/custom.yml. Copier then updates the platform with
  these answers: it renders no service file any more and removes the old ones, among them the
  per-environment Argo CD Applications that the ApplicationSet replaces.
- after: the service is updated as its own application, from v0.1.0 to VERSION_TO, in a
  temporary worktree of HEAD (Copier updates only clean repositories), with the v0.1.0 platform
  files excluded from the comparison; its files (code, chart, workspace files) are then copied
  into the project. The user's edits of service files are kept or shown as conflict markers, as
  in any update; nothing is committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

PLATFORM_ANSWERS = Path(".copier-answers.yml")
# The service questions of v0.1.0 (a fact of that release: not context.SERVICE_QUESTIONS, which
# may grow).
SERVICE_QUESTIONS = ("project_slug", "description", "language", "image_repository")
OLD_GITLAB_SERVICES = Path(".gitlab/ci/services.yml")
GITLAB_CUSTOM = Path(".gitlab/ci/custom.yml")
MARKER = "devops-template-migration.json"
CUSTOM_HEADER = """\
# Moved from .gitlab/ci/services.yml by the update to the monorepo layout (docs/updating.md).
# Each service's jobs are now in the template's .gitlab/ci/services/<service>.yml, and the job
# templates changed (a service's lint and test jobs also extend .service:<service>:toolchain).
# Your old blocks are kept below, commented out, because a job here with a template job's name
# replaces that job's keys and the old ones would drop the toolchain. Bring back what you had
# changed as a job of the same name that sets only those keys (see the template's custom.yml).
"""
# GitLab refuses an included file without content; a hidden job never runs.
CUSTOM_FOOTER = """
.custom:
  stage: lint
  script:
    - echo "a template for your jobs"
"""


def commented(text: str) -> str:
    """The old file's lines as comments: kept for the user, inert for GitLab."""
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())


# Temporary commits in the scratch worktree: no hooks, signing or identity needed.
GIT_TEMPORARY = (
    "-c",
    "core.hooksPath=" + os.devnull,
    "-c",
    "commit.gpgSign=false",
    "-c",
    "user.name=devops-template migration",
    "-c",
    "user.email=migration@localhost",
)


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {cwd}: {completed.stderr.strip()}")
    return completed.stdout


def marker_path(project: Path) -> Path:
    """A note from `before` to `after`, in this worktree's git directory (never committed)."""
    return Path(git(project, "rev-parse", "--absolute-git-dir").strip()) / MARKER


def v010_repo_url(answers: dict[str, Any]) -> str:
    """v0.1.0's default repo_url (asked only for Argo CD there, now for every target)."""
    host = "gitlab.com" if answers.get("ci_provider") == "gitlab" else "github.com"
    return f"https://{host}/{answers['owner']}/{answers['project_slug']}.git"


def split_answers(old: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """v0.1.0 answers as (platform answers, service answers), both with `_src_path`/`_commit`."""
    shared = {key: value for key, value in old.items() if key not in SERVICE_QUESTIONS}
    shared.setdefault("repo_url", v010_repo_url(old))
    platform = {**shared, "scope": "platform"}
    service = {**shared, **{k: old[k] for k in SERVICE_QUESTIONS if k in old}, "scope": "service"}
    return platform, service


def write_answers(path: Path, answers: dict[str, Any]) -> None:
    internal = {key: answers[key] for key in ("_commit", "_src_path") if key in answers}
    rest = {key: value for key, value in answers.items() if key not in internal}
    text = yaml.safe_dump(internal, sort_keys=True) + yaml.safe_dump(rest, sort_keys=True)
    path.write_text(text, encoding="utf-8")


def migrate_layout(project: Path, old: dict[str, Any], stage_moves: bool) -> None:
    """The v0.1.0 answers and user-owned files in the new layout (both stages use it)."""
    platform, service = split_answers(old)
    write_answers(project / PLATFORM_ANSWERS, platform)
    write_answers(project / f".copier-answers.{old['project_slug']}.yml", service)
    old_services, custom = project / OLD_GITLAB_SERVICES, project / GITLAB_CUSTOM
    if old_services.is_file() and not custom.exists():
        text = old_services.read_text(encoding="utf-8")
        if stage_moves:
            # Staged, so that Copier's comparison sees a rename and not a lost file.
            git(project, "mv", str(OLD_GITLAB_SERVICES), str(GITLAB_CUSTOM))
        else:
            old_services.rename(custom)
        custom.write_text(CUSTOM_HEADER + commented(text) + CUSTOM_FOOTER, encoding="utf-8")
        if stage_moves:
            git(project, "add", str(GITLAB_CUSTOM))


def before(project: Path) -> int:
    old: dict[str, Any] = yaml.safe_load((project / PLATFORM_ANSWERS).read_text("utf-8")) or {}
    if "scope" in old or "project_slug" not in old:
        return 0  # already the monorepo layout
    print(f"Migrating to the monorepo layout: platform and service {old['project_slug']}")
    marker_path(project).write_text(json.dumps(old), encoding="utf-8")
    migrate_layout(project, old, stage_moves=True)
    return 0


def render_service(source: str, version: str, data: dict[str, Any], where: Path) -> set[str]:
    """The files the new template gives the service (what the service application owns)."""
    from copier import run_copy  # only when migrating: importing Copier takes a while

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            source,
            where,
            data=data,
            vcs_ref=version,
            defaults=True,
            unsafe=True,
            quiet=True,
            skip_tasks=True,
        )
    return {str(path.relative_to(where)) for path in where.rglob("*") if path.is_file()}


def escape(path: str) -> str:
    """A path as an anchored gitignore-style pattern matching only itself."""
    return "/" + "".join(f"[{ch}]" if ch in "*?[]!#\\" else ch for ch in path)


def update_service(project: Path, old: dict[str, Any], version: str, scratch: Path) -> None:
    slug = str(old["project_slug"])
    answers_file = f".copier-answers.{slug}.yml"
    own_dirs = (f"apps/{slug}/", f"deploy/charts/{slug}/")
    worktree = scratch / "worktree"
    git(project, "worktree", "add", "--quiet", "--detach", str(worktree), "HEAD")
    try:
        migrate_layout(worktree, old, stage_moves=False)
        git(worktree, "add", "-A")
        git(worktree, *GIT_TEMPORARY, "commit", "--quiet", "--no-verify", "-m", "layout")
        platform, service = split_answers(old)
        data = {k: v for k, v in platform.items() if not k.startswith("_") and k != "scope"}
        service_data = {k: v for k, v in service.items() if not k.startswith("_")}
        owned = render_service(str(old["_src_path"]), version, service_data, scratch / "service")
        tracked = set(git(worktree, "ls-files", "-z").split("\0")) - {""}
        # v0.1.0's platform files are not the service's: keep them out of its comparison.
        others = sorted(p for p in tracked - owned if not p.startswith(own_dirs))
        from copier import run_update

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_update(
                worktree,
                answers_file=answers_file,
                data=data,
                vcs_ref=version,
                exclude=[escape(path) for path in others],
                defaults=True,
                overwrite=True,
                unsafe=True,
                conflict="inline",
                quiet=True,
            )
        mine = set(git(worktree, "ls-files", "-z", "--others", "--", *own_dirs).split("\0"))
        paths = (owned | {p for p in tracked if p.startswith(own_dirs)} | mine) - {""}
        for path in sorted(paths):
            source, target = worktree / path, project / path
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            elif target.is_file():
                target.unlink()
    finally:
        git(project, "worktree", "remove", "--force", str(worktree))


def after(project: Path, version: str) -> int:
    marker = marker_path(project)
    if not marker.is_file():
        return 0
    old: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    for env in old.get("environments") or ():
        (project / f"deploy/argocd/{old['project_slug']}-{env}.yaml").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        update_service(project, old, version, Path(scratch))
    marker.unlink()
    print(f"Service {old['project_slug']} updated as its own application")
    return 0


def main(argv: list[str]) -> int:
    stage, version = argv[1], argv[2]
    project = Path.cwd()
    return before(project) if stage == "before" else after(project, version)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
