"""The job contract every language honours, checked the same way for each (tests/jobs/).

A job processes one object of S3-compatible storage, named by the event that started it:

    <job> validate ARTIFACT   read the object, check it is whole and well-formed, write the
                              validated records to the ARTIFACT file (the workflow's artifact)
    <job> load ARTIFACT       load the validated records: write the result and the marker
    <job> run                 both steps in one process (local runs and tests)

Environment:
    EVENT_BUCKET, EVENT_KEY   the object (required: exit 2 naming the variable when missing)
    EVENT_ETAG, EVENT_SIZE    what the event announced (optional: when absent, the object's own)
    EVENT_TIME                when the event happened (RFC 3339, optional)
    EVENT_KEY_ENCODING        "url": EVENT_KEY is URL-encoded as bucket notifications send it
                              (optional; the s3 trigger's workflow steps set it)
    OUTPUT_BUCKET             where results go (default: EVENT_BUCKET)
    OUTPUT_PREFIX             result key prefix (default "loaded/"): <prefix><key>.json
    STATE_PREFIX              marker key prefix (default ".processed/"): <prefix><key>@<etag>
    S3_ENDPOINT_URL           S3-compatible endpoint (MinIO...); AWS_REGION and credentials
                              come from the SDK's usual chain (env, web identity)

Input: CSV with a header row. Valid when every row has the header's number of fields and the
object's size and ETag equal the event's. Result: JSON {"source", "etag", "rows", "columns"}.
Exit codes: 0 processed or skipped (already processed: same key and ETag), 1 invalid input or a
storage refusal that running again cannot change (access denied...; nothing loaded; one log line
says why), 2 configuration error, 3 temporary storage failure (connection refused, timeout, 5xx
or 429 once the SDK's own retries are spent; nothing loaded): the only code the WorkflowTemplate
retries. Logs: JSON lines on stdout, as the services write them, with "event" one of validated,
loaded, skipped, invalid, failed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    # No instance metadata lookups: the tests run offline.
    "AWS_EC2_METADATA_DISABLED": "true",
}
BUCKET = "partner-drops"
GOOD = b"id,amount\n1,10\n2,20\n3,30\n"
# A row cut short: what a half-written or truncated upload leaves.
TRUNCATED = b"id,amount\n1,10\n2,20\n3"

Runner = Callable[[list[str], dict[str, str]], "subprocess.CompletedProcess[str]"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class S3:
    """A real S3-compatible server on loopback (moto's server) and a client of it."""

    endpoint: str
    client: Any

    @property
    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "S3_ENDPOINT_URL": self.endpoint}

    def put(self, key: str, body: bytes, bucket: str = BUCKET) -> dict[str, str]:
        """Upload and return the event Argo Events would deliver for it."""
        self.client.put_object(Bucket=bucket, Key=key, Body=body)
        head = self.client.head_object(Bucket=bucket, Key=key)
        return {
            "EVENT_BUCKET": bucket,
            "EVENT_KEY": key,
            "EVENT_ETAG": head["ETag"].strip('"'),
            "EVENT_SIZE": str(head["ContentLength"]),
            "EVENT_TIME": "2026-12-01T02:00:00Z",
        }

    def listing(self, bucket: str = BUCKET) -> set[str]:
        listed = self.client.list_objects_v2(Bucket=bucket)
        return {item["Key"] for item in listed.get("Contents", [])}

    def read(self, key: str, bucket: str = BUCKET) -> bytes:
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


