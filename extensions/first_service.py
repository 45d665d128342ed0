"""Copier task of the platform's `copier copy`: add the repository's first service.

    python first_service.py TEMPLATE_CLONE '{"project_slug": ..., "language": ..., ...}'

Runs in the new repository. The first service is a Copier application of its own
(`scope: service`, answers in .copier-answers.<service>.yml), exactly as `make add-service`
makes the next ones, so its Dockerfile, chart and descriptor keep receiving template fixes.
It renders from the clone Copier made of the template (the same version as the platform), then
records the template source and version the platform recorded, so that `copier update` of the
service fetches the template from where the platform does.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy

PLATFORM_ANSWERS = Path(".copier-answers.yml")
RECORDED = ("_src_path", "_commit")


def platform_answers() -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load(PLATFORM_ANSWERS.read_text(encoding="utf-8"))
    return answers


def record_source(answers_file: Path, platform: dict[str, Any]) -> None:
    """Replace the template clone's path and version with the platform's."""
    lines = answers_file.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        key = line.split(":", 1)[0]
        if key in RECORDED and key in platform:
            value = yaml.safe_dump({key: platform[key]}, default_flow_style=False, width=4096)
            lines[index] = value
    answers_file.write_text("".join(lines), encoding="utf-8")


def main(argv: list[str]) -> int:
    clone, service_answers = Path(argv[1]), json.loads(argv[2])
    platform = platform_answers()
    data = {key: value for key, value in platform.items() if not key.startswith("_")}
    data.update(service_answers, scope="service")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(clone),
            ".",
            data=data,
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref="HEAD" if (clone / ".git").exists() else None,
        )
    record_source(Path(f".copier-answers.{service_answers['project_slug']}.yml"), platform)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
