"""GitLab CI of a generated project: parsed by gitlab-ci-local, run for real, API script tested."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.ci.gitlab_local import as_gitlab_repository, gitlab_ci_local, listed_jobs
from tests.helpers import render, run

Tool = Callable[[str], str]


@pytest.fixture(scope="module")
def gitlab_project(copie_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GitLab project with deploy_target=helm, as a git repo with an origin on main."""
    rendered = render(copie_session, ci_provider="gitlab", deploy_target="helm")
    return as_gitlab_repository(rendered, tmp_path_factory.mktemp("gitlab"))


def pipeline(project: Path) -> dict[str, Any]:
    """.gitlab-ci.yml and its local includes merged into one mapping."""
    merged: dict[str, Any] = {}
    for name in (".gitlab-ci.yml", ".gitlab/ci/services.yml", ".gitlab/ci/template-update.yml"):
        merged.update(yaml.safe_load((project / name).read_text(encoding="utf-8")))
    return merged


def test_gitlab_ci_local_reads_the_pipeline_with_every_job(
    gitlab_project: Path, tool: Tool
) -> None:
    listed = gitlab_ci_local(gitlab_project, tool, "--list", "--variable", "CI_PIPELINE_SOURCE=web")
    jobs = listed_jobs(listed.stdout)
    assert set(jobs) == {
        "lint:my-service",
        "test:my-service",
        "coverage:my-service",
        "build:my-service",
    }, listed.stdout
    assert jobs["build:my-service"]["needs"] == "[lint:my-service,coverage:my-service]"
    everything = listed_jobs(gitlab_ci_local(gitlab_project, tool, "--list-all").stdout)
    assert {"template-update", "deploy:my-service:dev", "deploy:my-service:prod"} <= set(everything)


def test_only_changed_services_run_and_schedules_run_only_the_update(gitlab_project: Path) -> None:
    jobs = pipeline(gitlab_project)
    rules = jobs[".my-service"]["rules"]
    assert rules[0] == {
        "if": '$CI_PIPELINE_SOURCE == "schedule" || $CI_PIPELINE_SOURCE == "trigger"',
        "when": "never",
    }
    merge_request = rules[1]
    assert merge_request["changes"]["compare_to"] == "refs/heads/main"
    assert "apps/my-service/**/*" in merge_request["changes"]["paths"]
    assert rules[2]["changes"]["paths"] == merge_request["changes"]["paths"]
    assert jobs["template-update"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $TEMPLATE_UPDATE == "true"'}
    ]


