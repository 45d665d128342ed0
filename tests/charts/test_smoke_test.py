"""The smoke test hook: rendered in every environment, restricted, and its script run for real."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.charts.test_chart import (
    DEFAULT_ENVIRONMENTS,
    Helm,
    by_kind,
    one,
    overlay,
    restricted_violations,
)
from tests.helpers import run


@pytest.mark.parametrize("env", DEFAULT_ENVIRONMENTS)
def test_smoke_test_runs_after_every_sync_and_upgrade(helm: Helm, chart: Path, env: str) -> None:
    manifests = helm.template(chart, *overlay(chart, env))
    job = one(manifests, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PostSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]
    assert restricted_violations(pod["spec"]) == []
    selector = one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= pod["metadata"]["labels"].items(), "the Service would pick it"
    (container,) = pod["spec"]["containers"]
    environment = {item["name"]: item["value"] for item in container["env"]}
    service = one(manifests, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert environment["SERVICE_URL"] == f"http://{service['metadata']['name']}:{port}"
    assert environment["READINESS_PATH"] == "/readyz"
    script = next(
        m for m in by_kind(manifests, "ConfigMap") if "smoke-test" in m["metadata"]["name"]
    )
    assert script["data"]["smoke-test.sh"] == (chart / "smoke-test.sh").read_text(encoding="utf-8")


def test_smoke_test_can_be_switched_off(helm: Helm, chart: Path) -> None:
    manifests = helm.template(chart, "--set", "smokeTest.enabled=false")
    assert by_kind(manifests, "Job") == []
    assert by_kind(manifests, "ConfigMap") == []


class Service(BaseHTTPRequestHandler):
    metrics: str = "# HELP requests_total Requests.\nrequests_total 1\n"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = {"/readyz": "ok\n", "/metrics": self.metrics}.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write((body or "").encode())


@pytest.fixture
def service() -> Iterator[str]:
    Service.metrics = "# HELP requests_total Requests.\nrequests_total 1\n"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def smoke(chart: Path, url: str, tool: Callable[[str], str]) -> int:
    env = {
        "PATH": os.environ["PATH"],
        "SERVICE_URL": url,
        "READINESS_PATH": "/readyz",
        "METRICS_PATH": "/metrics",
    }
    tool("curl")
    return run(["sh", chart / "smoke-test.sh"], env=env, check=False, timeout=60).returncode


def test_smoke_script_passes_against_a_serving_service(
    chart: Path, service: str, tool: Callable[[str], str]
) -> None:
    assert smoke(chart, service, tool) == 0


def test_smoke_script_fails_when_metrics_are_not_prometheus_text(
    chart: Path, service: str, tool: Callable[[str], str]
) -> None:
    Service.metrics = "not metrics\n"
    assert smoke(chart, service, tool) != 0


def test_smoke_script_passes_shellcheck(chart: Path, tool: Callable[[str], str]) -> None:
    run([tool("shellcheck"), "--shell=sh", "--severity=style", chart / "smoke-test.sh"])
