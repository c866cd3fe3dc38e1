"""The stereo workflow on the local cloud (or the stack STORYFLOW_STACK names): real API, real state machine,
real media and stereo containers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import requests

from storyflow import keys
from storyflow_local.samples import make_clip
from tests.integration.conftest import FAULTY_STEREO_JOB
from tests.support import jobs_api
from tests.support.jobs_api import api
from tests.support.target import IntegrationTarget

TIMEOUT = 400
NOT_A_VIDEO = b"this is not a video\n" * 10


def wait_finished(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    return jobs_api.wait_finished(target, job_id, TIMEOUT)


def wait_upload_rejected(target: IntegrationTarget, job_id: str) -> None:
    """The positive signal that upload events sent before this job's (non-video) upload have been handled:
    this later one was, and failed the job NotAVideo at once. (Deliveries run concurrently, locally and on
    AWS, so "before" is not a strict order; an earlier event's handling is one read, long done by then.)"""
    job = wait_finished(target, job_id)
    assert (job["status"], job["error"]["error"]) == ("failed", "NotAVideo"), job


def submit_upload(target: IntegrationTarget, clip: Path, **params: Any) -> str:
    accepted = api(target, "POST", "/jobs", json={"kind": "stereo", **params})
    ticket = accepted["upload"]
    with clip.open("rb") as handle:
        response = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": ("source.mp4", handle)}, timeout=120
        )
    assert response.status_code in (200, 201, 204), response.text
    job_id: str = accepted["job_id"]
    return job_id


def put_source(target: IntegrationTarget, job_id: str, body: bytes) -> None:
    """The upload straight to S3, with the Content-Type its ticket requires."""
    target.client("s3").put_object(
        Bucket=target.outputs["InputBucketName"],
        Key=f"input/{job_id}/source.mp4",
        Body=body,
        ContentType=keys.SOURCE_CONTENT_TYPE,
    )


def download(target: IntegrationTarget, job_id: str, into: Path) -> Path:
    urls = api(target, "GET", f"/jobs/{job_id}/outputs")["outputs"]
    into.write_bytes(requests.get(urls["final.mp4"], timeout=120).content)
    return into


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video=0))
        audio_seconds = None
        if audio is not None:
            container.seek(0)
            samples = sum(f.samples for f in container.decode(audio=0))
            audio_seconds = samples / audio.rate
        return {
            "frames": frames,
            "width": video.width,
            "height": video.height,
            "audio_seconds": audio_seconds,
        }


