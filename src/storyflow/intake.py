"""Queue intake, generic over job kinds: SQS messages (raw, or SNS-wrapped when a topic feeds the queue)
become jobs, and a job whose id derives from the caller's own ids is created once however often its
message arrives.

A kind takes a queue through its registry entry: `message` (queue message → request body) and `job_id`
(the deterministic id, e.g. from parent_id + task_id). The intake function of a kind (`functions/intake`,
`JOB_KIND` in its environment) runs `process` under a Powertools BatchProcessor with partial batch
failures. Per message:

- valid → the job is created (or found: a redelivery) and its execution started, named by the job id, so
  a duplicate never starts a second execution (nor a second GPU task);
- invalid but naming its ids → a job failed with `InvalidRequest` and the reason: recorded, not retried;
- not even that (not JSON, no usable ids) → the message goes to the dead-letter queue at once with the
  reason (`DEAD_LETTER_QUEUE_URL`), not retried;
- a transient failure (throttling, StartExecution unavailable) → the message fails and comes back; after
  the queue's maxReceiveCount it lands in the dead-letter queue (alarmed).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from storyflow import aws, registry, workflows
from storyflow.errors import BadRequest, Conflict, StoryflowError
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobError, JobKind, JobStatus
from storyflow.observability import logger, metrics
from storyflow.registry import Workflow
from storyflow.settings import Settings

MAX_CAUSE = 1000


class Unrecordable(StoryflowError):
    """A message that names no job (not JSON, not an object, no valid ids): it goes to the DLQ."""


def unwrap(body: str) -> dict[str, Any]:
    """The message itself from an SQS body: the JSON object, or the `Message` of an SNS notification."""
    try:
        value = json.loads(body)
    except ValueError as error:
        raise Unrecordable(f"the message body is not JSON: {error}") from error
    if (
        isinstance(value, dict)
        and value.get("Type") == "Notification"
        and isinstance(value.get("Message"), str)
    ):
        try:
            value = json.loads(value["Message"])
        except ValueError as error:
            raise Unrecordable(f"the SNS notification's Message is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise Unrecordable(f"the message must be a JSON object, got {type(value).__name__}")
    return value


def _reason(error: ValidationError) -> tuple[str, str | None]:
    """One line naming each bad field, and the first field's name."""
    parts, first = [], None
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "body"
        first = first or field
        parts.append(f"{field}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)[:MAX_CAUSE], first


def create_once(store: JobStore, workflow: Workflow, job_id: str, request: BaseModel) -> tuple[Job, bool]:
    """Create the job, or find it when its id derives from the request (a duplicate): (job, created now?).
    The same ids with other parameters are a Conflict naming the id field: the first job stands."""
    body = request.model_dump(mode="json")
    try:
        return store.create(workflow.kind, job_id, body), True
    except Conflict:
        if workflow.job_id is None:
            raise
    existing = store.get(job_id)
    if existing.request != body:
        raise Conflict(
            f"job {job_id} was already submitted for these ids with other parameters; the first stands",
            field="task_id",
        )
    logger.info("duplicate submission: the job exists", extra={"job_id": job_id, "status": existing.status})
    return existing, False


def start_if_queued(workflow: Workflow, job: Job, request: BaseModel, settings: Settings) -> bool:
    """Start a queued job's execution unless it waits for an upload; idempotent (named by the job id)."""
    if job.status is not JobStatus.QUEUED or workflow.upload_for(request) is not None:
        return False
    workflows.start(workflow, job.job_id, workflow.payload(job.job_id, request, None), settings)
    return True


def submit_message(workflow: Workflow, message: dict[str, Any], settings: Settings) -> str:
    """One queue message → its job (created once, started once). Returns the job id."""
    if workflow.message is None or workflow.job_id is None:
        raise RuntimeError(f"kind {workflow.kind.value} takes no queue messages (no message/job_id rule)")
    body = workflow.message(message)
    store = JobStore(settings.require("jobs_table"))
    try:
        request = workflow.request.model_validate(body)
        if workflow.check is not None:
            workflow.check(request, settings)
    except (ValidationError, BadRequest) as invalid:
        return _record_invalid(workflow, body, invalid, store)
    job_id = workflow.job_id(request)
    try:
        job, created = create_once(store, workflow, job_id, request)
    except Conflict as conflict:
        logger.warning(
            "duplicate ids with other parameters; ignored", extra={"job_id": job_id, "why": conflict.message}
        )
        metrics.add_metric(name="IntakeDuplicates", unit="Count", value=1)
        return job_id
    if not created:
        metrics.add_metric(name="IntakeDuplicates", unit="Count", value=1)
    started = start_if_queued(workflow, job, request, settings)
    if created:
        metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
    logger.info("queued message taken", extra={"job_id": job_id, "new_job": created, "started": started})
    return job_id


def _record_invalid(
    workflow: Workflow, body: dict[str, Any], invalid: ValidationError | BadRequest, store: JobStore
) -> str:
    """A failed job with the reason, when the message's ids name one; else Unrecordable (→ DLQ)."""
    if isinstance(invalid, ValidationError):
        cause, field = _reason(invalid)
    else:
        cause, field = invalid.message[:MAX_CAUSE], invalid.field
    try:
        probe = workflow.request.model_construct(**body)
        job_id = workflow.job_id(probe) if workflow.job_id else None
    except Exception:  # the ids themselves are unusable
        job_id = None
    if job_id is None:
        raise Unrecordable(f"invalid message and no usable ids to record it under: {cause}")
    try:
        store.create(workflow.kind, job_id, body)
    except Conflict:
        logger.info("invalid duplicate of an existing job; ignored", extra={"job_id": job_id})
        return job_id
    store.transition(job_id, JobStatus.FAILED, error=JobError(error="InvalidRequest", cause=cause))
    metrics.add_metric(name="IntakeInvalid", unit="Count", value=1)
    logger.warning("invalid message recorded as a failed job", extra={"job_id": job_id, "field": field})
    return job_id


def dead_letter(body: str, reason: str, settings: Settings) -> None:
    """Send an unrecordable message to the dead-letter queue with its reason (then it is deleted)."""
    url = settings.require("dead_letter_queue_url")
    aws.client("sqs").send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={"storyflow-error": {"DataType": "String", "StringValue": reason[:MAX_CAUSE]}},
    )
    metrics.add_metric(name="IntakeDeadLettered", unit="Count", value=1)
    logger.warning("message sent to the dead-letter queue", extra={"reason": reason[:MAX_CAUSE]})


def process_record(kind: JobKind | str, body: str, settings: Settings) -> str | None:
    """One SQS record's body: its job id, or None when it went to the dead-letter queue. Raises on what
    is worth retrying (the BatchProcessor reports that message as failed)."""
    workflow = registry.get(kind)
    try:
        return submit_message(workflow, unwrap(body), settings)
    except Unrecordable as unrecordable:
        dead_letter(body, unrecordable.message, settings)
        return None
