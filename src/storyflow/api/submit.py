"""`POST /jobs`: validate, create the queued job, then either hand out its upload ticket or start its
workflow. What a kind needs comes from the registry; nothing here branches on the kind.

Invariants: nothing is written before every check passed (a refused request leaves no item and no
object); a job whose workflow could not start is marked failed, never left queued; the same caller, key
and body answer the first response.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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

from storyflow import aws, intake, keys, registry, workflows
from storyflow.errors import Conflict, TransientError
from storyflow.jobstore import JobStore
from storyflow.models import JobAccepted, JobError, JobStatus, UploadTicket
from storyflow.observability import logger, metrics
from storyflow.settings import Settings

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{8,128}$"


def submit_job(request: BaseModel, settings: Settings) -> JobAccepted:
    """Create a queued job. A kind with an upload gets a presigned POST (the upload starts it); the others
    start now."""
    workflow = registry.get(getattr(request, "kind"))  # noqa: B009 - every registered request has a kind
    store = JobStore(settings.require("jobs_table"))
    # A kind may derive the id from the caller's ids (a repeat is the same job); else a fresh one.
    job_id = workflow.job_id(request) if workflow.job_id else keys.new_job_id(workflow.kind.value)
    if workflow.check is not None:
        workflow.check(request, settings)  # BadRequest (400) before any write
    upload = workflow.upload_for(request)
    if upload is not None:
        ticket = presigned_upload(
            upload.key(job_id), upload.content_type_for(request), upload.max_bytes(request), settings
        )
        job, created = intake.create_once(store, workflow, job_id, request)
        if not created:
            return JobAccepted(
                job_id=job_id, status=job.status, upload=ticket if job.status is JobStatus.QUEUED else None
            )
        metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
        logger.info("job created; waiting for its upload", extra={"job_id": job_id, "kind": workflow.kind})
        return JobAccepted(job_id=job_id, status=JobStatus.QUEUED, upload=ticket)

    workflows.state_machine_arn(workflow, settings)  # WorkflowNotDeployed (400) before any write
    job, created = intake.create_once(store, workflow, job_id, request)
    if not created and job.status is not JobStatus.QUEUED:
        return JobAccepted(job_id=job_id, status=job.status)  # a repeat of a job that already started
    try:
        arn, _ = workflows.start(workflow, job_id, workflow.payload(job_id, request, None), settings)
    except (ClientError, BotoCoreError) as error:
        # Never leave a queued job that nothing will run: record why it failed, then answer 503. A job whose
        # id derives from the request is removed instead, so that the caller's retry really submits again.
        if workflow.job_id is not None:
            store.discard_queued(job_id)
        else:
            store.transition(
                job_id,
                JobStatus.FAILED,
                error=JobError(error="StartExecutionFailed", cause=str(error)[:1000]),
            )
        logger.exception("could not start the workflow", extra={"job_id": job_id})
        raise TransientError(f"could not start the {workflow.kind.value} workflow; try again") from error
    metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
    logger.info("job submitted", extra={"job_id": job_id, "kind": workflow.kind.value, "execution_arn": arn})
    return JobAccepted(job_id=job_id, status=JobStatus.QUEUED)


def submit_job_once(
    request: BaseModel,
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


def presigned_upload(key: str, content_type: str, max_bytes: int, settings: Settings) -> UploadTicket:
    """A presigned POST for `key` in the input bucket: size 1..max_bytes, that Content-Type only."""
    expires = settings.upload_expires_seconds
    post = signing_s3().generate_presigned_post(
        Bucket=settings.require("input_bucket"),
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
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
