"""Fixtures shared by the tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from helpers import MemoryStorage


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging configuration a test applies, so that it does not leak into others."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
