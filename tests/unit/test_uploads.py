"""on_upload checks an upload against its ticket itself, and never leaves a job queued for a lost upload."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from storyflow import aws
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from tests.support.functions import FakeContext, load_event, load_handler

JOB_ID = "stereo-20261123-0123456789ab"
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 1000


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch, stack: dict[str, Any]) -> list[dict[str, Any]]:
    """Given a stereo state machine whose StartExecution calls are recorded."""
    calls: list[dict[str, Any]] = []

    class Sfn:
        def start_execution(self, **kwargs: Any) -> dict[str, str]:
            calls.append(kwargs)
            return {
                "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:stereo:{kwargs['name']}"
            }

    real = aws.client
    monkeypatch.setattr(aws, "client", lambda service: Sfn() if service == "stepfunctions" else real(service))
    monkeypatch.setenv(
        "STEREO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:stereo"
    )
    return calls


def ticketed_job(max_upload_bytes: int = 10_000) -> None:
    """Given a stereo job created through POST /jobs (its ticket: video/mp4, at most max_upload_bytes)."""
    JobStore("JobsTable").create(
        JobKind.STEREO, JOB_ID, {"kind": "stereo", "layout": "full", "max_upload_bytes": max_upload_bytes}
    )


def upload(body: bytes, content_type: str = "video/mp4") -> dict[str, Any]:
    key = f"input/{JOB_ID}/source.mp4"
    boto3.client("s3").put_object(Bucket="storyflow-input", Key=key, Body=body, ContentType=content_type)
    event = load_event("s3_object_created.json")
    event["detail"]["object"].update(key=key, size=len(body))
    return event


def handle(event: dict[str, Any]) -> None:
    load_handler("on_upload")(event, FakeContext())


def failure() -> tuple[str, str]:
    job = JobStore("JobsTable").get(JOB_ID)
    assert job.status is JobStatus.FAILED and job.error is not None, job
    return job.error.error, job.error.cause


def test_an_upload_within_its_ticket_starts_the_job(starts: list[dict[str, Any]]) -> None:
    ticketed_job()
    handle(upload(MP4))
    assert [call["name"] for call in starts] == [JOB_ID]


def test_an_upload_larger_than_its_ticket_fails_the_job_without_starting_it(
    starts: list[dict[str, Any]],
) -> None:
    # Given a ticket for at most 100 bytes, and an object of 1032 bytes put with other credentials
    ticketed_job(max_upload_bytes=100)
    # When its event arrives
    handle(upload(MP4))
    # Then the job failed saying both sizes, and nothing started
    error, cause = failure()
    assert error == "UploadTooLarge" and "1032" in cause and "100" in cause
    assert starts == []


def test_an_upload_of_another_type_fails_the_job(starts: list[dict[str, Any]]) -> None:
    ticketed_job()
    handle(upload(MP4, content_type="text/html"))
    error, cause = failure()
    assert error == "InvalidUpload" and "text/html" in cause and "video/mp4" in cause
    assert starts == []


def test_an_upload_deleted_before_its_event_fails_the_job_instead_of_leaving_it_queued(
    starts: list[dict[str, Any]],
) -> None:
    # Given an upload that is deleted before on_upload runs
    ticketed_job()
    event = upload(MP4)
    boto3.client("s3").delete_object(Bucket="storyflow-input", Key=f"input/{JOB_ID}/source.mp4")
    # When its (late) event arrives  Then the job fails with a clear cause; no error escapes to be retried
    handle(event)
    error, cause = failure()
    assert error == "SourceMissing" and "deleted" in cause
    assert starts == []
