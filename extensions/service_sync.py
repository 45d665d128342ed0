"""Copier task of every service application: the pins reach the files the user owns.

    python service_sync.py '{"service": "billing", "language": "go"}'

Runs in the repository (the subproject root) after each `copier copy` and `copier update` of a
service. extensions/versions.yaml is the one source of truth: the template-owned files (the
Dockerfile, CI) read it when they are rendered, and this task sets the pinned fields of the
user-owned files from it, leaving every other line as the user wrote it:

- go:     go.mod's `toolchain` line (what `go` and CI's GOTOOLCHAIN=auto build with);
- node:   package.json's `packageManager` (what corepack runs), and pnpm-lock.yaml when it lacks
          the service or records another pnpm: `pnpm install --lockfile-only`;
- python: apps/<service>/.python-version (what `uv venv` and `uv python install` read);
- java:   pom.xml's `java.version` property (the release javac targets and Maven enforces).

It runs in Copier's temporary renders too, where everything is already in step: it then
changes nothing and runs nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
LOCKFILE = "pnpm-lock.yaml"


class SyncError(Exception):
    """A pinned field that cannot be set; shown as is."""


def load_pins() -> dict[str, Any]:
    with VERSIONS_FILE.open(encoding="utf-8") as handle:
        pins: dict[str, Any] = yaml.safe_load(handle)
    return pins


def replace_once(path: Path, pattern: str, replacement: str, what: str) -> bool:
    """Set the one match of `pattern` (multiline) to `replacement`; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    changed, count = re.subn(pattern, lambda _: replacement, text, count=1, flags=re.M)
    if count == 0:
        raise SyncError(f"{path}: no {what} to set to the pinned version")
    if changed == text:
        return False
    path.write_text(changed, encoding="utf-8")
    return True


def sync_go(root: Path, service: str, pins: dict[str, Any]) -> list[Path]:
    """go.mod's `toolchain go<pin>` line, added after the `go` line if the user removed it."""
    go_mod = root / "apps" / service / "go.mod"
    line = f"toolchain go{pins['go']['version']}"
    text = go_mod.read_text(encoding="utf-8")
    if re.search(r"^toolchain\s", text, re.M):
        changed = replace_once(go_mod, r"^toolchain\s+\S+[ \t]*$", line, "toolchain line")
    else:
        go_line = re.search(r"^go\s+\S+[ \t]*$", text, re.M)
        if go_line is None:
            raise SyncError(f"{go_mod}: no go line to put the toolchain line after")
        end = go_line.end()
        go_mod.write_text(f"{text[:end]}\n\n{line}{text[end:]}", encoding="utf-8")
        changed = True
    return [go_mod] if changed else []


def package_manager(pins: dict[str, Any]) -> str:
    node = pins["node"]
    return f"pnpm@{node['pnpm']}+sha512.{node['pnpm_sha512']}"


def sync_node(root: Path, service: str, pins: dict[str, Any]) -> list[Path]:
    """package.json's packageManager (the field only: the user's formatting stays)."""
    manifest = root / "package.json"
    value = json.dumps(package_manager(pins))
    pattern = r'^(\s*"packageManager"\s*:\s*)"[^"\n]*"'
    text = manifest.read_text(encoding="utf-8")
    match = re.search(pattern, text, re.M)
    if match is None:
        raise SyncError(f"{manifest}: no packageManager field to set to the pinned pnpm")
    changed = replace_once(manifest, pattern, f"{match[1]}{value}", "packageManager field")
    json.loads(manifest.read_text(encoding="utf-8"))  # still JSON
    return [manifest] if changed else []


def sync_python(root: Path, service: str, pins: dict[str, Any]) -> list[Path]:
    """apps/<service>/.python-version: the Python of the image (its whole content is the pin)."""
    pin = root / "apps" / service / ".python-version"
    wanted = f"{pins['python']['version']}\n"
    if pin.is_file() and pin.read_text(encoding="utf-8") == wanted:
        return []
    pin.write_text(wanted, encoding="utf-8")
    return [pin]


def sync_java(root: Path, service: str, pins: dict[str, Any]) -> list[Path]:
    """pom.xml's <java.version> property."""
    pom = root / "apps" / service / "pom.xml"
    version = pins["java"]["version"]
    pattern = r"<java\.version>[^<]*</java\.version>"
    changed = replace_once(pom, pattern, f"<java.version>{version}</java.version>", "java.version")
    return [pom] if changed else []


SYNC: dict[str, Callable[[Path, str, dict[str, Any]], list[Path]]] = {
    "go": sync_go,
    "node": sync_node,
    "python": sync_python,
    "java": sync_java,
}


def lockfile_is_current(root: Path, service: str, pnpm: str) -> bool:
    """pnpm-lock.yaml has an importer for the service and records the pinned pnpm."""
    lockfile = root / LOCKFILE
    if not lockfile.is_file():
        return False
    documents = [doc for doc in yaml.safe_load_all(lockfile.read_text("utf-8")) if doc]
    importers = {name for doc in documents for name in (doc.get("importers") or {})}
    managers = [
        doc["importers"]["."]["packageManagerDependencies"]["pnpm"]["version"]
        for doc in documents
        if "packageManagerDependencies" in (doc.get("importers") or {}).get(".", {})
    ]
    return f"apps/{service}" in importers and managers == [pnpm]


def pnpm_command() -> list[str]:
    """pnpm from PATH, else through corepack (which runs the version packageManager pins)."""
    if pnpm := shutil.which("pnpm"):
        return [pnpm]
    if corepack := shutil.which("corepack"):
        return [corepack, "pnpm"]
    raise SyncError(
        "pnpm-lock.yaml needs the new service: install pnpm (`corepack enable pnpm`), then run "
        "`pnpm install --lockfile-only` at the repository root"
    )


def lock_workspace(root: Path, service: str, pins: dict[str, Any]) -> bool:
    """`pnpm install --lockfile-only` when the lockfile lacks the service or the pinned pnpm."""
    if lockfile_is_current(root, service, str(pins["node"]["pnpm"])):
        return False
    env = {**os.environ, "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0"}
    command = [*pnpm_command(), "install", "--lockfile-only", "--use-stderr"]
    print(f"service_sync: {' '.join(command[-3:-1])} for {service}", file=sys.stderr)
    completed = subprocess.run(command, cwd=root, env=env, check=False)
    if completed.returncode != 0:
        raise SyncError(f"`pnpm install --lockfile-only` exited {completed.returncode}")
    text = (root / LOCKFILE).read_text(encoding="utf-8")
    if re.search(r"://|\btarball:", text):
        raise SyncError(
            f"{LOCKFILE} names a download address: remove lockfile-include-tarball-url from "
            "your pnpm configuration and run `pnpm install --lockfile-only` again"
        )
    return True


def sync(root: Path, service: str, language: str, pins: dict[str, Any]) -> list[Path]:
    """Set every pinned field of the service's user-owned files; the files that changed."""
    changed = SYNC[language](root, service, pins)
    if language == "node" and lock_workspace(root, service, pins):
        changed.append(root / LOCKFILE)
    return changed


def main(argv: list[str]) -> int:
    arguments = json.loads(argv[1])
    try:
        changed = sync(Path.cwd(), arguments["service"], arguments["language"], load_pins())
    except SyncError as error:
        print(f"service_sync: {error}", file=sys.stderr)
        return 1
    for path in changed:
        relative = path.relative_to(Path.cwd())
        print(f"service_sync: {relative} follows extensions/versions.yaml", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
