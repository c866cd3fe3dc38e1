"""Upload tickets expire: a queued job whose upload never came is failed (`UploadExpired`), never left queued.

A scheduled sweep lists queued jobs created more than the ticket's lifetime (plus a grace for clock skew and
in-flight uploads) ago, and fails each one of a kind that waits for an upload whose object is absent.

Invariants: the transition is conditional on the job still being queued, so a job that the upload started
meanwhile, or that was cancelled, keeps its status; a job whose object exists is left for on_upload (its
event may be late), never failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from botocore.exceptions import ClientError
from pydantic import ValidationError

from storyflow import aws, registry
from storyflow.errors import Conflict
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobError, JobStatus
from storyflow.observability import logger
from storyflow.settings import Settings

GRACE_SECONDS = 60


def expire_uploads(settings: Settings, now: float) -> list[str]:
    """Fail every overdue queued upload job; returns their job ids."""
    store = JobStore(settings.require("jobs_table"))
    cutoff = now - settings.upload_expires_seconds - GRACE_SECONDS
    expired: list[str] = []
    for job in _queued_before(store, cutoff):
        upload = _waits_for(job)
        if upload is None or _uploaded(settings.require("input_bucket"), upload.key(job.job_id)):
            continue
        deadline = dt.datetime.fromtimestamp(job.created_at + settings.upload_expires_seconds, dt.UTC)
        error = JobError(
            error="UploadExpired",
            cause=f"no upload arrived before its ticket expired at {deadline:%Y-%m-%dT%H:%M:%SZ} "
            f"({settings.upload_expires_seconds} s after the job was created)",
        )
        try:
            store.transition(job.job_id, JobStatus.FAILED, error=error)
        except Conflict:
            continue  # started or cancelled meanwhile: that stands
        logger.info("upload expired; job failed", extra={"job_id": job.job_id, "kind": job.kind})
        expired.append(job.job_id)
    return expired


def _queued_before(store: JobStore, cutoff: float) -> Iterator[Job]:
    token: str | None = None
    while True:
        jobs, token = store.list(JobStatus.QUEUED, 100, token, created_before=cutoff)
        yield from jobs
        if token is None:
            return


def _waits_for(job: Job) -> registry.Upload | None:
    """The upload this queued job waits for (None: it starts without one, e.g. video without an image)."""
    workflow = registry.get(job.kind)
    if workflow.upload is None:
        return None
    try:
        request = workflow.request.model_validate(job.request)
    except ValidationError:
        return None  # not a request this API wrote: no ticket was issued for it
    return workflow.upload_for(request)


def _uploaded(bucket: str, key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if aws.error_code(error) in aws.OBJECT_MISSING:
            return False
        raise
    return True
