"""The video workflow on the local cloud (or the stack STORYFLOW_STACK names): the real API, queue, topic,
state machine and video container (the preview engine locally: ECS tasks placed through the GPU capacity
provider run as local processes)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from storyflow import keys
from tests.integration.conftest import FAULTY_VIDEO_PROMPT
from tests.support import jobs_api
from tests.support.jobs_api import api
from tests.support.target import IntegrationTarget

TIMEOUT = 300
SMALL = {"width": 192, "height": 112, "num_frames": 13, "fps": 12, "steps": 4}


def ids() -> dict[str, str]:
    """Fresh parent/task ids: a rerun against a deployed stack never meets an earlier job."""
    return {"parent_id": f"it-{uuid.uuid4().hex[:10]}", "task_id": f"t-{uuid.uuid4().hex[:8]}"}


def wait_finished(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    return jobs_api.wait_finished(target, job_id, TIMEOUT)


def executions_named(target: IntegrationTarget, job_id: str) -> int:
    sfn = target.client("stepfunctions")
    machine = target.outputs["VideoStateMachineArn"]
    found = sfn.list_executions(stateMachineArn=machine)["executions"]
    return sum(1 for e in found if e["name"] == job_id)


def check_clips(target: IntegrationTarget, job: dict[str, Any], count: int, tmp_path: Path) -> None:
    """The clips are in S3 at videos/{parent_id}/{task_id}/{n}.mp4, decodable, of the size the job reports."""
    request = job["request"]
    bucket = target.outputs["OutputBucketName"]
    assert sorted(job["outputs"]) == [f"{n}.mp4" for n in range(count)]
    urls = api(target, "GET", f"/jobs/{job['job_id']}/outputs")["outputs"]
    for n in range(count):
        key = keys.video_key(request["parent_id"], request["task_id"], n)
        assert job["outputs"][f"{n}.mp4"] == f"s3://{bucket}/{key}"
        path = tmp_path / f"{n}.mp4"
        path.write_bytes(requests.get(urls[f"{n}.mp4"], timeout=60).content)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(video=0))
            assert (stream.codec_context.name, stream.format.name) == ("h264", "yuv420p")
            assert (stream.width, stream.height) == (job["result"]["width"], job["result"]["height"])
        assert frames == request["num_frames"]
    assert job["progress"]["done"] == job["progress"]["total"] == request["steps"] * count


def test_a_video_job_through_the_api_renders_its_clips_with_progress(
    target: IntegrationTarget, tmp_path: Path
) -> None:
    # Given a text-to-video request for two small clips
    body = {"kind": "video", **ids(), "prompt": "a lighthouse at dusk", "seed": 7, "num_videos": 2, **SMALL}

    # When submitted through the API
    accepted = api(target, "POST", "/jobs", json=body)
    job_id = accepted["job_id"]
    assert job_id == keys.derived_job_id("video", body["parent_id"], body["task_id"])

    # Then it completes with both clips in S3, its progress full and its result the rendered size
    job = wait_finished(target, job_id)
    assert job["status"] == "completed", job
    check_clips(target, job, 2, tmp_path)
    assert [v["seed"] for v in job["result"]["videos"]] == [7, 8]
    # And submitting it again answers the same job and starts nothing
    again = api(target, "POST", "/jobs", json=body)
    assert (again["job_id"], again["status"]) == (job_id, "completed")
    assert executions_named(target, job_id) == 1


@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "sns-wrapped"])
def test_a_seed_message_on_the_queue_renders_once_however_often_it_comes(
    target: IntegrationTarget, tmp_path: Path, wrapped: bool
) -> None:
    # Given the seed message (only the required fields plus a small size)
    message = {**ids(), "prompt": "waves on the rocks", **SMALL}
    job_id = keys.derived_job_id("video", message["parent_id"], message["task_id"])

    # When it is sent twice: to the queue raw, or published to the topic (SNS-wrapped on the queue)
    for _ in range(2):
        if wrapped:
            target.client("sns").publish(
                TopicArn=target.outputs["VideoTopicArn"], Message=json.dumps(message)
            )
        else:
            target.client("sqs").send_message(
                QueueUrl=target.outputs["VideoQueueUrl"], MessageBody=json.dumps(message)
            )

    # Then its job completes with its clip, and one execution ran for it
    job = wait_finished(target, job_id)
    assert job["status"] == "completed", job
    check_clips(target, job, 1, tmp_path)
    assert executions_named(target, job_id) == 1


def test_an_undecodable_image_fails_the_job_with_the_containers_typed_error(
    target: IntegrationTarget,
) -> None:
    # Given an object with a PNG signature and garbage after it (it passes the API's sniff, not a decoder)
    bucket = target.outputs["InputBucketName"]
    key = f"it/{uuid.uuid4().hex}.png"
    target.client("s3").put_object(Bucket=bucket, Key=key, Body=b"\x89PNG\r\n\x1a\n" + b"\x13" * 200)
    body = {"kind": "video", **ids(), "prompt": "from an image", "image_uri": f"s3://{bucket}/{key}", **SMALL}

    # When the job runs
    job = wait_finished(target, api(target, "POST", "/jobs", json=body)["job_id"])

    # Then it failed with the container's error.json error (InvalidImage), not a bare exit code
    assert job["status"] == "failed", job
    assert job["error"]["error"] == "InvalidImage", job["error"]
    assert "cannot be decoded" in job["error"]["cause"]


@pytest.mark.local_only("the fault is injected into the local video container (VIDEO_FAIL_PROMPT_SUBSTRING)")
def test_a_failing_container_ends_the_job_failed_with_its_typed_error(target: IntegrationTarget) -> None:
    body = {"kind": "video", **ids(), "prompt": f"a film {FAULTY_VIDEO_PROMPT}", **SMALL}
    job = wait_finished(target, api(target, "POST", "/jobs", json=body)["job_id"])
    assert job["status"] == "failed", job
    assert job["error"]["error"] == "InjectedFault" and FAULTY_VIDEO_PROMPT in job["error"]["cause"]
    assert job["progress"]["done"] == 0 or job["progress"]["done"] < job["progress"]["total"]


def test_a_bad_message_is_recorded_as_a_failed_job(target: IntegrationTarget) -> None:
    message = {**ids(), "prompt": "too many", "num_videos": 3}
    target.client("sqs").send_message(
        QueueUrl=target.outputs["VideoQueueUrl"], MessageBody=json.dumps(message)
    )
    job = wait_finished(target, keys.derived_job_id("video", message["parent_id"], message["task_id"]))
    assert (job["status"], job["error"]["error"]) == ("failed", "InvalidRequest"), job
    assert "num_videos" in job["error"]["cause"]
