"""The shared CI scripts of the generated project (scripts/ci/), run as CI runs them."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import render, run
from tests.monorepo import add_service, build_monorepo, make
from tests.update.gitrepo import GIT_ENV, git, snapshot_template

THRESHOLD_PASS_OUTPUT = "meets the threshold of"


@pytest.fixture(scope="module")
def scripts(copie_session: Any) -> Path:
    """scripts/ci of the default project, rendered once per module and worker."""
    return render(copie_session) / "scripts" / "ci"


def shell_scripts(folder: Path, shebang: str = "#!/usr/bin/env bash") -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.read_text(encoding="utf-8").startswith(shebang)
    )


def test_shell_scripts_are_executable_and_pass_shellcheck(
    scripts: Path, tool: Callable[[str], str]
) -> None:
    found = shell_scripts(scripts)
    assert {path.name for path in found} >= {"sticky-comment", "gitops"}
    for path in found:
        assert os.access(path, os.X_OK), f"{path.name} is not executable"
    run([tool("shellcheck"), "--shell=bash", "--severity=style", *found])


def test_posix_scripts_pass_shellcheck_as_sh(scripts: Path, tool: Callable[[str], str]) -> None:
    """kaniko-auth also runs in kaniko's busybox image: plain POSIX sh only."""
    found = shell_scripts(scripts, "#!/bin/sh")
    assert [path.name for path in found] == ["kaniko-auth"]
    assert all(os.access(path, os.X_OK) for path in found)
    run([tool("shellcheck"), "--shell=sh", "--severity=style", *found])


@pytest.mark.parametrize("name", ["coverage_report.py", "services.py"])
def test_python_scripts_are_ruff_clean_and_strictly_typed(
    scripts: Path, tool: Callable[[str], str], name: str
) -> None:
    script = scripts / name
    assert os.access(script, os.X_OK), f"{name} is not executable"
    project = scripts.parent.parent
    # From the project root, as a developer runs it: the project's own ruff settings apply.
    run([tool("ruff"), "format", "--check", "--diff", script], cwd=project)
    run([tool("ruff"), "check", "--select", "E,F,W,I,B,UP,SIM,RUF,N", script], cwd=project)
    run([tool("mypy"), "--strict", "--no-incremental", script], cwd=project)


# --- coverage_report.py --------------------------------------------------------------------------


def cobertura(lines_by_file: dict[str, list[int]], totals: bool = True) -> str:
    """A Cobertura report with one package; each file lists the hit count of its lines."""
    valid = sum(len(hits) for hits in lines_by_file.values())
    covered = sum(1 for hits in lines_by_file.values() for hit in hits if hit)
    rate = covered / valid if valid else 1
    attributes = f'lines-valid="{valid}" lines-covered="{covered}" ' if totals else ""
    classes = []
    for filename, hits in lines_by_file.items():
        lines = "".join(
            f'<line number="{number}" hits="{hit}"/>' for number, hit in enumerate(hits, 1)
        )
        classes.append(
            f'<class name="{Path(filename).name}" filename="{filename}" line-rate="0">'
            f"<methods/><lines>{lines}</lines></class>"
        )
    return (
        '<?xml version="1.0" ?>\n'
        f'<coverage version="7.6" timestamp="1" line-rate="{rate:.4f}" {attributes}'
        'branch-rate="0" branches-covered="0" branches-valid="0" complexity="0">'
        "<sources><source>src</source></sources><packages>"
        f'<package name="app" line-rate="{rate:.4f}" branch-rate="0" complexity="0">'
        f"<classes>{''.join(classes)}</classes></package></packages></coverage>\n"
    )


def coverage_report(
    scripts: Path, tmp_path: Path, xml: str | None, *args: str, summary: Path | None = None
) -> tuple[int, str, str]:
    report = tmp_path / "coverage.xml"
    if xml is not None:
        report.write_text(xml, encoding="utf-8")
    env = {"PATH": os.environ["PATH"]}
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    completed = run(
        ["python3", scripts / "coverage_report.py", report, *args], env=env, check=False
    )
    return completed.returncode, completed.stdout, completed.stderr


