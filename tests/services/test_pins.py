"""Pins never drift: extensions/versions.yaml reaches every file that uses a pin, after updates too.

The template-owned files (Dockerfile, CI) are rendered from the pins; the user-owned ones carry
them in one field each, which the service task (extensions/service_sync.py) sets after every
copy and update: go.mod's toolchain line, package.json's packageManager (and pnpm-lock.yaml),
.python-version, pom.xml's java.version. The update tests bump each language's pin in a
template snapshot and update a project as `make update` does (platform, then the service with
its own answers file), with a user edit in the same file that must survive.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_update

from extensions import service_sync
from extensions.context import load_pins
from tests.helpers import REPO_ROOT, run
from tests.update.gitrepo import commit_all, conflict_markers, copy_project, snapshot_template

SERVICE = "my-service"
CI_FILE = Path(".github/workflows/ci.yml")
LOCKFILE_TEMPLATE = "template/service/{% if language == 'node' %}pnpm-lock.yaml{% endif %}.jinja"
Pins = dict[str, Any]


# --- the task, on files ---------------------------------------------------------------------------


def pins_with(**changes: dict[str, Any]) -> Pins:
    pins = {key: dict(value) for key, value in load_pins().items() if isinstance(value, dict)}
    for language, values in changes.items():
        pins[language].update(values)
    return pins


def test_go_toolchain_line_is_set_and_nothing_else_changes(tmp_path: Path) -> None:
    service = tmp_path / "apps" / "svc"
    service.mkdir(parents=True)
    go_mod = "module example.com/svc\n\ngo 1.26.0\n\ntoolchain go1.26.1\n\n// kept\nrequire x v1\n"
    (service / "go.mod").write_text(go_mod, encoding="utf-8")

    changed = service_sync.sync(tmp_path, "svc", "go", pins_with(go={"version": "1.27.3"}))

    assert changed == [service / "go.mod"]
    assert (service / "go.mod").read_text() == go_mod.replace("go1.26.1", "go1.27.3")
    # In step already: nothing is written.
    assert service_sync.sync(tmp_path, "svc", "go", pins_with(go={"version": "1.27.3"})) == []


def test_go_toolchain_line_comes_back_after_the_go_line_when_removed(tmp_path: Path) -> None:
    service = tmp_path / "apps" / "svc"
    service.mkdir(parents=True)
    (service / "go.mod").write_text("module example.com/svc\n\ngo 1.26.0\n", encoding="utf-8")

    service_sync.sync(tmp_path, "svc", "go", pins_with(go={"version": "1.27.3"}))

    assert (service / "go.mod").read_text() == (
        "module example.com/svc\n\ngo 1.26.0\n\ntoolchain go1.27.3\n"
    )


def test_package_manager_field_is_set_keeping_the_user_formatting(tmp_path: Path) -> None:
    manifest = (
        '{\n    "name": "w",\n    "packageManager":"pnpm@1.0.0",\n    "scripts": {"x": "y"}\n}\n'
    )
    (tmp_path / "package.json").write_text(manifest, encoding="utf-8")
    pins = pins_with(node={"pnpm": "12.4.2", "pnpm_sha512": "ab" * 64})

    assert service_sync.sync_node(tmp_path, "svc", pins) == [tmp_path / "package.json"]

    expected = f'"packageManager":"pnpm@12.4.2+sha512.{"ab" * 64}"'
    assert (tmp_path / "package.json").read_text() == manifest.replace(
        '"packageManager":"pnpm@1.0.0"', expected
    )


def test_a_package_json_without_package_manager_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "w"}\n', encoding="utf-8")
    with pytest.raises(service_sync.SyncError, match="no packageManager field"):
        service_sync.sync_node(tmp_path, "svc", load_pins())


def test_java_version_property_is_set_and_other_properties_stay(tmp_path: Path) -> None:
    service = tmp_path / "apps" / "svc"
    service.mkdir(parents=True)
    pom = "<project><properties>\n<java.version>25</java.version>\n<a>25</a>\n</properties>\n"
    (service / "pom.xml").write_text(pom, encoding="utf-8")

    service_sync.sync(tmp_path, "svc", "java", pins_with(java={"version": "29"}))

    assert (service / "pom.xml").read_text() == pom.replace(">25</java", ">29</java")


def test_lockfile_is_current_only_with_the_service_and_the_pinned_pnpm(tmp_path: Path) -> None:
    manager = {"importers": {".": {"packageManagerDependencies": {"pnpm": {"version": "12.4.2"}}}}}
    workspace: dict[str, Any] = {"importers": {".": {}, "apps/web": {}}}
    (tmp_path / "pnpm-lock.yaml").write_text(
        yaml.safe_dump_all([manager, workspace]), encoding="utf-8"
    )
    assert service_sync.lockfile_is_current(tmp_path, "web", "12.4.2")
    assert not service_sync.lockfile_is_current(tmp_path, "site", "12.4.2")
    assert not service_sync.lockfile_is_current(tmp_path, "web", "12.5.0")


# --- copier update with a bumped pin -------------------------------------------------------------


@dataclass(frozen=True)
class Bump:
    """A pin before and after, where it shows, and a user edit in the user-owned file."""

    language: str
    old: Pins  # versions.yaml entries of the language at the first version
    new: Pins  # ... and at the second
    pinned_file: str  # the user-owned file with the pin (in apps/<service>/, node: the root)
    edit: Callable[[str], str]  # a user edit of the file with the pin (python: pyproject.toml)
    edited: str  # what the user edit leaves there

    def pinned(self, project: Path) -> Path:
        if self.language == "node":
            return project / self.pinned_file
        return project / "apps" / SERVICE / self.pinned_file

    def user_file(self, project: Path) -> Path:
        """.python-version is nothing but the pin: the Python user edits pyproject.toml."""
        if self.language == "python":
            return project / "apps" / SERVICE / "pyproject.toml"
        return self.pinned(project)


def real(language: str) -> Pins:
    pins: Pins = dict(load_pins()[language])
    return pins


def bumped(language: str, old: str, new: str, keys: tuple[str, ...]) -> Pins:
    pins = real(language)
    for key in keys:
        pins[key] = str(pins[key]).replace(old, new)
    return pins


PYTHON = real("python")
GO = real("go")
JAVA = real("java")
NODE = real("node")
BUMPS = [
    Bump(
        "python",
        old=PYTHON,
        new=bumped("python", PYTHON["version"], "3.14", ("version", "image", "ci_image")),
        pinned_file=".python-version",
        edit=lambda text: text + "# Owned by the payments team.\n",
        edited="# Owned by the payments team.",
    ),
    Bump(
        "go",
        old=GO,
        new=bumped("go", GO["version"], "1.99.1", ("version", "image")),
        pinned_file="go.mod",
        edit=lambda text: text + "\n// Owned by the payments team.\n",
        edited="// Owned by the payments team.",
    ),
    Bump(
        "java",
        old=JAVA,
        new=bumped("java", f"-{JAVA['version']}", "-29", ("image",))
        | {"version": "29", "runtime_image": "gcr.io/distroless/java29-debian13:nonroot"},
        pinned_file="pom.xml",
        edit=lambda text: text.replace(
            "<java.version>", "<team.name>payments</team.name>\n    <java.version>", 1
        ),
        edited="<team.name>payments</team.name>",
    ),
    Bump(
        "node",
        # The first version pins an older pnpm (as the template did before a bump); the second
        # is this working tree's, so that the lock step resolves a pnpm that exists.
        old=NODE | {"pnpm": "12.4.1", "pnpm_sha512": "0" * 128},
        new=NODE,
        pinned_file="package.json",
        edit=lambda text: text.replace(
            '"scripts": {\n', '"scripts": {\n    "check": "pnpm lint && pnpm test",\n', 1
        ),
        edited='"check": "pnpm lint && pnpm test"',
    ),
]


def set_pins(template: Path, language: str, pins: Pins) -> None:
    """versions.yaml of the template snapshot with the language's entries replaced."""
    versions = template / "extensions" / "versions.yaml"
    data = yaml.safe_load(versions.read_text(encoding="utf-8"))
    data[language] = pins
    versions.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    if language == "node":
        # The lockfile the template renders records the pnpm it was locked with.
        lockfile = template / LOCKFILE_TEMPLATE
        text = (REPO_ROOT / LOCKFILE_TEMPLATE).read_text(encoding="utf-8")
        current = str(NODE["pnpm"])
        recorded = f"specifier: {current}\n        version: {current}\n"
        assert text.count(recorded) == 1, "the lockfile template records pnpm once"
        wanted = f"specifier: {pins['pnpm']}\n        version: {pins['pnpm']}\n"
        lockfile.write_text(text.replace(recorded, wanted), encoding="utf-8")


