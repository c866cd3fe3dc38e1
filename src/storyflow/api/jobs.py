"""Reading, listing and cancelling jobs, and presigning a completed job's outputs."""

from __future__ import annotations

from storyflow import children, intermediates, keys, registry, workflows
from storyflow.api.submit import signing_s3
from storyflow.errors import Conflict, StoryflowError
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobOutputs, JobPage, JobStatus
from storyflow.observability import logger, metrics
from storyflow.settings import Settings


def get_job(job_id: str, settings: Settings) -> Job:
    return JobStore(settings.require("jobs_table")).get(keys.check_job_id(job_id))


def list_jobs(status: JobStatus, limit: int, next_token: str | None, settings: Settings) -> JobPage:
    items, token = JobStore(settings.require("jobs_table")).list(status, limit, next_token or None)
    return JobPage(items=items, next=token)


def cancel_job(job_id: str, settings: Settings) -> Job:
    """queued/running -> cancelled -> stop the execution (if any) -> tag the job's intermediates for expiry.
    A finished job is a 409.

    The job is marked first, so whatever of its work is still in flight sees it cancelled: the submit
    function refuses its work items and the result function counts nothing more. Stopping the execution
    (ABORTED) stops its states, its `.sync` ECS tasks and invalidates its task tokens; the tagging covers
    what exists now, and the result function tags the output of an inference that finishes later.
    """
    store = JobStore(settings.require("jobs_table"))
    job = store.get(keys.check_job_id(job_id))
    if job.status.finished:
        raise Conflict(f"job {job_id} is already {job.status.value}; it cannot be cancelled", field="status")
    cancelled = store.transition(job_id, JobStatus.CANCELLED)
    execution = _stop_work(job, settings, "cancelled through the API")
    children.cancel_unfinished(
        store, job, lambda child: _stop_work(child, settings, "its story was cancelled through the API")
    )
    metrics.add_metric(name="JobsCancelled", unit="Count", value=1)
    logger.info("job cancelled", extra={"job_id": job_id, "execution_arn": execution})
    return cancelled


def _stop_work(job: Job, settings: Settings, cause: str) -> str | None:
    """A cancelled job's work stopped: its execution (if any; returned) and its intermediates tagged."""
    execution = job.execution_arn or _expected_execution(job, settings)
    if execution:
        workflows.stop(execution, cause=cause)
    intermediates.tag_job(job.job_id, settings)
    return execution


def _expected_execution(job: Job, settings: Settings) -> str | None:
    """The execution a start would have created (named by the job id), when the kind has a workflow."""
    try:
        machine = workflows.state_machine_arn(registry.get(job.kind), settings)
    except StoryflowError:
        return None
    return workflows.execution_arn(machine, job.job_id)


def job_outputs(job_id: str, settings: Settings) -> JobOutputs:
    """Presigned GETs for every output of a completed job (only objects of this stack's output bucket)."""
    job = get_job(job_id, settings)
    if job.status is not JobStatus.COMPLETED:
        raise Conflict(
            f"job {job_id} is {job.status.value}; outputs exist once it is completed", field="status"
        )
    bucket = settings.require("output_bucket")
    expires = settings.download_expires_seconds
    s3 = signing_s3()
    urls: dict[str, str] = {}
    for name, uri in sorted(job.outputs.items()):
        try:
            location = keys.S3Location.parse(uri)
        except StoryflowError:
            logger.warning("output is not an s3 URI; skipped", extra={"job_id": job_id, "output": name})
            continue
        if location.bucket != bucket:
            logger.warning(
                "output outside the output bucket; skipped", extra={"job_id": job_id, "output": name}
            )
            continue
        urls[name] = s3.generate_presigned_url(
            "get_object", Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=expires
        )
    return JobOutputs(job_id=job.job_id, status=job.status, outputs=urls, expires_in=expires)
