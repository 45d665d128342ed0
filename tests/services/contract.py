"""The service contract every language honours, as reusable checks for tests/services/.

Parsers for Dockerfiles and Makefiles (just enough to check and replay them), and helpers to run
a service for real: start it, probe it over HTTP on loopback, read its JSON logs, stop it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.helpers import run
from tests.monorepo import lint_deploy_env

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


def wait_for_health(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
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
    project: Path, service: Path, schemas: Path, env: dict[str, str] | None = None
) -> tuple[Reports, subprocess.CompletedProcess[str]]:
    """The root `make lint` (lint-deploy included, offline: tests.monorepo.lint_deploy_env with
    the CRDs of `schemas`) and `make test`, as CI runs them; the reports must be new."""
    for report in ("coverage.xml", "junit.xml"):
        (service / report).unlink(missing_ok=True)
    lint = run(["make", "lint"], cwd=project, env=lint_deploy_env(schemas, env))
    assert "lint-deploy: every check passed" in lint.stdout
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


# --- The HTTP contract every language shares: probe bodies and metric names -----------------------

PROBE_BODIES = {
    "/healthz": (200, {"status": "ok"}),
    "/readyz": (200, {"status": "ready"}),
}
NOT_READY = {"status": "not ready"}
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = dict(LABEL.findall(match["labels"] or ""))
        samples.append((match["name"], labels, float(match["value"])))
    return samples


def assert_probe_bodies(port: int) -> None:
    """/healthz and /readyz answer the same JSON bodies, byte for byte, in every language."""
    for path, (status, body) in PROBE_BODIES.items():
        answered, content_type, text = get(port, path)
        assert (answered, text) == (status, json.dumps(body, separators=(",", ":"))), path
        assert content_type.startswith("application/json"), (path, content_type)


def assert_metrics_contract(port: int) -> None:
    """The live /metrics names HTTP requests alike in every language: http_requests_total with
    method, route and status; http_request_duration_seconds (a histogram) with method and route;
    routes by template, "unmatched" for a path no route matches."""
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/no-such-page/42")[0] == 404
    status, content_type, text = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain"), content_type
    assert "# TYPE http_requests_total counter" in text.splitlines()
    assert "# TYPE http_request_duration_seconds histogram" in text.splitlines()
    samples = metric_samples(text)
    http = [(name, labels) for name, labels, _ in samples if name.startswith("http_")]
    names = {name for name, _ in http}
    assert names == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
    }, f"HTTP metrics beyond the contract: {sorted(names)}"
    for name, labels in http:
        expected = {"method", "route"}
        if name == "http_requests_total":
            expected.add("status")
        if name.endswith("_bucket"):
            expected.add("le")
        assert set(labels) == expected, (name, labels)
    requests = {
        (labels["method"], labels["route"], labels["status"])
        for name, labels in http
        if name == "http_requests_total"
    }
    assert ("GET", "/healthz", "200") in requests
    assert ("GET", "unmatched", "404") in requests
    assert "/no-such-page" not in text, "a raw path became a label value"
    counts = {labels["route"] for name, labels in http if name.endswith("_count")}
    assert {"/healthz", "unmatched"} <= counts


# --- Graceful stop under keep-alive load ---------------------------------------------------------

# Header that the tests' delay hook (added to a copy of each service) reads: seconds to wait
# before handling the request, so that it is still in flight when SIGTERM arrives.
TEST_DELAY_HEADER = "X-Test-Delay"
STALE = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


@dataclass
class Outcome:
    status: int
    body: str
    connection: str


@dataclass
class KeepAliveLoad:
    """`clients` threads, each sending GET `path` on one persistent connection until stopped.

    A client stops when the server closes its connection after SIGTERM (`Connection: close`) or
    refuses a new one. A request on an idle keep-alive connection that the server closed meanwhile
    is retried once on a new connection, as standard clients do; that new connection may be
    refused or reset unanswered (the listener is closing), every other error is a failure.
    """

    port: int
    clients: int = 16
    path: str = "/healthz"
    answered: int = 0
    closed: int = 0
    retried: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> KeepAliveLoad:
        for number in range(self.clients):
            thread = threading.Thread(target=self._client, name=f"load-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        assert not alive, f"load clients still waiting for an answer: {alive}"

    def _record(self, **changes: int) -> None:
        with self._lock:
            for name, step in changes.items():
                setattr(self, name, getattr(self, name) + step)

    def _fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def _connect(self) -> http.client.HTTPConnection | None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.connect()
        except ConnectionRefusedError:
            self._record(refused=1)  # the listener is closed: nothing reached the server
            return None
        return connection

    def _send(self, connection: http.client.HTTPConnection) -> Outcome:
        connection.request("GET", self.path)
        response = connection.getresponse()
        body = response.read().decode()
        with self._lock:
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
            self.answered += 1
        return Outcome(response.status, body, response.getheader("connection", "").lower())

    def _client(self) -> None:
        connection = self._connect()
        if connection is None:
            return self._fail("refused before the test began")
        try:
            while not self._stop.is_set():
                try:
                    outcome = self._send(connection)
                except STALE:
                    # The server closed this idle keep-alive connection: one retry, on a new one.
                    connection.close()
                    self._record(retried=1)
                    retry = self._connect()
                    if retry is None:
                        return None
                    connection = retry
                    try:
                        outcome = self._send(connection)
                    except STALE:
                        # A connection opened during the drain, reset without an answer: the
                        # kernel queued it, the service never accepted it, and closing the
                        # listener reset it (Tomcat keeps listening a moment after it stops
                        # accepting). It counts as refused: no request of it reached the service,
                        # and in a cluster the preStop sleep has taken the pod out of the
                        # endpoints before SIGTERM, so no client opens one.
                        self._record(refused=1)
                        return None
                    except (OSError, http.client.HTTPException) as error:
                        return self._fail(f"the retry on a new connection failed: {error!r}")
                except (OSError, http.client.HTTPException) as error:
                    return self._fail(f"{type(error).__name__} on a used connection: {error}")
                if outcome.connection == "close":
                    self._record(closed=1)
                    return None  # drained: a real client goes to another pod from here
        finally:
            connection.close()
        return None


def delayed_get(port: int, path: str, seconds: float) -> Outcome:
    """GET with the test delay: the service holds the request `seconds` before handling it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={TEST_DELAY_HEADER: str(seconds)})
        response = connection.getresponse()
        return Outcome(
            response.status,
            response.read().decode(),
            response.getheader("connection", "").lower(),
        )
    finally:
        connection.close()


