"""The media commands' S3 transfers: a segment moves in one request; a large file through s3transfer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from storyflow_media import s3io
from storyflow_media.errors import MissingObject

from tests.support.calls import operations_sent

BUCKET = "media-transfers"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_a_segment_moves_in_one_request_each_way_with_its_tag(s3: Any, tmp_path: Path) -> None:
    # Given a segment-sized file
    src = tmp_path / "seg.mp4"
    src.write_bytes(b"s" * 4000)
    sent = operations_sent(s3)
    # When it is written as an intermediate and read back
    s3io.upload(s3, src, BUCKET, "segments/00000.mp4", intermediate=True)
    back = s3io.download(s3, BUCKET, "segments/00000.mp4", tmp_path / "dl" / "seg.mp4")
    # Then one PutObject and one GetObject moved it, typed and tagged
    assert sent == ["PutObject", "GetObject"]
    assert back.read_bytes() == src.read_bytes()
    assert s3.head_object(Bucket=BUCKET, Key="segments/00000.mp4")["ContentType"] == s3io.MP4
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="segments/00000.mp4")["TagSet"]
    assert tags == [{"Key": s3io.LIFECYCLE_TAG[0], "Value": s3io.LIFECYCLE_TAG[1]}]


def test_a_file_over_the_threshold_moves_whole_through_s3transfer(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a threshold smaller than the file (a long source)
    monkeypatch.setattr(s3io, "SINGLE_REQUEST_BYTES", 1000)
    src = tmp_path / "source.mp4"
    src.write_bytes(bytes(range(256)) * 30)
    s3io.upload(s3, src, BUCKET, "input/source.mp4")
    sent = operations_sent(s3)
    # When it is downloaded
    back = s3io.download(s3, BUCKET, "input/source.mp4", tmp_path / "back.mp4")
    # Then every byte arrived: the ranged GET was a probe, s3transfer fetched the object
    assert back.read_bytes() == src.read_bytes()
    assert sent[0] == "GetObject" and "HeadObject" in sent[1:]


def test_an_empty_object_and_a_missing_one(s3: Any, tmp_path: Path) -> None:
    # Given an empty object (S3 refuses a range on it: InvalidRange)
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    # When it is downloaded  Then the file is empty
    assert s3io.download(s3, BUCKET, "empty", tmp_path / "empty").read_bytes() == b""
    # and a missing object is a MissingObject naming it
    with pytest.raises(MissingObject, match=f"s3://{BUCKET}/absent does not exist"):
        s3io.download(s3, BUCKET, "absent", tmp_path / "absent")
