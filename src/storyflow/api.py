"""The jobs API's logic and data access; each route of `functions/api/app.py` calls one function here.

Every function validates before it writes: a refused request leaves no item and no object behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from storyflow import aws, keys, workflows
from storyflow.errors import Conflict, PayloadTooLarge, StoryflowError, TransientError
from storyflow.jobstore import JobStore
from storyflow.models import (
    Job,
    JobAccepted,
    JobError,
    JobKind,
    JobOutputs,
    JobPage,
    JobRequest,
    JobStatus,
    StereoRequest,
    UploadTicket,
)
from storyflow.observability import logger, metrics
from storyflow.settings import Settings

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{8,128}$"
_SOURCES = ("body", "path", "query", "header", "cookie")
_KIND_TAGS = frozenset(kind.value for kind in JobKind)


class ApiError(BaseModel):
    """Every 4xx/5xx body: what went wrong, and the request field it concerns (when there is one)."""

    message: str
    field: str | None = None


class Health(BaseModel):
    status: str = "ok"


# ---------------------------------------------------------------- request checks
def body_size(body: str | None, is_base64_encoded: bool = False) -> int:
    if not body:
        return 0
    if is_base64_encoded:
        return len(body) * 3 // 4
    return len(body.encode())


def check_body_size(body: str | None, is_base64_encoded: bool = False) -> None:
    size = body_size(body, is_base64_encoded)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"request body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes "
            "(media goes through the presigned upload, never the API)",
            field="body",
        )


def _field_path(loc: Sequence[Any]) -> str:
    """('body', 'video', 'num_videos') -> 'num_videos'; ('body', 'scenes', 0, 'x') -> 'scenes.0.x'."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if source == "body" and len(parts) > 1 and parts[0] in _KIND_TAGS:
        parts.pop(0)  # the discriminated union's tag, not a field the client sent
    return ".".join(str(part) for part in parts) or (source or "request")


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """A readable message naming every failing field, and the first field (pydantic's input is not echoed)."""
    messages: list[str] = []
    fields: list[str] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            position = loc[1] if len(loc) > 1 else "?"
            field, message = "body", f"body: malformed JSON ({reason} at position {position})"
        elif kind in {"union_tag_invalid", "union_tag_not_found"}:
            expected = ", ".join(sorted(_KIND_TAGS))
            field = "kind"
            message = f"kind: must be one of {expected}" + (
                " (missing)"
                if kind == "union_tag_not_found"
                else f", got {error.get('ctx', {}).get('tag')!r}"
            )
        elif kind == "model_attributes_type" and _field_path(loc) == "body":
            field, message = "body", "body: must be a JSON object"
        else:
            field = _field_path(loc)
            message = f"{field}: {error.get('msg', 'invalid value')}"
        fields.append(field)
        messages.append(message)
    return "; ".join(messages) or "invalid request", (fields[0] if fields else None)


# ---------------------------------------------------------------- routes
def submit_job(request: JobRequest, settings: Settings) -> JobAccepted:
    """Create a queued job. Stereo gets a presigned upload (the upload starts it); others start now."""
    store = JobStore(settings.require("jobs_table"))
    job_id = keys.new_job_id(request.kind.value)
    if isinstance(request, StereoRequest):
        ticket = presigned_upload(job_id, request.max_upload_bytes, settings)  # signs locally, no call
        store.create(request.kind, job_id, request.model_dump(mode="json"))
        metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
        logger.info("stereo job created; waiting for its upload", extra={"job_id": job_id})
        return JobAccepted(job_id=job_id, status=JobStatus.QUEUED, upload=ticket)

    workflows.state_machine_arn(request.kind, settings)  # WorkflowNotDeployed (400) before any write
    store.create(request.kind, job_id, request.model_dump(mode="json"))
    payload = {"job_id": job_id, "request": request.model_dump(mode="json")}
    try:
        arn, _ = workflows.start(request.kind, job_id, payload, settings)
    except (ClientError, BotoCoreError) as error:
        # Never leave a queued job that nothing will run: record why it failed, then answer 503.
        store.transition(
            job_id, JobStatus.FAILED, error=JobError(error="StartExecutionFailed", cause=str(error)[:1000])
        )
        logger.exception("could not start the workflow", extra={"job_id": job_id})
        raise TransientError(f"could not start the {request.kind.value} workflow; try again") from error
    metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
    logger.info("job submitted", extra={"job_id": job_id, "kind": request.kind.value, "execution_arn": arn})
    return JobAccepted(job_id=job_id, status=JobStatus.QUEUED)


