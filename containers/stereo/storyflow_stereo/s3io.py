"""S3 transfers with boto3 (it honours ``AWS_ENDPOINT_URL``, so the local cloud works unchanged)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from storyflow_stereo.errors import InputNotFound, InvalidRequest, StorageError

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def parse_s3_uri(uri: Any, field: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); anything else is an :class:`InvalidRequest` naming ``field``."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidRequest(f"{field} must be an s3://bucket/key URI, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise InvalidRequest(f"{field} must name a bucket and an object key, got {uri!r}")
    return bucket, key


def make_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


def download(client: Any, uri: str, dest: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "input_uri")
    try:
        client.download_file(bucket, key, str(dest))
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            raise InputNotFound(f"input not found: {uri} ({code})") from exc
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"reading {uri} failed: {exc}") from exc


def upload(client: Any, src: Path, uri: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "output_uri")
    try:
        client.upload_file(str(src), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"writing {uri} failed: {exc}") from exc
