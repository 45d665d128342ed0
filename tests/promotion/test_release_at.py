"""Scheduled releases: the release-at parser and the choice of what to merge now."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run


def release_at(project: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, project / "scripts/ci/release_at.py", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("line", "utc"),
    [
        ("release-at: 2030-01-31T09:00Z", "2030-01-31T09:00:00+00:00"),
        ("release-at: 2030-01-31T10:00+01:00", "2030-01-31T09:00:00+00:00"),
        ("release-at: 2030-01-31 09:00:30Z", "2030-01-31T09:00:30+00:00"),
        ("Text before\nRelease-At:   2030-01-31T04:00-05:00  \nafter", "2030-01-31T09:00:00+00:00"),
    ],
    ids=["utc", "offset", "space-and-seconds", "in-a-description"],
)
def test_release_times_are_read_in_utc(default_project: Path, line: str, utc: str) -> None:
    result = release_at(default_project, "parse", line)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == utc


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("release-at: 2030-01-31T09:00", "is not a time like"),
        ("release-at: tomorrow 9am", "is not a time like"),
        ("release-at: 2030-02-30T09:00Z", "day is out of range"),
        ("release-at: 2030-01-31T25:00Z", "hour must be in"),
        ("release-at: 2030-01-31T09:00Z\nrelease-at: 2030-02-01T09:00Z", "several different times"),
    ],
    ids=["no-zone", "words", "no-such-day", "no-such-hour", "two-times"],
)
def test_unreadable_release_times_are_refused(
    default_project: Path, line: str, reason: str
) -> None:
    result = release_at(default_project, "parse", line)
    assert result.returncode == 2
    assert reason in result.stderr


def test_only_approved_requests_whose_time_has_passed_are_due(default_project: Path) -> None:
    requests = [
        {"number": 1, "body": "release-at: 2030-01-31T09:00Z", "reviewDecision": "APPROVED"},
        {"number": 2, "body": "release-at: 2030-01-31T10:00Z", "reviewDecision": "APPROVED"},
        {"number": 3, "body": "release-at: 2030-01-31T08:00Z", "reviewDecision": "REVIEW_REQUIRED"},
        {"number": 4, "body": "no time here", "reviewDecision": "APPROVED"},
        {"number": 5, "body": "release-at: soon", "reviewDecision": "APPROVED"},
        {"iid": 6, "description": "release-at: 2030-01-31T08:59+00:00", "approved": True},
    ]
    # Promotion requests, as the promotion jobs open them (GitHub headRefName, GitLab
    # source_branch).
    for request in requests:
        request["headRefName" if "number" in request else "source_branch"] = "promote/api-prod-1"
    result = release_at(
        default_project, "due", "--now", "2030-01-31T09:00Z", stdin=json.dumps(requests)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "6"]
    assert "#3: release at 2030-01-31T08:00Z waits for approval" in result.stderr
    assert "#5: release-at: 'soon' is not a time like" in result.stderr


def test_release_script_is_formatted_linted_and_typed(
    default_project: Path, tool: Callable[[str], str]
) -> None:
    script = default_project / "scripts/ci/release_at.py"
    run([tool("ruff"), "format", "--check", "--diff", script], cwd=default_project)
    run([tool("ruff"), "check", script], cwd=default_project)
    run([tool("mypy"), "--strict", script], cwd=default_project)
