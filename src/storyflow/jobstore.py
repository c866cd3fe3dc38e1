"""The Jobs table: conditional creates and transitions, GSI listing, atomic progress."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from storyflow import aws
from storyflow.errors import BadRequest, Conflict, NotFound
from storyflow.keys import check_job_id
from storyflow.models import (
    FINISHED,
    REOPENABLE,
    ChildJob,
    Job,
    JobError,
    JobKind,
    JobStatus,
    Progress,
    StoryScene,
    allowed_sources,
)

STATUS_CREATED_INDEX = "status-created_at"
STATUS_COMPLETED_INDEX = "status-completed_at"
MAX_PAGE = 100
MAX_BATCH_GET = 100  # DynamoDB's BatchGetItem limit
MAX_BATCH_ATTEMPTS = 5


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


def _revision_is(revision: int) -> str:
    """The condition that the item is at `revision` (`#revision` = revision; an item without one is 0)."""
    if revision == 0:
        return "(attribute_not_exists(#revision) OR #revision = :revision)"
    return "#revision = :revision"


class JobStore:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def create(
        self, kind: JobKind, job_id: str, request: dict[str, Any], *, parent_id: str | None = None
    ) -> Job:
        now = time.time()
        job = Job(
            job_id=check_job_id(job_id),
            kind=kind,
            created_at=now,
            updated_at=now,
            request=request,
            parent_id=parent_id,
        )
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

    def get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The jobs that exist among `job_ids` (consistent reads, 100 keys a request; unprocessed keys are
        asked again), by id."""
        wanted = list(dict.fromkeys(check_job_id(job_id) for job_id in job_ids))
        found: dict[str, Job] = {}
        client = self.table.meta.client  # the low-level client: typed attribute values
        deserializer = TypeDeserializer()
        for start in range(0, len(wanted), MAX_BATCH_GET):
            request: dict[str, Any] = {
                self.table.name: {
                    "Keys": [{"job_id": {"S": job_id}} for job_id in wanted[start : start + MAX_BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(MAX_BATCH_ATTEMPTS):
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table.name, []):
                    plain = {name: deserializer.deserialize(value) for name, value in item.items()}
                    job = Job.model_validate(_from_dynamo(plain))
                    found[job.job_id] = job
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{self.table.name}: batch_get_item left keys unprocessed")
        return found

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

    def record_plan(
        self,
        job_id: str,
        revision: int,
        *,
        scenes: list[StoryScene],
        children: list[ChildJob],
        progress: Progress,
    ) -> None:
        """A story's scenes, its current children and its progress, for the revision being run. Only a
        queued or running story of that revision is written: a cancelled one, or a newer revision, is a
        Conflict (409)."""
        try:
            self.table.update_item(
                Key={"job_id": check_job_id(job_id)},
                UpdateExpression="SET #scenes = :scenes, #children = :children, progress = :progress, "
                "updated_at = :now",
                ConditionExpression=f"#status IN (:queued, :running) AND {_revision_is(revision)}",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#scenes": "scenes",
                    "#children": "children",
                    "#revision": "revision",
                },
                ExpressionAttributeValues={
                    ":scenes": _to_dynamo([s.model_dump(exclude_none=True) for s in scenes]),
                    ":children": _to_dynamo([c.model_dump(mode="json") for c in children]),
                    ":progress": progress.model_dump(),
                    ":now": _to_dynamo(time.time()),
                    ":queued": JobStatus.QUEUED.value,
                    ":running": JobStatus.RUNNING.value,
                    ":revision": revision,
                },
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                current = self.get(job_id)
                raise Conflict(
                    f"job {job_id} is {current.status.value} at revision {current.revision}; "
                    f"revision {revision} cannot be planned",
                    field="status",
                ) from error
            raise

    def reopen(self, job: Job, scene: int, replacement: StoryScene, execution_arn: str) -> Job:
        """A finished story queued again at the next revision, with scene `scene` replaced: the one way
        back from a finished status (models.REOPENABLE). One conditional write on the kind, the status and
        the revision read, so two regenerates of the same revision cannot both start."""
        names = {"#status": "status", "#error": "error", "#kind": "kind", "#revision": "revision"}
        names["#scenes"] = "scenes"
        values: dict[str, Any] = {
            ":queued": JobStatus.QUEUED.value,
            ":story": JobKind.STORY.value,
            ":revision": job.revision,
            ":next": job.revision + 1,
            ":scene": _to_dynamo(replacement.model_dump(exclude_none=True)),
            ":execution": execution_arn,
            ":now": _to_dynamo(time.time()),
        }
        reopenable = sorted(status.value for status in REOPENABLE)
        for i, status in enumerate(reopenable):
            values[f":from{i}"] = status
        condition = (
            "#kind = :story AND #status IN ("
            + ", ".join(f":from{i}" for i in range(len(reopenable)))
            + f") AND {_revision_is(job.revision)}"
        )
        try:
            result = self.table.update_item(
                Key={"job_id": check_job_id(job.job_id)},
                UpdateExpression=f"SET #status = :queued, #revision = :next, #scenes[{int(scene)}] = :scene, "
                "execution_arn = :execution, updated_at = :now REMOVE #error, completed_at, stage",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                current = self.get(job.job_id)
                raise Conflict(
                    f"job {job.job_id} is {current.status.value} at revision {current.revision}; "
                    "only a completed or failed story can regenerate a scene",
                    field="status",
                ) from error
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
