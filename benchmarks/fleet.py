"""The monorepo lifecycle measured: `make add-service` and `make update`, beside their floors.

    python benchmarks/fleet.py [--runs N]

1. Adding a service: median wall time of `make add-service NAME=... LANGUAGE=go` in a generated
   repository, beside the Copier floor measured the same way in the same run: the `copier copy`
   command of a trivial 60-file template (benchmarks/render.py), a process each, as a user runs
   them. Target: <= 2x.
2. Updating: median wall time of `make update` (platform and every service, v0.1.0 -> v0.2.0) of
   a four-service monorepo beside the same command on a one-service repository. Target: <= 3x.
This is a measurement, not a test: it prints and never fails.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.render import make_trivial_template
from tests.monorepo import FOUR_SERVICES, build_monorepo, tool_env
from tests.update.gitrepo import commit_all, snapshot_template


def median_seconds(
    runs: int, prepare: Callable[[int], list[str | Path]], cwd: Callable[[int], Path]
) -> float:
    timings = []
    for index in range(runs):
        command = [str(part) for part in prepare(index)]
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd(index), env=tool_env(), check=True, capture_output=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def release(template: Path) -> None:
    """v0.2.0: a fix in a template-owned platform file and in every service's Dockerfile."""
    with (template / "template/platform/.editorconfig").open("a", encoding="utf-8") as handle:
        handle.write("# changed in v0.2.0\n")
    for service in (template / "template/service/apps").glob("{% if language ==*"):
        with (service / "Dockerfile.jinja").open("a", encoding="utf-8") as handle:
            handle.write("# changed in v0.2.0\n")
    commit_all(template, "v0.2.0", "v0.2.0")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    copier = Path(sys.executable).parent / "copier"
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        template = snapshot_template(scratch / "devops-template")
        release(template)
        trivial = make_trivial_template(scratch)

        one = build_monorepo(
            template, scratch / "one", services=FOUR_SERVICES[:1], vcs_ref="v0.1.0"
        )
        four = build_monorepo(template, scratch / "four", vcs_ref="v0.1.0")

        def fresh(project: Path, name: str) -> Path:
            copy = scratch / name
            shutil.copytree(project, copy, symlinks=True)
            return copy

        # 1. add-service beside `copier copy` of the trivial template
        grown = fresh(one, "grown")
        add = median_seconds(
            args.runs,
            lambda i: [
                "make",
                "add-service",
                f"NAME=extra{i}",
                "LANGUAGE=go",
                "COPIER_ARGS=--defaults --quiet",
            ],
            lambda i: grown,
        )
        floor = median_seconds(
            args.runs,
            lambda i: [
                copier,
                "copy",
                "--quiet",
                "--trust",
                "--defaults",
                "--vcs-ref",
                "HEAD",
                trivial,
                scratch / f"trivial-{i}",
            ],
            lambda i: scratch,
        )

        # 2. make update of four services beside one (a fresh copy of each repository per run)
        updates: dict[str, float] = {}
        for project in (one, four):
            copies = [fresh(project, f"{project.name}-{i}") for i in range(args.runs)]
            updates[project.name] = median_seconds(
                args.runs, lambda i: ["make", "update"], copies.__getitem__
            )

    print(f"make add-service (go):                 median {add:.2f} s over {args.runs} runs")
    print(f"copier copy, trivial 60-file template: median {floor:.2f} s over {args.runs} runs")
    print(f"ratio: {add / floor:.2f}x (target <= 2x)")
    print(f"make update, one service:   median {updates['one']:.2f} s over {args.runs} runs")
    print(f"make update, four services: median {updates['four']:.2f} s over {args.runs} runs")
    print(f"ratio: {updates['four'] / updates['one']:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