@dataclass
class Output:
    """What a process writes to its pipes, read as it comes so that it never blocks on a full
    pipe (a service logs every request of a load test)."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def read(cls, process: subprocess.Popen[str]) -> Output:
        output = cls()
        for stream, lines in ((process.stdout, output.stdout), (process.stderr, output.stderr)):
            assert stream is not None, "start the process with stdout and stderr pipes"
            reader = threading.Thread(target=lambda s=stream, x=lines: x.extend(s), daemon=True)
            reader.start()
            output.readers.append(reader)
        return output

    def wait(self, process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {timeout} s after SIGTERM") from None
        for reader in self.readers:
            reader.join(5)
        return "".join(self.stdout), "".join(self.stderr)


# How long the contract waits for things that take longer on a loaded machine. Generous: a
# passing run never waits for them, they only bound how long a broken service takes to fail.
LOAD_WARM_UP = 200  # requests the keep-alive load must have had answered before SIGTERM
LOAD_TIMEOUT = 90.0  # seconds for the load to get there (a cold JVM on 2 busy cores is slow)
SLOW_DELAY = 5.0  # seconds the test delay holds the requests that must be in flight at SIGTERM
READY_DELAY = 4.0  # the same for the /readyz request that SIGTERM must turn into a 503
IN_SERVICE_WAIT = 1.0  # at least this long between sending the delayed requests and SIGTERM


def json_or_text(body: str) -> object:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body


def wait_for_answers(load: KeepAliveLoad, count: int, timeout: float, what: str) -> None:
    """Wait until the load has had `count` requests answered; fail at once on a load failure."""
    deadline = time.monotonic() + timeout
    while load.answered < count and not load.failures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not load.failures, f"{what}: the load failed before SIGTERM: {load.failures[:5]}"
    assert load.answered >= count, (
        f"{what}: the load had {load.answered} requests answered after {timeout} s, "
        f"not {count} (statuses {load.statuses}, retried {load.retried}, refused {load.refused})"
    )


def assert_graceful_stop(
    port: int, pid: int, process: subprocess.Popen[str], drain_timeout: float
) -> KeepAliveLoad:
    """The shutdown contract (docs/services.md), under keep-alive load on loopback.

    `pid` is the service process to send SIGTERM to; `process` is what the test started (the
    service itself or `make run` around it), whose exit code is the service's. The service must
    run with the test delay hook and SHUTDOWN_TIMEOUT=`drain_timeout`.

    Nothing here waits a fixed time for the service: the load must have had LOAD_WARM_UP
    requests answered before the delayed requests are sent, and the service must keep answering
    the load while they wait in it, so that SIGTERM arrives with all of them in flight.
    """
    assert drain_timeout > SLOW_DELAY, f"SLOW_DELAY {SLOW_DELAY} s >= drain {drain_timeout} s"
    output = Output.read(process)
    with KeepAliveLoad(port) as load, ThreadPoolExecutor(max_workers=4) as pool:
        wait_for_answers(load, LOAD_WARM_UP, LOAD_TIMEOUT, "warm-up")
        sent_at = time.monotonic()
        slow = [pool.submit(delayed_get, port, "/healthz", SLOW_DELAY) for _ in range(3)]
        readiness = pool.submit(delayed_get, port, "/readyz", READY_DELAY)
        # The delayed requests reach the service and wait in it: the service answers more of
        # the load meanwhile (its accept loop runs), and at least IN_SERVICE_WAIT passes.
        wait_for_answers(load, load.answered + 50, LOAD_TIMEOUT, "with the delayed requests sent")
        time.sleep(max(0.0, sent_at + IN_SERVICE_WAIT - time.monotonic()))
        finished = {
            name: future.exception() or future.result()
            for name, future in [("/readyz", readiness)]
            + [(f"/healthz #{n}", future) for n, future in enumerate(slow)]
            if future.done()
        }
        waited = time.monotonic() - sent_at
        assert not finished, f"finished before SIGTERM ({waited:.1f} s after sending): {finished}"
        answered_before = load.answered
        stopped_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)

        ready = readiness.result(timeout=30)
        in_flight = [future.result(timeout=30) for future in slow]
        stdout, stderr = output.wait(process, timeout=drain_timeout + 5)
        stopped_after = time.monotonic() - stopped_at
        load.stop()

    seen = f"load: answered {load.answered} ({answered_before} before SIGTERM), closed "
    seen += f"{load.closed}, retried {load.retried}, refused {load.refused}, {load.statuses}"
    assert process.returncode == 0, f"exit code {process.returncode}:\n{stdout[-2000:]}\n{stderr}"
    assert stopped_after < drain_timeout, f"took {stopped_after:.1f} s to stop ({drain_timeout} s)"
    # /readyz, handled after SIGTERM, says not ready while the requests in flight finish.
    assert (ready.status, json_or_text(ready.body)) == (503, NOT_READY), (
        f"/readyz sent before SIGTERM and handled after it answered {ready.status} {ready.body!r}"
    )
    assert ready.connection == "close", f"/readyz during the drain: Connection {ready.connection!r}"
    for outcome in in_flight:
        assert (outcome.status, json_or_text(outcome.body)) == (200, {"status": "ok"}), (
            f"a request in flight at SIGTERM answered {outcome.status} {outcome.body!r}"
        )
        assert outcome.connection == "close", (
            f"a response during the drain keeps the connection: Connection {outcome.connection!r}"
        )
    # The slow requests reached the service after `sent_at` and wait SLOW_DELAY in it.
    remaining = sent_at + SLOW_DELAY - stopped_at
    assert stopped_after >= remaining, (
        f"exited {stopped_after:.2f} s after SIGTERM, before the requests in flight finished "
        f"({remaining:.2f} s later)"
    )
    # No request that reached the server was reset or left unanswered.
    assert load.failures == [], f"{seen}; failures: {load.failures}"
    assert load.answered > answered_before, f"no load request was answered after SIGTERM: {seen}"
    assert set(load.statuses) == {200}, f"statuses other than 200: {seen}"
    assert load.retried <= load.clients, f"more retries than clients ({load.clients}): {seen}"
    return load
