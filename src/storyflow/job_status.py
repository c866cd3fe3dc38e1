"""The end of every workflow: mark the job completed or failed and publish its event."""

from __future__ import annotations

import json
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storyflow import aws, children, inference, keys
from storyflow.errors import Conflict, StoryflowError
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobError, JobStatus
from storyflow.observability import logger
from storyflow.settings import Settings

EVENT_SOURCE = "storyflow.jobs"
MAP_ERRORS = {"States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed"}
MAX_CAUSE = 4000  # what a job keeps of a cause: enough to act on, small enough for every item


class Failure(BaseModel, defer_build=True):
    """A `Catch` result: what Step Functions puts at the Catch's ResultPath. `Step` is added by the
    state machine for an ECS step (a Pass after the Catch): the step whose error.json tells the error."""

    error: str = Field("States.Unknown", alias="Error")
    cause: str = Field("", alias="Cause")
    step: str | None = Field(None, alias="Step", pattern=keys.STEP_PATTERN)


class StatusUpdate(BaseModel, defer_build=True):
    job_id: str = Field(pattern=keys.JOB_ID_PATTERN)
    status: Literal["completed", "failed"]
    outputs: dict[str, str] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)  # e.g. a video's real size, from its result.json
    # A completed ECS step whose result.json holds the outputs (`outputs`) and the rest of the result.
    result_step: str | None = Field(None, pattern=keys.STEP_PATTERN)
    failure: Failure | None = None


class StepError(BaseModel, defer_build=True):
    """A container's `jobs/{job_id}/steps/{step}/error.json` (see keys.step_error_key)."""

    model_config = ConfigDict(extra="ignore")

    error: str = Field(min_length=1, max_length=200)
    message: str = ""


def describe_failure(job_id: str, failure: Failure, settings: Settings) -> JobError:
    """Turn a raw Step Functions failure into the error and cause a user can act on."""
    # A failed Map of work items, or one work item's own failure (a tts narration): the item's typed error.
    if failure.error in MAP_ERRORS or failure.error.startswith(inference.FAILURE_ERROR):
        item = inference.first_failed_item(job_id, settings)
        if item is not None:
            index = int(item["segment_index"])
            return JobError(error=str(item["error"]), cause=_clip(f"item {index:05d}: {item['cause']}"))
    try:
        cause: Any = json.loads(failure.cause)
    except ValueError:
        return JobError(error=failure.error, cause=_clip(failure.cause))
    if isinstance(cause, dict) and "errorType" in cause:  # a Lambda's error
        return JobError(error=str(cause["errorType"]), cause=_clip(str(cause.get("errorMessage", ""))))
    if isinstance(cause, dict) and "Containers" in cause:  # an ECS task that stopped badly
        return _task_failure(job_id, failure.step, cause, settings)
    return JobError(error=failure.error, cause=_clip(failure.cause))


def failed_child(store: JobStore, job_id: str) -> JobError | None:
    """A parent (a story) fails with its first failed child's error, naming the child and its scene: a
    nested execution's failure reaches the parent only as a Map's or a task's generic error. None when
    the job has no child that failed (its own failure is then described)."""
    job = store.get(job_id)
    return child_error(job, _children_of(store, job))


def _children_of(store: JobStore, job: Job) -> dict[str, Job]:
    """The job's listed children as the table has them now (one BatchGetItem; none without children)."""
    return store.get_many([child.job_id for child in job.children]) if job.children else {}


def child_error(job: Job, children: dict[str, Job]) -> JobError | None:
    """:func:`failed_child` over children already read."""
    if not job.children:
        return None
    # The first failed child, in scene order; only without one, the first cancelled child.
    ordered = sorted(
        (c for c in job.children if c.job_id in children),
        key=lambda c: children[c.job_id].status is not JobStatus.FAILED,
    )
    for child in ordered:
        found = children[child.job_id]
        if found.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            continue
        what = f"scene {child.scene}: " if child.scene is not None else ""
        if found.status is JobStatus.CANCELLED:
            return JobError(
                error="ChildJobCancelled", cause=f"{what}{child.kind.value} job {child.job_id} was cancelled"
            )
        error = found.error or JobError(error="ChildJobFailed")
        return JobError(
            error=error.error,
            cause=_clip(f"{what}{child.kind.value} job {child.job_id} failed: {error.cause or error.error}"),
        )
    return None


