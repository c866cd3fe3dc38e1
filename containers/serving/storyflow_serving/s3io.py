"""S3 transfers with typed errors (boto3 honours ``AWS_ENDPOINT_URL``, so the local cloud works unchanged)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from storyflow_serving.errors import InputNotFound, InvalidRequest, StorageError

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def parse_s3_uri(uri: Any, field: str = "uri") -> tuple[str, str]:
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


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def download(client: Any, uri: str, dest: Path) -> Path:
    """Fetch ``uri`` to ``dest``: :class:`InputNotFound` if it does not exist, else :class:`StorageError`."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "input_uri")
    try:
        client.download_file(bucket, key, str(dest))
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise InputNotFound(f"input not found: {uri} ({_code(exc)})") from exc
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    return dest


#: The tag of intermediates: the buckets' lifecycle rule expires them after a day.
INTERMEDIATE_TAGGING = "storyflow-lifecycle=expire-intermediate"


def upload(
    client: Any,
    src: Path,
    uri: str,
    content_type: str = "application/octet-stream",
    tagging: str | None = None,
) -> None:
    """Write `src` to `uri`; `tagging` (URL-query form: INTERMEDIATE_TAGGING) tags it in the same call."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "output_uri")
    extra = {"ContentType": content_type, **({"Tagging": tagging} if tagging else {})}
    try:
        client.upload_file(str(src), bucket, key, ExtraArgs=extra)
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:  # upload_file wraps ClientError
        raise StorageError(f"writing {uri} failed: {exc}") from exc


def get_bytes(client: Any, uri: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "input_uri")
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise InputNotFound(f"input not found: {uri} ({_code(exc)})") from exc
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    return body


def put_bytes(client: Any, uri: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri, "output_uri")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"writing {uri} failed: {exc}") from exc


def get_json(client: Any, uri: str) -> Any:
    raw = get_bytes(client, uri)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{uri} is not valid JSON: {exc}") from exc


def put_json(client: Any, uri: str, value: Any) -> None:
    put_bytes(client, uri, json.dumps(value, separators=(",", ":")).encode(), "application/json")
