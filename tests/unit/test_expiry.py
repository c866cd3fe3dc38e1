"""The upload-expiry sweep: a queued upload job whose ticket expired with no upload fails `UploadExpired`;
everything else keeps its status."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from storyflow.expiry import GRACE_SECONDS
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from tests.support.functions import FakeContext, load_handler

EXPIRES = 3600
OVERDUE = EXPIRES + GRACE_SECONDS + 5


def job(store: JobStore, job_id: str, kind: JobKind, age: float) -> None:
    """Given a queued job created `age` seconds ago."""
    store.create(kind, job_id, {"kind": kind.value})
    boto3.resource("dynamodb").Table("JobsTable").update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET created_at = :t",
        ExpressionAttributeValues={":t": int(time.time() - age)},
    )


def sweep() -> list[str]:
    result: dict[str, list[str]] = load_handler("expire_uploads")({"source": "aws.events"}, FakeContext())
    return result["expired"]


@pytest.fixture
def store(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> JobStore:
    monkeypatch.setenv("UPLOAD_EXPIRES_SECONDS", str(EXPIRES))
    return JobStore("JobsTable")


def test_an_overdue_upload_job_fails_upload_expired(store: JobStore) -> None:
    # Given a stereo job whose ticket expired with nothing uploaded
    job(store, "stereo-20261123-00000000000a", JobKind.STEREO, OVERDUE)
    # When the sweep runs
    assert sweep() == ["stereo-20261123-00000000000a"]
    # Then it failed saying when its ticket expired
    failed = store.get("stereo-20261123-00000000000a")
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error.error == "UploadExpired" and "expired at" in failed.error.cause


def test_everything_else_keeps_its_status(store: JobStore) -> None:
    # Given a job still within its ticket, one whose upload arrived (its event still on its way),
    # one of a kind that takes no upload, and one already running
    job(store, "stereo-20261123-00000000000b", JobKind.STEREO, EXPIRES - 10)
    job(store, "stereo-20261123-00000000000c", JobKind.STEREO, OVERDUE)
    boto3.client("s3").put_object(
        Bucket="storyflow-input", Key="input/stereo-20261123-00000000000c/source.mp4", Body=b"x"
    )
    job(store, "video-20261123-00000000000d", JobKind.VIDEO, OVERDUE)
    job(store, "stereo-20261123-00000000000e", JobKind.STEREO, OVERDUE)
    store.transition("stereo-20261123-00000000000e", JobStatus.RUNNING)
    # When the sweep runs  Then none of them changes
    assert sweep() == []
    statuses = {
        j: store.get(j).status for j in ("stereo-20261123-00000000000b", "stereo-20261123-00000000000c")
    }
    assert set(statuses.values()) == {JobStatus.QUEUED}
    assert store.get("video-20261123-00000000000d").status is JobStatus.QUEUED
    assert store.get("stereo-20261123-00000000000e").status is JobStatus.RUNNING


def test_the_sweep_pages_through_many_overdue_jobs(store: JobStore) -> None:
    ids = [f"stereo-20261123-{n:012x}" for n in range(1, 131)]
    for job_id in ids:
        job(store, job_id, JobKind.STEREO, OVERDUE)
    assert sorted(sweep()) == sorted(ids)


def test_a_video_job_waiting_for_its_image_expires_but_one_without_an_image_does_not(store: JobStore) -> None:
    # Given two overdue queued video jobs: one waits for an uploaded image, the other needs none
    seed = {"kind": "video", "parent_id": "p1", "prompt": "a lighthouse"}
    store.create(
        JobKind.VIDEO, "video-20261123-00000000000f", {**seed, "task_id": "t1", "image_upload": "image/png"}
    )
    store.create(JobKind.VIDEO, "video-20261123-000000000010", {**seed, "task_id": "t2"})
    for job_id in ("video-20261123-00000000000f", "video-20261123-000000000010"):
        boto3.resource("dynamodb").Table("JobsTable").update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET created_at = :t",
            ExpressionAttributeValues={":t": int(time.time() - OVERDUE)},
        )
    # When the sweep runs  Then only the one whose image never came fails
    assert sweep() == ["video-20261123-00000000000f"]
    assert store.get("video-20261123-000000000010").status is JobStatus.QUEUED
