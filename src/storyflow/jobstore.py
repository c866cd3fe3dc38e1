"""The Jobs table: conditional creates and transitions, GSI listing, atomic progress."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from storyflow import aws
from storyflow.errors import BadRequest, Conflict, NotFound
from storyflow.keys import check_job_id
from storyflow.models import FINISHED, Job, JobError, JobKind, JobStatus, allowed_sources

STATUS_CREATED_INDEX = "status-created_at"
STATUS_COMPLETED_INDEX = "status-completed_at"
MAX_PAGE = 100


def _to_dynamo(value: Any) -> Any:
    """Floats become Decimals (boto3 refuses floats); everything else passes through JSON."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _is_conditional_failure(error: ClientError) -> bool:
    return aws.error_code(error) == "ConditionalCheckFailedException"


class JobStore:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def create(self, kind: JobKind, job_id: str, request: dict[str, Any]) -> Job:
        now = time.time()
        job = Job(job_id=check_job_id(job_id), kind=kind, created_at=now, updated_at=now, request=request)
        try:
            self.table.put_item(
                Item=_to_dynamo(job.model_dump(exclude_none=True)),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                raise Conflict(f"job {job_id} already exists", field="job_id") from error
            raise
        return job

    def discard_queued(self, job_id: str) -> bool:
        """Delete a job that is still queued (nothing runs it); False if it is not (anymore)."""
        try:
            self.table.delete_item(
                Key={"job_id": check_job_id(job_id)},
                ConditionExpression="#status = :queued",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":queued": JobStatus.QUEUED.value},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def get(self, job_id: str) -> Job:
        item = self.table.get_item(Key={"job_id": check_job_id(job_id)}, ConsistentRead=True).get("Item")
        if item is None:
            raise NotFound(f"job {job_id} not found", field="job_id")
        return Job.model_validate(_from_dynamo(item))

    def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        stage: str | None = None,
        outputs: dict[str, str] | None = None,
        error: JobError | None = None,
        execution_arn: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Job:
        """Move a job to `target` only if its current status allows it (one conditional write)."""
        now = time.time()
        values: dict[str, Any] = {":target": target.value, ":now": _to_dynamo(now)}
        names = {"#status": "status"}  # placeholders for all: `error`, `status` are reserved words
        sets = ["#status = :target", "updated_at = :now"]
        for name, value in (
            ("stage", stage),
            ("outputs", outputs),
            ("execution_arn", execution_arn),
            ("error", error.model_dump() if error else None),
            ("result", result or None),
        ):
            if value is not None:
                sets.append(f"#{name} = :{name}")
                names[f"#{name}"] = name
                values[f":{name}"] = _to_dynamo(value)
        if target in FINISHED:
            sets.append("completed_at = :now")
        sources = allowed_sources(target)
        if not sources:  # nothing may become `target` (e.g. queued): refuse before an invalid `IN ()`
            current = self.get(job_id)
            raise Conflict(
                f"job {job_id} is {current.status.value}; it cannot become {target.value}", field="status"
            )
        for i, source in enumerate(sources):
            values[f":from{i}"] = source.value
        condition = "#status IN (" + ", ".join(f":from{i}" for i in range(len(sources))) + ")"
        try:
            result = self.table.update_item(
                Key={"job_id": check_job_id(job_id)},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"attribute_exists(job_id) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if _is_conditional_failure(err):
                current = self.get(job_id)  # NotFound if it never existed
                raise Conflict(
                    f"job {job_id} is {current.status.value}; it cannot become {target.value}", field="status"
                ) from err
            raise
        return Job.model_validate(_from_dynamo(result["Attributes"]))

    def add_progress(self, job_id: str, done: int = 1, *, only_active: bool = False) -> bool:
        """Atomic counter: concurrent segments never lose an increment. With `only_active`, a job that is
        no longer queued or running (e.g. cancelled) is not counted: returns False instead."""
        condition = "attribute_exists(job_id)"
        names: dict[str, str] = {}
        values: dict[str, Any] = {":done": done, ":now": _to_dynamo(time.time())}
        if only_active:
            condition += " AND #status IN (:queued, :running)"
            names["#status"] = "status"
            values |= {":queued": JobStatus.QUEUED.value, ":running": JobStatus.RUNNING.value}
        try:
            self.table.update_item(
                Key={"job_id": check_job_id(job_id)},
                UpdateExpression="ADD progress.done :done SET updated_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                if only_active:
                    return False
                raise NotFound(f"job {job_id} not found", field="job_id") from error
            raise
        return True

    def list(
        self,
        status: JobStatus,
        limit: int = 20,
        next_token: str | None = None,
        created_before: float | None = None,
    ) -> tuple[list[Job], str | None]:
        """Newest first, from the GSI that fits the status; `next_token` is opaque to callers.
        `created_before` (unfinished statuses only) keeps jobs created before that epoch second."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        index = STATUS_COMPLETED_INDEX if status in FINISHED else STATUS_CREATED_INDEX
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": status.value},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if created_before is not None:
            if index != STATUS_CREATED_INDEX:
                raise ValueError("created_before applies to unfinished statuses only")
            query["KeyConditionExpression"] += " AND created_at < :before"
            query["ExpressionAttributeValues"][":before"] = _to_dynamo(created_before)
        if next_token:
            query["ExclusiveStartKey"] = decode_page_token(next_token, status)
        page = self.table.query(**query)
        jobs = [Job.model_validate(_from_dynamo(item)) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return jobs, encode_page_token(last) if last else None


def encode_page_token(key: dict[str, Any]) -> str:
    raw = json.dumps(_from_dynamo(key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, status: JobStatus) -> dict[str, Any]:
    """Validate a token before it reaches DynamoDB: wrong shape or another status's token is a 400."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise BadRequest("next is not a valid pagination token", field="next") from error
    # Exactly the key of the index this status is listed from: anything else would reach DynamoDB as a 500.
    sort_key = "completed_at" if status in FINISHED else "created_at"
    if (
        not isinstance(key, dict)
        or set(key) != {"job_id", "status", sort_key}
        or key.get("status") != status.value
        or not isinstance(key.get("job_id"), str)
        or not isinstance(key.get(sort_key), int | float)
        or isinstance(key.get(sort_key), bool)
        or not math.isfinite(key[sort_key])
    ):
        raise BadRequest("next is not a valid pagination token for this status", field="next")
    try:
        check_job_id(key["job_id"])
    except BadRequest as error:
        raise BadRequest("next is not a valid pagination token", field="next") from error
    return dict(_to_dynamo(key))