@pytest.mark.parametrize(
    ("covered", "threshold", "code", "shown"),
    [
        (9, "80", 0, "90.00%"),  # above
        (8, "80", 0, "80.00%"),  # exactly at the threshold passes
        (7, "80", 1, "70.00%"),  # below
        (7, "70.5", 1, "70.00%"),  # fractional thresholds
        (0, "0", 0, "0.00%"),  # 0 disables the gate
    ],
)
def test_coverage_report_exits_non_zero_only_below_the_threshold(
    scripts: Path, tmp_path: Path, covered: int, threshold: str, code: int, shown: str
) -> None:
    xml = cobertura({"src/app/main.py": [1] * covered + [0] * (10 - covered)})
    output = tmp_path / "out" / "coverage-api.md"
    status, stdout, stderr = coverage_report(
        scripts,
        tmp_path,
        xml,
        "--threshold",
        threshold,
        "--service",
        "api",
        "--output",
        str(output),
    )
    assert status == code, stderr
    assert stdout == ""
    markdown = output.read_text(encoding="utf-8")
    assert markdown.splitlines()[0] == "<!-- coverage-report:api -->"
    assert f"Coverage of `api`: {shown}" in markdown
    assert f"({covered} of 10 lines)" in markdown
    number = threshold.removesuffix(".0")
    if code:
        assert f"api: line coverage {shown} is below the threshold of {number}%" in stderr
        assert ":x:" in markdown
    else:
        assert f"api: line coverage {shown} {THRESHOLD_PASS_OUTPUT} {number}%" in stderr
        assert ":white_check_mark:" in markdown


def test_coverage_report_rounds_down_so_a_failure_never_shows_the_threshold(
    scripts: Path, tmp_path: Path
) -> None:
    xml = cobertura({"src/app/main.py": [1] * 7999 + [0] * 2001})  # 79.99 %
    status, stdout, stderr = coverage_report(
        scripts, tmp_path, xml, "--threshold", "80", "--service", "api"
    )
    assert status == 1
    assert "79.99%" in stdout
    assert "80.00%" not in stdout + stderr


def test_coverage_report_lists_packages_and_the_least_covered_files_first(
    scripts: Path, tmp_path: Path
) -> None:
    xml = cobertura(
        {
            "src/app/good.py": [1, 1, 1, 1],
            "src/app/weak.py": [1, 0, 0, 0],
            "src/app/pipe|name.py": [1, 1, 0, 0],
            "src/app/__init__.py": [],
        }
    )
    status, stdout, _ = coverage_report(
        scripts, tmp_path, xml, "--threshold", "50", "--service", "api"
    )
    assert status == 0
    assert "| `app` | 7/12 | 58.33% |" in stdout
    files = [line for line in stdout.splitlines() if line.startswith("| `src/")]
    assert files == [
        "| `src/app/weak.py` | 1/4 | 25.00% |",
        "| `src/app/pipe\\|name.py` | 2/4 | 50.00% |",
        "| `src/app/good.py` | 4/4 | 100.00% |",
    ]


def test_coverage_report_counts_lines_when_the_totals_are_missing(
    scripts: Path, tmp_path: Path
) -> None:
    xml = cobertura({"src/app/main.py": [1, 1, 1, 0]}, totals=False)
    status, stdout, _ = coverage_report(
        scripts, tmp_path, xml, "--threshold", "80", "--service", "api"
    )
    assert status == 1
    assert "75.00% (3 of 4 lines)" in stdout


def test_coverage_report_fails_when_no_line_was_measured(scripts: Path, tmp_path: Path) -> None:
    status, stdout, stderr = coverage_report(
        scripts, tmp_path, cobertura({}), "--threshold", "80", "--service", "api"
    )
    assert status == 1
    assert "No lines were measured" in stdout
    assert "api: line coverage 0% (no lines were measured) is below the threshold of 80%" in stderr


