"""The storage the job reads and writes: S3 or an S3-compatible server (MinIO...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

# Error codes of a missing object: GetObject says NoSuchKey, HeadObject (no body) only 404.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    etag: str


class Storage(Protocol):
    """What the job needs of an object store; S3Storage, or a stand-in in tests."""

    def etag(self, bucket: str, key: str) -> str | None:
        """The object's ETag, without quotes; None when there is no such object."""
        ...

    def get(self, bucket: str, key: str) -> StoredObject | None:
        """The object's content and ETag; None when there is no such object."""
        ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


def temporary(error: Exception) -> bool:
    """A failure that running the step again may not meet: the storage could not be reached or
    did not answer in time (after the SDK's own retries), or answered 5xx or 429."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500 or status == 429
    return False


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


def _unquoted(etag: str) -> str:
    return etag.strip('"')


class S3Storage:
    """Storage over an S3 client (boto3's, or a stubbed one in tests)."""

    def __init__(self, client: Any) -> None:  # noqa: ANN401 (boto3 clients are untyped)
        self.client = client

    @classmethod
    def connect(cls, endpoint_url: str | None) -> S3Storage:
        """A client of AWS S3, or of the S3-compatible server at `endpoint_url`."""
        config = Config(
            # Checksums only where S3 requires them: S3-compatible servers differ in the rest.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 5},
            # S3-compatible servers are addressed by host name or IP: the bucket goes in the path.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        return cls(boto3.client("s3", endpoint_url=endpoint_url, config=config))

    def etag(self, bucket: str, key: str) -> str | None:
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return _unquoted(head["ETag"])

    def get(self, bucket: str, key: str) -> StoredObject | None:
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        with response["Body"] as body:
            return StoredObject(body=body.read(), etag=_unquoted(response["ETag"]))

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
