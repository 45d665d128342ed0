"""The lifecycle of a four-service monorepo: update all, add an environment, remove a service.

The monorepo (Python api, Go worker, Node web, Java ledger) is built at v0.1.0 by the documented
commands once per worker; each test works on its own copy. v0.2.0 fixes a platform file and every
language's Dockerfile (template-owned) and changes every service's Makefile (user-owned).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.monorepo import FOUR_SERVICES, build_monorepo, make, tool_env
from tests.update.conftest import CHANGED, FIXED, replace_in
from tests.update.gitrepo import commit_all, conflict_markers, git

USER_LINE = "# user edit: keep me"
NAMES = [name for name, _ in FOUR_SERVICES]


def answers(project: Path, name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / name).read_text(encoding="utf-8"))
    return loaded


def test_update_all_brings_fixes_to_every_service_and_keeps_user_work(monorepo: Path) -> None:
    edited = []
    for name in NAMES:
        for path in (
            monorepo / f"apps/{name}/Makefile",
            monorepo / f"deploy/charts/{name}/values-dev.yaml",
        ):
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"{USER_LINE}\n")
            edited.append(path)
    commit_all(monorepo, "Our own changes")
    head = git(monorepo, "rev-parse", "HEAD")

    completed = make(monorepo, "update")

    assert "update: 5 application(s) updated" in completed.stdout
    assert "max: 130" in (monorepo / ".yamllint.yaml").read_text(encoding="utf-8")
    for name in NAMES:
        assert (monorepo / f"apps/{name}/Dockerfile").read_text(encoding="utf-8").endswith(FIXED)
        makefile = (monorepo / f"apps/{name}/Makefile").read_text(encoding="utf-8")
        assert CHANGED not in makefile, name  # user-owned: the template's change stays out
        assert answers(monorepo, f".copier-answers.{name}.yml")["_commit"] == "v0.2.0"
    for path in edited:
        assert path.read_text(encoding="utf-8").endswith(f"{USER_LINE}\n"), path
    assert answers(monorepo, ".copier-answers.yml")["_commit"] == "v0.2.0"
    assert conflict_markers(monorepo) == []
    changed = {line[3:] for line in git(monorepo, "status", "--porcelain").splitlines()}
    user_owned = {str(path.relative_to(monorepo)) for path in edited}
    assert not changed & user_owned  # the user's files are not even touched
    assert {f"apps/{name}/Dockerfile" for name in NAMES} <= changed
    assert git(monorepo, "rev-parse", "HEAD") == head  # left uncommitted, for review


def test_adding_an_environment_gives_every_service_its_values_and_promote_works(
    monorepo: Path,
) -> None:
    values_prod = monorepo / "deploy/charts/worker/values-prod.yaml"
    with values_prod.open("a", encoding="utf-8") as handle:
        handle.write(f"{USER_LINE}\n")
    commit_all(monorepo, "Tune prod")

    make(
        monorepo,
        "update",
        "DATA=environments=[dev, qa, staging, prod]",
        "COPIER_ARGS=--vcs-ref=v0.1.0",
    )

    environments = ["dev", "qa", "staging", "prod"]
    assert answers(monorepo, ".copier-answers.yml")["environments"] == environments
    for name in NAMES:
        assert (monorepo / f"deploy/charts/{name}/values-qa.yaml").is_file(), name
        assert answers(monorepo, f".copier-answers.{name}.yml")["environments"] == environments
    assert USER_LINE in values_prod.read_text(encoding="utf-8")
    assert conflict_markers(monorepo) == []
    commit_all(monorepo, "Add the qa environment")

    make(monorepo, "promote", "ENV=qa", "TAG=3f2c1d9")

    for name in NAMES:
        values = yaml.safe_load(
            (monorepo / f"deploy/charts/{name}/values-qa.yaml").read_text(encoding="utf-8")
        )
        assert values["image"]["tag"] == "3f2c1d9", name


def test_update_of_one_service_touches_only_that_service(monorepo: Path) -> None:
    make(monorepo, "update", "SERVICE=worker", "DATA=description=Batch jobs")

    changed = {line[3:] for line in git(monorepo, "status", "--porcelain").splitlines()}
    assert changed, "the update changed nothing"
    assert all(
        path.startswith(("apps/worker/", "deploy/charts/worker/", ".copier-answers.worker.yml"))
        for path in changed
    ), changed
    worker = answers(monorepo, ".copier-answers.worker.yml")
    assert worker["description"] == "Batch jobs"
    assert worker["_commit"] == answers(monorepo, ".copier-answers.yml")["_commit"] == "v0.1.0"


def test_update_of_one_service_refuses_a_platform_answer(monorepo: Path) -> None:
    completed = make(
        monorepo, "update", "SERVICE=worker", "DATA=coverage_threshold=90", check=False
    )

    assert completed.returncode != 0
    assert "coverage_threshold is the platform's answer" in completed.stderr
    assert git(monorepo, "status", "--porcelain") == ""


def test_conflicts_are_reported_per_service_and_file(monorepo: Path) -> None:
    for name in ("worker", "ledger"):
        with (monorepo / f"apps/{name}/Dockerfile").open("a", encoding="utf-8") as dockerfile:
            dockerfile.write("# our own last line\n")
    replace_in(monorepo / ".yamllint.yaml", "max: 120", "max: 110")
    commit_all(monorepo, "Our Dockerfiles and line length")

    completed = make(monorepo, "update", check=False)

    assert completed.returncode == 2  # make's exit code when the script fails (it exits 1)
    listing = completed.stdout[completed.stdout.index("conflicts to resolve") :].splitlines()
    assert listing[1:7] == [
        "  platform (.copier-answers.yml):",
        "    - .yamllint.yaml",
        "  service ledger (.copier-answers.ledger.yml):",
        "    - apps/ledger/Dockerfile",
        "  service worker (.copier-answers.worker.yml):",
        "    - apps/worker/Dockerfile",
    ]
    assert answers(monorepo, ".copier-answers.api.yml")["_commit"] == "v0.2.0"


def test_remove_service_removes_its_files_and_nothing_else(monorepo: Path) -> None:
    owned = {
        path
        for path in git(monorepo, "ls-files").splitlines()
        if path.startswith(("apps/worker/", "deploy/charts/worker/"))
        or path in (".copier-answers.worker.yml", ".gitlab/ci/services/worker.yml")
    }

    make(monorepo, "remove-service", "NAME=worker")

    status = git(monorepo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == sorted(f" D {path}" for path in owned)
    assert not (monorepo / "apps/worker").exists()
    assert not (monorepo / "deploy/charts/worker").exists()
    commit_all(monorepo, "Remove worker")
    assert make(monorepo, "help").stdout.splitlines()[0].endswith("api ledger web")


def test_remove_service_refuses_unknown_names_and_uncommitted_work(monorepo: Path) -> None:
    unknown = make(monorepo, "remove-service", "NAME=billing", check=False)
    assert unknown.returncode != 0
    assert (
        "NAME='billing' is not a service of this repository (services: api, ledger, web, worker)"
        in unknown.stderr
    )
    (monorepo / "apps/worker/notes.md").write_text("draft\n", encoding="utf-8")
    dirty = make(monorepo, "remove-service", "NAME=worker", check=False)
    assert dirty.returncode != 0
    assert "NAME=worker: uncommitted changes under its files would be lost" in dirty.stderr
    assert (monorepo / "apps/worker/main.go").is_file()
    assert git(monorepo, "status", "--porcelain") == "?? apps/worker/notes.md\n"


def test_remove_service_refuses_the_last_service(monorepo: Path) -> None:
    for name in ("worker", "web", "ledger"):
        make(monorepo, "remove-service", f"NAME={name}")
    commit_all(monorepo, "Only the api is left")

    last = make(monorepo, "remove-service", "NAME=api", check=False)

    assert last.returncode != 0
    assert "NAME=api: api is the last service of this repository" in last.stderr
    assert (monorepo / "apps/api").is_dir()
    assert git(monorepo, "status", "--porcelain") == ""


def test_removed_and_added_again_service_gets_a_fresh_start(monorepo: Path) -> None:
    """Renaming, as documented: remove, add under the new name, move the code by hand."""
    make(monorepo, "remove-service", "NAME=worker")
    commit_all(monorepo, "Remove worker")

    make(monorepo, "add-service", "NAME=jobs", "LANGUAGE=go", "COPIER_ARGS=--defaults")

    jobs = answers(monorepo, ".copier-answers.jobs.yml")
    assert jobs["project_slug"] == "jobs"
    assert jobs["_commit"] == "v0.1.0"
    assert (monorepo / "apps/jobs/catalog-info.yaml").is_file()
    assert not (monorepo / ".copier-answers.worker.yml").exists()


def test_update_brings_template_fixes_to_a_job_and_keeps_its_user_owned_files(
    fixes_template_repo: Path, tmp_path: Path
) -> None:
    """A Python s3 job beside a service, at v0.1.0: v0.2.0 fixes its image build and its chart's
    WorkflowTemplate; its values-<env>.yaml and its code are the user's and stay as edited."""
    project = build_monorepo(
        fixes_template_repo, tmp_path / "batch", services=[("api", "python")], vcs_ref="v0.1.0"
    )
    job = "partner-import"
    # As a script or CI runs it: no terminal, no COPIER_ARGS=--defaults; the questions not given
    # (bucket, prefix, event_bus...) take their defaults instead of Copier failing on a prompt.
    added = subprocess.run(
        ["make", "add-service", f"NAME={job}", "LANGUAGE=python", "KIND=job", "TRIGGER=s3"],
        cwd=project,
        env=tool_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    commit_all(project, f"Add the job {job}")
    assert answers(project, f".copier-answers.{job}.yml")["_commit"] == "v0.1.0"
    assert answers(project, f".copier-answers.{job}.yml")["bucket"] == f"{job}-drops"
    (code,) = project.glob(f"apps/{job}/src/*/job.py")
    edited = [project / f"deploy/charts/{job}/values-dev.yaml", code]
    for path in edited:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{USER_LINE}\n")
    commit_all(project, "Our own changes to the job")

    make(project, "update")

    assert answers(project, f".copier-answers.{job}.yml")["_commit"] == "v0.2.0"
    assert answers(project, f".copier-answers.{job}.yml")["kind"] == "job"
    for fixed in (
        project / f"apps/{job}/Dockerfile",
        project / f"deploy/charts/{job}/templates/workflowtemplate.yaml",
    ):
        assert fixed.read_text(encoding="utf-8").endswith(FIXED), fixed
    assert CHANGED not in (project / f"apps/{job}/Makefile").read_text(encoding="utf-8")
    for path in edited:
        assert path.read_text(encoding="utf-8").endswith(f"{USER_LINE}\n"), path
    assert conflict_markers(project) == []
    changed = {line[3:] for line in git(project, "status", "--porcelain").splitlines()}
    assert not changed & {str(path.relative_to(project)) for path in edited}