@contextmanager
def s3_server() -> Iterator[S3]:
    """Start moto's S3 server on a free loopback port; stop it afterwards."""
    import boto3  # type: ignore[import-untyped]

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=CREDENTIALS["AWS_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3(endpoint, client)
    finally:
        process.terminate()
        process.wait(timeout=10)


def log_events(stdout: str) -> list[str]:
    """The "event" field of every JSON log line."""
    events = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            events.append(str(json.loads(line).get("event", "")))
    return events


def check_processes_once(run: Runner, s3: S3, key: str = "incoming/acme/day-1.csv") -> None:
    """Upload, run: the result is loaded; the same event again: skipped, nothing rewritten."""
    event = s3.put(key, GOOD)
    env = {**s3.env, **event}
    first = run(["run"], env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "loaded" in log_events(first.stdout), first.stdout
    result = json.loads(s3.read(f"loaded/{key}.json"))
    assert result == {
        "source": f"s3://{BUCKET}/{key}",
        "etag": event["EVENT_ETAG"],
        "rows": 3,
        "columns": ["id", "amount"],
    }
    assert f".processed/{key}@{event['EVENT_ETAG']}" in s3.listing()

    s3.client.delete_object(Bucket=BUCKET, Key=f"loaded/{key}.json")
    again = run(["run"], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skipped" in log_events(again.stdout), again.stdout
    assert f"loaded/{key}.json" not in s3.listing(), "a re-delivered event loaded again"


def check_new_version_is_processed(
    run: Runner, s3: S3, key: str = "incoming/acme/day-2.csv"
) -> None:
    """The same key with new content (a new ETag) is new work, not a duplicate."""
    first = s3.put(key, GOOD)
    assert run(["run"], {**s3.env, **first}).returncode == 0
    second = s3.put(key, GOOD + b"4,40\n")
    done = run(["run"], {**s3.env, **second})
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(s3.read(f"loaded/{key}.json"))["rows"] == 4


def check_event_without_etag_uses_the_object(
    run: Runner, s3: S3, key: str = "incoming/acme/nightly.csv"
) -> None:
    """Calendar and webhook events may name only the object: its own ETag and size are used."""
    event = s3.put(key, GOOD)
    env = {**s3.env, "EVENT_BUCKET": BUCKET, "EVENT_KEY": key}
    done = run(["run"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(s3.read(f"loaded/{key}.json"))["etag"] == event["EVENT_ETAG"]


def check_rejects_partial_objects(run: Runner, s3: S3) -> None:
    """A truncated object, or one smaller than its event says, fails and loads nothing."""
    cut = s3.put("incoming/acme/cut.csv", TRUNCATED)
    failed = run(["run"], {**s3.env, **cut})
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "invalid" in log_events(failed.stdout), failed.stdout

    whole = s3.put("incoming/acme/short.csv", GOOD)
    s3.client.put_object(Bucket=BUCKET, Key="incoming/acme/short.csv", Body=GOOD[:-6])
    mismatch = run(["run"], {**s3.env, **whole})
    assert mismatch.returncode == 1, mismatch.stdout + mismatch.stderr
    assert "invalid" in log_events(mismatch.stdout), mismatch.stdout
    written = [key for key in s3.listing() if key.startswith(("loaded/", ".processed/"))]
    assert not [key for key in written if "cut.csv" in key or "short.csv" in key], written


def check_steps_pass_an_artifact(run: Runner, s3: S3, tmp_path: Path) -> None:
    """The workflow's two steps: validate writes the artifact, load reads it."""
    key = "incoming/acme/steps.csv"
    env = {**s3.env, **s3.put(key, GOOD)}
    artifact = tmp_path / "validated"
    validated = run(["validate", str(artifact)], env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert artifact.is_file()
    assert artifact.stat().st_size > 0
    assert f"loaded/{key}.json" not in s3.listing(), "validate must not load"
    loaded = run(["load", str(artifact)], env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert json.loads(s3.read(f"loaded/{key}.json"))["rows"] == 3


def check_configuration_errors_name_the_variable(run: Runner, s3: S3) -> None:
    """A missing EVENT_KEY: exit 2 and a message naming it."""
    failed = run(["run"], {**s3.env, "EVENT_BUCKET": BUCKET})
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "EVENT_KEY" in failed.stdout + failed.stderr


def check_url_encoded_key(run: Runner, s3: S3) -> None:
    """S3 and MinIO notifications URL-encode the key (form encoding; MinIO writes "/" as %2F):
    with EVENT_KEY_ENCODING=url the job processes the object the encoded key names."""
    key = "incoming/acme/red flower+1.csv"
    event = s3.put(key, GOOD)
    encoded = urllib.parse.quote_plus(key)
    env = {**s3.env, **event, "EVENT_KEY": encoded, "EVENT_KEY_ENCODING": "url"}
    done = run(["run"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(s3.read(f"loaded/{key}.json"))["source"] == f"s3://{BUCKET}/{key}"


def check_unreachable_storage_is_temporary(run: Runner, s3: S3) -> None:
    """Storage that refuses connections: exit 3 (the workflow retries it), a "failed" log line,
    nothing written (the event's object stays as it was)."""
    key = "incoming/acme/unreachable.csv"
    event = s3.put(key, GOOD)
    before = s3.listing()
    closed = f"http://127.0.0.1:{free_port()}"
    env = {**s3.env, **event, "S3_ENDPOINT_URL": closed}
    failed = run(["run"], env)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "failed" in log_events(failed.stdout), failed.stdout
    assert s3.listing() == before


ALL_CHECKS = (
    check_processes_once,
    check_new_version_is_processed,
    check_event_without_etag_uses_the_object,
    check_rejects_partial_objects,
    check_configuration_errors_name_the_variable,
    check_url_encoded_key,
    check_unreachable_storage_is_temporary,
)
