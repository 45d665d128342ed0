"""The job's two steps: validate the object an event names, then load it, exactly once.

Idempotent: a marker `<STATE_PREFIX><key>@<etag>` records each version of an object that was
loaded, and is written last. A re-delivered or late event finds it and skips; a crash before it
is harmless, as loading again writes the same result. A partial object (another size or ETag
than the event announced, or a row cut short) fails validation and nothing is loaded.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import Settings
from .storage import Storage

log = logging.getLogger(__package__)


class Invalid(Exception):  # noqa: N818 (what the job reports: the input is invalid)
    """The object is missing, changed, incomplete or malformed: nothing is loaded."""


@dataclass(frozen=True)
class Validated:
    """What validate hands to load: the workflow's artifact between the two steps."""

    bucket: str
    key: str
    etag: str
    # True when this version of the object was loaded before: load then does nothing.
    skipped: bool = False
    columns: list[str] = field(default_factory=list)
    records: list[list[str]] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def save(self, path: Path) -> None:
        """Write the artifact, whole or not at all (a temporary file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Validated:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as error:
            raise Invalid(f"cannot read the validated artifact {path}: {error}") from None


def parse_csv(body: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the records of a CSV object; Invalid unless every row is whole."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Invalid(f"not UTF-8 text: {error.reason} at byte {error.start}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not all(name.strip() for name in header):
            raise Invalid("no header row, or a header with an empty column name")
        records = []
        for row in reader:
            if len(row) != len(header):
                raise Invalid(
                    f"line {reader.line_num} has {len(row)} fields where the header has "
                    f"{len(header)}: the object is truncated or malformed"
                )
            records.append(row)
    except csv.Error as error:
        raise Invalid(f"not CSV at line {reader.line_num}: {error}") from None
    return header, records


class Job:
    """The object named by `settings`, processed through `storage`."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    @property
    def source(self) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.key}"

    @property
    def result_key(self) -> str:
        return f"{self.settings.output_prefix}{self.settings.key}.json"

    def marker_key(self, etag: str) -> str:
        return f"{self.settings.state_prefix}{self.settings.key}@{etag}"

    @property
    def own_output(self) -> bool:
        """Whether the object is a result or a marker of this job (when both share a bucket, a
        notification for the whole bucket would otherwise start the job on its own output)."""
        settings = self.settings
        prefixes = [prefix for prefix in (settings.output_prefix, settings.state_prefix) if prefix]
        return settings.output_bucket == settings.bucket and settings.key.startswith(
            tuple(prefixes)
        )

    def processed(self, etag: str) -> bool:
        """Whether this version of the object (key and ETag) was loaded before."""
        return self.storage.etag(self.settings.output_bucket, self.marker_key(etag)) is not None

    def validate(self) -> Validated:
        """Read the object and check it is the whole one the event announced, and well-formed."""
        settings = self.settings
        if self.own_output:
            log.info("the job's own output", extra={"event": "skipped", "source": self.source})
            return Validated(settings.bucket, settings.key, settings.etag or "", skipped=True)
        etag = settings.etag or self.storage.etag(settings.bucket, settings.key)
        if etag is None:
            raise Invalid(f"{self.source} does not exist")
        if self.processed(etag):
            log.info("already processed", extra={"event": "skipped", "source": self.source})
            return Validated(settings.bucket, settings.key, etag, skipped=True)
        stored = self.storage.get(settings.bucket, settings.key)
        if stored is None:
            raise Invalid(f"{self.source} does not exist")
        if stored.etag != etag:
            raise Invalid(
                f"{self.source} changed since the event: ETag {stored.etag}, announced {etag}"
            )
        if settings.size is not None and len(stored.body) != settings.size:
            raise Invalid(
                f"{self.source} has {len(stored.body)} bytes, the event announced "
                f"{settings.size}: the object is incomplete"
            )
        columns, records = parse_csv(stored.body)
        log.info(
            "validated",
            extra={"event": "validated", "source": self.source, "etag": etag, "rows": len(records)},
        )
        return Validated(settings.bucket, settings.key, etag, columns=columns, records=records)

    def load(self, validated: Validated) -> bool:
        """Write the result, then the marker; False when this version was loaded before."""
        settings = self.settings
        if (validated.bucket, validated.key) != (settings.bucket, settings.key) or (
            settings.etag is not None and validated.etag != settings.etag
        ):
            raise Invalid(f"the validated artifact is of {validated.source}, not {self.source}")
        if validated.skipped or self.processed(validated.etag):
            log.info("already processed", extra={"event": "skipped", "source": self.source})
            return False
        rows = len(validated.records)
        result = {
            "source": validated.source,
            "etag": validated.etag,
            "rows": rows,
            "columns": validated.columns,
        }
        self.storage.put(settings.output_bucket, self.result_key, _json(result), "application/json")
        marker = {
            **result,
            "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "event_time": settings.event_time.isoformat() if settings.event_time else None,
        }
        self.storage.put(
            settings.output_bucket,
            self.marker_key(validated.etag),
            _json(marker),
            "application/json",
        )
        log.info(
            "loaded",
            extra={
                "event": "loaded",
                "source": self.source,
                "etag": validated.etag,
                "rows": rows,
                "result": f"s3://{settings.output_bucket}/{self.result_key}",
            },
        )
        return True


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()