def _task_failure(job_id: str, step: str | None, task: dict[str, Any], settings: Settings) -> JobError:
    """The step's own error.json when the container left one; else what ECS says (exit code, stop
    reason): on AWS a stopped task never carries the container's stderr."""
    reported = read_step_error(job_id, step, settings) if step else None
    if reported is not None:
        return JobError(error=reported.error, cause=_clip(reported.message or reported.error))
    containers = [c for c in task.get("Containers") or [] if isinstance(c, dict)]
    failed = [c for c in containers if c.get("ExitCode") not in (0, None)] or containers
    container = failed[0] if failed else {}
    what = f"step {step}: " if step else ""
    code = container.get("ExitCode")
    ran = f"exited with code {code}" if code is not None else "did not run"
    reasons = [str(r) for r in (task.get("StoppedReason"), container.get("Reason")) if r]
    detail = "; ".join(dict.fromkeys(reasons)) or str(task.get("StopCode") or "no reason given")
    return JobError(
        error="TaskFailed",
        cause=_clip(f"{what}container {container.get('Name', '?')} {ran}: {detail} (no error.json)"),
    )


def read_step_error(job_id: str, step: str, settings: Settings) -> StepError | None:
    """`jobs/{job_id}/steps/{step}/error.json` from the output bucket, or None when there is none or it
    cannot be read (the caller then reports what ECS said; a job is never left unmarked over this)."""
    bucket = settings.require("output_bucket")
    key = keys.step_error_key(job_id, step)
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if aws.error_code(error) not in aws.OBJECT_MISSING:
            logger.warning("step error unreadable", extra={"key": key, "error": aws.error_code(error)})
        return None
    try:
        return StepError.model_validate_json(body)
    except ValidationError as invalid:
        logger.warning("step error malformed", extra={"key": key, "reason": str(invalid)[:500]})
        return None


class StepResultMissing(StoryflowError):
    """A completed step left no readable result.json: the job cannot be marked completed."""


def read_step_result(job_id: str, step: str, settings: Settings) -> tuple[dict[str, str], dict[str, Any]]:
    """`jobs/{job_id}/steps/{step}/result.json` (output bucket) as (outputs, the rest of the result)."""
    key = keys.step_result_key(job_id, step)
    try:
        body = aws.client("s3").get_object(Bucket=settings.require("output_bucket"), Key=key)["Body"].read()
        document = json.loads(body)
    except (ClientError, ValueError) as error:
        raise StepResultMissing(f"step {step} left no readable {key}: {error}") from error
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, dict) or not all(isinstance(v, str) for v in outputs.values()):
        raise StepResultMissing(f"{key} has no outputs object of URIs")
    rest = {k: v for k, v in document.items() if k not in {"outputs", "job_id", "step"}}
    return {str(k): v for k, v in outputs.items()}, rest


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"


def apply(update: StatusUpdate, settings: Settings) -> Job | None:
    store = JobStore(settings.require("jobs_table"))
    try:
        if update.status == "completed" and update.result_step:
            outputs, result = read_step_result(update.job_id, update.result_step, settings)
            update = update.model_copy(
                update={
                    "outputs": {**outputs, **update.outputs},
                    "result": {**result, **update.result},
                }
            )
        if update.status == "completed":
            job = store.transition(
                update.job_id, JobStatus.COMPLETED, stage="done", outputs=update.outputs, result=update.result
            )
        else:
            failure = update.failure or Failure()
            # The children are read once: for the error, then for cancelling the unfinished ones (each a
            # conditional write, so one that finished since it was read keeps its own end).
            parent = store.get(update.job_id)
            found = _children_of(store, parent)
            error = child_error(parent, found) or describe_failure(update.job_id, failure, settings)
            job = store.transition(update.job_id, JobStatus.FAILED, error=error)
            children.cancel_unfinished(store, job, found=found)
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