def frame_at(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                array: np.ndarray = frame.to_ndarray(format="rgb24").astype(np.float32)
                return array
    raise AssertionError(f"{path} has no frame {index}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30 s 1280x720 24 fps clip with an audio track and keyframes every 2 s."""
    return make_clip(tmp_path_factory.mktemp("stereo") / "source.mp4", seconds=30, keyframe_seconds=2)


def test_uploaded_clip_becomes_full_side_by_side_3d(
    target: IntegrationTarget, clip: Path, tmp_path: Path
) -> None:
    # Given a clip uploaded through the API's presigned POST
    job_id = submit_upload(target, clip, layout="full")
    # When the workflow runs
    job = wait_finished(target, job_id)
    # Then the job completed with every segment counted
    assert job["status"] == "completed", job.get("error")
    assert job["progress"]["total"] == 3 and job["progress"]["done"] == 3
    final = download(target, job_id, tmp_path / "final.mp4")
    source, result = probe(clip), probe(final)
    # ... the same frames (±1), the same audio (±50 ms), twice the width
    assert abs(result["frames"] - source["frames"]) <= 1
    assert abs(result["audio_seconds"] - source["audio_seconds"]) <= 0.05
    assert (result["width"], result["height"]) == (2 * source["width"], source["height"])
    # ... two eyes that differ (parallax) and each stay close to the source
    original, stereo = frame_at(clip, 100), frame_at(final, 100)
    left, right = stereo[:, : source["width"]], stereo[:, source["width"] :]
    assert float(np.mean(np.abs(left - right))) > 1.0
    assert psnr(left, original) > 20 and psnr(right, original) > 20
    # ... and the intermediates are tagged for expiry
    s3 = target.client("s3")
    for bucket, key in (
        (target.outputs["InputBucketName"], keys.segment_key(job_id, 0)),
        (target.outputs["InputBucketName"], keys.audio_key(job_id)),
        (target.outputs["OutputBucketName"], keys.inferred_segment_key(job_id, 2)),
    ):
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        assert tags == {"storyflow-lifecycle": "expire-intermediate"}, (bucket, key)


def test_duplicate_upload_event_starts_no_second_execution(target: IntegrationTarget, tmp_path: Path) -> None:
    # Given a finished job
    small = make_clip(tmp_path / "small.mp4", seconds=4, width=320, height=180)
    job_id = submit_upload(target, small, layout="half")
    assert wait_finished(target, job_id)["status"] == "completed"
    # When the same upload event arrives again (S3 overwrite / redelivery)
    put_source(target, job_id, small.read_bytes())
    # ... and a later upload event has been handled since: a non-video upload, rejected at once
    later = api(target, "POST", "/jobs", json={"kind": "stereo"})["job_id"]
    put_source(target, later, NOT_A_VIDEO)
    wait_upload_rejected(target, later)
    # Then there is still exactly one execution for the job, and the job is unchanged
    pages = (
        target.client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(stateMachineArn=target.outputs["StereoStateMachineArn"])
    )
    assert [e["name"] for page in pages for e in page["executions"]].count(job_id) == 1
    assert api(target, "GET", f"/jobs/{job_id}")["status"] == "completed"
    # ... and half side-by-side kept the source's width
    assert probe(download(target, job_id, tmp_path / "half.mp4"))["width"] == 320


@pytest.mark.local_only("the engine fault is injected through the local cloud's container environment")
def test_engine_failure_on_one_segment_fails_the_job_with_that_segments_error(
    target: IntegrationTarget, tmp_path: Path
) -> None:
    # Given a 3-segment clip whose segment 00001 the engine fails on (fault injected for this job only)
    faulty = make_clip(tmp_path / "faulty.mp4", seconds=25, width=320, height=180)
    put_source(target, FAULTY_STEREO_JOB, faulty.read_bytes())
    # When the workflow runs (the failing segment is retried first)
    job = wait_finished(target, FAULTY_STEREO_JOB)
    # Then the job failed with that segment's error and cause, and the execution ended
    assert job["status"] == "failed"
    assert job["error"]["error"] == "InjectedFault"
    assert job["error"]["cause"].startswith("item 00001: ")
    sfn = target.client("stepfunctions")
    arn = job["execution_arn"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"


@pytest.mark.parametrize(
    ("body", "cause"), [(b"this is not a video\n" * 10, "not a video"), (b"", "empty upload")]
)
def test_non_video_upload_fails_fast_with_a_clear_cause(
    target: IntegrationTarget, body: bytes, cause: str
) -> None:
    job_id = api(target, "POST", "/jobs", json={"kind": "stereo"})["job_id"]
    put_source(target, job_id, body)
    job = wait_finished(target, job_id)
    assert job["status"] == "failed" and job["error"]["error"] == "NotAVideo"
    assert cause in job["error"]["cause"]
    assert job.get("execution_arn") is None  # no compute was started


def test_a_video_header_over_junk_fails_in_chunk_through_its_error_json(target: IntegrationTarget) -> None:
    # Given an upload whose MP4 header passes the upload sniff but whose body is no video
    job_id = api(target, "POST", "/jobs", json={"kind": "stereo"})["job_id"]
    put_source(target, job_id, b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"junk" * 500)
    # When the workflow runs it: the media container's chunk fails (exit 2)
    job = wait_finished(target, job_id)
    # Then the job failed NotAVideo with the container's message, read from the step's error.json,
    # since the stopped task (as on AWS) carries only its exit code and ECS's own reason
    assert job["status"] == "failed", job
    assert job["error"]["error"] == "NotAVideo", job["error"]
    source_uri = f"s3://{target.outputs['InputBucketName']}/input/{job_id}/source.mp4"
    assert job["error"]["cause"].startswith(f"not a video: {source_uri}: "), job["error"]
    body = target.client("s3").get_object(
        Bucket=target.outputs["OutputBucketName"], Key=keys.step_error_key(job_id, "chunk")
    )["Body"]
    error = json.loads(body.read())
    assert (error["error"], error["step"], error["exit_code"]) == ("NotAVideo", "chunk", 2)
    assert error["message"] == job["error"]["cause"]
    assert job["execution_arn"]


def test_key_outside_the_upload_shape_is_ignored(target: IntegrationTarget) -> None:
    def job_count() -> int:
        pages = (
            target.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=target.outputs["JobsTableName"], Select="COUNT")
        )
        return sum(page["Count"] for page in pages)

    # Given the number of jobs so far (a job for the later upload below among them)
    later = api(target, "POST", "/jobs", json={"kind": "stereo"})["job_id"]
    before = job_count()
    # When an object lands under input/ but outside input/{job_id}/source.mp4
    target.client("s3").put_object(
        Bucket=target.outputs["InputBucketName"], Key="input/notes.txt", Body=b"hello"
    )
    # ... and a later upload event has been handled since: a non-video upload, rejected at once
    put_source(target, later, NOT_A_VIDEO)
    wait_upload_rejected(target, later)
    # Then no job was created
    assert job_count() == before


@pytest.mark.parametrize(
    "shape",
    [
        {"width": 853, "height": 480, "audio": False, "seconds": 6},
        {"width": 320, "height": 180, "variable_frame_rate": True, "seconds": 6},
        {"width": 320, "height": 180, "keyframe_seconds": 10, "seconds": 12},
    ],
    ids=["odd-853x480-no-audio", "variable-frame-rate", "10s-keyframes"],
)
def test_awkward_inputs_still_convert(
    target: IntegrationTarget, tmp_path: Path, shape: dict[str, Any]
) -> None:
    clip = make_clip(tmp_path / "awkward.mp4", **shape)
    job = wait_finished(target, submit_upload(target, clip, layout="full"))
    assert job["status"] == "completed", job.get("error")
    result, source = probe(download(target, job["job_id"], tmp_path / "final.mp4")), probe(clip)
    assert abs(result["frames"] - source["frames"]) <= 1
    assert result["width"] >= 2 * source["width"] - 1
