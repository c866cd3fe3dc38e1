"""job_status: how a failed workflow's raw Step Functions failure becomes the job's error and cause,
on moto tables and buckets built from template.yaml (Given/When/Then).

An ECS step's typed error comes from the container's jobs/{job_id}/steps/{step}/error.json, never from
the task's stderr: on AWS a stopped task reports only its exit code and "Essential container in task
exited"."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from storyflow import job_status, keys
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from storyflow.settings import Settings
from tests.support.functions import FakeContext, load_handler

JOB_ID = "stereo-20261124-00aa11bb22cc"
OUTPUT_BUCKET = "storyflow-output"

# What `ecs:runTask.sync` puts in the Catch's Cause on AWS: the stopped task, PascalCase.
STOPPED_TASK = {
    "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/cluster/0123456789abcdef",
    "LastStatus": "STOPPED",
    "StopCode": "EssentialContainerExited",
    "StoppedReason": "Essential container in task exited",
    "Containers": [{"Name": "media", "ExitCode": 2, "LastStatus": "STOPPED"}],
}


def ecs_failure(step: str | None, task: dict[str, Any] = STOPPED_TASK) -> dict[str, Any]:
    failure = {"Error": "States.TaskFailed", "Cause": json.dumps(task)}
    return failure if step is None else {**failure, "Step": step}


def put_step_error(step: str, document: Any) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    boto3.client("s3").put_object(Bucket=OUTPUT_BUCKET, Key=keys.step_error_key(JOB_ID, step), Body=body)


@pytest.fixture
def running_job(stack: dict[str, Any]) -> JobStore:
    store = JobStore("JobsTable")
    store.create(JobKind.STEREO, JOB_ID, {})
    store.transition(JOB_ID, JobStatus.RUNNING)
    return store


def fail(failure: dict[str, Any]) -> tuple[str, str]:
    """When MarkFailed invokes the job_status Lambda with this failure, Then the job's (error, cause)."""
    result = load_handler("job_status")(
        {"job_id": JOB_ID, "status": "failed", "failure": failure}, FakeContext()
    )
    assert result == {"status": "failed"}
    error = JobStore("JobsTable").get(JOB_ID).error
    assert error is not None
    return error.error, error.cause


def test_an_ecs_step_failure_takes_the_containers_error_json(running_job: JobStore) -> None:
    # Given chunk left error.json for a not-a-video upload
    put_step_error(
        "chunk",
        {
            "error": "NotAVideo",
            "message": "not a video: s3://in/input/j/source.mp4: empty file",
            "exit_code": 2,
        },
    )
    # When the Chunk step's failure reaches job_status, Then the job has the typed error and message
    assert fail(ecs_failure("chunk")) == ("NotAVideo", "not a video: s3://in/input/j/source.mp4: empty file")


def test_only_the_failed_steps_error_json_counts(running_job: JobStore) -> None:
    # Given an error.json of chunk (from an earlier attempt), When reassemble fails without one
    put_step_error("chunk", {"error": "NotAVideo", "message": "old"})
    error, cause = fail(ecs_failure("reassemble"))
    # Then the job reports reassemble's task, not chunk's document
    assert error == "TaskFailed"
    assert cause.startswith("step reassemble: container media exited with code 2")


def test_without_error_json_the_exit_code_and_stopped_reason_are_kept(running_job: JobStore) -> None:
    # Given a container killed before it could write error.json (OOM)
    task = {
        **STOPPED_TASK,
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": "media", "ExitCode": 137, "Reason": "OutOfMemoryError: Container killed"}],
    }
    # When its failure reaches job_status, Then a clear TaskFailed with the exit code and both reasons
    assert fail(ecs_failure("chunk", task)) == (
        "TaskFailed",
        "step chunk: container media exited with code 137: Essential container in task exited; "
        "OutOfMemoryError: Container killed (no error.json)",
    )


def test_a_task_that_never_started_says_so(running_job: JobStore) -> None:
    task = {
        "StopCode": "TaskFailedToStart",
        "StoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        "Containers": [{"Name": "media"}],
    }
    error, cause = fail(ecs_failure("reassemble", task))
    assert error == "TaskFailed"
    assert cause.startswith("step reassemble: container media did not run: CannotPullContainerError")


@pytest.mark.parametrize(
    "document", [b"{not json", {"message": "no error name"}, {"error": ""}, [1]], ids=str
)
def test_a_malformed_error_json_falls_back_to_the_task(running_job: JobStore, document: Any) -> None:
    put_step_error("chunk", document)
    assert fail(ecs_failure("chunk"))[0] == "TaskFailed"


def test_stderr_in_the_containers_reason_is_not_parsed(running_job: JobStore) -> None:
    # Given a cause whose container Reason happens to look like the container's stderr line
    task = {**STOPPED_TASK, "Containers": [{"Name": "media", "ExitCode": 2, "Reason": "error: X: y"}]}
    # When there is no error.json, Then the job does not pretend the line was a typed error
    assert fail(ecs_failure("chunk", task))[0] == "TaskFailed"


def test_an_ecs_failure_without_a_step_is_a_task_failure(running_job: JobStore) -> None:
    put_step_error("chunk", {"error": "NotAVideo", "message": "m"})
    error, cause = fail(ecs_failure(None))
    assert error == "TaskFailed"
    assert cause.startswith("container media exited with code 2: Essential container in task exited")


def test_a_failed_map_reports_its_lowest_failed_item(running_job: JobStore) -> None:
    # Given items 3 and 1 recorded as failed by the inference result Lambda
    segments = boto3.resource("dynamodb").Table("SegmentCompletionsTable")
    for index in (3, 1):
        segments.put_item(
            Item={
                "job_id": JOB_ID,
                "segment_index": index,
                "status": "failed",
                "error": "InjectedFault",
                "cause": f"fault {index}",
            }
        )
    # When the Map fails past its tolerance, Then the job's error is item 00001's
    failure = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "The specified tolerance ..."}
    assert fail(failure) == ("InjectedFault", "item 00001: fault 1")


def test_a_lambda_error_is_unwrapped(running_job: JobStore) -> None:
    cause = {"errorType": "TransientError", "errorMessage": "endpoint busy"}
    assert fail({"Error": "TransientError", "Cause": json.dumps(cause)}) == (
        "TransientError",
        "endpoint busy",
    )


def test_a_plain_failure_keeps_error_and_cause(running_job: JobStore) -> None:
    assert fail({"Error": "States.Timeout", "Cause": "took too long"}) == ("States.Timeout", "took too long")


def test_a_huge_cause_is_clipped(running_job: JobStore) -> None:
    put_step_error("chunk", {"error": "BadManifest", "message": "x" * 100_000})
    error, cause = fail(ecs_failure("chunk"))
    assert error == "BadManifest" and len(cause) == job_status.MAX_CAUSE


def test_a_step_name_that_could_escape_its_prefix_is_refused() -> None:
    with pytest.raises(ValueError):
        job_status.Failure.model_validate({"Error": "E", "Cause": "", "Step": "../x"})


def test_read_step_error_without_the_object_is_none(stack: dict[str, Any]) -> None:
    assert job_status.read_step_error(JOB_ID, "chunk", Settings.from_env()) is None
