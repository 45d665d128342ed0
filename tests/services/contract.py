"""The service contract every language honours, as reusable checks for tests/services/.

Parsers for Dockerfiles and Makefiles (just enough to check and replay them), and helpers to run
a service for real: start it, probe it over HTTP on loopback, read its JSON logs, stop it.
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.helpers import run

T = TypeVar("T")


@dataclass
class Instruction:
    keyword: str
    value: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [item.value for item in self.instructions if item.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    stages: list[Stage] = []
    for line in lines:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, value))
    return stages


def env_pairs(value: str) -> list[tuple[str, str]]:
    """`ENV A=1 B="x y"` -> [("A", "1"), ("B", "x y")] (the key=value form only)."""
    pairs = []
    for token in shlex.split(value):
        key, equals, setting = token.partition("=")
        assert equals, f"ENV {value!r} is not in KEY=value form"
        pairs.append((key, setting))
    return pairs


def only(items: list[T], what: str) -> T:
    assert len(items) == 1, f"expected exactly one {what}, found {items}"
    return items[0]


def makefile_recipes(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Variables (`?=`, `:=`, `=`) and the recipe lines of every rule, variables not expanded."""
    variables: dict[str, str] = {}
    recipes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if match := re.match(r"^(?:export\s+)?([A-Z_]+)\s*(?:\?=|:=|=)\s*(.*)$", line):
            variables[match[1]] = match[2]
            current = None
        elif match := re.match(r"^([^:=\s]+(?:\s+[^:=\s]+)*)\s*:(?!=)", line):
            current = recipes.setdefault(match[1], [])
        else:
            current = None
    return variables, recipes


def recipe_commands(text: str, needle: str) -> list[list[str]]:
    """Recipe lines containing `needle`, split into words, `$(UV)` and friends expanded."""
    variables, recipes = makefile_recipes(text)

    def expand(line: str) -> str:
        for _ in range(5):
            line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), line)
        return line

    return [
        shlex.split(expand(line))
        for lines in recipes.values()
        for line in lines
        if needle in expand(line)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET to the service on this machine."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read().decode()
    finally:
        connection.close()


def wait_for_health(port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"exited {process.returncode} while starting:\n{out}\n{err}")
        try:
            if get(port, "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"/healthz did not answer on port {port} within {timeout} s")


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively (Linux /proc)."""
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(child) for child in children_file.read_text().split()]
    return children + [grandchild for child in children for grandchild in descendants(child)]


def start(
    command: list[str], cwd: Path, env: dict[str, str], started: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started.append(process)
    return process


def assert_json_logs(stdout: str) -> list[dict[str, object]]:
    entries = []
    for line in stdout.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    assert entries, "the service logged nothing on stdout"
    return entries


def service_of(project: Path) -> Path:
    (makefile,) = (project / "apps").glob("*/Makefile")
    return makefile.parent


def all_descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively, whichever of its threads started them.

    `descendants` reads the main thread's children only; a JVM (Maven's, for one) starts its
    child processes from other threads.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command name in parentheses: state, then the parent's pid.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


@dataclass
class Reports:
    """What `make test` leaves in the service folder: Cobertura coverage and JUnit results."""

    coverage: ET.Element
    suites: list[ET.Element]

    @property
    def line_rate(self) -> float:
        return float(self.coverage.attrib["line-rate"])

    @property
    def tests(self) -> int:
        return sum(int(suite.attrib.get("tests", 0)) for suite in self.suites)

    @property
    def failed(self) -> int:
        return sum(
            int(suite.attrib.get("failures", 0)) + int(suite.attrib.get("errors", 0))
            for suite in self.suites
        )

    def covered_files(self) -> set[str]:
        return {cls.attrib["filename"] for cls in self.coverage.iter("class")}


def read_reports(service: Path) -> Reports:
    coverage = ET.parse(service / "coverage.xml").getroot()
    assert coverage.tag == "coverage", "coverage.xml is not Cobertura"
    assert "line-rate" in coverage.attrib
    root = ET.parse(service / "junit.xml").getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    assert suites, "junit.xml has no testsuite"
    return Reports(coverage, suites)


def make_lint_and_test(
    project: Path, service: Path, env: dict[str, str] | None = None
) -> tuple[Reports, subprocess.CompletedProcess[str]]:
    """The root `make lint` and `make test`, as CI runs them; the reports must be new."""
    for report in ("coverage.xml", "junit.xml"):
        (service / report).unlink(missing_ok=True)
    run(["make", "lint"], cwd=project, env=env)
    result = run(["make", "test"], cwd=project, env=env)
    reports = read_reports(service)
    assert reports.line_rate >= 0.8
    assert reports.failed == 0
    return reports, result


def assert_probes_answer(port: int) -> None:
    """The contract's HTTP side: liveness, readiness and Prometheus metrics with route labels."""
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200
    status, content_type, body = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "# HELP http_requests_total " in body
    assert 'route="/healthz"' in body


def dockerignore_and_copies(service_dir: Path) -> tuple[set[str], set[str]]:
    """What `.dockerignore` lets in (it must start by ignoring everything), and what the
    Dockerfile's COPY instructions take from the build context."""
    lines = (service_dir / ".dockerignore").read_text(encoding="utf-8").split("\n")
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore should ignore everything first"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    stages = parse_dockerfile((service_dir / "Dockerfile").read_text(encoding="utf-8"))
    copied = {
        source.rstrip("/")
        for stage in stages
        for value in stage.values("COPY")
        if not value.startswith("--from=")
        for source in shlex.split(value)[:-1]
    }
    return allowed, copied


def kaniko_ready_dockerfile(service_dir: Path) -> list[Stage]:
    """The service's Dockerfile, parsed, after the checks every language shares: multi-stage,
    no BuildKit-only syntax (kaniko builds it as is), a numeric non-root USER at the end."""
    text = (service_dir / "Dockerfile").read_text(encoding="utf-8")
    assert "--mount" not in text, "RUN --mount is BuildKit-only"
    assert "<<" not in text, "heredocs are BuildKit-only"
    assert not text.startswith("# syntax="), "no BuildKit frontend directive"
    stages = parse_dockerfile(text)
    assert len(stages) >= 2, "dependencies and build tools stay in an earlier stage"
    (user,) = stages[-1].values("USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), f"USER {user}: numeric uid:gid, not root"
    return stages


def run_commands(stage: Stage, needle: str) -> list[list[str]]:
    """RUN commands of a stage containing `needle`, split into words (`&&` chains split too)."""
    return [
        shlex.split(command)
        for value in stage.values("RUN")
        for command in value.split("&&")
        if needle in command
    ]


def stage_running(stages: list[Stage], needle: str) -> Stage:
    """The one stage with a RUN command containing `needle` (the dependency install)."""
    return only([s for s in stages if run_commands(s, needle)], f"stage that runs `{needle}`")


@contextmanager
def edited(path: Path, edit: Callable[[str], str]) -> Iterator[None]:
    """The file changed by `edit` (created from "" if missing) for the block, then restored."""
    original = path.read_text(encoding="utf-8") if path.exists() else None
    changed = edit(original or "")
    assert changed != original, f"the edit changed nothing in {path}"
    path.write_text(changed, encoding="utf-8")
    try:
        yield
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original, encoding="utf-8")
