"""Every question refuses bad answers by name, and a refused copy writes nothing."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

from tests.helpers import REPO_ROOT

BAD_ANSWERS: list[tuple[str, Any]] = [
    ("project_name", ""),
    ("project_name", "two\nlines"),
    ("project_name", "x" * 81),
    ("project_slug", "Bad_Slug"),
    ("project_slug", "1starts-with-digit"),
    ("project_slug", "ends-with-dash-"),
    ("project_slug", "a" * 41),
    ("description", "   "),
    ("owner", "has space"),
    ("owner", "-leading-dash"),
    ("language", "cobol"),
    ("ci_provider", "jenkins"),
    ("registry", "quay"),
    ("registry_host", "https://ghcr.io"),
    ("registry_host", "Has_Upper.example.com"),
    ("image_repository", "Upper/Case"),
    ("image_repository", "trailing/"),
    ("deploy_target", "flux"),
    ("repo_url", "not a url"),
    ("repo_url", "http://insecure.example.com/a.git"),
    ("environments", []),
    ("environments", "dev"),
    ("environments", ["dev", "Prod"]),
    ("environments", ["dev", "dev"]),
    ("environments", ["dev", "a" * 21]),
    ("coverage_threshold", -1),
    ("coverage_threshold", 101),
]


def copy(destination: Path, **data: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(REPO_ROOT),
            destination,
            data=data,
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            quiet=True,
        )


@pytest.mark.parametrize(
    ("question", "answer"),
    BAD_ANSWERS,
    ids=[f"{question}={str(answer)[:24]!r}" for question, answer in BAD_ANSWERS],
)
def test_bad_answer_is_refused_by_name_and_nothing_is_written(
    tmp_path: Path, question: str, answer: Any
) -> None:
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=rf"'{question}'") as refused:
        copy(fresh, **{question: answer})
    assert f"{question}:" in str(refused.value) or "Invalid choice" in str(refused.value)
    assert not fresh.exists()


def test_refused_copy_leaves_existing_files_untouched(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.md").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ValueError, match="project_slug"):
        copy(existing, project_slug="Nope!")
    assert [p.name for p in existing.iterdir()] == ["notes.md"]
    assert (existing / "notes.md").read_text(encoding="utf-8") == "mine\n"


@pytest.mark.parametrize(
    "answers",
    [
        {"project_slug": "a" * 40, "environments": ["a" * 20]},
        {"coverage_threshold": 0},
        {"coverage_threshold": 100},
        {"owner": "acme/platform-team", "repo_url": "git@gitlab.example.com:acme/x.git"},
        {"registry_host": "registry.example.com:5000"},
    ],
    ids=["longest-names", "threshold-0", "threshold-100", "nested-owner-ssh-url", "host-port"],
)
def test_boundary_answers_are_accepted(tmp_path: Path, answers: dict[str, Any]) -> None:
    copy(tmp_path / "ok", **answers)
    assert (tmp_path / "ok" / ".copier-answers.yml").is_file()