def test_coverage_report_appends_to_the_github_step_summary(scripts: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("# Earlier step\n", encoding="utf-8")
    xml = cobertura({"src/app/main.py": [1, 1]})
    for service in ("api", "worker"):
        status, stdout, _ = coverage_report(
            scripts, tmp_path, xml, "--threshold", "80", "--service", service, summary=summary
        )
        assert status == 0
        assert stdout.startswith(f"<!-- coverage-report:{service} -->\n")  # no --output
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Earlier step\n")
    assert text.index("<!-- coverage-report:api -->") < text.index(
        "<!-- coverage-report:worker -->"
    )
    assert text.count("100.00%") >= 2


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (None, "no such file"),
        ("<coverage><packages>", "not well-formed XML"),
        ("", "not well-formed XML"),
        ('<?xml version="1.0" ?><testsuites/>', "<testsuites> is not a Cobertura <coverage> root"),
        ('<coverage lines-valid="ten" lines-covered="1"/>', "bad line count"),
        ('<coverage lines-valid="5" lines-covered="9"/>', "inconsistent totals"),
    ],
)
def test_coverage_report_explains_an_unreadable_report_and_exits_2(
    scripts: Path, tmp_path: Path, xml: str | None, message: str
) -> None:
    summary = tmp_path / "step-summary.md"
    status, stdout, stderr = coverage_report(
        scripts, tmp_path, xml, "--threshold", "80", "--service", "api", summary=summary
    )
    assert status == 2
    assert stdout == ""
    assert stderr.startswith("coverage_report: error: ")
    assert "coverage.xml" in stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert not summary.exists()


@pytest.mark.parametrize("threshold", ["101", "-1", "eighty"])
def test_coverage_report_refuses_a_threshold_that_is_not_a_percentage(
    scripts: Path, tmp_path: Path, threshold: str
) -> None:
    xml = cobertura({"src/app/main.py": [1]})
    status, _, stderr = coverage_report(
        scripts, tmp_path, xml, "--threshold", threshold, "--service", "api"
    )
    assert status == 2
    assert "--threshold" in stderr


# --- services.py: the services a change selects ---------------------------------------------------

# FOUR_SERVICES plus a second Node service: shared workspace paths select both Node services.
SERVICES = ("api", "ledger", "shop", "web", "worker")
NODE = ["shop", "web"]


