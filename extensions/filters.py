"""Pure functions behind the template's Jinja filters and question validators.

Every validator returns an empty string when the answer is fine, or a one-line message that
starts with the question's name, which Copier shows to the user and refuses the answer with.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zoneinfo
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# GitHub users/orgs and GitLab groups (nested groups with "/").
OWNER = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)*$"
)
# OCI distribution spec: repository path components.
IMAGE_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
REGISTRY_HOST = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?\.)*[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?::[0-9]{1,5})?$"
)
REPO_URL = re.compile(r"^(?:https://[^\s/]+/\S+|ssh://git@[^\s/]+/\S+|git@[^\s:]+:\S+)$")
SLUG_MAX = 40


def slugify(text: str, max_length: int = SLUG_MAX) -> str:
    """Turn free text into a DNS-1123 label: lowercase ASCII, digits and dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = re.sub(r"^[0-9-]+", "", slug)[:max_length].rstrip("-")
    return slug or "service"


def quote(value: Any) -> str:
    """Render a value as a double-quoted string literal valid in YAML, JSON, TOML and Python."""
    return json.dumps(str(value), ensure_ascii=False)


def answers_file(scope: str, service: str) -> str:
    """Answers file of a Copier application: the platform's, or one per service at the root.

    Every answers file sits at the repository root, so each application's destination is the
    repository itself (Copier updates projects at the root of their git repository best).
    """
    return ".copier-answers.yml" if scope == "platform" else f".copier-answers.{service}.yml"


def check_text(value: Any, question: str, max_length: int = 200) -> str:
    text = str(value)
    if not text.strip():
        return f"{question}: must not be empty."
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return f"{question}: must be a single line without control characters."
    if len(text) > max_length:
        return f"{question}: must be at most {max_length} characters (got {len(text)})."
    return ""


def check_dns_label(value: Any, question: str, max_length: int = 63) -> str:
    text = str(value)
    if not DNS_LABEL.match(text):
        return (
            f"{question}: {text!r} is not a DNS-1123 label "
            "(lowercase letters, digits and '-', starting with a letter, not ending with '-')."
        )
    if len(text) > max_length:
        return f"{question}: {text!r} is longer than {max_length} characters."
    return ""


def check_pattern(value: Any, question: str, kind: str) -> str:
    patterns = {
        "owner": (
            OWNER,
            "a GitHub organisation/user or a GitLab group path, e.g. acme or acme/platform",
        ),
        "image_repository": (
            IMAGE_REPOSITORY,
            "a lowercase OCI repository path, e.g. acme/my-service",
        ),
        "registry_host": (
            REGISTRY_HOST,
            "a registry host name, optionally with a port, e.g. ghcr.io",
        ),
        "repo_url": (
            REPO_URL,
            "an https:// or ssh git URL, e.g. https://github.com/acme/my-service.git",
        ),
    }
    pattern, expected = patterns[kind]
    text = str(value)
    if not pattern.match(text):
        return f"{question}: {text!r} is not {expected}."
    return ""


def check_environments(value: Any, question: str = "environments") -> str:
    if not isinstance(value, list) or not value:
        return f"{question}: give a list with at least one environment, e.g. [dev, staging, prod]."
    seen: set[str] = set()
    for env in value:
        if not isinstance(env, str):
            return f"{question}: {env!r} is not a name; use DNS-1123 labels such as dev or prod."
        if message := check_dns_label(env, question, max_length=20):
            return message
        if env in seen:
            return f"{question}: {env!r} is listed twice."
        seen.add(env)
    return ""


def check_int_range(value: Any, question: str, low: int, high: int) -> str:
    if isinstance(value, bool):
        return f"{question}: must be a whole number from {low} to {high}."
    try:
        number = int(str(value).strip())
    except ValueError:
        return f"{question}: {value!r} is not a whole number from {low} to {high}."
    if not low <= number <= high:
        return f"{question}: {number} is outside {low}..{high}."
    return ""


# S3 bucket names (the rules S3 and MinIO share): 3-63 lowercase letters, digits, '.' and '-'.
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def check_bucket(value: Any, question: str) -> str:
    text = str(value)
    if not BUCKET.match(text) or ".." in text or re.match(r"^\d+\.\d+\.\d+\.\d+$", text):
        return (
            f"{question}: {text!r} is not an S3 bucket name (3 to 63 lowercase letters, digits,"
            " '.' and '-', starting and ending with a letter or digit)."
        )
    return ""


def check_object_key(value: Any, question: str, allow_empty: bool = False) -> str:
    """An object key or key prefix: relative, one line, at most 1024 bytes."""
    text = str(value)
    if not text:
        return "" if allow_empty else f"{question}: must not be empty."
    if text.startswith("/"):
        return f"{question}: {text!r} starts with '/'; object keys are relative, e.g. incoming/."
    if any(unicodedata.category(ch) == "Cc" for ch in text) or len(text.encode()) > 1024:
        return f"{question}: must be one line of at most 1024 bytes."
    return ""


def check_cron(value: Any, question: str) -> str:
    """A schedule Argo Events' calendar accepts: five cron fields, or a macro like @daily."""
    text = str(value).strip()
    if text in CRON_MACROS or text.startswith("@every "):
        return ""
    fields = text.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(field) for field in fields):
        return (
            f"{question}: {text!r} is not a cron schedule of five fields"
            " (minute hour day-of-month month day-of-week), e.g. '0 2 * * *', or @daily."
        )
    return ""


def check_timezone(value: Any, question: str) -> str:
    """An IANA time zone name, as the calendar EventSource loads it (Go's time.LoadLocation)."""
    text = str(value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{question}: {text!r} is not an IANA time zone, e.g. UTC or Europe/Paris."
    return ""


class FiltersExtension(Extension):
    """Registers the pure functions above as Jinja filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            {
                "slugify": slugify,
                "answers_file": answers_file,
                "quote": quote,
                "check_text": check_text,
                "check_dns_label": check_dns_label,
                "check_pattern": check_pattern,
                "check_environments": check_environments,
                "check_int_range": check_int_range,
                "check_bucket": check_bucket,
                "check_object_key": check_object_key,
                "check_cron": check_cron,
                "check_timezone": check_timezone,
            }
        )
