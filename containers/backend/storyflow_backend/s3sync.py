"""The database's object in a versioned S3 bucket: list versions, download one, upload a snapshot."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

SHA256_METADATA = "sha256"
CONTENT_TYPE = "application/vnd.sqlite3"


def make_s3_client() -> Any:
    """An S3 client from the environment (AWS_ENDPOINT_URL is honoured by boto3 itself)."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
    return boto3.client("s3", config=config)


@dataclass(frozen=True)
class DbVersion:
    version_id: str
    size: int
    is_delete_marker: bool = False


class IntegrityMismatch(Exception):
    """The downloaded bytes do not match the checksum recorded when the snapshot was uploaded."""


class SnapshotStore:
    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def iter_versions(self) -> Iterator[DbVersion]:
        """Versions of the key, newest first, in S3's own order (LastModified only has 1 s resolution).

        When the key's current state is a delete marker, that marker comes first: the database was
        deleted on purpose and the caller should start empty. Older delete markers are not reported.
        """
        paginator = self._s3.get_paginator("list_object_versions")
        first = True
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key):
            if first:
                first = False
                for marker in page.get("DeleteMarkers", []):
                    if marker["Key"] == self.key and marker.get("IsLatest"):
                        yield DbVersion(str(marker["VersionId"]), 0, is_delete_marker=True)
            for version in page.get("Versions", []):
                if version["Key"] == self.key:
                    yield DbVersion(str(version["VersionId"]), int(version.get("Size", 0)))

    def download(self, version_id: str, dest: Path) -> None:
        """Write one version to ``dest``; raise IntegrityMismatch if its recorded sha256 disagrees."""
        response = self._s3.get_object(Bucket=self.bucket, Key=self.key, VersionId=version_id)
        expected = (response.get("Metadata") or {}).get(SHA256_METADATA)
        digest = hashlib.sha256()
        body = response["Body"]
        try:
            with dest.open("wb") as handle:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    digest.update(chunk)
                    handle.write(chunk)
        finally:
            body.close()
        if expected and expected != digest.hexdigest():
            raise IntegrityMismatch(
                f"sha256 mismatch (recorded {expected[:12]}…, got {digest.hexdigest()[:12]}…)"
            )

    def upload(self, path: Path, sha256: str) -> str | None:
        """Upload ``path`` as a new version of the key; return its VersionId (None: bucket not versioned)."""
        with path.open("rb") as handle:
            response = self._s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=handle,
                ContentType=CONTENT_TYPE,
                Metadata={SHA256_METADATA: sha256},
            )
        version_id = response.get("VersionId")
        return None if version_id in (None, "null") else str(version_id)