def update(project: Path, answers_file: str, vcs_ref: str) -> None:
    """`copier update` of one application, as `make update` runs it; then a commit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_update(
            project,
            answers_file=answers_file,
            vcs_ref=vcs_ref,
            defaults=True,
            overwrite=True,
            unsafe=True,
            conflict="inline",
            quiet=True,
        )
    commit_all(project, f"Update {answers_file} to {vcs_ref}")


def places(project: Path, bump: Bump) -> dict[str, str]:
    """Every place that uses the language's pins, and what it says there."""
    dockerfile = (project / "apps" / SERVICE / "Dockerfile").read_text(encoding="utf-8")
    pinned = bump.pinned(project).read_text(encoding="utf-8")
    found = {
        # The images, and the pnpm the build stage installs.
        "Dockerfile": " ".join(
            re.findall(r"^FROM (\S+)", dockerfile, re.M) + re.findall(r"pnpm@\S+", dockerfile)
        ),
        "CI": (project / CI_FILE).read_text(encoding="utf-8"),
    }
    if bump.language == "python":
        found[".python-version"] = pinned.strip()
    elif bump.language == "go":
        found["go.mod"] = " ".join(re.findall(r"^toolchain (\S+)$", pinned, re.M))
    elif bump.language == "java":
        found["pom.xml"] = " ".join(re.findall(r"<java\.version>(.*?)<", pinned))
    else:
        found["package.json"] = json.loads(pinned)["packageManager"]
        manager = next(yaml.safe_load_all((project / "pnpm-lock.yaml").read_text("utf-8")))
        dependencies = manager["importers"]["."]["packageManagerDependencies"]
        found["pnpm-lock.yaml"] = f"pnpm {dependencies['pnpm']['version']}"
    return found


