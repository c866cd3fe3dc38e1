"""The end of every workflow: mark the job completed or failed and publish its event."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from storyflow import aws, inference, keys
from storyflow.errors import Conflict
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobError, JobStatus
from storyflow.observability import logger
from storyflow.settings import Settings

EVENT_SOURCE = "storyflow.jobs"
CONTAINER_ERROR = re.compile(r"^error: (?P<error>[A-Za-z][\w.]*): (?P<cause>.+)$", re.DOTALL)
MAP_ERRORS = {"States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed"}


class Failure(BaseModel):
    """A `Catch` result: what Step Functions puts at the Catch's ResultPath."""

    error: str = Field("States.Unknown", alias="Error")
    cause: str = Field("", alias="Cause")


class StatusUpdate(BaseModel):
    job_id: str = Field(pattern=keys.JOB_ID_PATTERN)
    status: Literal["completed", "failed"]
    outputs: dict[str, str] = Field(default_factory=dict)
    failure: Failure | None = None


def describe_failure(job_id: str, failure: Failure, settings: Settings) -> JobError:
    """Turn a raw Step Functions failure into the error and cause a user can act on."""
    if failure.error in MAP_ERRORS:
        segment = inference.first_failed_segment(job_id, settings)
        if segment is not None:
            index = int(segment["segment_index"])
            return JobError(error=str(segment["error"]), cause=f"segment {index:05d}: {segment['cause']}")
    try:
        cause: Any = json.loads(failure.cause)
    except ValueError:
        return JobError(error=failure.error, cause=failure.cause)
    if isinstance(cause, dict) and "errorType" in cause:  # a Lambda's error
        return JobError(error=str(cause["errorType"]), cause=str(cause.get("errorMessage", "")))
    if isinstance(cause, dict) and "Containers" in cause:  # an ECS task that stopped badly
        return _task_failure(cause)
    return JobError(error=failure.error, cause=failure.cause)


def _task_failure(task: dict[str, Any]) -> JobError:
    """Containers end with one line `error: <ErrorClass>: <message>`; the ECS agent keeps it as Reason."""
    failed = [c for c in task.get("Containers", []) if c.get("ExitCode") not in (0, None)] or task[
        "Containers"
    ]
    container = failed[0] if failed else {}
    reason = str(container.get("Reason") or task.get("StoppedReason") or "")
    match = CONTAINER_ERROR.match(reason)
    if match:
        return JobError(error=match["error"], cause=match["cause"])
    return JobError(
        error="TaskFailed",
        cause=f"container {container.get('Name')} exited with code {container.get('ExitCode')}: {reason}",
    )


def apply(update: StatusUpdate, settings: Settings) -> Job | None:
    store = JobStore(settings.require("jobs_table"))
    try:
        if update.status == "completed":
            job = store.transition(update.job_id, JobStatus.COMPLETED, stage="done", outputs=update.outputs)
        else:
            error = describe_failure(update.job_id, update.failure or Failure(), settings)
            job = store.transition(update.job_id, JobStatus.FAILED, error=error)
    except Conflict as conflict:  # e.g. cancelled meanwhile: the user's decision stands
        logger.warning("status not changed", extra={"job_id": update.job_id, "reason": conflict.message})
        return None
    publish(job, settings)
    logger.info("job finished", extra={"job_id": job.job_id, "status": job.status})
    return job


def publish(job: Job, settings: Settings) -> None:
    detail = job.model_dump(
        mode="json", include={"job_id", "kind", "status", "outputs", "error", "completed_at"}
    )
    aws.client("events").put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": f"Job {job.status.value.capitalize()}",
                "Detail": json.dumps(detail),
                "EventBusName": settings.require("event_bus_name"),
            }
        ]
    )
