"""S3 helpers of the serving library against moto: typed errors for missing inputs and failed writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from storyflow_serving import s3io
from storyflow_serving.errors import InputNotFound, InvalidRequest, StorageError

from tests.support.calls import operations_sent

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


def test_a_small_object_moves_in_one_request_each_way(s3: Any, tmp_path: Path) -> None:
    # Given a segment-sized file
    src = tmp_path / "seg.mp4"
    src.write_bytes(b"v" * 5000)
    sent = operations_sent(s3)
    # When it is uploaded with the intermediate tag, then downloaded
    s3io.upload(s3, src, f"s3://{BUCKET}/seg.mp4", "video/mp4", tagging=s3io.INTERMEDIATE_TAGGING)
    got = s3io.download(s3, f"s3://{BUCKET}/seg.mp4", tmp_path / "back.mp4")
    # Then one PutObject and one GetObject moved it, with its type and tag
    assert sent == ["PutObject", "GetObject"]
    assert got.read_bytes() == src.read_bytes()
    assert s3.head_object(Bucket=BUCKET, Key="seg.mp4")["ContentType"] == "video/mp4"
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="seg.mp4")["TagSet"]
    assert tags == [{"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}]


def test_an_object_over_the_threshold_moves_whole_through_s3transfer(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a threshold smaller than the file
    monkeypatch.setattr(s3io, "SINGLE_REQUEST_BYTES", 1000)
    src = tmp_path / "big.mp4"
    src.write_bytes(bytes(range(256)) * 20)
    sent = operations_sent(s3)
    # When it is uploaded and downloaded
    s3io.upload(s3, src, f"s3://{BUCKET}/big.mp4", "video/mp4", tagging=s3io.INTERMEDIATE_TAGGING)
    got = s3io.download(s3, f"s3://{BUCKET}/big.mp4", tmp_path / "back.mp4")
    # Then every byte arrived: the first ranged GET was only a probe, s3transfer fetched the object
    assert got.read_bytes() == src.read_bytes()
    assert sent[0] == "PutObject" and sent[1] == "GetObject" and "HeadObject" in sent[2:]
    assert s3.get_object_tagging(Bucket=BUCKET, Key="big.mp4")["TagSet"][0]["Value"] == "expire-intermediate"


def test_an_empty_object_downloads_as_an_empty_file(s3: Any, tmp_path: Path) -> None:
    # Given an empty object (S3 refuses a range on it: InvalidRange)
    s3.put_object(Bucket=BUCKET, Key="empty.bin", Body=b"")
    # When it is downloaded over an existing file
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"stale")
    # Then the file is empty
    assert s3io.download(s3, f"s3://{BUCKET}/empty.bin", dest).read_bytes() == b""
