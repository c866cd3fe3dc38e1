"""The stereo workflow on the local cloud: real API, real state machine, real media and stereo containers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import requests

from storyflow import keys
from storyflow.local import LocalCloud
from storyflow.samples import make_clip
from tests.integration.conftest import FAULTY_STEREO_JOB

TIMEOUT = 400


def api(cloud: LocalCloud, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, cloud.api_url + path, timeout=30, **kwargs)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def wait_finished(cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    """Poll until the job finishes; a direct S3 upload's job appears only once its event is handled."""
    deadline = time.monotonic() + TIMEOUT
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = requests.get(f"{cloud.api_url}/jobs/{job_id}", timeout=30)
        if response.status_code != 404:
            job = response.json()
            assert response.status_code == 200, job
            if job["status"] in {"completed", "failed", "cancelled"}:
                return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {TIMEOUT}s: {job}")


def submit_upload(cloud: LocalCloud, clip: Path, **params: Any) -> str:
    accepted = api(cloud, "POST", "/jobs", json={"kind": "stereo", **params})
    ticket = accepted["upload"]
    with clip.open("rb") as handle:
        response = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": ("source.mp4", handle)}, timeout=120
        )
    assert response.status_code in (200, 201, 204), response.text
    job_id: str = accepted["job_id"]
    return job_id


def put_source(cloud: LocalCloud, job_id: str, body: bytes) -> None:
    cloud.client("s3").put_object(
        Bucket=cloud.outputs["InputBucketName"], Key=f"input/{job_id}/source.mp4", Body=body
    )


def download(cloud: LocalCloud, job_id: str, target: Path) -> Path:
    urls = api(cloud, "GET", f"/jobs/{job_id}/outputs")["outputs"]
    target.write_bytes(requests.get(urls["final.mp4"], timeout=120).content)
    return target


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
    local_cloud: LocalCloud, clip: Path, tmp_path: Path
) -> None:
    # Given a clip uploaded through the API's presigned POST
    job_id = submit_upload(local_cloud, clip, layout="full")
    # When the workflow runs
    job = wait_finished(local_cloud, job_id)
    # Then the job completed with every segment counted
    assert job["status"] == "completed", job.get("error")
    assert job["progress"]["total"] == 3 and job["progress"]["done"] == 3
    final = download(local_cloud, job_id, tmp_path / "final.mp4")
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
    s3 = local_cloud.client("s3")
    for bucket, key in (
        (local_cloud.outputs["InputBucketName"], keys.segment_key(job_id, 0)),
        (local_cloud.outputs["InputBucketName"], keys.audio_key(job_id)),
        (local_cloud.outputs["OutputBucketName"], keys.inferred_segment_key(job_id, 2)),
    ):
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        assert tags == {"storyflow-lifecycle": "expire-intermediate"}, (bucket, key)


def test_duplicate_upload_event_starts_no_second_execution(local_cloud: LocalCloud, tmp_path: Path) -> None:
    # Given a finished job
    small = make_clip(tmp_path / "small.mp4", seconds=4, width=320, height=180)
    job_id = submit_upload(local_cloud, small, layout="half")
    assert wait_finished(local_cloud, job_id)["status"] == "completed"
    # When the same upload event arrives again (S3 overwrite / redelivery)
    put_source(local_cloud, job_id, small.read_bytes())
    time.sleep(2)
    # Then there is still exactly one execution for the job, and the job is unchanged
    sfn = local_cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local_cloud.outputs["StereoStateMachineArn"])[
        "executions"
    ]
    assert [e["name"] for e in executions].count(job_id) == 1
    assert api(local_cloud, "GET", f"/jobs/{job_id}")["status"] == "completed"
    # ... and half side-by-side kept the source's width
    assert probe(download(local_cloud, job_id, tmp_path / "half.mp4"))["width"] == 320


def test_engine_failure_on_one_segment_fails_the_job_with_that_segments_error(
    local_cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a 3-segment clip whose segment 00001 the engine fails on (fault injected for this job only)
    faulty = make_clip(tmp_path / "faulty.mp4", seconds=25, width=320, height=180)
    put_source(local_cloud, FAULTY_STEREO_JOB, faulty.read_bytes())
    # When the workflow runs (the failing segment is retried first)
    job = wait_finished(local_cloud, FAULTY_STEREO_JOB)
    # Then the job failed with that segment's error and cause, and the execution ended
    assert job["status"] == "failed"
    assert job["error"]["error"] == "InjectedFault"
    assert job["error"]["cause"].startswith("segment 00001: ")
    sfn = local_cloud.client("stepfunctions")
    arn = job["execution_arn"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"


@pytest.mark.parametrize(
    ("body", "cause"), [(b"this is not a video\n" * 10, "not a video"), (b"", "empty upload")]
)
def test_non_video_upload_fails_fast_with_a_clear_cause(
    local_cloud: LocalCloud, body: bytes, cause: str
) -> None:
    job_id = api(local_cloud, "POST", "/jobs", json={"kind": "stereo"})["job_id"]
    put_source(local_cloud, job_id, body)
    job = wait_finished(local_cloud, job_id)
    assert job["status"] == "failed" and job["error"]["error"] == "NotAVideo"
    assert cause in job["error"]["cause"]
    assert job.get("execution_arn") is None  # no compute was started


def test_key_outside_the_upload_shape_is_ignored(local_cloud: LocalCloud) -> None:
    # Given the number of jobs so far
    dynamodb, table = local_cloud.client("dynamodb"), local_cloud.outputs["JobsTableName"]
    before = dynamodb.scan(TableName=table, Select="COUNT")["Count"]
    # When an object lands under input/ but outside input/{job_id}/source.mp4
    local_cloud.client("s3").put_object(
        Bucket=local_cloud.outputs["InputBucketName"], Key="input/notes.txt", Body=b"hello"
    )
    time.sleep(1)
    # Then no job was created
    assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] == before


@pytest.mark.parametrize(
    "shape",
    [
        {"width": 853, "height": 480, "audio": False, "seconds": 6},
        {"width": 320, "height": 180, "variable_frame_rate": True, "seconds": 6},
        {"width": 320, "height": 180, "keyframe_seconds": 10, "seconds": 12},
    ],
    ids=["odd-853x480-no-audio", "variable-frame-rate", "10s-keyframes"],
)
def test_awkward_inputs_still_convert(local_cloud: LocalCloud, tmp_path: Path, shape: dict[str, Any]) -> None:
    clip = make_clip(tmp_path / "awkward.mp4", **shape)
    job = wait_finished(local_cloud, submit_upload(local_cloud, clip, layout="full"))
    assert job["status"] == "completed", job.get("error")
    result, source = probe(download(local_cloud, job["job_id"], tmp_path / "final.mp4")), probe(clip)
    assert abs(result["frames"] - source["frames"]) <= 1
    assert result["width"] >= 2 * source["width"] - 1
