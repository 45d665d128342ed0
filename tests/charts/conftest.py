"""Fixtures shared by the chart tests: a sandboxed helm and the default project's chart."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.charts.test_chart import Helm, chart_dir, kubernetes_version
from tests.monorepo import build_monorepo
from tests.update.gitrepo import snapshot_template


@pytest.fixture(scope="module")
def helm(tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return Helm(binary=tool("helm"), env=env, kube_version=kubernetes_version())


@pytest.fixture(scope="module")
def chart(default_project: Path) -> Path:
    return chart_dir(default_project)


@pytest.fixture(scope="module")
def four_services(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-service monorepo of tests/monorepo.py (python, go, node, java); read only."""
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    return build_monorepo(template, tmp_path_factory.mktemp("four") / "shop")
