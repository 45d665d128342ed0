"""Median `copier copy` time of the default project beside a trivial 60-file template.

    python benchmarks/render.py [--runs N]

Both templates are git repositories copied at HEAD through the same Copier API, so the ratio
measures what our questions, extensions and files add over Copier's own floor. Target: <= 2x.
This is a measurement, not a test: it prints and never fails.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from copier import run_copy

ROOT = Path(__file__).resolve().parent.parent


def make_trivial_template(where: Path, files: int = 60) -> Path:
    template = where / "trivial"
    (template / "template").mkdir(parents=True)
    (template / "copier.yml").write_text(
        "_subdirectory: template\nname:\n  type: str\n  default: demo\n", encoding="utf-8"
    )
    # The answers file is one of the files, so `copier update` works on copies of it too.
    (template / "template" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml -}}\n", encoding="utf-8"
    )
    for index in range(files - 1):
        suffix = ".jinja" if index % 2 else ""
        body = f"file {index} of {{{{ name }}}}\n" if suffix else f"file {index}\n"
        (template / "template" / f"f{index:02}.txt{suffix}").write_text(body, encoding="utf-8")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=template, check=True)
    subprocess.run([*git, "add", "-A"], cwd=template, check=True)
    subprocess.run([*git, "commit", "-qm", "trivial"], cwd=template, check=True)
    return template


def median_copy_seconds(template: Path, runs: int, scratch: Path) -> float:
    timings = []
    for index in range(runs):
        destination = scratch / f"{template.name}-{index}"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_copy(
                str(template),
                destination,
                defaults=True,
                unsafe=True,
                vcs_ref="HEAD",
                quiet=True,
            )
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trivial = make_trivial_template(scratch)
        ours = median_copy_seconds(ROOT, args.runs, scratch)
        floor = median_copy_seconds(trivial, args.runs, scratch)
        files = sum(1 for p in (scratch / f"{ROOT.name}-0").rglob("*") if p.is_file())
    print(f"devops-template defaults ({files} files): median {ours:.3f} s over {args.runs} runs")
    print(f"trivial 60-file template:               median {floor:.3f} s over {args.runs} runs")
    print(f"ratio: {ours / floor:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
