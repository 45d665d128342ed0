"""Median `copier update` time between two tags: default project beside a trivial template.

    python benchmarks/update.py [--runs N]

Both templates get a v0.1.0 tag and a v0.2.0 tag that changes one template-owned file; each run
copies a fresh project at v0.1.0 (not timed) and times the update to v0.2.0. Target: <= 2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.render import make_trivial_template
from tests.update.gitrepo import (
    commit_all,
    copy_project,
    git,
    snapshot_template,
    update_project,
)


def release(template: Path, changed_file: Path) -> None:
    with changed_file.open("a", encoding="utf-8") as handle:
        handle.write("# changed in v0.2.0\n")
    commit_all(template, "v0.2.0", "v0.2.0")


def median_update_seconds(template: Path, runs: int, scratch: Path) -> float:
    timings = []
    for index in range(runs):
        project = copy_project(template, scratch / f"{template.name}-{index}")
        start = time.perf_counter()
        update_project(project, vcs_ref="v0.2.0")
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        ours = snapshot_template(scratch / "devops-template")
        release(ours, ours / "template" / "platform" / ".editorconfig")
        trivial = make_trivial_template(scratch)
        git(trivial, "tag", "v0.1.0")
        release(trivial, trivial / "template" / "f00.txt")
        ours_median = median_update_seconds(ours, args.runs, scratch)
        floor = median_update_seconds(trivial, args.runs, scratch)
    print(f"devops-template defaults: median copier update {ours_median:.3f} s over {args.runs}")
    print(f"trivial 60-file template: median copier update {floor:.3f} s over {args.runs}")
    print(f"ratio: {ours_median / floor:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