class Monorepo:
    """A real monorepo built by the documented commands; each case commits on a detached HEAD."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        return git(self.path, *args).strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or delete, with None) files and commit them; returns the commit sha."""
        for name, content in files.items():
            path = self.path / name
            if content is None:
                self.git("rm", "-r", "--quiet", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def services(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """scripts/ci/services.py of the repository, run from its root as CI runs it."""
        command = ["python3", "scripts/ci/services.py", *args]
        return run(command, cwd=self.path, env={**os.environ, **GIT_ENV}, check=check)

    def names(self, *args: str) -> list[str]:
        completed = self.services(*args)
        services: list[dict[str, str]] = json.loads(completed.stdout)
        # One line of JSON: what $GITHUB_OUTPUT and a job matrix take.
        assert completed.stdout == json.dumps(services, separators=(",", ":")) + "\n"
        return [service["name"] for service in services]


@pytest.fixture(scope="module")
def monorepo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    project = build_monorepo(template, tmp_path_factory.mktemp("monorepo") / "shop")
    add_service(project, "shop", "node")
    return project


@pytest.fixture
def monorepo(monorepo_path: Path) -> Iterator[Monorepo]:
    """The module's monorepo on a detached HEAD at main; main is restored afterwards."""
    repo = Monorepo(monorepo_path)
    repo.git("checkout", "--quiet", "--detach", "main")
    yield repo
    repo.git("checkout", "--quiet", "--force", "main")
    repo.git("clean", "-fdq")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"apps/worker/main.go": "package main\n"}, ["worker"]),
        ({"apps/ledger/src/main/java/Extra.java": "class Extra {}\n"}, ["ledger"]),
        ({"deploy/charts/web/values-dev.yaml": "replicaCount: 2\n"}, ["web"]),
        ({"deploy/charts/api/templates/extra.yaml": "# extra\n"}, ["api"]),
        ({"packages/logger/src/x.ts": "export const x = 1;\n"}, NODE),
        ({"pnpm-lock.yaml": "lockfileVersion: '9.0'\n"}, NODE),
        ({"tsconfig.base.json": "{}\n"}, NODE),
        ({"ruff.toml": "line-length = 99\n"}, ["api"]),
        ({"apps/api/app.py": "\n", "apps/web/x.ts": "\n"}, ["api", "web"]),
        ({"Makefile": "all:\n"}, list(SERVICES)),
        ({".github/workflows/ci.yml": "name: CI\n"}, list(SERVICES)),
        ({"scripts/ci/x": "#!/bin/sh\n"}, list(SERVICES)),
        ({".copier-answers.yml": "_commit: v9\n"}, list(SERVICES)),
        ({".gitlab-ci.yml": "stages: []\n"}, list(SERVICES)),
        ({".gitlab/ci/promote.yml": "promote: {}\n"}, list(SERVICES)),
        ({".gitlab/ci/services/worker.yml": "lint:worker: {}\n"}, ["worker"]),
        ({"docs/operations.md": "# Operations\n"}, []),
        ({"deploy/argocd/applicationset.yaml": "kind: ApplicationSet\n"}, []),
        ({"README.md": "# shop\n", "apps/README.md": "services\n"}, []),
        ({"apps/worker": None, "deploy/charts/worker": None}, []),  # a deleted service
        ({"apps/worker": None, "apps/api/app.py": "\n"}, ["api"]),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, dict) else None,
)
def test_a_change_selects_the_services_that_watch_its_paths(
    monorepo: Monorepo, files: dict[str, str | None], expected: list[str]
) -> None:
    base = monorepo.git("rev-parse", "HEAD")
    monorepo.commit(files)
    assert monorepo.names("affected", base, "HEAD") == expected


def test_the_monorepo_fixture_has_the_five_services(monorepo: Monorepo) -> None:
    assert monorepo.names("list") == list(SERVICES)
    # Listing at an older revision reads the descriptors of that revision.
    assert monorepo.names("list", "main~1") == ["api", "ledger", "web", "worker"]


@pytest.mark.parametrize("base", ["", "0" * 40, "1234567890abcdef1234567890abcdef12345678"])
def test_every_service_is_selected_without_a_usable_base(monorepo: Monorepo, base: str) -> None:
    monorepo.commit({"docs/operations.md": "# changed\n"})
    completed = monorepo.services("affected", base, "HEAD")
    assert [service["name"] for service in json.loads(completed.stdout)] == list(SERVICES)
    if base.startswith("1234"):
        assert "is not in this clone; selecting every service" in completed.stderr


def test_unrelated_histories_select_every_service(monorepo: Monorepo) -> None:
    main = monorepo.git("rev-parse", "HEAD")
    monorepo.git("checkout", "--quiet", "--orphan", "unrelated")
    orphan = monorepo.commit({"docs/x.md": "x\n"}, "unrelated history")
    monorepo.git("checkout", "--quiet", "--detach", main)
    monorepo.commit({"docs/operations.md": "# changed\n"})
    completed = monorepo.services("affected", orphan, "HEAD")
    assert [service["name"] for service in json.loads(completed.stdout)] == list(SERVICES)
    assert "share no history" in completed.stderr
    monorepo.git("branch", "--quiet", "-D", "unrelated")


