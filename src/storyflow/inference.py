"""Generic async inference with task tokens: a state machine waits on one *work item* per inference.

A work item names its endpoint, its input and output locations, its params, and the job and item index it
belongs to: a stereo segment is one use, a tts narration another. The submit Lambda picks the inference id,
stores the token under it *before* InvokeEndpointAsync (so even an instant result finds it), then sends a
small JSON request pointing at S3; the endpoint's SNS notification answers the token. Every token is
answered (success or failure) or expires by its state's timeout; a duplicate notification is a no-op.

Contracts: InferenceCallbacks row `{inference_id, task_token, job_id, item_index, output_uri, expires_at}`;
SegmentCompletions row per finished item (sort key `segment_index` holds the item index: renaming the key
would replace the table); the request body `{input_uri, output_uri, params}` (docs/CONTRACTS.md).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from storyflow import aws, intermediates, keys
from storyflow.errors import JobNotActive, NotFound, TransientError
from storyflow.jobstore import JobStore
from storyflow.observability import logger
from storyflow.settings import Settings

THROTTLING = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ModelNotReadyException"}
FAILURE_ERROR = "InferenceFailed"  # a failed item's token is answered with one of its two classes:
CLIENT_FAILURE = f"{FAILURE_ERROR}.Client"  # deterministic (bad input or params): fails again, never retried
TRANSIENT_FAILURE = f"{FAILURE_ERROR}.Transient"  # worth another attempt (5xx, throttled, model server gone)
# The one table of the serving library's typed errors that fail the same way on every attempt (its 4xx
# classes, containers/serving/storyflow_serving/errors.py, and the containers' subclasses of them). It decides
# only when SageMaker's failureReason carries no HTTP status; with one, 4xx (but 408, 429) is Client.
CLIENT_ERRORS = frozenset(
    {"InvalidRequest", "InvalidParams", "InputNotFound", "PayloadTooLarge", "UnprocessableInput", "NotAVideo"}
)
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
_REASON_STATUS = re.compile(r"Received (?:client|server) error \((\d{3})\)")
STALE_TOKEN = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
S3_URI_PATTERN = r"^s3://[a-z0-9.-]{3,63}/.+$"


class WorkItem(BaseModel, defer_build=True):
    """The state's payload to the submit function: one inference the state machine waits for."""

    task_token: str = Field(min_length=1)
    job_id: str = Field(pattern=keys.JOB_ID_PATTERN)
    item_index: int = Field(ge=0)
    endpoint: str = Field(pattern=ENDPOINT_NAME_PATTERN)
    input_uri: str = Field(pattern=S3_URI_PATTERN)
    output_uri: str = Field(pattern=S3_URI_PATTERN)
    params: dict[str, Any] = Field(default_factory=dict)


class AsyncNotification(BaseModel, defer_build=True):
    """What SageMaker async inference publishes to the success / error topics."""

    model_config = ConfigDict(extra="ignore")
    inference_id: str = Field(alias="inferenceId")
    invocation_status: Literal["Completed", "Failed"] = Field(alias="invocationStatus")
    failure_reason: str = Field("", alias="failureReason")
    response_parameters: dict[str, Any] = Field(default_factory=dict, alias="responseParameters")


def request_key(inference_id: str) -> str:
    return f"inference/requests/{inference_id}.json"


def submit(item: WorkItem, settings: Settings) -> str:
    """Store the item's token, then invoke its endpoint; returns the inference id. The item of a job that is
    no longer queued or running (cancelled meanwhile) is refused with JobNotActive: nothing is invoked."""
    job = _active_job_status(item.job_id, settings)
    if job is None:
        raise JobNotActive(
            f"job {item.job_id} is no longer queued or running; item {item.item_index:05d} is not submitted",
            field="job_id",
        )
    bucket = settings.require("output_bucket")
    inference_id = f"{item.job_id}-{item.item_index:05d}-{secrets.token_hex(4)}"
    body = {"input_uri": item.input_uri, "output_uri": item.output_uri, "params": item.params}
    aws.client("s3").put_object(
        Bucket=bucket,
        Key=request_key(inference_id),
        Body=json.dumps(body).encode(),
        ContentType="application/json",
        Tagging=f"{keys.LIFECYCLE_TAG_KEY}={keys.LIFECYCLE_TAG_INTERMEDIATE}",
    )
    callbacks = aws.table(settings.require("callbacks_table"))
    callbacks.put_item(
        Item={
            "inference_id": inference_id,
            "task_token": item.task_token,
            "job_id": item.job_id,
            "item_index": item.item_index,
            "output_uri": item.output_uri,
            "expires_at": int(time.time()) + settings.callback_ttl_seconds,
        }
    )
    try:
        aws.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=item.endpoint,
            InputLocation=f"s3://{bucket}/{request_key(inference_id)}",
            InferenceId=inference_id,
            ContentType="application/json",
            Accept="application/json",
            InvocationTimeoutSeconds=3600,
        )
    except ClientError as error:
        callbacks.delete_item(Key={"inference_id": inference_id})
        if aws.error_code(error) in THROTTLING:
            raise TransientError(f"endpoint {item.endpoint} is busy: {error}") from error
        raise
    logger.info(
        "inference submitted",
        extra={"inference_id": inference_id, "job_id": item.job_id, "item_index": item.item_index},
    )
    return inference_id


