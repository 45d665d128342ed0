"""Monorepos for the promotion tests: built once per answers by the documented commands."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.monorepo import build_monorepo
from tests.update.gitrepo import snapshot_template

# Two services are enough to see that one promotes alone: a Python API and a Go worker.
SERVICES: tuple[tuple[str, str], ...] = (("api", "python"), ("worker", "go"))


@pytest.fixture(scope="session")
def monorepo_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """monorepo(destination, **platform answers): a copy (with .git) of a built monorepo."""
    built: dict[str, Path] = {}
    template: list[Path] = []

    def monorepo(destination: Path, **answers: Any) -> Path:
        key = repr(sorted(answers.items()))
        if key not in built:
            if not template:
                template.append(snapshot_template(tmp_path_factory.mktemp("template")))
            root = tmp_path_factory.mktemp("monorepo") / "shop"
            built[key] = build_monorepo(template[0], root, services=SERVICES, **answers)
        shutil.copytree(built[key], destination, symlinks=True)
        return destination

    return monorepo