def submit_job_once(
    request: JobRequest,
    idempotency_key: str | None,
    caller: str,
    settings: Settings,
    lambda_context: Any = None,
) -> JobAccepted:
    """`submit_job`, made safe to retry by an Idempotency-Key: the same key with the same body answers the
    first response (the same job, the same upload ticket) until that ticket expires; with another body it is
    a 409. A submission that failed (e.g. 503) leaves no record, so its retry really submits again.
    Keys are the `caller`'s own: another caller's equal key is another submission."""
    if idempotency_key is None:
        return submit_job(request, settings)
    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.upload_expires_seconds,
    )
    if lambda_context is not None:  # an invocation that dies mid-way frees its key when the Lambda times out
        config.register_lambda_context(lambda_context)
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.require("idempotency_table"), boto3_client=aws.client("dynamodb")
    )

    def submit(submission: dict[str, Any]) -> JobAccepted:
        return submit_job(request, settings)

    submit_once: Callable[..., JobAccepted] = idempotent_function(
        data_keyword_argument="submission",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(JobAccepted),
    )(submit)
    try:
        submission = {"key": f"{caller}|{idempotency_key}", "request": request.model_dump(mode="json")}
        return submit_once(submission=submission)
    except IdempotencyValidationError as error:
        raise Conflict(
            f"{IDEMPOTENCY_KEY_HEADER} {idempotency_key!r} was already used with a different request",
            field=IDEMPOTENCY_KEY_HEADER,
        ) from error
    except IdempotencyAlreadyInProgressError as error:
        raise Conflict(
            f"a request with {IDEMPOTENCY_KEY_HEADER} {idempotency_key!r} is still in progress; "
            "retry shortly",
            field=IDEMPOTENCY_KEY_HEADER,
        ) from error


def presigned_upload(job_id: str, max_bytes: int, settings: Settings) -> UploadTicket:
    """A presigned POST for `input/{job_id}/source.mp4`: size 1..max_bytes, Content-Type video/mp4 only."""
    key = keys.upload_key(job_id)
    expires = settings.upload_expires_seconds
    post = signing_s3().generate_presigned_post(
        Bucket=settings.require("input_bucket"),
        Key=key,
        Fields={"Content-Type": keys.SOURCE_CONTENT_TYPE},
        Conditions=[
            {"Content-Type": keys.SOURCE_CONTENT_TYPE},
            ["content-length-range", 1, max_bytes],
        ],
        ExpiresIn=expires,
    )
    return UploadTicket(
        url=post["url"], fields=post["fields"], key=key, max_bytes=max_bytes, expires_in=expires
    )


def signing_s3() -> Any:
    """An S3 client for presigning: SigV4 (SigV2 is refused by buckets made since 2020) and the bucket's
    regional virtual-host endpoint (the global one can redirect a POST), unless AWS_ENDPOINT_URL is set."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return _signing_s3(region, os.environ.get("AWS_ENDPOINT_URL"))


@lru_cache(maxsize=8)
def _signing_s3(region: str, endpoint_url: str | None) -> Any:
    if endpoint_url is None:
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        endpoint_url = f"https://s3.{region}.{suffix}"
        config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    else:
        config = Config(signature_version="s3v4")
    session: Any = boto3.session.Session()
    return session.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def get_job(job_id: str, settings: Settings) -> Job:
    return JobStore(settings.require("jobs_table")).get(keys.check_job_id(job_id))


def list_jobs(status: JobStatus, limit: int, next_token: str | None, settings: Settings) -> JobPage:
    items, token = JobStore(settings.require("jobs_table")).list(status, limit, next_token or None)
    return JobPage(items=items, next=token)


def cancel_job(job_id: str, settings: Settings) -> Job:
    """queued/running -> stop the execution (if any) -> cancelled. A finished job is a 409."""
    store = JobStore(settings.require("jobs_table"))
    job = store.get(keys.check_job_id(job_id))
    if job.status.finished:
        raise Conflict(f"job {job_id} is already {job.status.value}; it cannot be cancelled", field="status")
    execution = job.execution_arn or _expected_execution(job, settings)
    if execution:
        workflows.stop(execution, cause="cancelled through the API")
    cancelled = store.transition(job_id, JobStatus.CANCELLED)
    metrics.add_metric(name="JobsCancelled", unit="Count", value=1)
    logger.info("job cancelled", extra={"job_id": job_id, "execution_arn": execution})
    return cancelled


def _expected_execution(job: Job, settings: Settings) -> str | None:
    """The execution a start would have created (named by the job id), when the kind has a workflow."""
    try:
        machine = workflows.state_machine_arn(job.kind, settings)
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