def _active_job_status(job_id: str, settings: Settings) -> str | None:
    """The job's status while it is queued or running; None once it is finished (or unknown)."""
    try:
        job = JobStore(settings.require("jobs_table")).get(job_id)
    except NotFound:
        return None
    return None if job.status.finished else job.status.value


def failure_class(error: str, reason: str) -> str:
    """The Step Functions error a failed item is answered with: CLIENT_FAILURE when SageMaker reports a 4xx
    (but 408/429) from the model, or, without a status, when the container's typed error is in CLIENT_ERRORS;
    TRANSIENT_FAILURE otherwise (5xx, throttling, a connection reset or a model server that went away)."""
    match = _REASON_STATUS.search(reason)
    if match is not None:
        status = int(match.group(1))
        client = 400 <= status < 500 and status not in RETRYABLE_CLIENT_STATUSES
        return CLIENT_FAILURE if client else TRANSIENT_FAILURE
    return CLIENT_FAILURE if error in CLIENT_ERRORS else TRANSIENT_FAILURE


def _failure_detail(notification: AsyncNotification) -> tuple[str, str]:
    """The container's own `{error, cause}` when it answered JSON, else SageMaker's failure reason."""
    reason = notification.failure_reason or "inference failed"
    start, end = reason.find("{"), reason.rfind("}")
    if start != -1 and end > start:
        try:
            body = json.loads(reason[start : end + 1])
            return str(body.get("error", "ModelError")), str(body.get("cause", reason))
        except ValueError:
            pass
    return "ModelError", reason


def on_notification(notification: AsyncNotification, settings: Settings) -> None:
    """Answer the token waiting on this inference, record the item's outcome, count progress once. For a job
    no longer queued or running (cancelled) nothing is recorded or counted, and a late output is tagged for
    expiry; its token is still answered (on AWS the aborted execution's token is refused: tolerated)."""
    callbacks = aws.table(settings.require("callbacks_table"))
    item = callbacks.get_item(Key={"inference_id": notification.inference_id}, ConsistentRead=True).get(
        "Item"
    )
    if item is None:
        logger.warning(
            "no waiting task for this inference (already answered?)",
            extra={"inference_id": notification.inference_id},
        )
        return
    job_id, token, output_uri = str(item["job_id"]), str(item["task_token"]), str(item["output_uri"])
    index = int(item.get("item_index", item.get("segment_index", 0)))  # rows written before the rename
    completions = aws.table(settings.require("segments_table"))
    sfn = aws.client("stepfunctions")
    active = _active_job_status(job_id, settings) is not None
    if notification.invocation_status == "Completed":
        if not active:
            intermediates.tag_uri(output_uri)
            logger.info("result of a job no longer running: not counted", extra={"job_id": job_id})
        elif _record_item(completions, job_id, index, {"status": "succeeded", "output_uri": output_uri}):
            JobStore(settings.require("jobs_table")).add_progress(job_id, only_active=True)
        result = {"item_index": index, "output_uri": output_uri}
        location = notification.response_parameters.get("outputLocation")
        if location:
            result["result_uri"] = str(location)
        _answer(lambda: sfn.send_task_success(taskToken=token, output=json.dumps(result)))
    else:
        error, cause = _failure_detail(notification)
        if active:
            _record_item(
                completions, job_id, index, {"status": "failed", "error": error, "cause": cause[:2000]}
            )
        kind = failure_class(error, notification.failure_reason)
        _answer(
            lambda: sfn.send_task_failure(
                taskToken=token, error=kind, cause=f"item {index:05d}: {error}: {cause}"[:32000]
            )
        )
    callbacks.delete_item(Key={"inference_id": notification.inference_id})
    logger.info(
        "inference answered",
        extra={"job_id": job_id, "item_index": index, "status": notification.invocation_status},
    )


def _record_item(completions: Any, job_id: str, index: int, values: dict[str, Any]) -> bool:
    """Write the item's outcome; True when this is its first success (so progress counts it once)."""
    row = {"job_id": job_id, "segment_index": index, "updated_at": int(time.time()), **values}
    if values["status"] != "succeeded":
        completions.put_item(Item=row)
        return False
    try:
        completions.put_item(
            Item=row,
            ConditionExpression="attribute_not_exists(job_id) OR #s <> :ok",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":ok": "succeeded"},
        )
    except ClientError as error:
        if aws.error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _answer(call: Any) -> None:
    """Answer a token; one that timed out or was already answered is logged, not retried forever."""
    try:
        call()
    except ClientError as error:
        if aws.error_code(error) in STALE_TOKEN:
            logger.warning("task token no longer waiting", extra={"error": str(error)})
            return
        raise


def first_failed_item(job_id: str, settings: Settings) -> dict[str, Any] | None:
    """The lowest-index failed item of a job (what a failed Map reports as the job's error): a dict with
    `segment_index` (the item index), `error` and `cause`."""
    page = aws.table(settings.require("segments_table")).query(
        KeyConditionExpression="job_id = :j",
        FilterExpression="#s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":j": job_id, ":failed": "failed"},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = page.get("Items", [])
    return min(items, key=lambda i: int(i["segment_index"])) if items else None
