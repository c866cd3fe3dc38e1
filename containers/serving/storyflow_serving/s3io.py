"""S3 transfers with typed errors (boto3 honours ``AWS_ENDPOINT_URL``, so the local cloud works unchanged)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from storyflow_serving.errors import InputNotFound, InvalidRequest, StorageError

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}

#: Below this size an object moves in one request (s3transfer's own multipart threshold); above it,
#: s3transfer's parallel ranged GETs and multipart uploads move it.
SINGLE_REQUEST_BYTES = 8 * 1024 * 1024


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
        _fetch(client, bucket, key, dest)
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise InputNotFound(f"input not found: {uri} ({_code(exc)})") from exc
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"reading {uri} failed: {exc}") from exc
    return dest


def _fetch(client: Any, bucket: str, key: str, dest: Path) -> None:
    """One GET of the object's first SINGLE_REQUEST_BYTES: an object no larger (a segment) is then whole,
    in one request, where `download_file` makes two (HEAD, GET) on a new thread pool; a larger one is
    fetched by `download_file`, and the first GET's body is closed unread. An empty object has no byte 0
    (S3 answers InvalidRange): `download_file` fetches it."""
    from botocore.exceptions import ClientError

    try:
        answer = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SINGLE_REQUEST_BYTES - 1}")
    except ClientError as exc:
        if _code(exc) != "InvalidRange":
            raise
        client.download_file(bucket, key, str(dest))
        return
    body = answer["Body"]
    # "bytes 0-99/100"; without a ContentRange the store sent the whole object (a 200)
    total = int(str(answer.get("ContentRange") or f"/{answer['ContentLength']}").rpartition("/")[2])
    if total > SINGLE_REQUEST_BYTES:
        body.close()
        client.download_file(bucket, key, str(dest))
        return
    with body, dest.open("wb") as handle:
        shutil.copyfileobj(body, handle, 1024 * 1024)


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
        if src.stat().st_size <= SINGLE_REQUEST_BYTES:  # one PutObject, without s3transfer's thread pool
            with src.open("rb") as body:
                client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        else:
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
