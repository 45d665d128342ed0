#!/usr/bin/env python3
"""The GitLab API calls CI makes: one merge request note kept up to date, one merge request.

    python3 scripts/ci/gitlab_api.py note --marker "<!-- coverage-report:api -->" report.md
    python3 scripts/ci/gitlab_api.py merge-request --source BRANCH --title T --description F
        [--labels a,b] [--token-variable NAME]
    python3 scripts/ci/gitlab_api.py release-due

`note` edits the note of the job's merge request whose body holds the marker, or creates one.
`merge-request` opens a merge request from BRANCH to the default branch, or updates the open
one. Both read CI_API_V4_URL and CI_PROJECT_ID; `note` also CI_MERGE_REQUEST_IID, and
`merge-request` and `release-due` CI_DEFAULT_BRANCH. `release-due` merges the approved merge
requests whose `release-at:` time has passed (scripts/ci/release_at.py). The job token may not
write these, so a project access token is read from a masked variable (GITLAB_API_TOKEN for
notes, PROMOTE_TOKEN for releases, TEMPLATE_UPDATE_TOKEN or --token-variable for merge
requests; scope api). Without it the command says so and exits 0. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class GitLab:
    def __init__(self, token: str) -> None:
        self.base = os.environ["CI_API_V4_URL"].rstrip("/")
        self.project = urllib.parse.quote(os.environ["CI_PROJECT_ID"], safe="")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[Any, str]:
        url = f"{self.base}/projects/{self.project}/{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("PRIVATE-TOKEN", self.token)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null"), response.headers.get("X-Next-Page", "")

    def each(self, path: str) -> list[Any]:
        """Every item of a paginated list."""
        items: list[Any] = []
        page = "1"
        while page:
            separator = "&" if "?" in path else "?"
            batch, page = self.call("GET", f"{path}{separator}per_page=100&page={page}")
            items += batch
        return items


def note(gitlab: GitLab, marker: str, body: str) -> str:
    notes = f"merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}/notes"
    if marker not in body:
        body = f"{marker}\n{body}"
    for existing in gitlab.each(notes):
        if marker in existing.get("body", "") and not existing.get("system", False):
            gitlab.call("PUT", f"{notes}/{existing['id']}", {"body": body})
            return f"updated note {existing['id']}"
    gitlab.call("POST", notes, {"body": body})
    return "created the note"


def merge_request(gitlab: GitLab, source: str, title: str, description: str, labels: str) -> str:
    query = urllib.parse.urlencode({"state": "opened", "source_branch": source})
    fields = {"title": title, "description": description, "labels": labels}
    for existing in gitlab.each(f"merge_requests?{query}"):
        gitlab.call("PUT", f"merge_requests/{existing['iid']}", fields)
        return f"updated merge request !{existing['iid']}"
    target = os.environ["CI_DEFAULT_BRANCH"]
    created, _ = gitlab.call(
        "POST", "merge_requests", {**fields, "source_branch": source, "target_branch": target}
    )
    return f"opened merge request !{created['iid']}"


def release_due(gitlab: GitLab, now: str | None) -> str:
    """Merge the approved merge requests to the default branch whose release-at time passed."""
    sys.path.insert(0, str(Path(__file__).parent))
    import release_at

    query = urllib.parse.urlencode(
        {"state": "opened", "target_branch": os.environ["CI_DEFAULT_BRANCH"]}
    )
    requests = []
    for request in gitlab.each(f"merge_requests?{query}"):
        approvals, _ = gitlab.call("GET", f"merge_requests/{request['iid']}/approvals")
        requests.append({**request, "approved": bool(approvals.get("approved"))})
    moment = release_at.parse(now) if now else datetime.now(UTC)
    released = []
    for iid in release_at.due(requests, moment):
        gitlab.call("PUT", f"merge_requests/{iid}/merge", {"squash": "true"})
        stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%MZ}"
        body = f"Released at {stamp}, as its release-at line asked."
        gitlab.call("POST", f"merge_requests/{iid}/notes", {"body": body})
        released.append(f"!{iid}")
    return f"released {', '.join(released)}" if released else "nothing due"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    note_parser = commands.add_parser("note", help="create or update the merge request note")
    note_parser.add_argument("--marker", required=True, help="hidden text naming the note")
    note_parser.add_argument("body", type=Path, help="Markdown file with the note's text")
    mr_parser = commands.add_parser("merge-request", help="open or update a merge request")
    mr_parser.add_argument("--source", required=True, help="source branch")
    mr_parser.add_argument("--title", required=True)
    mr_parser.add_argument("--description", type=Path, required=True, help="Markdown file")
    mr_parser.add_argument("--labels", default="", help="comma-separated labels")
    mr_parser.add_argument(
        "--token-variable", default="TEMPLATE_UPDATE_TOKEN", help="variable holding the token"
    )
    release_parser = commands.add_parser(
        "release-due", help="merge approved merge requests whose release-at time has passed"
    )
    release_parser.add_argument("--now", help="ISO time to use instead of the clock (tests)")
    args = parser.parse_args(argv)

    variable = {"note": "GITLAB_API_TOKEN", "release-due": "PROMOTE_TOKEN"}.get(
        args.command, getattr(args, "token_variable", "")
    )
    token = os.environ.get(variable, "")
    if not token:
        print(f"gitlab_api: {variable} is not set, skipped (see docs/operations.md)")
        return 0
    try:
        gitlab = GitLab(token)
        if args.command == "note":
            result = note(gitlab, args.marker, args.body.read_text(encoding="utf-8"))
        elif args.command == "release-due":
            result = release_due(gitlab, args.now)
        else:
            description = args.description.read_text(encoding="utf-8")
            result = merge_request(gitlab, args.source, args.title, description, args.labels)
    except KeyError as missing:
        print(f"gitlab_api: {missing.args[0]} is not set: run this in GitLab CI", file=sys.stderr)
        return 2
    print(f"gitlab_api: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