def test_a_pull_request_is_compared_with_its_merge_base(monorepo: Monorepo) -> None:
    start = monorepo.git("rev-parse", "HEAD")
    feature = monorepo.commit({"apps/worker/extra.go": "package main\n"})
    monorepo.git("checkout", "--quiet", "--detach", start)
    main = monorepo.commit({"apps/api/app.py": "\n"})  # main moved on meanwhile
    assert monorepo.names("affected", main, feature) == ["worker"]


def test_the_listed_fields_are_the_descriptor_annotations(monorepo: Monorepo) -> None:
    """The small reader of services.py agrees with a YAML parser on the template's descriptors."""
    listed = json.loads(monorepo.services("list").stdout)
    for service in listed:
        descriptor = yaml.safe_load(
            (monorepo.path / "apps" / service["name"] / "catalog-info.yaml").read_text("utf-8")
        )
        annotations = descriptor["metadata"]["annotations"]
        assert descriptor["metadata"]["name"] == service["name"]
        assert service == {
            "name": service["name"],
            "language": annotations["devops-template/language"],
            "build_context": annotations["devops-template/build-context"],
            "dockerfile": annotations["devops-template/dockerfile"],
            "image": annotations["devops-template/image"],
            "chart": annotations["devops-template/chart"],
        }
    by_name = {service["name"]: service for service in listed}
    assert by_name["web"]["build_context"] == "."
    assert by_name["worker"] == {
        "name": "worker",
        "language": "go",
        "build_context": "apps/worker",
        "dockerfile": "apps/worker/Dockerfile",
        "image": "ghcr.io/my-org/worker",
        "chart": "deploy/charts/worker",
    }


HAND_WRITTEN = """\
--- # a Backstage descriptor as a person might write it
kind: Component
apiVersion: backstage.io/v1alpha1
metadata:
  annotations:
    'devops-template/image': 'ghcr.io/acme/billing'   # quoted key and value
    devops-template/language: go # trailing comment
    devops-template/watch: apps/billing/ deploy/charts/billing/
      libs/money/ libs/fx/
    backstage.io/techdocs-ref: dir:.
  name: "billing"
  links:
    - url: https://example.com/billing
      title: "Dashboard: billing"
spec:
  type: service
---
metadata:
  name: not-this-document
"""


