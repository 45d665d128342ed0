"""The service chart's graceful stop and per-language sizing, rendered for every language.

helm lint --strict and helm template with each environment's overlay, validated strictly with
kubernetes-validate: the native preStop sleep, SHUTDOWN_TIMEOUT from the drain setting, a grace
period above both, and the requests, limits and runtime settings of the language's Language entry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.context import LANGUAGES
from tests.charts.test_chart import (
    DEFAULT_ENVIRONMENTS,
    Helm,
    chart_dir,
    kubernetes_version,
    one,
    overlay,
    validate_strictly,
)
from tests.helpers import render, run

MEBIBYTES = re.compile(r"^(\d+)Mi$")


@pytest.fixture(scope="module")
def helm(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache")}
    env |= {"HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    return Helm(tool("helm"), env, kubernetes_version())


@pytest.fixture(scope="module", params=sorted(LANGUAGES))
def language_chart(request: pytest.FixtureRequest, copie_session: Any) -> tuple[str, Path]:
    language = str(request.param)
    return language, chart_dir(render(copie_session, language=language))


def container_of(manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def mebibytes(quantity: str) -> int:
    match = MEBIBYTES.match(quantity)
    assert match, f"{quantity}: give memory in Mi"
    return int(match[1])


@pytest.mark.parametrize("env", DEFAULT_ENVIRONMENTS)
def test_pods_stop_gracefully_and_are_sized_for_their_language_in_every_environment(
    helm: Helm,
    language_chart: tuple[str, Path],
    env: str,
    tool: Callable[[str], str],
    tmp_path: Path,
) -> None:
    language, chart = language_chart
    sizing = LANGUAGES[language].sizing
    lint = helm.lint(chart, *overlay(chart, env))
    assert "[WARNING]" not in lint.stdout, lint.stdout
    manifests = helm.template(chart, *overlay(chart, env))
    validate_strictly(manifests, tool("kubernetes-validate"), helm.kube_version, tmp_path)
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    pod, container = container_of(manifests)

    pre_stop = container["lifecycle"]["preStop"]
    assert list(pre_stop) == ["sleep"], "distroless images have no shell: the native sleep only"
    delay = pre_stop["sleep"]["seconds"]
    env_vars = {item["name"]: item.get("value") for item in container["env"]}
    drain = int(env_vars["SHUTDOWN_TIMEOUT"])
    assert (delay, drain) == (
        values["shutdown"]["preStopSeconds"],
        values["shutdown"]["drainSeconds"],
    )
    assert delay >= 5, "endpoint removal needs a few seconds to reach every node"
    assert pod["terminationGracePeriodSeconds"] > delay + drain

    resources = container["resources"]
    assert resources["limits"] == {"memory": sizing.memory_limit}
    if env == DEFAULT_ENVIRONMENTS[-1]:  # production reserves the whole limit
        assert resources["requests"] == {"cpu": "250m", "memory": sizing.memory_limit}
    else:
        assert resources["requests"] == {
            "cpu": sizing.cpu_request,
            "memory": sizing.memory_request,
        }
    assert {name: env_vars[name] for name, _ in sizing.runtime_env} == dict(sizing.runtime_env)


def test_runtime_settings_leave_headroom_below_the_memory_limit() -> None:
    """Each runtime's own memory ceiling stays below the container's limit (docs/performance.md)."""
    for key, language in LANGUAGES.items():
        limit = mebibytes(language.sizing.memory_limit)
        assert mebibytes(language.sizing.memory_request) <= limit, key
        settings = dict(language.sizing.runtime_env)
        if key == "java":
            options = settings["JAVA_TOOL_OPTIONS"].split()
            assert "-XX:+UseSerialGC" in options
            (percentage,) = (o.split("=")[1] for o in options if "MaxRAMPercentage" in o)
            assert float(percentage) <= 60, "metaspace, code cache and stacks need the rest"
        elif key == "node":
            (heap,) = re.findall(r"--max-old-space-size=(\d+)", settings["NODE_OPTIONS"])
            assert int(heap) <= 0.7 * limit
        elif key == "go":
            (soft,) = re.findall(r"^(\d+)MiB$", settings["GOMEMLIMIT"])
            assert 0.7 * limit <= int(soft) <= 0.9 * limit
        else:
            assert settings == {}, key


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--set", "terminationGracePeriodSeconds=25"],
            "terminationGracePeriodSeconds (25) must be above shutdown.preStopSeconds + "
            "shutdown.drainSeconds (25)",
        ),
        (
            ["--set", "shutdown.drainSeconds=40"],
            "terminationGracePeriodSeconds (30) must be above shutdown.preStopSeconds + "
            "shutdown.drainSeconds (45)",
        ),
        (["--set", "shutdown.preStopSeconds=0"], "/shutdown/preStopSeconds"),
        (["--set", "shutdown.drainSeconds=soon"], "/shutdown/drainSeconds"),
        (["--set-json", 'runtimeEnv=[{"name":"GOGC"}]'], "/runtimeEnv/0"),
    ],
    ids=["grace-equal-to-delay-plus-drain", "drain-raised-alone", "no-delay", "drain-type", "env"],
)
def test_chart_refuses_a_stop_that_the_grace_period_cannot_hold(
    helm: Helm, language_chart: tuple[str, Path], arguments: list[str], message: str
) -> None:
    _, chart = language_chart
    command = [helm.binary, "template", chart.name, str(chart), *arguments]
    result = run(command, env=helm.env, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