def test_workflow_avoids_duplicate_pipelines_and_jobs_are_interruptible(
    gitlab_project: Path,
) -> None:
    jobs = pipeline(gitlab_project)
    rules = jobs["workflow"]["rules"]
    assert rules[0] == {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    assert rules[1] == {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"}
    assert jobs["default"]["interruptible"] is True
    assert jobs[".deploy"]["interruptible"] is False


def test_deploys_run_in_order_with_a_manual_protected_production(gitlab_project: Path) -> None:
    jobs = pipeline(gitlab_project)
    dev, staging, prod = (jobs[f"deploy:my-service:{env}"] for env in ("dev", "staging", "prod"))
    assert dev["needs"] == ["build:my-service"]
    assert staging["needs"] == ["build:my-service", "deploy:my-service:dev"]
    assert prod["needs"] == ["build:my-service", "deploy:my-service:staging"]
    assert [job["environment"]["deployment_tier"] for job in (dev, staging, prod)] == [
        "development",
        "staging",
        "production",
    ]
    assert prod["rules"][0]["when"] == "manual"
    assert "when" not in dev["rules"][0]
    assert {job["resource_group"] for job in (dev, staging, prod)} == {
        "my-service-dev",
        "my-service-staging",
        "my-service-prod",
    }
    script = " ".join(jobs[".deploy"]["script"])
    assert "--atomic --wait" in script
    assert "image.digest" in script


@pytest.mark.slow
def test_lint_test_and_coverage_jobs_run_green_under_gitlab_ci_local(
    gitlab_project: Path, tool: Tool
) -> None:
    tool("make")
    result = gitlab_ci_local(
        gitlab_project,
        tool,
        "--force-shell-executor",
        "--variable",
        "CI_PIPELINE_SOURCE=web",
        "lint:my-service",
        "test:my-service",
        "coverage:my-service",
    )
    assert "PASS  lint:my-service" in result.stdout
    assert "PASS  test:my-service" in result.stdout
    # the coverage regex of the job read the percentage from the job log
    assert "PASS  coverage:my-service 100.00% coverage" in result.stdout
    assert "line coverage 100.00% meets the threshold of 80%" in result.stdout + result.stderr


# --- scripts/ci/gitlab_api.py against a GitLab API stand-in on loopback --------------------------


class FakeGitLab(BaseHTTPRequestHandler):
    """Just the API calls the script makes; notes are paginated one per page."""

    notes: ClassVar[list[dict[str, Any]]] = []
    merge_requests: ClassVar[list[dict[str, Any]]] = []
    approved: ClassVar[set[int]] = set()
    calls: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, payload: Any, next_page: str = "") -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Next-Page", next_page)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> dict[str, Any]:
        length = int(self.headers["Content-Length"])
        data: dict[str, Any] = json.loads(self.rfile.read(length))
        return data

    def do_GET(self) -> None:
        assert self.headers["PRIVATE-TOKEN"] == "glpat-test"
        self.calls.append(f"GET {self.path}")
        path, _, query = self.path.partition("?")
        if path.endswith("/notes"):
            page = int(dict(p.split("=") for p in query.split("&"))["page"])
            items = self.notes[page - 1 : page]
            self.reply(items, str(page + 1) if page < len(self.notes) else "")
        elif path.endswith("/approvals"):
            self.reply({"approved": int(path.split("/")[-2]) in self.approved})
        else:
            self.reply([mr for mr in self.merge_requests if mr["state"] == "opened"])

    def do_PUT(self) -> None:
        self.calls.append(f"PUT {self.path}")
        self.reply({"updated": self.body()})

    def do_POST(self) -> None:
        self.calls.append(f"POST {self.path}")
        data = self.body()
        if self.path.endswith("/merge_requests"):
            data |= {"iid": 7, "state": "opened"}
        self.reply(data)


@pytest.fixture
def api_server() -> Iterator[str]:
    FakeGitLab.notes, FakeGitLab.merge_requests, FakeGitLab.calls = [], [], []
    FakeGitLab.approved = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    thread.join()


def gitlab_api(project: Path, api: str, *args: str | Path, token: str = "glpat-test") -> str:
    env = {
        "PATH": os.environ["PATH"],
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "my-org/my-service",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_DEFAULT_BRANCH": "main",
        "GITLAB_API_TOKEN": token,
        "TEMPLATE_UPDATE_TOKEN": token,
        "PROMOTE_TOKEN": token,
    }
    script = project / "scripts/ci/gitlab_api.py"
    return run([sys.executable, script, *args], cwd=project.parent, env=env).stdout


def test_note_is_created_once_then_updated_in_place(
    gitlab_project: Path, api_server: str, tmp_path: Path
) -> None:
    report = tmp_path / "coverage.md"
    report.write_text("<!-- coverage-report:my-service -->\nLine coverage: 91%\n", "utf-8")
    marker = "<!-- coverage-report:my-service -->"
    assert "created" in gitlab_api(gitlab_project, api_server, "note", "--marker", marker, report)
    FakeGitLab.notes = [
        {"id": 1, "body": "LGTM", "system": False},
        {"id": 2, "body": f"{marker}\nold", "system": False},
    ]
    out = gitlab_api(gitlab_project, api_server, "note", "--marker", marker, report)
    assert "updated note 2" in out
    project_notes = "/api/v4/projects/my-org%2Fmy-service/merge_requests/3/notes"
    assert FakeGitLab.calls[1] == f"POST {project_notes}"
    assert FakeGitLab.calls[-1] == f"PUT {project_notes}/2"
    assert sum(call.startswith("GET") for call in FakeGitLab.calls) == 3  # two pages, then one


def test_merge_request_is_opened_then_refreshed(
    gitlab_project: Path, api_server: str, tmp_path: Path
) -> None:
    body = tmp_path / "update.md"
    body.write_text("Template changelog\n", encoding="utf-8")
    args = ("merge-request", "--source", "template-update", "--title", "T", "--description", body)
    assert "opened merge request !7" in gitlab_api(gitlab_project, api_server, *args)
    FakeGitLab.merge_requests = [{"iid": 7, "state": "opened"}]
    assert "updated merge request !7" in gitlab_api(gitlab_project, api_server, *args)


def test_release_due_merges_only_approved_requests_whose_time_has_passed(
    gitlab_project: Path, api_server: str
) -> None:
    FakeGitLab.merge_requests = [
        {"iid": 1, "state": "opened", "description": "release-at: 2030-01-31T09:00Z"},
        {"iid": 2, "state": "opened", "description": "release-at: 2030-01-31T09:00Z"},
        {"iid": 3, "state": "opened", "description": "release-at: 2030-02-01T09:00Z"},
        {"iid": 4, "state": "opened", "description": "no release time"},
    ]
    FakeGitLab.approved = {1, 3, 4}
    out = gitlab_api(gitlab_project, api_server, "release-due", "--now", "2030-01-31T10:00Z")
    assert "released !1" in out
    merges = [call for call in FakeGitLab.calls if call.endswith("/merge")]
    assert merges == ["PUT /api/v4/projects/my-org%2Fmy-service/merge_requests/1/merge"]


def test_without_a_token_the_script_reports_and_passes(
    gitlab_project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.md"
    report.write_text("x\n", encoding="utf-8")
    out = gitlab_api(
        gitlab_project, "http://127.0.0.1:9/none", "note", "--marker", "m", str(report), token=""
    )
    assert "GITLAB_API_TOKEN is not set" in out


def test_gitlab_api_script_is_formatted_linted_and_typed(gitlab_project: Path, tool: Tool) -> None:
    script = gitlab_project / "scripts/ci/gitlab_api.py"
    run([tool("ruff"), "format", "--check", "--diff", script], cwd=gitlab_project)
    run([tool("ruff"), "check", script], cwd=gitlab_project)
    run([tool("mypy"), "--strict", script], cwd=gitlab_project)