def test_a_hand_written_descriptor_is_read_with_defaults_for_missing_fields(
    monorepo: Monorepo,
) -> None:
    base = monorepo.git("rev-parse", "HEAD")
    monorepo.commit({"apps/billing/catalog-info.yaml": HAND_WRITTEN})
    listed = {service["name"]: service for service in json.loads(monorepo.services("list").stdout)}
    assert listed["billing"] == {
        "name": "billing",
        "language": "go",
        "build_context": "apps/billing",
        "dockerfile": "apps/billing/Dockerfile",
        "image": "ghcr.io/acme/billing",
        "chart": "deploy/charts/billing",
    }
    # The watch paths go on over a second line (a folded plain scalar).
    monorepo.commit({"libs/money/rate.go": "package money\n"})
    assert monorepo.names("affected", f"{base}", "HEAD") == ["billing"]
    monorepo.commit({"libs/fx/fx.go": "package fx\n"})
    assert monorepo.names("affected", "HEAD~1", "HEAD") == ["billing"]
    head = monorepo.git("rev-parse", "HEAD")
    assert monorepo.names("affected", f"{head}~1", "HEAD") == ["billing"]


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ("metadata:\n  name: billing\n", "devops-template/language is missing"),
        (
            "metadata:\n  name: billing\n  annotations:\n    devops-template/language: go\n"
            "    devops-template/image: |\n      ghcr.io/acme/billing\n",
            "write the value on one line",
        ),
        (
            "metadata:\n  name: other\n  annotations:\n    devops-template/language: go\n"
            "    devops-template/image: ghcr.io/acme/billing\n",
            "not the folder name 'billing'",
        ),
        (
            "metadata:\n  name: billing\n  annotations:\n    devops-template/language: go\n"
            '    devops-template/image: "ghcr.io/acme/billing; rm -rf /"\n',
            "is not host/repository",
        ),
        (
            "metadata:\n  name: billing\n  annotations:\n    devops-template/language: go\n"
            "    devops-template/image: ghcr.io/acme/billing\n"
            "    devops-template/build-context: ../outside\n",
            "is not a path inside the repository",
        ),
    ],
)
def test_an_unreadable_or_unsafe_descriptor_fails_with_its_file_named(
    monorepo: Monorepo, descriptor: str, message: str
) -> None:
    monorepo.commit({"apps/billing/catalog-info.yaml": descriptor})
    completed = monorepo.services("list", check=False)
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "apps/billing/catalog-info.yaml" in completed.stderr
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("folder", ["Billing", "bill_ing", "-billing", "a" * 64])
def test_a_folder_that_is_not_a_dns_label_is_ignored_with_a_message(
    monorepo: Monorepo, folder: str
) -> None:
    base = monorepo.git("rev-parse", "HEAD")
    descriptor = HAND_WRITTEN.replace("billing", folder)
    monorepo.commit({f"apps/{folder}/catalog-info.yaml": descriptor, "apps/api/x.py": "\n"})
    completed = monorepo.services("affected", base, "HEAD")
    assert [service["name"] for service in json.loads(completed.stdout)] == ["api"]
    assert f"ignoring apps/{folder}: a service name is a DNS-1123 label" in completed.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["affected"],
        ["affected", "HEAD"],
        ["affected", "HEAD", "no-such-revision"],
        ["list", "no-such-revision"],
        ["frobnicate"],
    ],
)
def test_services_refuses_bad_arguments_with_a_usage_message(
    monorepo: Monorepo, args: list[str]
) -> None:
    completed = monorepo.services(*args, check=False)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "usage: services.py" in completed.stderr


def test_make_affected_runs_the_same_command(monorepo: Monorepo) -> None:
    base = monorepo.git("rev-parse", "HEAD")
    monorepo.commit({"apps/worker/main.go": "package main\n"})
    completed = make(monorepo.path, "--no-print-directory", "affected", f"BASE={base}")
    assert [service["name"] for service in json.loads(completed.stdout)] == ["worker"]


# --- sticky-comment ------------------------------------------------------------------------------

FAKE_GH = """\
#!{python}
# Test double of the gh CLI: records each call; lists comments from $FAKE_GH_PAGES.
import json, os, sys

args = sys.argv[1:]
call = {{"args": args}}
for arg in args:
    if arg.startswith("body=@"):
        with open(arg[len("body=@"):], encoding="utf-8") as handle:
            call["body"] = handle.read()
with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(call) + "\\n")
if os.environ.get("FAKE_GH_FAIL"):
    sys.exit("gh: HTTP 403: Resource not accessible by integration")
if "--method" not in args:
    with open(os.environ["FAKE_GH_PAGES"], encoding="utf-8") as pages:
        sys.stdout.write(pages.read())
else:
    print('{{"id": 1}}')
"""
MARKER = "<!-- coverage-report:api -->"
BOT = "github-actions[bot]"


class FakeGitHub:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        gh = self.bin / "gh"
        gh.write_text(FAKE_GH.format(python=sys.executable), encoding="utf-8")
        gh.chmod(0o755)
        self.log = tmp_path / "gh-calls.jsonl"
        self.pages_file = tmp_path / "pages.json"
        self.body = tmp_path / "coverage-api.md"
        self.body.write_text(f"{MARKER}\n### Coverage of `api`: 91.00%\n", encoding="utf-8")

    def pages(self, *pages: list[dict[str, Any]]) -> None:
        # gh api --paginate prints one JSON array per page, one after the other.
        self.pages_file.write_text("".join(json.dumps(page) for page in pages), encoding="utf-8")

    def run(self, scripts: Path, *args: str, **env: str) -> tuple[int, str, list[dict[str, Any]]]:
        base = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "GH_TOKEN": "ghs_fake",
            "GH_REPO": "acme/repo",
            "PR_NUMBER": "42",
            "FAKE_GH_LOG": str(self.log),
            "FAKE_GH_PAGES": str(self.pages_file),
        }
        arguments = args or (MARKER, str(self.body))
        command: list[str | Path] = [scripts / "sticky-comment", *arguments]
        completed = run(command, env={**base, **env}, check=False)
        calls: list[dict[str, Any]] = []
        if self.log.exists():
            calls = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        return completed.returncode, completed.stdout + completed.stderr, calls


