"""The template-update job clones a private template with a read-only token, and never shows it.

The template is served by `git http-backend` behind a small HTTP server on loopback that answers
401 to any request without the right Basic credentials, as a private GitHub or GitLab repository
does. The job's script (scripts/ci/template_update.py, as both CI providers run it) must update
the project through it with TEMPLATE_REPOSITORY_TOKEN set, and fail without it.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from tests.update.gitrepo import GIT_ENV, commit_all, copy_project, git, snapshot_template

SCRIPT = Path("scripts/ci/template_update.py")
USER = "template-reader"
TOKEN = "tok-7f3a9c1e5b2d8f4a6c0e"  # distinctive, so any leak is found by a plain search
RELEASE = """## [1.1.0] - 2026-12-01

### Fixed
- yamllint allows 130 characters a line (released from the private fork).

"""


@dataclass
class Counts:
    accepted: int = 0
    refused: int = 0
    paths: list[str] = field(default_factory=list)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def git_http_server(root: Path, counts: Counts) -> ThreadingHTTPServer:
    """`git http-backend` for the repositories under `root`, behind Basic authentication."""
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.serve()

        def do_POST(self) -> None:
            self.serve()

        def serve(self) -> None:
            path, _, query = self.path.partition("?")
            counts.paths.append(self.path)
            body = read_body(self)
            if self.headers.get("Authorization") != expected:
                counts.refused += 1
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="private template"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            counts.accepted += 1
            environ = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": USER,
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            completed = subprocess.run(
                ["git", "http-backend"], input=body, env=environ, capture_output=True, check=False
            )
            head, _, content = completed.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, content = completed.stdout.partition(b"\n\n")
            headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@dataclass
class PrivateTemplate:
    url: str
    repo: Path
    counts: Counts


@pytest.fixture(scope="module")
def private_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateTemplate]:
    root = tmp_path_factory.mktemp("forge")
    # Copier takes an http(s) source for a git repository by its `.git` suffix.
    repo = snapshot_template(root / "devops-template.git", tag="v1.0.0")
    counts = Counts()
    server = git_http_server(root, counts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/devops-template.git"
        yield PrivateTemplate(url, repo, counts)
    finally:
        server.shutdown()
        server.server_close()


def job_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TEMPLATE_"))}
    env.update(GIT_ENV)
    env.update(GIT_TERMINAL_PROMPT="0", **extra)
    env.pop("GIT_ASKPASS", None)
    env.pop("SSH_ASKPASS", None)
    return env


def run_job_script(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    body, output = project.parent / "body.md", project.parent / "output.txt"
    output.write_text("", encoding="utf-8")
    return subprocess.run(
        [sys.executable, SCRIPT, "--body", body, "--output", output],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def project(private_template: PrivateTemplate, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made from the fork at v1.0.0 and pointed at its https address; then v1.1.0."""
    project = copy_project(
        private_template.repo, tmp_path_factory.mktemp("project") / "shop", vcs_ref="v1.0.0"
    )
    for answers in project.glob(".copier-answers*.yml"):
        text = answers.read_text(encoding="utf-8")
        source = next(line for line in text.splitlines() if line.startswith("_src_path:"))
        answers.write_text(text.replace(source, f"_src_path: {private_template.url}"), "utf-8")
    commit_all(project, "Point the project at the organisation's private fork")

    template = private_template.repo
    yamllint = template / "template/platform/.yamllint.yaml"
    yamllint.write_text(yamllint.read_text("utf-8").replace("max: 120", "max: 130"), "utf-8")
    changelog = template / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8")
    changelog.write_text(text.replace("## [Unreleased]\n\n", f"## [Unreleased]\n\n{RELEASE}"))
    commit_all(template, "template v1.1.0", "v1.1.0")
    return project


def test_the_private_template_refuses_a_clone_without_credentials(
    private_template: PrivateTemplate, tmp_path: Path
) -> None:
    refused = private_template.counts.refused
    completed = subprocess.run(
        ["git", "clone", "--quiet", private_template.url, str(tmp_path / "clone")],
        env=job_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert "could not read Username" in completed.stderr  # the server asked for credentials
    assert private_template.counts.refused > refused


def test_the_job_without_the_token_fails_and_changes_nothing(project: Path) -> None:
    completed = run_job_script(project, job_environment())

    assert completed.returncode != 0
    assert "could not read Username" in completed.stderr
    assert git(project, "status", "--porcelain") == ""


def test_the_job_updates_from_the_private_template_with_the_token_and_never_prints_it(
    project: Path, private_template: PrivateTemplate
) -> None:
    accepted = private_template.counts.accepted
    env = job_environment(TEMPLATE_REPOSITORY_TOKEN=TOKEN, TEMPLATE_REPOSITORY_USER=USER)

    completed = run_job_script(project, env)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = dict(
        line.split("=", 1)
        for line in (project.parent / "output.txt").read_text("utf-8").splitlines()
    )
    assert results == {"updated": "true", "conflicts": "false", "version": "1.1.0"}
    body = (project.parent / "body.md").read_text(encoding="utf-8")
    # The changelog comes from a clone of its own, authenticated the same way.
    assert "## [1.1.0]" in body
    assert "released from the private fork" in body
    assert "max: 130" in (project / ".yamllint.yaml").read_text(encoding="utf-8")
    assert private_template.counts.accepted > accepted
    # Nowhere: not in the output, the request text, the URLs asked for, or the project's git.
    config = git(project, "config", "--list", "--show-origin")
    for text in (completed.stdout, completed.stderr, body, config, *private_template.counts.paths):
        assert TOKEN not in text
    written = [
        path
        for path in project.rglob("*")
        if path.is_file() and TOKEN.encode() in path.read_bytes()
    ]
    assert written == []


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_update", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_credential_helper_is_scoped_to_the_template_host_and_keeps_earlier_entries(
    project: Path,
) -> None:
    script = load_script(project / SCRIPT)
    environ = {"TEMPLATE_REPOSITORY_TOKEN": TOKEN, "GIT_CONFIG_COUNT": "1"}

    result = script.credential_environment("gh:acme/devops-template", environ)

    assert result["GIT_CONFIG_COUNT"] == "3"
    assert result["GIT_CONFIG_KEY_1"] == result["GIT_CONFIG_KEY_2"]
    assert result["GIT_CONFIG_KEY_1"] == "credential.https://github.com.helper"
    assert result["GIT_CONFIG_VALUE_1"] == ""  # drops helpers configured elsewhere
    assert TOKEN not in "".join(result.values())  # the helper reads the variable when asked
    assert script.credential_environment("gh:acme/devops-template", {}) == {}


@pytest.mark.parametrize(
    "source", ["git@github.com:acme/devops-template.git", "http://forge.example/acme/t.git"]
)
def test_a_token_with_a_source_it_cannot_protect_is_refused_by_name(
    project: Path, source: str
) -> None:
    script = load_script(project / SCRIPT)
    with pytest.raises(SystemExit, match="TEMPLATE_REPOSITORY_TOKEN is set, but"):
        script.credential_environment(source, {"TEMPLATE_REPOSITORY_TOKEN": TOKEN})
