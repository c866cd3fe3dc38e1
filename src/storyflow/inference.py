"""Async inference with task tokens: submit a segment, answer its token from the endpoint's notification.

The token is stored under the inference id *before* InvokeEndpointAsync, so even an instant result
finds it; every token is answered (success, failure) or expires by the state's timeout.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from storyflow import aws, keys
from storyflow.errors import TransientError
from storyflow.jobstore import JobStore
from storyflow.observability import logger
from storyflow.settings import Settings

THROTTLING = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ModelNotReadyException"}
FAILURE_ERROR = "InferenceFailed"


class SegmentRequest(BaseModel):
    """The Map item's payload to the submit function."""

    task_token: str = Field(min_length=1)
    job_id: str = Field(pattern=keys.JOB_ID_PATTERN)
    segment_index: int = Field(ge=0)
    input_uri: str = Field(pattern=r"^s3://")
    params: dict[str, Any] = Field(default_factory=dict)


class AsyncNotification(BaseModel):
    """What SageMaker async inference publishes to the success / error topics."""

    model_config = ConfigDict(extra="ignore")
    inference_id: str = Field(alias="inferenceId")
    invocation_status: Literal["Completed", "Failed"] = Field(alias="invocationStatus")
    failure_reason: str = Field("", alias="failureReason")
    response_parameters: dict[str, Any] = Field(default_factory=dict, alias="responseParameters")


def submit(request: SegmentRequest, settings: Settings) -> str:
    endpoint = settings.require("stereo_endpoint_name")
    output_bucket = settings.require("output_bucket")
    inference_id = f"{request.job_id}-{request.segment_index:05d}-{secrets.token_hex(4)}"
    output = keys.S3Location(output_bucket, keys.inferred_segment_key(request.job_id, request.segment_index))
    body = {"input_uri": request.input_uri, "output_uri": output.uri, "params": request.params}
    request_key = f"inference/requests/{inference_id}.json"
    aws.client("s3").put_object(
        Bucket=output_bucket,
        Key=request_key,
        Body=json.dumps(body).encode(),
        ContentType="application/json",
        Tagging=f"{keys.LIFECYCLE_TAG_KEY}={keys.LIFECYCLE_TAG_INTERMEDIATE}",
    )
    aws.table(settings.require("callbacks_table")).put_item(
        Item={
            "inference_id": inference_id,
            "task_token": request.task_token,
            "job_id": request.job_id,
            "segment_index": request.segment_index,
            "output_uri": output.uri,
            "expires_at": int(time.time()) + settings.callback_ttl_seconds,
        }
    )
    try:
        aws.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=endpoint,
            InputLocation=f"s3://{output_bucket}/{request_key}",
            InferenceId=inference_id,
            ContentType="application/json",
            Accept="application/json",
            InvocationTimeoutSeconds=3600,
        )
    except ClientError as error:
        aws.table(settings.require("callbacks_table")).delete_item(Key={"inference_id": inference_id})
        if error.response.get("Error", {}).get("Code") in THROTTLING:
            raise TransientError(f"endpoint {endpoint} is busy: {error}") from error
        raise
    logger.info("inference submitted", extra={"inference_id": inference_id, "job_id": request.job_id})
    return inference_id


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
    job_id, index, token = str(item["job_id"]), int(item["segment_index"]), str(item["task_token"])
    segments = aws.table(settings.require("segments_table"))
    sfn = aws.client("stepfunctions")
    if notification.invocation_status == "Completed":
        first_success = _record_segment(
            segments, job_id, index, {"status": "succeeded", "output_uri": str(item["output_uri"])}
        )
        if first_success:
            JobStore(settings.require("jobs_table")).add_progress(job_id)
        _answer(
            lambda: sfn.send_task_success(
                taskToken=token,
                output=json.dumps({"segment_index": index, "output_uri": str(item["output_uri"])}),
            )
        )
    else:
        error, cause = _failure_detail(notification)
        _record_segment(segments, job_id, index, {"status": "failed", "error": error, "cause": cause[:2000]})
        _answer(
            lambda: sfn.send_task_failure(
                taskToken=token, error=FAILURE_ERROR, cause=f"segment {index:05d}: {error}: {cause}"[:32000]
            )
        )
    callbacks.delete_item(Key={"inference_id": notification.inference_id})
    logger.info(
        "inference answered",
        extra={"job_id": job_id, "segment_index": index, "status": notification.invocation_status},
    )


def _record_segment(segments: Any, job_id: str, index: int, values: dict[str, Any]) -> bool:
    """Write the segment's outcome; True when this is its first success (so progress counts it once)."""
    item = {"job_id": job_id, "segment_index": index, "updated_at": int(time.time()), **values}
    if values["status"] != "succeeded":
        segments.put_item(Item=item)
        return False
    try:
        segments.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(job_id) OR #s <> :ok",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":ok": "succeeded"},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _answer(call: Any) -> None:
    """Answer a token; one that timed out or was already answered is logged, not retried forever."""
    try:
        call()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {
            "TaskTimedOut",
            "InvalidToken",
            "TaskDoesNotExist",
        }:
            logger.warning("task token no longer waiting", extra={"error": str(error)})
            return
        raise


def first_failed_segment(job_id: str, settings: Settings) -> dict[str, Any] | None:
    """The lowest-index failed segment of a job (what a failed Map reports as the job's error)."""
    page = aws.table(settings.require("segments_table")).query(
        KeyConditionExpression="job_id = :j",
        FilterExpression="#s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":j": job_id, ":failed": "failed"},
    )
    items: list[dict[str, Any]] = page.get("Items", [])
    return min(items, key=lambda i: int(i["segment_index"])) if items else None