def needles(language: str, pins: Pins) -> dict[str, list[str]]:
    """What each place says when it carries `pins` (CI: the words of the step that reads it)."""
    if language == "python":
        return {
            "Dockerfile": [pins["image"]],
            ".python-version": [pins["version"]],
            "CI": [f"python install {pins['version']}"],
        }
    if language == "go":
        # GitHub Actions runs the go that go.mod names; the workflow names no release.
        return {
            "Dockerfile": [pins["image"]],
            "go.mod": [f"go{pins['version']}"],
            "CI": ["GOTOOLCHAIN=auto"],
        }
    if language == "java":
        return {
            "Dockerfile": [pins["image"], pins["runtime_image"]],
            "pom.xml": [pins["version"]],
            "CI": [f"JAVA_HOME_{pins['version']}_X64"],
        }
    # corepack runs the pnpm of packageManager; the CI step names it too.
    return {
        "Dockerfile": [pins["image"], f"pnpm@{pins['pnpm']}"],
        "package.json": [f"pnpm@{pins['pnpm']}+sha512.{pins['pnpm_sha512']}"],
        "pnpm-lock.yaml": [f"pnpm {pins['pnpm']}"],
        "CI": ["corepack enable", f"pnpm {pins['pnpm']}"],
    }


def assert_everywhere(project: Path, bump: Bump, pins: Pins, stale: Pins) -> None:
    """Every place carries `pins`, and none still carries what `stale` says differently."""
    found = places(project, bump)
    current, outdated = needles(bump.language, pins), needles(bump.language, stale)
    assert set(found) == set(current)
    for place, text in found.items():
        for needle in current[place]:
            assert needle in text, f"{place} does not carry {needle!r}: {text[:300]!r}"
        for needle in set(outdated[place]) - set(current[place]):
            assert needle not in text, f"{place} still carries {needle!r}"
    if bump.language == "go":
        assert stale["version"] not in found["CI"], "CI names a Go release of its own"


@pytest.mark.slow
@pytest.mark.parametrize("bump", BUMPS, ids=[bump.language for bump in BUMPS])
def test_bumped_pin_reaches_every_place_after_update_and_user_edits_stay(
    bump: Bump, tmp_path: Path, tool: Callable[[str], str]
) -> None:
    template = snapshot_template(tmp_path / "template", tag="v0")
    set_pins(template, bump.language, bump.old)
    commit_all(template, "pins before the bump", tag="v1")
    project = copy_project(template, tmp_path / "project", "v1", data={"language": bump.language})
    assert_everywhere(project, bump, bump.old, bump.new)

    edited = bump.user_file(project)
    edited.write_text(bump.edit(edited.read_text(encoding="utf-8")), encoding="utf-8")
    commit_all(project, "The user's edits")
    set_pins(template, bump.language, bump.new)
    commit_all(template, "bump the pin", tag="v2")

    update(project, ".copier-answers.yml", "v2")
    update(project, f".copier-answers.{SERVICE}.yml", "v2")

    assert conflict_markers(project) == []
    assert_everywhere(project, bump, bump.new, bump.old)
    assert bump.edited in edited.read_text(encoding="utf-8")
    if bump.language == "node":
        # The lock step ran: the workspace installs exactly as CI and the Dockerfile do.
        lockfile = (project / "pnpm-lock.yaml").read_text(encoding="utf-8")
        assert not re.search(r"://|tarball", lockfile)
        run([tool("pnpm"), "install", "--frozen-lockfile", "--lockfile-only"], cwd=project)
    if bump.language == "go":
        # go.mod is still a module file go reads (no toolchain switch: GOTOOLCHAIN=local).
        env = {**os.environ, "GOTOOLCHAIN": "local"}
        go_mod = run([tool("go"), "mod", "edit", "-json"], cwd=edited.parent, env=env).stdout
        assert json.loads(go_mod)["Toolchain"] == f"go{bump.new['version']}"
