"""A tts job has one work item and no Map: when it fails, the job still gets the container's typed error."""

from __future__ import annotations

from typing import Any

from storyflow import aws, inference, job_status
from storyflow.settings import Settings

JOB = "tts-20261201-0123456789ab"


def test_a_failed_single_work_item_reports_the_containers_typed_error(stack: dict[str, Any]) -> None:
    # Given the item's failure as the result function recorded it (the container answered EngineFailed)
    aws.table(stack["SEGMENTS_TABLE"]).put_item(
        Item={
            "job_id": JOB,
            "segment_index": 0,
            "status": "failed",
            "error": "EngineFailed",
            "cause": "kokoro: RuntimeError: CUDA out of memory",
        }
    )
    # When the state machine's Catch reports the task's failure (either class of InferenceFailed)
    for error in (inference.TRANSIENT_FAILURE, inference.CLIENT_FAILURE):
        failure = job_status.Failure(Error=error, Cause="item 00000: EngineFailed: kokoro: RuntimeError")
        described = job_status.describe_failure(JOB, failure, Settings.from_env())
        # Then the job's error is the container's, with the item's cause
        assert described.error == "EngineFailed"
        assert described.cause == "item 00000: kokoro: RuntimeError: CUDA out of memory"
