"""Every route of the jobs API, happy paths, driven by the stored API Gateway proxy events."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from storyflow import aws
from storyflow.api import jobs
from storyflow.jobstore import JobStore
from storyflow.keys import JOB_ID_PATTERN, upload_key
from storyflow.models import JobError, JobKind, JobStatus, VideoRequest
from tests.support.jobs import set_progress_total
from tests.unit.api.conftest import (
    ApiResult,
    executions,
    jobs_in_table,
    load_event,
    with_body,
    with_job_id,
    with_query,
)

Call = Callable[[dict[str, Any]], ApiResult]


def test_health_answers_ok(call_api: Call) -> None:
    # Given the health event  When it is handled  Then 200 {"status": "ok"}
    result = call_api(load_event("api_health"))
    assert result.status == 200
    assert result.body == {"status": "ok"}


def test_submit_video_creates_a_queued_job_and_starts_its_execution(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a video request with only the required fields
    event = load_event("api_submit_video")

    # When it is submitted
    result = call_api(event)

    # Then 202 with a job id in the project's format, queued, and no upload ticket
    assert result.status == 202, result.body
    job_id = result.body["job_id"]
    assert re.fullmatch(JOB_ID_PATTERN, job_id) and job_id.startswith("video-")
    assert result.body == {"job_id": job_id, "status": "queued", "upload": None}
    # And the item holds the full request with the seed message defaults
    job = JobStore(stack["JOBS_TABLE"]).get(job_id)
    assert job.kind is JobKind.VIDEO and job.status is JobStatus.QUEUED
    expected = VideoRequest(parent_id="parent-1", task_id="task-1", prompt="a lighthouse at dusk, waves")
    assert job.request == expected.model_dump(mode="json")
    # And one execution named by the job id got {"job_id", "request"}, where its clips go and its image
    (execution,) = executions()
    assert execution["name"] == job_id
    assert execution["stateMachineArn"] == state_machines["video"]
    sfn = aws.client("stepfunctions")
    payload = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert payload == {
        "job_id": job_id,
        "request": job.request,
        "output_prefix": "videos/parent-1/task-1/",
        "image_uri": "",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "tts", "text": "Once upon a time.", "voice": "af_heart"},
        {"kind": "story", "prompt": "a fox learns to fly"},
        {
            "kind": "story",
            "scenes": [{"text": "The fox jumps.", "visual_prompt": "a fox mid-air"}],
            "stereo": "half",
        },
    ],
    ids=["tts", "story-prompt", "story-scenes"],
)
def test_submit_other_kinds_starts_their_machine(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str], body: dict[str, Any]
) -> None:
    # Given a request of another kind  When it is submitted
    result = call_api(with_body(load_event("api_submit_video"), body))

    # Then 202, and the kind's own machine runs an execution named by the job id
    assert result.status == 202, result.body
    (execution,) = executions()
    assert execution["stateMachineArn"] == state_machines[body["kind"]]
    assert execution["name"] == result.body["job_id"]


def test_submit_stereo_answers_a_presigned_post_the_file_can_be_uploaded_to(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a stereo request limited to 1 MiB
    event = load_event("api_submit_stereo")

    # When it is submitted
    result = call_api(event)

    # Then 202 with an upload ticket for input/{job_id}/source.mp4
    assert result.status == 202, result.body
    job_id = result.body["job_id"]
    upload = result.body["upload"]
    assert upload["key"] == upload_key(job_id)
    assert upload["max_bytes"] == 1048576
    assert upload["fields"]["Content-Type"] == "video/mp4"
    assert upload["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4: new buckets refuse SigV2
    # And the signed policy enforces the key, the size range and the content type
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 1048576] in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"key": upload_key(job_id)} in conditions
    assert {"bucket": stack["INPUT_BUCKET"]} in conditions
    # And the job waits, queued, for its upload (the upload starts the workflow, not the API)
    assert JobStore(stack["JOBS_TABLE"]).get(job_id).status is JobStatus.QUEUED
    assert executions() == []

    # When the client POSTs a file to the ticket (moto S3 accepts the form; it does not check policies)
    video = b"\x00\x00\x00\x20ftypisom" + bytes(1000)
    response = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("clip.mp4", video, "video/mp4")}, timeout=10
    )

    # Then the object lands at the upload key
    assert response.status_code in (200, 201, 204), response.text
    s3 = aws.client("s3")
    stored = s3.get_object(Bucket=stack["INPUT_BUCKET"], Key=upload_key(job_id))["Body"].read()
    assert stored == video


def test_get_job_returns_the_item(call_api: Call, stack: dict[str, Any]) -> None:
    # Given a running job with progress
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.STEREO, "stereo-20261123-0123456789ab", {"kind": "stereo"})
    store.transition("stereo-20261123-0123456789ab", JobStatus.RUNNING, stage="inferring")
    set_progress_total("JobsTable", "stereo-20261123-0123456789ab", 4)
    store.add_progress("stereo-20261123-0123456789ab")

    # When it is fetched
    result = call_api(with_job_id(load_event("api_get_job"), "stereo-20261123-0123456789ab"))

    # Then the Job shape comes back
    assert result.status == 200
    assert result.body["job_id"] == "stereo-20261123-0123456789ab"
    assert result.body["status"] == "running"
    assert result.body["stage"] == "inferring"
    assert result.body["progress"] == {"done": 1, "total": 4}
    assert result.body["kind"] == "stereo"
    assert set(result.body) >= {"created_at", "updated_at", "request", "outputs", "error", "execution_arn"}


def test_list_jobs_pages_newest_first(
    call_api: Call, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three queued jobs created one second apart
    store = JobStore(stack["JOBS_TABLE"])
    ids = [f"tts-20261123-00000000000{i}" for i in range(3)]
    for i, job_id in enumerate(ids):
        with monkeypatch.context() as patch:
            patch.setattr("time.time", lambda i=i: 1_800_000_000.0 + i)
            store.create(JobKind.TTS, job_id, {"kind": "tts"})

    # When the stored list event (status=queued, limit=2) is handled, then the page after it
    first = call_api(load_event("api_list_jobs"))
    second = call_api(
        with_query(load_event("api_list_jobs"), status="queued", limit="2", next=first.body["next"])
    )

    # Then newest first across both pages, each job exactly once
    assert first.status == 200 and second.status == 200
    assert [job["job_id"] for job in first.body["items"]] == [ids[2], ids[1]]
    assert [job["job_id"] for job in second.body["items"]] == [ids[0]]
    assert first.body["next"]


def test_list_jobs_defaults_to_running(call_api: Call, stack: dict[str, Any]) -> None:
    # Given one queued and one running job
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.TTS, "tts-20261123-aaaaaaaaaaaa", {})
    store.create(JobKind.TTS, "tts-20261123-bbbbbbbbbbbb", {})
    store.transition("tts-20261123-bbbbbbbbbbbb", JobStatus.RUNNING)

    # When /jobs is listed without a status
    result = call_api(with_query(load_event("api_list_jobs")))

    # Then only the running job is listed, with no next page
    assert result.status == 200
    assert [job["job_id"] for job in result.body["items"]] == ["tts-20261123-bbbbbbbbbbbb"]
    assert result.body["next"] is None


def test_cancel_running_job_stops_its_execution(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a submitted video job whose execution is running
    job_id = call_api(load_event("api_submit_video")).body["job_id"]
    (execution,) = executions()
    JobStore(stack["JOBS_TABLE"]).transition(
        job_id, JobStatus.RUNNING, execution_arn=execution["executionArn"]
    )

    # When it is cancelled
    result = call_api(with_job_id(load_event("api_cancel_job"), job_id))

    # Then the job is cancelled (with a completion time) and its execution aborted
    assert result.status == 200, result.body
    assert result.body["status"] == "cancelled" and result.body["completed_at"]
    sfn = aws.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "ABORTED"


def test_cancel_queued_stereo_job_waiting_for_its_upload(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given a stereo job that was never uploaded (no execution exists)
    job_id = call_api(load_event("api_submit_stereo")).body["job_id"]

    # When it is cancelled
    result = call_api(with_job_id(load_event("api_cancel_job"), job_id))

    # Then it is cancelled
    assert result.status == 200, result.body
    assert JobStore(stack["JOBS_TABLE"]).get(job_id).status is JobStatus.CANCELLED


def test_outputs_of_a_completed_job_are_presigned_downloads(call_api: Call, stack: dict[str, Any]) -> None:
    # Given a completed job whose final video is in the output bucket
    job_id = "stereo-20261123-0123456789ab"
    s3 = aws.client("s3")
    s3.put_object(Bucket=stack["OUTPUT_BUCKET"], Key=f"jobs/{job_id}/final.mp4", Body=b"final-video")
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.STEREO, job_id, {})
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(
        job_id,
        JobStatus.COMPLETED,
        outputs={"final": f"s3://{stack['OUTPUT_BUCKET']}/jobs/{job_id}/final.mp4"},
    )

    # When its outputs are asked for
    result = call_api(with_job_id(load_event("api_job_outputs"), job_id))

    # Then each output is a presigned GET (SigV4) that downloads the object
    assert result.status == 200, result.body
    assert result.body["job_id"] == job_id and result.body["status"] == "completed"
    assert result.body["expires_in"] == 3600
    url = result.body["outputs"]["final"]
    assert "X-Amz-Signature=" in url
    assert requests.get(url, timeout=10).content == b"final-video"


def test_outputs_outside_the_output_bucket_are_not_signed(call_api: Call, stack: dict[str, Any]) -> None:
    # Given a completed job whose outputs name a foreign bucket and a non-URI
    job_id = "video-20261123-0123456789ab"
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.VIDEO, job_id, {})
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(
        job_id, JobStatus.COMPLETED, outputs={"x": "s3://someone-else/secret.mp4", "y": "not-a-uri"}
    )

    # When its outputs are asked for  Then nothing is signed
    result = call_api(with_job_id(load_event("api_job_outputs"), job_id))
    assert result.status == 200
    assert result.body["outputs"] == {}


def test_start_failure_marks_the_job_failed_and_answers_503(
    call_api: Call, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a story state machine ARN that does not exist (a kind with fresh job ids)
    monkeypatch.setenv("STORY_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:gone")

    # When a story job is submitted
    result = call_api(with_body(load_event("api_submit_video"), {"kind": "story", "prompt": "a lighthouse"}))

    # Then 503, and the job is not left queued forever: it is failed with the reason
    assert result.status == 503, result.body
    (item,) = jobs_in_table(stack)
    assert item["status"] == "failed"
    assert item["error"]["error"] == "StartExecutionFailed"
    assert JobError.model_validate(item["error"]).cause


def test_start_failure_of_a_derived_id_job_leaves_nothing_so_a_retry_submits_again(
    call_api: Call, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a video state machine ARN that does not exist (video job ids derive from parent_id/task_id)
    monkeypatch.setenv("VIDEO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:gone")

    # When a video job is submitted
    result = call_api(load_event("api_submit_video"))

    # Then 503 and no job item: the same ids submitted again are a new submission, not a failed job
    assert result.status == 503, result.body
    assert jobs_in_table(stack) == []


def test_responses_carry_json_content_type(call_api: Call) -> None:
    # Given any route  When it answers  Then the body is declared JSON
    result = call_api(load_event("api_health"))
    assert result.headers.get("Content-Type", "").startswith("application/json")


def test_an_unexpected_error_is_a_json_500_without_internals(
    call_api: Call, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, api_module: Any
) -> None:
    # Given a failure nobody anticipated inside the service layer
    def broken(job_id: str, settings: Any) -> None:
        raise RuntimeError("secret table name and a stack trace")

    monkeypatch.setattr(jobs, "get_job", broken)

    # When a job is fetched  Then 500 {"message", "field"} naming the request, not the internals
    result = call_api(with_job_id(load_event("api_get_job"), "video-20261123-0123456789ab"))
    assert result.status == 500
    assert "secret" not in result.body["message"]
    assert result.body["field"] is None
    assert result.body["message"].startswith("internal error (request ")


def test_a_base64_encoded_body_is_accepted(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str]
) -> None:
    # Given the video event with its body base64-encoded (API Gateway does this for binary media types)
    event = load_event("api_submit_video")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True

    # When handled  Then it is decoded and accepted like the plain one
    assert call_api(event).status == 202
