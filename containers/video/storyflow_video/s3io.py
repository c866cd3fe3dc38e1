"""S3 and DynamoDB for the video container (boto3 directly; AWS_ENDPOINT_URL is honoured)."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

MP4 = "video/mp4"


@lru_cache(maxsize=1)
def s3_client() -> Any:
    return boto3.client("s3", config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


def quick_s3_client() -> Any:
    """For the last words after SIGTERM: short timeouts, one retry."""
    return boto3.client("s3", config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1}))


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_uri(value: str) -> tuple[str, str]:
    if not value.startswith("s3://") or "/" not in value[5:]:
        raise ValueError(f"not an s3:// URI: {value[:120]!r}")
    bucket, key = value[5:].split("/", 1)
    return bucket, key


def is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}


def download(s3: Any, bucket: str, key: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(path))
    return path


def download_prefix(s3: Any, bucket: str, prefix: str, into: Path) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if relative and not relative.endswith("/") and ".." not in Path(relative).parts:
                download(s3, bucket, item["Key"], into / relative)
                count += 1
    return count


def read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def upload(s3: Any, path: Path, bucket: str, key: str, content_type: str = MP4) -> None:
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})


LIFECYCLE_TAGGING = "storyflow-lifecycle=expire-intermediate"


def put_json(s3: Any, bucket: str, key: str, value: Any, *, intermediate: bool = False) -> None:
    """Write `value` as JSON; `intermediate` tags it for the 1-day lifecycle rule in the same call."""
    body = json.dumps(value, separators=(",", ":")).encode()
    tagging = {"Tagging": LIFECYCLE_TAGGING} if intermediate else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **tagging)


class JobRecord:
    """The job's Jobs item: its request, and progress/stage updates while it runs. Every update is
    conditional on the job still running, so a cancelled job stops the work (JobNotRunning)."""

    def __init__(self, table: str, job_id: str) -> None:
        self.table, self.job_id = table, job_id
        self.client = dynamodb_client()

    def request(self) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.client.get_item(
            TableName=self.table, Key={"job_id": {"S": self.job_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return {}
        value = TypeDeserializer().deserialize(item.get("request", {"M": {}}))
        return _plain(value) if isinstance(value, dict) else {}

    def update(self, *, done: int, total: int, stage: str | None = None) -> bool:
        """SET progress (and stage); False when the job is no longer running."""
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":progress": {"M": {"done": {"N": str(done)}, "total": {"N": str(total)}}},
            ":now": {"N": f"{time.time():.3f}"},
            ":running": {"S": "running"},
        }
        sets = ["progress = :progress", "updated_at = :now"]
        if stage is not None:
            sets.append("stage = :stage")
            values[":stage"] = {"S": stage}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": self.job_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#status = :running",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals → int/float, recursively."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
