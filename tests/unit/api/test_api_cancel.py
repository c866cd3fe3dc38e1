"""POST /jobs/{job_id}/cancel: the job is cancelled before its execution is stopped, and its intermediates are
tagged for expiry (its finals and uploads are not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storyflow import aws, keys, workflows
from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus
from tests.unit.api.conftest import ApiResult, load_event, with_job_id

Call = Callable[[dict[str, Any]], ApiResult]
JOB_ID = "stereo-20261123-0c0c0c0c0c0c"
OTHER_JOB = "stereo-20261123-0d0d0d0d0d0d"


def _tags(bucket: str, key: str) -> dict[str, str]:
    tag_set = aws.client("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def test_cancel_marks_the_job_before_stopping_and_tags_its_intermediates(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running stereo job with segments, inferred segments and an inference request (none tagged)
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.STEREO, JOB_ID, {})
    store.transition(JOB_ID, JobStatus.RUNNING, execution_arn=f"{state_machines['stereo']}:{JOB_ID}")
    s3 = aws.client("s3")
    inputs, outputs = stack["INPUT_BUCKET"], stack["OUTPUT_BUCKET"]
    intermediate = [
        (inputs, keys.segment_key(JOB_ID, 0)),
        (inputs, keys.manifest_key(JOB_ID)),
        (inputs, keys.audio_key(JOB_ID)),
        (outputs, keys.inferred_segment_key(JOB_ID, 0)),
        (outputs, f"inference/requests/{JOB_ID}-00000-0a0b0c0d.json"),
    ]
    kept = [
        (inputs, keys.upload_key(JOB_ID)),
        (inputs, keys.segment_key(OTHER_JOB, 0)),
        (outputs, keys.inferred_segment_key(OTHER_JOB, 0)),
    ]
    for bucket, key in intermediate + kept:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # ... and a stop that records the job's status when it is called
    seen: list[JobStatus] = []
    monkeypatch.setattr(workflows, "stop", lambda execution, cause: seen.append(store.get(JOB_ID).status))

    # When it is cancelled
    result = call_api(with_job_id(load_event("api_cancel_job"), JOB_ID))

    # Then the job was already cancelled when its execution was stopped (in-flight work sees it)
    assert result.status == 200, result.body
    assert seen == [JobStatus.CANCELLED]
    # ... its intermediates are tagged to expire, and nothing else is
    for bucket, key in intermediate:
        assert _tags(bucket, key) == {keys.LIFECYCLE_TAG_KEY: keys.LIFECYCLE_TAG_INTERMEDIATE}, key
    for bucket, key in kept:
        assert _tags(bucket, key) == {}, key


def test_a_finished_job_is_not_cancelled_and_nothing_is_stopped_or_tagged(
    call_api: Call, stack: dict[str, Any], state_machines: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore(stack["JOBS_TABLE"])
    store.create(JobKind.STEREO, JOB_ID, {})
    store.transition(JOB_ID, JobStatus.RUNNING)
    store.transition(JOB_ID, JobStatus.COMPLETED, stage="done")
    aws.client("s3").put_object(Bucket=stack["INPUT_BUCKET"], Key=keys.segment_key(JOB_ID, 0), Body=b"x")
    stopped: list[str] = []
    monkeypatch.setattr(workflows, "stop", lambda execution, cause: stopped.append(execution))
    result = call_api(with_job_id(load_event("api_cancel_job"), JOB_ID))
    assert result.status == 409
    assert stopped == []
    assert _tags(stack["INPUT_BUCKET"], keys.segment_key(JOB_ID, 0)) == {}
