"""Updates that survive interruption (issue #12, item 4), and readable refusals (issue #13, item 6).

A two-service monorepo at v0.1.0 with committed user edits to template-owned and user-owned
files is updated to v0.2.0 by `make update`, once without interruption (the reference), and
again killed (SIGKILL to the whole process group, as a closed terminal or an OOM kill would) at
several points: the next `make update` must recover and end with exactly the reference tree.

The kill points are states of the update, not times: v0.2.0 has one more migration, which does
nothing unless HOLD_UPDATE names the application's answers file and the stage it runs for
(".copier-answers.worker.yml:after": the worker's Copier run has written its files, not yet
committed); then it creates the file
HOLD_UPDATE_READY and sleeps, and the test kills the update there, however fast the machine is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.monorepo import build_monorepo, make, tool_env
from tests.update.conftest import replace_in
from tests.update.gitrepo import commit_all, git

SERVICES = (("api", "python"), ("worker", "go"))
JOURNAL = ".git/devops-template-update.json"
SAVED = "refs/devops-template/interrupted-update"
# The user's committed edits: lines the v0.2.0 release does not touch, so they merge cleanly.
EDITS = {
    ".yamllint.yaml": "# ours: the platform team's yamllint notes\n",
    "apps/worker/Dockerfile": "# ours: reviewed by security\n",
    "apps/api/Makefile": "# ours: a target of our own\n",
}


def tree(project: Path) -> dict[str, bytes]:
    """Every file of the work tree but .git, by path."""
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def differences(actual: dict[str, bytes], expected: dict[str, bytes]) -> list[str]:
    paths = sorted(set(actual) | set(expected))
    return [path for path in paths if actual.get(path) != expected.get(path)]


def copy_of(project: Path, destination: Path) -> Path:
    shutil.copytree(project, destination, symlinks=True)
    return destination


def assert_user_edits_kept(project: Path) -> None:
    for path, line in EDITS.items():
        assert line in (project / path).read_text(encoding="utf-8"), f"edit of {path} lost"


# Runs in each application's update, before and after Copier writes its files (Copier renders
# the command with `_stage` and its configuration, not the answers, which the before stage has
# not loaded; a versioned migration's `when` is the after stage only unless it says otherwise).
HOLD_MIGRATION = """\
  - version: v0.2.0
    when: "{{ true }}"
    command: >-
      if [ "${HOLD_UPDATE:-}" = "{{ _copier_conf.answers_file }}:{{ _stage }}" ]; then
      : > "$HOLD_UPDATE_READY"; exec sleep 900; fi
