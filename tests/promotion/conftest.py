"""Monorepos for the promotion tests: built once per answers by the documented commands."""

from __future__ import annotations

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
    """monorepo(destination, **platform answers): a copy (with .git) of a built monorepo.

    build_monorepo builds each set of answers once per run and copies it to `destination`.
    """
    template: list[Path] = []

    def monorepo(destination: Path, **answers: Any) -> Path:
        if not template:
            template.append(snapshot_template(tmp_path_factory.mktemp("template")))
        return build_monorepo(template[0], destination, services=SERVICES, **answers)

    return monorepo
