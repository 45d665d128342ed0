#!/usr/bin/env python3
"""Summarise a Cobertura coverage report in Markdown; enforce a minimum line coverage.

    python3 scripts/ci/coverage_report.py apps/api/coverage.xml --threshold 80 \\
        --service api --output coverage-api.md

The Markdown starts with a hidden marker (<!-- coverage-report:<service> -->) so CI
can update one pull-request comment per service in place. It is also appended to
$GITHUB_STEP_SUMMARY when that variable is set. Exit codes: 0 at or above the
threshold, 1 below it, 2 when the report cannot be read. Standard library only, so it
runs with any Python 3.9+ on a CI runner.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

DESCRIPTION = "Summarise Cobertura coverage and enforce a minimum line coverage."
# Files listed in the Markdown, lowest coverage first: keeps PR comments short.
MAX_FILES = 25


class ReportError(Exception):
    """The coverage report is missing or is not Cobertura XML."""


@dataclass(frozen=True)
class Rate:
    name: str
    covered: int
    valid: int

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.valid if self.valid else 0.0

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.name, self.covered + other.covered, self.valid + other.valid)


@dataclass(frozen=True)
class Coverage:
    total: Rate
    packages: list[Rate] = field(default_factory=list)
    files: list[Rate] = field(default_factory=list)

    def below(self, threshold: float) -> bool:
        """Below the threshold; no measured line at all counts as 0 %."""
        if not self.total.valid:
            return threshold > 0
        # Integer arithmetic: 80 of 100 lines is exactly 80 %, never 79.999...
        return self.total.covered * 100 < threshold * self.total.valid


def class_lines(cls: ET.Element, name: str) -> Rate:
    """Lines of one <class>: <lines>/<line> only (<methods> may repeat them)."""
    covered = valid = 0
    for line in cls.findall("lines/line"):
        valid += 1
        if int(line.get("hits", "0")) > 0:
            covered += 1
    return Rate(name, covered, valid)


def parse(path: Path) -> Coverage:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (did `make test` write it?)") from None
    except ET.ParseError as error:
        raise ReportError(f"{path}: not well-formed XML ({error})") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read it ({error.strerror})") from None
    if root.tag != "coverage":
        raise ReportError(f"{path}: <{root.tag}> is not a Cobertura <coverage> root")
    try:
        packages: list[Rate] = []
        files: dict[str, Rate] = {}
        for package in root.iter("package"):
            package_rate = Rate(package.get("name") or ".", 0, 0)
            for cls in package.iter("class"):
                filename = cls.get("filename") or cls.get("name") or "?"
                rate = class_lines(cls, filename)
                package_rate += rate
                files[filename] = files.get(filename, Rate(filename, 0, 0)) + rate
            packages.append(package_rate)
        total = Rate("total", 0, 0)
        for package_rate in packages:
            total += package_rate
        # The totals the coverage tool wrote win over the sum of the lines it listed.
        covered_attr, valid_attr = root.get("lines-covered"), root.get("lines-valid")
        if covered_attr is not None and valid_attr is not None:
            total = Rate("total", int(covered_attr), int(valid_attr))
    except ValueError as error:
        raise ReportError(f"{path}: bad line count ({error})") from None
    if not 0 <= total.covered <= total.valid:
        totals = f"lines-covered={total.covered}, lines-valid={total.valid}"
        raise ReportError(f"{path}: inconsistent totals ({totals})")
    # Files without executable lines (an empty __init__.py) say nothing: leave out.
    measured = [rate for rate in files.values() if rate.valid]
    ranked = sorted(measured, key=lambda rate: (rate.percent, rate.name))
    return Coverage(total, packages, ranked)


def percent(rate: Rate) -> str:
    """Two decimals, rounded down: 79.999 % must not show as 80.00 %."""
    if not rate.valid:
        return "n/a"
    hundredths = rate.covered * 10000 // rate.valid  # integers: no float rounding
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def code(text: str) -> str:
    """A file or package name as Markdown inline code, safe inside a table cell."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def marker(service: str) -> str:
    return f"<!-- coverage-report:{service} -->"


def render(coverage: Coverage, service: str, threshold: float) -> str:
    total = coverage.total
    failed = coverage.below(threshold)
    icon = ":x:" if failed else ":white_check_mark:"
    verdict = "is below" if failed else "meets"
    lines = [
        marker(service),
        f"### {icon} Coverage of {code(service)}: {percent(total)}",
        "",
        f"Line coverage {percent(total)} ({total.covered} of {total.valid} lines) "
        f"{verdict} the threshold of {threshold:g}%.",
    ]
    if not total.valid:
        lines += ["", "No lines were measured: do the tests import the code?"]
    if coverage.packages:
        lines += ["", "| Package | Lines | Coverage |", "| --- | ---: | ---: |"]
        lines += [
            f"| {code(rate.name)} | {rate.covered}/{rate.valid} | {percent(rate)} |"
            for rate in coverage.packages
        ]
    if coverage.files:
        shown = coverage.files[:MAX_FILES]
        title = "Files, lowest coverage first"
        if len(coverage.files) > len(shown):
            title += f" ({len(shown)} of {len(coverage.files)})"
        lines += [
            "",
            f"<details><summary>{title}</summary>",
            "",
            "| File | Lines | Coverage |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {code(rate.name)} | {rate.covered}/{rate.valid} | {percent(rate)} |"
            for rate in shown
        ]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def threshold_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage from 0 to 100")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("report", type=Path, help="Cobertura XML file (coverage.xml)")
    parser.add_argument("--threshold", type=threshold_value, required=True)
    parser.add_argument("--service", required=True, help="name used in the marker")
    parser.add_argument("--output", type=Path, help="Markdown file (default: stdout)")
    args = parser.parse_args(argv)
    service: str = args.service
    threshold: float = args.threshold

    try:
        coverage = parse(args.report)
    except ReportError as error:
        print(f"coverage_report: error: {error}", file=sys.stderr)
        return 2

    markdown = render(coverage, service, threshold)
    if args.output is None:
        sys.stdout.write(markdown)
    else:
        output: Path = args.output
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")

    value = percent(coverage.total)
    if not coverage.total.valid:
        value = "0% (no lines were measured)"
    failed = coverage.below(threshold)
    verdict = "is below" if failed else "meets"
    print(
        f"coverage_report: {service}: line coverage {value} {verdict} "
        f"the threshold of {threshold:g}%",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
