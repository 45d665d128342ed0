#!/usr/bin/env python3
"""Vulnerability gate: fail on fixable critical or high findings that no valid waiver covers.

    grype sbom:image.spdx.json --output json >grype.json
    python3 scripts/ci/scan_gate.py grype.json [--waivers .vulnerability-waivers.toml]

A finding blocks when its severity is Critical or High (GATE_SEVERITIES to change) and a fixed
version exists: upgrading is possible, so shipping it is a choice. Unfixed findings are listed
but do not block. A waiver in the user-owned waivers file lets one finding through:

    [[waiver]]
    id = "CVE-2024-12345"            # the vulnerability (CVE or GHSA), as the scanner names it
    package = "openssl"              # optional: only in this package
    reason = "Not reachable: we never parse certificates from users"
    expires = 2026-03-31             # a TOML date; the waiver stops counting after it

Every waiver needs a reason and an expiry. An expired waiver, or one without a reason or an
expiry, fails the gate by itself, so nothing is waived for ever by accident. Exit codes: 0 pass,
1 blocking findings or a bad waiver, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

DEFAULT_WAIVERS = Path(".vulnerability-waivers.toml")
DEFAULT_SEVERITIES = ("Critical", "High")


@dataclass(frozen=True)
class Waiver:
    id: str
    package: str | None
    reason: str
    expires: date

    def covers(self, finding: Finding) -> bool:
        ids = {finding.id, *finding.aliases}
        return self.id in ids and self.package in (None, finding.package)


@dataclass(frozen=True)
class Finding:
    id: str
    aliases: tuple[str, ...]
    severity: str
    package: str
    version: str
    fixed_in: tuple[str, ...]

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fix yet"
        return f"{self.severity:<8} {self.id:<22} {self.package} {self.version} ({fix})"


class InputError(Exception):
    """The scanner output or the waivers file cannot be read."""


def load_waivers(path: Path, today: date) -> tuple[list[Waiver], list[str]]:
    """Valid waivers, and the problems of the others (each one fails the gate)."""
    if not path.is_file():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML: {error}") from error
    waivers: list[Waiver] = []
    problems: list[str] = []
    for number, entry in enumerate(data.get("waiver", []), start=1):
        where = f"{path} waiver {number} ({entry.get('id', 'no id')})"
        reason = str(entry.get("reason", "")).strip()
        expires = entry.get("expires")
        if not entry.get("id"):
            problems.append(f"{where}: needs an id (CVE-... or GHSA-...)")
        elif not reason:
            problems.append(f"{where}: needs a reason")
        elif not isinstance(expires, date) or isinstance(expires, datetime):
            problems.append(f"{where}: needs an expiry date, e.g. expires = 2030-01-31")
        elif expires < today:
            problems.append(
                f"{where}: expired on {expires.isoformat()}; fix it or renew the waiver"
            )
        else:
            package = entry.get("package")
            waivers.append(
                Waiver(str(entry["id"]), str(package) if package else None, reason, expires)
            )
    return waivers, problems


def load_findings(path: Path) -> list[Finding]:
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a grype JSON report: {error}") from error
    if "matches" not in report:
        raise InputError(f"{path}: not a grype JSON report (no matches)")
    findings = []
    for match in report["matches"] or []:
        vulnerability = match.get("vulnerability", {})
        artifact = match.get("artifact", {})
        fix = vulnerability.get("fix") or {}
        fixed_in = tuple(fix.get("versions") or ()) if fix.get("state") == "fixed" else ()
        aliases = tuple(
            str(related.get("id")) for related in match.get("relatedVulnerabilities") or ()
        )
        findings.append(
            Finding(
                id=str(vulnerability.get("id", "?")),
                aliases=aliases,
                severity=str(vulnerability.get("severity", "Unknown")),
                package=str(artifact.get("name", "?")),
                version=str(artifact.get("version", "?")),
                fixed_in=fixed_in,
            )
        )
    return findings


def gate(
    findings: list[Finding], waivers: list[Waiver], severities: tuple[str, ...]
) -> tuple[list[Finding], list[tuple[Finding, Waiver]]]:
    """Blocking findings, and the waived ones with their waiver."""
    blocking: list[Finding] = []
    waived: list[tuple[Finding, Waiver]] = []
    wanted = {severity.lower() for severity in severities}
    for finding in findings:
        if finding.severity.lower() not in wanted or not finding.fixed_in:
            continue
        waiver = next((w for w in waivers if w.covers(finding)), None)
        if waiver is None:
            blocking.append(finding)
        else:
            waived.append((finding, waiver))
    return blocking, waived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="grype --output json report")
    parser.add_argument("--waivers", type=Path, default=DEFAULT_WAIVERS, help="waivers file")
    parser.add_argument("--today", type=date.fromisoformat, help="date to check expiries on")
    args = parser.parse_args(argv)
    severities = tuple(
        part.strip()
        for part in os.environ.get("GATE_SEVERITIES", ",".join(DEFAULT_SEVERITIES)).split(",")
        if part.strip()
    )
    today = args.today or datetime.now(UTC).date()
    try:
        waivers, problems = load_waivers(args.waivers, today)
        findings = load_findings(args.report)
    except InputError as error:
        print(f"scan-gate: {error}", file=sys.stderr)
        return 2
    blocking, waived = gate(findings, waivers, severities)
    print(f"scan-gate: {len(findings)} findings; gate on fixable {'/'.join(severities)}")
    for finding, waiver in waived:
        print(f"  waived   {finding.line()}: {waiver.reason} (until {waiver.expires})")
    for finding in blocking:
        print(f"  BLOCKING {finding.line()}")
    for problem in problems:
        print(f"  WAIVER   {problem}")
    if blocking or problems:
        print(
            "scan-gate: failed. Upgrade the package (base image or lockfile), or add a waiver with"
            f" a reason and an expiry to {args.waivers} (docs/supply-chain.md)",
            file=sys.stderr,
        )
        return 1
    print("scan-gate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