@pytest.fixture
def github(tmp_path: Path, tool: Callable[[str], str]) -> FakeGitHub:
    tool("jq")  # sticky-comment filters the comments with jq, as on GitHub-hosted runners
    return FakeGitHub(tmp_path)


def comment(comment_id: int, login: str, body: str) -> dict[str, Any]:
    return {"id": comment_id, "user": {"login": login}, "body": body}


def test_sticky_comment_updates_its_comment_in_place(scripts: Path, github: FakeGitHub) -> None:
    github.pages(
        [comment(11, "alice", "LGTM"), comment(12, BOT, "<!-- coverage-report:web -->")],
        [comment(13, BOT, f"{MARKER}\nold numbers"), comment(14, BOT, f"{MARKER}\nduplicate")],
    )
    status, output, calls = github.run(scripts)
    assert status == 0, output
    assert [call["args"][:3] for call in calls] == [
        ["api", "--paginate", "repos/acme/repo/issues/42/comments?per_page=100"],
        ["api", "--method", "PATCH"],
    ]
    assert calls[1]["args"][3] == "repos/acme/repo/issues/comments/13"
    assert calls[1]["body"] == github.body.read_text(encoding="utf-8")
    assert "updated comment 13" in output


@pytest.mark.parametrize(
    "existing",
    [
        [],
        [comment(21, "alice", f"quoting the bot: {MARKER}")],  # someone else's comment
        [comment(22, BOT, "<!-- coverage-report:api-v2 -->")],  # another service's marker
    ],
)
def test_sticky_comment_creates_a_comment_when_it_has_none(
    scripts: Path, github: FakeGitHub, existing: list[dict[str, Any]]
) -> None:
    github.pages(existing)
    status, output, calls = github.run(scripts)
    assert status == 0, output
    assert len(calls) == 2
    assert calls[1]["args"][:4] == [
        "api",
        "--method",
        "POST",
        "repos/acme/repo/issues/42/comments",
    ]
    assert calls[1]["body"] == github.body.read_text(encoding="utf-8")
    assert "created a comment on pull request #42" in output


def test_sticky_comment_fails_when_github_refuses(scripts: Path, github: FakeGitHub) -> None:
    github.pages([])
    status, output, calls = github.run(scripts, FAKE_GH_FAIL="1")
    assert status != 0
    assert "HTTP 403" in output
    assert len(calls) == 1  # no write after a failed listing


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GH_TOKEN": ""}, "GH_TOKEN"),
        ({"PR_NUMBER": ""}, "PR_NUMBER"),
        ({"PR_NUMBER": "42; rm -rf /"}, "is not a number"),
        ({"GH_REPO": ""}, "GH_REPO"),
    ],
)
def test_sticky_comment_refuses_to_run_without_its_environment(
    scripts: Path, github: FakeGitHub, env: dict[str, str], message: str
) -> None:
    github.pages([])
    status, output, calls = github.run(scripts, **env)
    assert status != 0
    assert message in output
    assert calls == []


