"""`storyflow-video generate` on moto: the job's request in, clips + result.json out, progress on the item,
and the typed error.json on every failure (the result protocol)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from storyflow_video.cli import main

from storyflow import keys
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus

JOB = keys.derived_job_id("video", "parent-1", "task-1")
REQUEST = {
    "prompt": "a lighthouse at dusk",
    "seed": 4,
    "width": 160,
    "height": 96,
    "num_frames": 9,
    "steps": 3,
}


@pytest.fixture
def running(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> JobStore:
    """Given a running video job whose request is on its item, and RESULT_BUCKET set like the task's."""
    monkeypatch.setenv("RESULT_BUCKET", stack["OUTPUT_BUCKET"])
    monkeypatch.setenv("ENGINE", "preview")
    store = JobStore(stack["JOBS_TABLE"])
    store.create(
        JobKind.VIDEO, JOB, {"kind": "video", "parent_id": "parent-1", "task_id": "task-1", **REQUEST}
    )
    store.transition(JOB, JobStatus.RUNNING, stage="provisioning")
    return store


def generate(stack: dict[str, Any], *extra: str) -> int:
    return main(
        [
            "generate",
            "--job-id",
            JOB,
            "--jobs-table",
            stack["JOBS_TABLE"],
            "--output-bucket",
            stack["OUTPUT_BUCKET"],
            "--output-prefix",
            keys.video_prefix("parent-1", "task-1"),
            *extra,
        ]
    )


def step_document(stack: dict[str, Any], name: str) -> dict[str, Any]:
    s3 = boto3.client("s3")
    key = f"jobs/{JOB}/steps/generate/{name}"
    document: dict[str, Any] = json.loads(
        s3.get_object(Bucket=stack["OUTPUT_BUCKET"], Key=key)["Body"].read()
    )
    return document


def test_generate_uploads_the_clips_writes_result_json_and_keeps_progress(
    stack: dict[str, Any], running: JobStore
) -> None:
    # When the task runs the job
    assert generate(stack) == 0

    # Then the clip is at videos/{parent_id}/{task_id}/0.mp4 and result.json names it with the real size
    uri = f"s3://{stack['OUTPUT_BUCKET']}/videos/parent-1/task-1/0.mp4"
    result = step_document(stack, "result.json")
    assert result["outputs"] == {"0.mp4": uri}
    assert (result["width"], result["height"], result["num_frames"], result["engine"]) == (
        160,
        96,
        9,
        "preview",
    )
    head = boto3.client("s3").head_object(Bucket=stack["OUTPUT_BUCKET"], Key="videos/parent-1/task-1/0.mp4")
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] > 1000
    # And the job's progress is complete (steps x videos) and its stage says the upload happened
    job = running.get(JOB)
    assert (job.progress.done, job.progress.total, job.stage) == (3, 3, "uploading")


def test_a_bad_image_fails_with_invalid_image_in_error_json(stack: dict[str, Any], running: JobStore) -> None:
    # Given an image_uri that holds text, not an image
    boto3.client("s3").put_object(Bucket=stack["INPUT_BUCKET"], Key="in/x.png", Body=b"not an image at all")

    # When generated from it
    code = generate(stack, "--image-uri", f"s3://{stack['INPUT_BUCKET']}/in/x.png")

    # Then exit 2 and error.json says InvalidImage (what the workflow reports as the job's error)
    assert code == 2
    error = step_document(stack, "error.json")
    assert (error["error"], error["step"], error["exit_code"]) == ("InvalidImage", "generate", 2)
    assert "not a PNG, JPEG or WebP" in error["message"]


def test_an_injected_fault_is_the_typed_error(
    stack: dict[str, Any], running: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEO_FAIL_PROMPT_SUBSTRING", "lighthouse")
    assert generate(stack) == 1
    assert step_document(stack, "error.json")["error"] == "InjectedFault"


def test_a_cancelled_job_stops_the_work(stack: dict[str, Any], running: JobStore) -> None:
    # Given the job was cancelled before the task started
    running.transition(JOB, JobStatus.CANCELLED)

    # Then the task renders nothing and says why
    assert generate(stack) == 1
    assert step_document(stack, "error.json")["error"] == "JobNotRunning"
    listed = boto3.client("s3").list_objects_v2(Bucket=stack["OUTPUT_BUCKET"], Prefix="videos/")
    assert listed.get("KeyCount", 0) == 0
