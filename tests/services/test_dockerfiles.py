"""Every language's Dockerfile passes hadolint with the repository's strict configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from extensions.context import LANGUAGES
from tests.helpers import render, run
from tests.services.contract import service_of


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_dockerfile_is_clean_under_the_repository_hadolint_config(
    copie_session: Any, tool: Callable[[str], str], language: str
) -> None:
    project = render(copie_session, language=language)
    dockerfile = service_of(project) / "Dockerfile"
    # hadolint finds .hadolint.yaml in the directory it runs from: the repository root.
    run([tool("hadolint"), dockerfile.relative_to(project)], cwd=project)