def test_sticky_comment_refuses_a_body_without_the_marker(
    scripts: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    github.pages([])
    body = tmp_path / "plain.md"
    body.write_text("coverage: 91%\n", encoding="utf-8")
    status, output, calls = github.run(scripts, MARKER, str(body))
    assert status == 2
    assert "does not contain the marker" in output
    assert calls == []


# --- kaniko-auth ----------------------------------------------------------------------------------

OIDC_MODES: dict[str, dict[str, str]] = {
    "ecr": {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/ci", "AWS_REGION": "eu-west-1"},
    "gcr": {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/locations/global/workloadIdentityPools/p"
        "/providers/q",
        "GCP_SERVICE_ACCOUNT": "ci@project.iam.gserviceaccount.com",
    },
    "acr": {"AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001", "AZURE_TENANT_ID": "t"},
}


def kaniko_auth(
    scripts: Path, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the script with POSIX sh (dash here; busybox sh in kaniko's debug image)."""
    out = tmp_path / "docker"
    completed = run(
        ["sh", scripts / "kaniko-auth", out],
        env={"PATH": os.environ["PATH"], **env},
        check=False,
    )
    return completed, out


def test_kaniko_auth_writes_a_private_basic_login_without_printing_it(
    scripts: Path, tmp_path: Path
) -> None:
    secret = "robot-secret-123"
    env = {"KANIKO_AUTH": "basic", "REGISTRY": "harbor.example.com", "REGISTRY_USER": "robot$ci"}
    completed, out = kaniko_auth(scripts, tmp_path, {**env, "REGISTRY_PASSWORD": secret})
    assert completed.returncode == 0, completed.stderr
    assert secret not in completed.stdout + completed.stderr
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    auth = config["auths"]["harbor.example.com"]["auth"]
    assert base64.b64decode(auth).decode() == f"robot$ci:{secret}"
    assert stat.S_IMODE((out / "config.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("mode", "helper"), [("ecr", "ecr-login"), ("gcr", "gcr"), ("acr", "acr-env")]
)
def test_kaniko_auth_points_oidc_registries_at_kanikos_credential_helper(
    scripts: Path, tmp_path: Path, mode: str, helper: str
) -> None:
    env = {
        "KANIKO_AUTH": mode,
        "REGISTRY": "registry.example.com",
        "OIDC_TOKEN_FILE": "/kaniko/.docker/oidc-token",
        **OIDC_MODES[mode],
    }
    completed, out = kaniko_auth(scripts, tmp_path, env)
    assert completed.returncode == 0, completed.stderr
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config == {"credHelpers": {"registry.example.com": helper}}
    files = sorted(path.name for path in out.iterdir())
    if mode == "gcr":
        credentials = json.loads((out / "gcp-credentials.json").read_text(encoding="utf-8"))
        assert credentials["type"] == "external_account"
        assert credentials["credential_source"] == {"file": "/kaniko/.docker/oidc-token"}
        assert credentials["audience"].endswith("/providers/q")
        assert (
            "ci@project.iam.gserviceaccount.com" in credentials["service_account_impersonation_url"]
        )
        assert files == ["config.json", "gcp-credentials.json"]
    else:
        assert files == ["config.json"]


@pytest.mark.parametrize("mode", sorted(OIDC_MODES))
def test_kaniko_auth_names_the_missing_variable(scripts: Path, tmp_path: Path, mode: str) -> None:
    variables = dict(OIDC_MODES[mode])
    missing = sorted(variables)[0]
    del variables[missing]
    env = {"KANIKO_AUTH": mode, "REGISTRY": "r.example.com", "OIDC_TOKEN_FILE": "/t", **variables}
    completed, out = kaniko_auth(scripts, tmp_path, env)
    assert completed.returncode == 1
    assert f"{missing} is not set" in completed.stderr
    assert not (out / "config.json").exists()


def test_kaniko_auth_refuses_an_unknown_mode(scripts: Path, tmp_path: Path) -> None:
    completed, _ = kaniko_auth(scripts, tmp_path, {"KANIKO_AUTH": "magic", "REGISTRY": "r"})
    assert completed.returncode == 2
    assert "unknown KANIKO_AUTH 'magic'" in completed.stderr
