"""Every question refuses bad answers by name, and a refused copy writes nothing.

Platform scope: `copier copy` refuses a bad answer before writing. Service scope: `make
add-service` refuses a taken or malformed NAME and an unknown LANGUAGE before running Copier,
exits 2 and leaves the repository as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import copy_template
from tests.monorepo import make
from tests.update.gitrepo import commit_all, git

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
    copy_template(destination, **data)


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
    slug = answers.get("project_slug", "my-service")
    assert (tmp_path / "ok" / f".copier-answers.{slug}.yml").is_file()


# --- Service scope: make add-service -------------------------------------------------------------


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed repository with its first service `api`."""
    root = copy_template(tmp_path_factory.mktemp("repo") / "shop", project_slug="api")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "Initial commit from devops-template")
    return root


BAD_SERVICES: list[tuple[str, str, str, str]] = [
    # (NAME, LANGUAGE, the variable the message names, a word of the message)
    ("api", "go", "NAME=api", "already exists"),
    ("Bad_Name", "go", "NAME='Bad_Name'", "DNS-1123"),
    ("1worker", "go", "NAME='1worker'", "DNS-1123"),
    ("worker-", "go", "NAME='worker-'", "DNS-1123"),
    ("w" * 41, "go", "NAME='" + "w" * 41 + "'", "at most 40"),
    ("", "go", "NAME=''", "DNS-1123"),
    ("worker", "cobol", "LANGUAGE='cobol'", "python, node, go, java"),
    ("worker", "", "LANGUAGE=''", "python, node, go, java"),
]


@pytest.mark.parametrize(
    ("name", "language", "named", "reason"),
    BAD_SERVICES,
    ids=[f"NAME={name[:12]!r}-LANGUAGE={language!r}" for name, language, _, _ in BAD_SERVICES],
)
def test_add_service_refuses_by_name_exits_2_and_writes_nothing(
    repository: Path, name: str, language: str, named: str, reason: str
) -> None:
    refused = make(repository, "add-service", f"NAME={name}", f"LANGUAGE={language}", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert named in refused.stderr
    assert reason in refused.stderr
    assert git(repository, "status", "--porcelain", "--untracked-files=all") == ""
