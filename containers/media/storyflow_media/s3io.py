"""The few S3/DynamoDB calls the media commands make (boto3 honours AWS_ENDPOINT_URL by itself)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storyflow_media.errors import MissingObject

LIFECYCLE_TAG = ("storyflow-lifecycle", "expire-intermediate")
MP4 = "video/mp4"
M4A = "audio/mp4"
WORKERS = 8
#: Below this size a file moves in one request (s3transfer's own multipart threshold); above it, s3transfer's
#: parallel ranged GETs and multipart uploads move it.
SINGLE_REQUEST_BYTES = 8 * 1024 * 1024
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=WORKERS * 2)

T = TypeVar("T")
R = TypeVar("R")


def s3_client() -> Any:
    """The run's S3 client, built once (a command's work and its result.json share it: ~50 ms a client)."""
    return _client("s3", *_environment())


def _environment() -> tuple[str | None, ...]:
    """What a client is built from in a task's environment: the cache key, so a changed one gets its own."""
    return tuple(
        os.environ.get(name)
        for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID")
    )


@functools.lru_cache(maxsize=8)
def _client(service: str, *environment: str | None) -> Any:
    build: Any = boto3.client  # the stubs type it per literal service name
    return build(service, config=_CONFIG)


def quick_s3_client() -> Any:
    """For the last write after SIGTERM: short timeouts, one retry (ECS kills the task 30 s after)."""
    return boto3.client(
        "s3",
        config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}),
    )


def dynamodb_client() -> Any:
    return _client("dynamodb", *_environment())


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def download(s3: Any, bucket: str, key: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fetch(s3, bucket, key, path)
    except ClientError as exc:
        if _missing(exc):
            raise MissingObject(f"{uri(bucket, key)} does not exist") from None
        raise
    return path


def _fetch(s3: Any, bucket: str, key: str, path: Path) -> None:
    """One GET of the object's first SINGLE_REQUEST_BYTES: an object no larger (a segment) is then whole, in
    one request, where `download_file` makes two (HEAD, GET) on a new thread pool; a larger one (a source)
    is fetched by `download_file`, the first GET's body closed unread. An empty object has no byte 0 (S3
    answers InvalidRange): `download_file` fetches it."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SINGLE_REQUEST_BYTES - 1}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidRange":
            raise
        s3.download_file(bucket, key, str(path))
        return
    body = answer["Body"]
    # "bytes 0-99/100"; without a ContentRange the store sent the whole object (a 200)
    total = int(str(answer.get("ContentRange") or f"/{answer['ContentLength']}").rpartition("/")[2])
    if total > SINGLE_REQUEST_BYTES:
        body.close()
        s3.download_file(bucket, key, str(path))
        return
    with body, path.open("wb") as handle:
        shutil.copyfileobj(body, handle, 1024 * 1024)


def upload(
    s3: Any, path: Path, bucket: str, key: str, content_type: str = MP4, *, intermediate: bool = False
) -> None:
    """Write a file; `intermediate` tags it for the lifecycle rule in the same call (multipart ones too)."""
    extra = {"ContentType": content_type}
    if intermediate:
        extra["Tagging"] = "=".join(LIFECYCLE_TAG)
    if path.stat().st_size <= SINGLE_REQUEST_BYTES:  # one PutObject, without s3transfer's thread pool
        with path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    else:
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)


def get_json(s3: Any, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _missing(exc):
            raise MissingObject(f"{uri(bucket, key)} does not exist") from None
        raise
    return json.loads(body)


def put_json(s3: Any, bucket: str, key: str, value: Any, *, intermediate: bool = False) -> None:
    """Write `value` as JSON; `intermediate` tags it for the lifecycle rule in the same call."""
    body = json.dumps(value, separators=(",", ":")).encode()
    tagging = {"Tagging": "=".join(LIFECYCLE_TAG)} if intermediate else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **tagging)


def set_progress_total(dynamodb: Any, table: str, job_id: str, total: int) -> None:
    """SET progress.total (and updated_at) on an existing job; creates `progress` if the item has none."""
    now = {"N": repr(round(time.time(), 3))}
    key = {"job_id": {"S": job_id}}
    try:
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET progress.#t = :t, updated_at = :now",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeNames={"#t": "total"},
            ExpressionAttributeValues={":t": {"N": str(total)}, ":now": now},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        dynamodb.update_item(  # the item has no `progress` map yet
            TableName=table,
            Key=key,
            UpdateExpression="SET progress = :p, updated_at = :now",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={
                ":p": {"M": {"done": {"N": "0"}, "total": {"N": str(total)}}},
                ":now": now,
            },
        )


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on a few threads (boto3 clients are thread-safe); the first error propagates."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(WORKERS, len(items)), thread_name_prefix="s3")
    try:
        return list(pool.map(fn, items))
    finally:  # on an error or SIGTERM, drop what has not started instead of waiting for it
        pool.shutdown(wait=False, cancel_futures=True)
