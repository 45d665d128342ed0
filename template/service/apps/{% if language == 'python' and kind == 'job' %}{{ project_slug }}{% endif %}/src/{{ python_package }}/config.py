"""Settings read from the environment once, at start-up: the event, and where results go."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

# S3 bucket names: 3 to 63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAX_KEY_BYTES = 1024


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class Settings:
    # The object the event names.
    bucket: str
    key: str
    # What the event announced; when absent (calendar, webhook), the object's own are used.
    etag: str | None = None
    size: int | None = None
    event_time: datetime | None = None
    # Where results (<output_prefix><key>.json) and markers (<state_prefix><key>@<etag>) go;
    # from_env defaults the output bucket to the event's.
    output_bucket: str = ""
    output_prefix: str = "loaded/"
    state_prefix: str = ".processed/"
    # S3-compatible endpoint (MinIO...); None: AWS S3. Region and credentials come from the
    # SDK's usual chain (AWS_REGION, AWS_ACCESS_KEY_ID..., web identity).
    endpoint_url: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read EVENT_*, OUTPUT_*, STATE_PREFIX, S3_ENDPOINT_URL and LOG_LEVEL.

        An empty variable counts as unset: an event source may pass a field it does not have.
        EVENT_KEY_ENCODING=url decodes EVENT_KEY as S3 and MinIO bucket notifications encode it
        (form encoding: "+" for a space, MinIO writes "/" as %2F).
        """

        def get(name: str) -> str | None:
            return environ.get(name) or None

        bucket = _bucket("EVENT_BUCKET", get("EVENT_BUCKET"))
        return cls(
            bucket=bucket,
            key=_key(get("EVENT_KEY"), _key_encoding(get("EVENT_KEY_ENCODING"))),
            etag=_etag(get("EVENT_ETAG")),
            size=_size(get("EVENT_SIZE")),
            event_time=_time(get("EVENT_TIME")),
            output_bucket=_bucket("OUTPUT_BUCKET", get("OUTPUT_BUCKET") or bucket),
            output_prefix=environ.get("OUTPUT_PREFIX", cls.output_prefix),
            state_prefix=environ.get("STATE_PREFIX", cls.state_prefix),
            endpoint_url=_endpoint(get("S3_ENDPOINT_URL")),
            log_level=_log_level(environ.get("LOG_LEVEL", cls.log_level)),
        )


def _bucket(name: str, value: str | None) -> str:
    if value is None:
        raise ConfigError(f"{name} is required: the bucket of the object to process")
    if not _BUCKET.fullmatch(value):
        raise ConfigError(f"{name} must be an S3 bucket name, got {value!r}")
    return value


def _key_encoding(value: str | None) -> str:
    if value not in {None, "none", "url"}:
        raise ConfigError(f"EVENT_KEY_ENCODING must be url or none, got {value!r}")
    return value or "none"


def _key(value: str | None, encoding: str = "none") -> str:
    if value is None:
        raise ConfigError("EVENT_KEY is required: the key of the object to process")
    if encoding == "url":
        value = unquote_plus(value)
    if len(value.encode()) > _MAX_KEY_BYTES:
        raise ConfigError(f"EVENT_KEY must be at most {_MAX_KEY_BYTES} bytes long")
    return value


def _etag(value: str | None) -> str | None:
    # S3 quotes ETags; events and users may or may not.
    etag = value.strip().strip('"') if value else None
    if value is not None and not etag:
        raise ConfigError(f"EVENT_ETAG must be an ETag, got {value!r}")
    return etag


def _size(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdecimal():
        raise ConfigError(f"EVENT_SIZE must be a number of bytes >= 0, got {value!r}")
    return int(value)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"EVENT_TIME must be an RFC 3339 time with an offset, got {value!r}")
    return moment


def _endpoint(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ConfigError(f"S3_ENDPOINT_URL must be an http(s) URL, got {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be a level name such as INFO or DEBUG, got {value!r}")
    return level
