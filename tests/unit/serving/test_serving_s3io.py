"""S3 helpers of the serving library against moto: typed errors for missing inputs and failed writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from storyflow_serving import s3io
from storyflow_serving.errors import InputNotFound, InvalidRequest, StorageError

BUCKET = "serving-test"


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://b/k", "must be an s3://bucket/key URI"),
        (None, "must be an s3://bucket/key URI"),
        ("s3://b", "must name a bucket and an object key"),
        ("s3:///k", "must name a bucket and an object key"),
        ("s3://b/dir/", "must name a bucket and an object key"),
    ],
)
def test_bad_uris_are_invalid_requests_naming_the_field(uri: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match="output_uri " + message):
        s3io.parse_s3_uri(uri, "output_uri")


def test_parse_splits_bucket_and_key() -> None:
    assert s3io.parse_s3_uri("s3://b/a/b/c.mp4") == ("b", "a/b/c.mp4")


def test_upload_then_download_round_trips(s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"payload")
    s3io.upload(s3, src, f"s3://{BUCKET}/k/a.bin", "video/mp4")
    assert s3.head_object(Bucket=BUCKET, Key="k/a.bin")["ContentType"] == "video/mp4"
    assert s3io.download(s3, f"s3://{BUCKET}/k/a.bin", tmp_path / "b.bin").read_bytes() == b"payload"


def test_a_missing_input_is_input_not_found(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="input not found"):
        s3io.download(s3, f"s3://{BUCKET}/missing.mp4", tmp_path / "x")
    with pytest.raises(InputNotFound):
        s3io.download(s3, "s3://no-such-bucket/k.mp4", tmp_path / "x")
    with pytest.raises(InputNotFound):
        s3io.get_bytes(s3, f"s3://{BUCKET}/missing.json")


def test_a_failed_write_is_a_storage_error(s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    with pytest.raises(StorageError, match="writing s3://no-such-bucket/k"):
        s3io.upload(s3, src, "s3://no-such-bucket/k")
    with pytest.raises(StorageError):
        s3io.put_json(s3, "s3://no-such-bucket/k.json", {"a": 1})


def test_json_round_trips(s3: Any) -> None:
    s3io.put_json(s3, f"s3://{BUCKET}/r.json", {"a": [1, 2]})
    assert s3io.get_json(s3, f"s3://{BUCKET}/r.json") == {"a": [1, 2]}
    assert s3.head_object(Bucket=BUCKET, Key="r.json")["ContentType"] == "application/json"
