#!/usr/bin/env python3
"""Scheduled releases: which approved promotion requests carry a release time that has passed.

    gh pr list --json number,body,reviewDecision | python3 scripts/ci/release_at.py due
    python3 scripts/ci/release_at.py parse "release-at: 2030-01-31T09:00Z"

A pull (or merge) request asks to be released at a set time with one line in its description:

    release-at: 2030-01-31T09:00Z          (UTC)
    release-at: 2030-01-31T10:00+01:00     (any offset)

The time must name its zone (Z or an offset): "09:00" alone means different moments to
different people. `due` reads a JSON list of requests on stdin (number, body and, for GitHub,
reviewDecision; GitLab's approved flag also counts) and prints the numbers that are approved and
due, one a line; requests without a release time are left alone. A malformed line is reported on
stderr and never released. The scheduled workflow re-checks every run, so a moved time or a
withdrawn approval is respected; nothing relies on one long timer.

Only promotion requests are released: their source branch is promote/<service>-<env>-<tag>
(headRefName on GitHub, source_branch on GitLab), the branch the promotion jobs push. Any other
request with a release-at line is reported and left alone, however approved.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

LINE = re.compile(r"^\s*release-at:\s*(?P<value>\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
STAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})$"
)


class ReleaseTimeError(ValueError):
    """A release-at line that cannot be read; the message says why."""


def parse(value: str) -> datetime:
    """The moment a `release-at:` value names, in UTC."""
    match = STAMP.match(value.strip())
    if not match:
        raise ReleaseTimeError(
            f"release-at: {value!r} is not a time like 2030-01-31T09:00Z or 2030-01-31T10:00+01:00"
        )
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}{zone}")
    except ValueError as error:
        raise ReleaseTimeError(f"release-at: {value!r}: {error}") from error
    return moment.astimezone(UTC)


def release_time(body: str) -> datetime | None:
    """The release time a description asks for, None when it asks for none."""
    values = {match["value"] for match in LINE.finditer(body or "")}
    if not values:
        return None
    if len(values) > 1:
        raise ReleaseTimeError(f"release-at: several different times: {', '.join(sorted(values))}")
    return parse(values.pop())


def approved(request: dict[str, Any]) -> bool:
    return request.get("reviewDecision") == "APPROVED" or request.get("approved") is True


PROMOTION_BRANCH = "promote/"


def is_promotion(request: dict[str, Any]) -> bool:
    """A request the promotion jobs opened: its source branch is promote/..."""
    branch = str(request.get("headRefName") or request.get("source_branch") or "")
    return branch.startswith(PROMOTION_BRANCH)


def due(requests: list[dict[str, Any]], now: datetime) -> list[int]:
    numbers = []
    for request in requests:
        number = int(request.get("number", request.get("iid", 0)))
        if not is_promotion(request):
            if LINE.search(str(request.get("body") or request.get("description") or "")):
                print(
                    f"#{number}: not a promotion request (branch {PROMOTION_BRANCH}...);"
                    " its release-at line is ignored",
                    file=sys.stderr,
                )
            continue
        try:
            moment = release_time(str(request.get("body") or request.get("description") or ""))
        except ReleaseTimeError as error:
            print(f"#{number}: {error}; not released", file=sys.stderr)
            continue
        if moment is None:
            continue
        if not approved(request):
            print(
                f"#{number}: release at {moment:%Y-%m-%dT%H:%MZ} waits for approval",
                file=sys.stderr,
            )
        elif moment <= now:
            numbers.append(number)
        else:
            print(f"#{number}: releases at {moment:%Y-%m-%dT%H:%MZ}", file=sys.stderr)
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    due_parser = commands.add_parser("due", help="numbers of the requests to release now")
    due_parser.add_argument("--now", help="ISO time to use instead of the clock (tests)")
    parse_parser = commands.add_parser("parse", help="print the UTC time of a release-at line")
    parse_parser.add_argument("line")
    args = parser.parse_args(argv)

    if args.command == "parse":
        try:
            moment = release_time(args.line)
        except ReleaseTimeError as error:
            print(error, file=sys.stderr)
            return 2
        print(moment.isoformat() if moment else "no release-at line")
        return 0
    now = parse(args.now) if args.now else datetime.now(UTC)
    for number in due(json.load(sys.stdin), now):
        print(number)
    return 0


if __name__ == "__main__":
    sys.exit(main())
