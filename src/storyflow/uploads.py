"""An upload of `input/{job_id}/{name}` starts its job's workflow, exactly once per job.

Which kind waits for which file name is the registry's; this module only checks the upload and starts
the execution (named by the job id, so a redelivered event is a no-op).
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from pydantic import ValidationError

from storyflow import aws, registry, workflows
from storyflow.errors import NotFound
from storyflow.jobstore import JobStore
from storyflow.keys import S3Location
from storyflow.models import JobError, JobStatus
from storyflow.observability import logger
from storyflow.registry import Upload
from storyflow.settings import Settings

HEAD_BYTES = 16


def _check_upload(
    bucket: str, key: str, upload: Upload, max_bytes: int, ticketed: bool, required_type: str = ""
) -> tuple[str, str] | None:
    """(error, cause) when the object breaks its ticket's rules, else None. S3 enforces the presigned POST's
    conditions, but an object can also be put with other credentials: the size and type are checked here
    (the type only for a `ticketed` job: a direct upload had no ticket naming one; its bytes are sniffed)."""
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=bucket, Key=key)
    size, content_type = int(head.get("ContentLength", 0)), str(head.get("ContentType", ""))
    if size > max_bytes:
        return "UploadTooLarge", f"the upload is {size} bytes; its ticket allows at most {max_bytes}"
    if ticketed and size and content_type.split(";", 1)[0].strip().lower() != required_type:
        return (
            "InvalidUpload",
            f"the upload's Content-Type is {content_type!r}; {required_type} is required",
        )
    first = (
        s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"].read()
        if size
        else b""
    )
    refused = upload.check(first, size)
    return (upload.refused_as, refused) if refused else None


def on_source_uploaded(bucket: str, raw_key: str, size: int, settings: Settings) -> str | None:
    """Start the job's execution; returns the job id, or None when the key is not an upload."""
    key = unquote_plus(raw_key)
    found = registry.for_upload_key(key)
    if bucket != settings.input_bucket or found is None:
        logger.info("ignored: not an upload key", extra={"bucket": bucket, "key": key[:300]})
        return None
    workflow, job_id = found
    upload = workflow.upload
    assert upload is not None  # for_upload_key only answers kinds that take an upload
    store = JobStore(settings.require("jobs_table"))
    ticketed = True
    try:
        job = store.get(job_id)
    except NotFound:
        ticketed = False
        # Uploaded straight to S3 (not through POST /jobs): the job is created with default parameters.
        try:
            defaults = workflow.request().model_dump(mode="json")
        except ValidationError:  # a kind whose request has required fields needs its job first
            logger.info("ignored: an upload with no job, and the kind has no defaults", extra={"key": key})
            return None
        job = store.create(workflow.kind, job_id, defaults)
        logger.info("job created for a direct upload", extra={"job_id": job_id, "kind": workflow.kind})
    if job.kind is not workflow.kind or job.status is not JobStatus.QUEUED:
        logger.info(
            "ignored: not a queued job waiting for this upload",
            extra={"job_id": job_id, "kind": job.kind, "status": job.status},
        )
        return None
    request = workflow.request.model_validate(job.request)
    try:
        problem = _check_upload(
            bucket, key, upload, upload.max_bytes(request), ticketed, upload.content_type_for(request)
        )
    except ClientError as error:
        if aws.error_code(error) not in aws.OBJECT_MISSING:
            raise
        problem = "SourceMissing", f"the upload {key} was deleted before its job could start"
    if problem:
        error_name, cause = problem
        store.transition(job_id, JobStatus.FAILED, error=JobError(error=error_name, cause=cause))
        logger.warning("upload rejected", extra={"job_id": job_id, "error": error_name, "cause": cause})
        return job_id
    workflows.start(workflow, job_id, workflow.payload(job_id, request, S3Location(bucket, key)), settings)
    return job_id