"""


@pytest.fixture(scope="module")
def holding_template_repo(
    tmp_path_factory: pytest.TempPathFactory, fixes_template_repo: Path
) -> Path:
    """The fixes release, its v0.2.0 with the migration that holds the update when told to."""
    template = tmp_path_factory.mktemp("holding") / "template"
    shutil.copytree(fixes_template_repo, template, symlinks=True)
    replace_in(template / "copier.yml", "\n_migrations:\n", f"\n_migrations:\n{HOLD_MIGRATION}")
    commit_all(template, "template v0.2.0, held where a test says")
    git(template, "tag", "-f", "v0.2.0")
    return template


@pytest.fixture(scope="module")
def edited_monorepo(tmp_path_factory: pytest.TempPathFactory, holding_template_repo: Path) -> Path:
    project = build_monorepo(
        holding_template_repo,
        tmp_path_factory.mktemp("interrupted") / "shop",
        services=SERVICES,
        vcs_ref="v0.1.0",
    )
    for path, line in EDITS.items():
        file = project / path
        file.write_text(line + file.read_text(encoding="utf-8"), encoding="utf-8")
    commit_all(project, "Our edits")
    return project


@pytest.fixture(scope="module")
def reference(
    edited_monorepo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, bytes], float]:
    """The uninterrupted update: exit code, resulting tree, seconds it took."""
    project = copy_of(edited_monorepo, tmp_path_factory.mktemp("reference") / "shop")
    started = time.monotonic()
    result = make(project, "update", check=False)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert_user_edits_kept(project)
    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    return result.returncode, tree(project), took


def start_update(project: Path, hold: str, ready: Path) -> subprocess.Popen[str]:
    """`make update`, held (sleeping, never finishing) at `hold` (answers file:stage)."""
    env = tool_env() | {"HOLD_UPDATE": hold, "HOLD_UPDATE_READY": str(ready)}
    return subprocess.Popen(
        ["make", "update"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: make, uv, fleet.py, Copier, git
    )


def kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_at(process: subprocess.Popen[str], ready: Path) -> bool:
    """SIGKILL the update's whole process group as soon as it holds (`ready` exists). False if
    it finished first (the point was never reached)."""
    deadline = time.monotonic() + 900
    while not ready.exists():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            kill(process)
            return False
        time.sleep(0.05)
    kill(process)
    return True


# Kill points, whatever the machine's speed: inside an application's Copier run, before it wrote
# anything or after it wrote its files (not yet committed), for the platform (the first
# application: no temporary commit yet) and for a service (temporary commits on the detached HEAD).
# Each point: where the update holds, the temporary commits on the detached HEAD by then, and
# whether the work tree holds the application's uncommitted files.
KILL_POINTS: dict[str, tuple[str, int, bool]] = {
    "platform-before": (".copier-answers.yml:before", 0, False),
    "platform-after": (".copier-answers.yml:after", 0, True),
    "service-api-before": (".copier-answers.api.yml:before", 1, False),
    "service-worker-after": (".copier-answers.worker.yml:after", 2, True),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_an_update_killed_midway_is_recovered_by_the_next_one(
    edited_monorepo: Path,
    reference: tuple[int, dict[str, bytes], float],
    tmp_path: Path,
    point: str,
) -> None:
    """Each kill point leaves its own state for scripts/fleet.py's `recover`: the journal (written
    before HEAD is detached) in every one, HEAD detached at the start or on temporary commits
    (`fleet: update <application>`), the work tree with or without an application's uncommitted
    files. `recover` saves the work tree as SAVED when it differs from the start (the temporary
    commits' changes included), checks the branch out, resets it to the start and cleans.

    - platform-before: HEAD at the start, nothing changed: the one state with nothing to save.
    - platform-after: HEAD at the start, the platform's files uncommitted (the reset and the
      clean remove them once saved).
    - service-api-before: HEAD on the platform's temporary commit, nothing uncommitted.
    - service-worker-after: HEAD on two temporary commits and the worker's files uncommitted.

    Points that added nothing were dropped: the api's `after` and a kill right after fleet.py
    printed `update: service worker` (the worker's Copier starting, nothing written) leave the
    states of service-worker-after and service-api-before with one temporary commit less or
    more, which `recover` handles with the same commands; and a kill one second after `make
    update` started was a time, not a state: before fleet.py wrote the journal the next run is
    the uninterrupted update of `reference`, after it the state is platform-before's (with the
    branch still checked out at the start, which the same checkout and reset handle). The states
    no journal records (a plain `copier update` killed, an older fleet.py's temporary commits)
    have their own tests below.
    """
    expected_code, expected_tree, _ = reference
    project = copy_of(edited_monorepo, tmp_path / "shop")
    start = git(project, "rev-parse", "HEAD").strip()
    hold, temporary_commits, dirty = KILL_POINTS[point]
    ready = tmp_path / "held"

    killed = kill_at(start_update(project, hold, ready), ready)
    assert killed, f"the update finished before {point}: nothing interrupted"
    assert (project / JOURNAL).exists(), "killed inside an application's run, the journal says so"
    assert git(project, "rev-list", "--count", f"{start}..HEAD").strip() == str(temporary_commits)
    assert bool(git(project, "status", "--porcelain").strip()) == dirty

    again = make(project, "update", check=False)

    assert again.returncode == expected_code, again.stderr
    assert differences(tree(project), expected_tree) == []
    assert_user_edits_kept(project)
    assert git(project, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(project, "rev-parse", "HEAD").strip() == start
    assert not (project / JOURNAL).exists()
    assert "an earlier update was interrupted" in again.stderr
    assert "Updating again" in again.stderr
    # What the run had changed, committed on the detached HEAD or not, is kept.
    assert (f"saved as {SAVED}" in again.stderr) == bool(temporary_commits or dirty)


def test_a_dirty_tree_is_refused_saying_what_to_do(edited_monorepo: Path, tmp_path: Path) -> None:
    project = copy_of(edited_monorepo, tmp_path / "shop")
    (project / "notes.txt").write_text("work in progress\n", encoding="utf-8")

    refused = make(project, "update", check=False)

    assert refused.returncode != 0
    assert "uncommitted changes; commit or stash them first" in refused.stderr
    assert "make update RECOVER=1" in refused.stderr
    assert (project / "notes.txt").exists()
    assert git(project, "status", "--porcelain") == "?? notes.txt\n"


def test_changes_of_an_interrupted_copier_update_are_saved_and_redone(
    edited_monorepo: Path, reference: tuple[int, dict[str, bytes], float], tmp_path: Path
) -> None:
    """What a plain `copier update` killed midway leaves: answers at the new version and the
    user's edit of a template-owned file reverted (issue #12), with no journal to say so."""
    expected_code, expected_tree, _ = reference
    project = copy_of(edited_monorepo, tmp_path / "shop")
    answers = project / ".copier-answers.yml"
    answers.write_text(
        answers.read_text(encoding="utf-8").replace("_commit: v0.1.0", "_commit: v0.2.0"),
        encoding="utf-8",
    )
    dockerfile = project / "apps/worker/Dockerfile"
    reverted = dockerfile.read_text(encoding="utf-8").replace(EDITS["apps/worker/Dockerfile"], "")
    dockerfile.write_text(reverted, encoding="utf-8")

    refused = make(project, "update", check=False)
    assert refused.returncode != 0
    assert ".copier-answers.yml among them" in refused.stderr
    assert "make update RECOVER=1" in refused.stderr
    assert dockerfile.read_text(encoding="utf-8") == reverted  # nothing touched

    recovered = make(project, "update", "RECOVER=1", check=False)

    assert recovered.returncode == expected_code, recovered.stderr
    assert differences(tree(project), expected_tree) == []
    assert_user_edits_kept(project)
    saved = git(project, "show", f"{SAVED}:apps/worker/Dockerfile")
    assert saved == reverted  # the partial state is kept, not dropped


def test_temporary_commits_of_an_older_fleet_script_are_recovered(
    edited_monorepo: Path, reference: tuple[int, dict[str, bytes], float], tmp_path: Path
) -> None:
    """A fleet.py without the journal, killed on its detached HEAD of temporary commits."""
    expected_code, expected_tree, _ = reference
    project = copy_of(edited_monorepo, tmp_path / "shop")
    start = git(project, "rev-parse", "HEAD").strip()
    git(project, "update-ref", "--no-deref", "HEAD", start)
    (project / ".yamllint.yaml").write_text("partial\n", encoding="utf-8")
    git(project, "add", "-A")
    git(
        project,
        "-c",
        "user.name=devops-template fleet",
        "-c",
        "user.email=fleet@localhost",
        "commit",
        "-q",
        "-m",
        "fleet: update platform",
    )
    (project / "apps/api/Makefile").write_text("half written\n", encoding="utf-8")

    again = make(project, "update", check=False)

    assert again.returncode == expected_code, again.stderr
    assert "temporary commits on a detached HEAD" in again.stderr
    assert differences(tree(project), expected_tree) == []
    assert git(project, "rev-parse", "HEAD").strip() == start
    assert git(project, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_a_refused_answer_is_one_line_naming_the_question(
    edited_monorepo: Path, tmp_path: Path
) -> None:
    project = copy_of(edited_monorepo, tmp_path / "shop")
    before = tree(project)

    refused = make(project, "update", "DATA=registry_host=harbor.example.com", check=False)

    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    # Copier's progress lines come first; the refusal is one line, the last before make's.
    lines = [line for line in refused.stderr.splitlines() if not line.startswith("make")]
    assert [line for line in lines if "registry_host" in line] == [lines[-1]]
    assert lines[-1] == (
        "update: registry_host: 'harbor.example.com' is an example host, no one's registry;"
        " give your registry's host name (--data registry_host=<host>)."
    )
    assert tree(project) == before
    assert git(project, "status", "--porcelain") == ""
    assert not (project / JOURNAL).exists()
