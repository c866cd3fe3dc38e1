"""Conditional reads and writes of the one TaskState item (`task_id = "main"`).

Invariants: every status change bumps `version` by one and is conditional on the `version` the caller read
(`mark_task_stopped`: on the recorded task ARN instead), so of concurrent writers exactly one wins; a lost
condition returns None (never raises) and the caller reads again. `extend` never bumps `version` and never
shortens `expires_at`; `mark_stopping` re-checks `expires_at < now` and the startup grace in its own
condition, so a `/start` that extends first always wins against a stop.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from storyflow import aws
from storyflow.backend.models import TASK_ID, TaskState, TaskStatus

_NUMBER_FIELDS = ("started_at", "expires_at", "updated_at")


def _number(value: float | int) -> dict[str, str]:
    return {"N": str(Decimal(str(value)))}


def _decode(item: dict[str, Any]) -> TaskState:
    plain: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        if kind == "N":
            plain[name] = float(value) if name in _NUMBER_FIELDS else int(value)
        elif kind == "NULL":
            plain[name] = None
        else:
            plain[name] = value
    return TaskState.model_validate(plain)


def _is_conditional_failure(error: ClientError) -> bool:
    return aws.error_code(error) == "ConditionalCheckFailedException"


class TaskStateStore:
    """Conditional reads and writes of the one TaskState item (low-level client: thread-safe)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.client = aws.client("dynamodb")
        self.key = {"task_id": {"S": TASK_ID}}

    def get(self) -> TaskState | None:
        item = self.client.get_item(TableName=self.table_name, Key=self.key, ConsistentRead=True).get("Item")
        return _decode(item) if item else None

    def claim(self, previous: TaskState | None, now: float, lifetime: int) -> TaskState | None:
        """Take the right to start a task; None when someone else changed the item first."""
        state = TaskState(
            status=TaskStatus.STARTING,
            started_at=now,
            expires_at=now + lifetime,
            version=(previous.version + 1) if previous else 1,
            claim_id=uuid.uuid4().hex,
            updated_at=now,
        )
        item: dict[str, Any] = {
            "task_id": {"S": TASK_ID},
            "status": {"S": state.status.value},
            "started_at": _number(state.started_at),
            "expires_at": _number(state.expires_at),
            "version": _number(state.version),
            "claim_id": {"S": state.claim_id},
            "updated_at": _number(state.updated_at),
        }
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(task_id)"}
        else:
            condition = {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": _number(previous.version)},
            }
        try:
            self.client.put_item(TableName=self.table_name, Item=item, **condition)
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return state

    def _update(
        self, update: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> TaskState | None:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self.key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            result = self.client.update_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return _decode(result["Attributes"])

    def record_task(self, claimed: TaskState, task_arn: str, now: float) -> TaskState | None:
        """The claim's RunTask succeeded: starting -> running with the task's ARN."""
        return self._update(
            "SET task_arn = :arn, #status = :running, version = :next, updated_at = :now",
            "version = :version AND #status = :starting",
            {
                ":arn": {"S": task_arn},
                ":running": {"S": TaskStatus.RUNNING.value},
                ":starting": {"S": TaskStatus.STARTING.value},
                ":version": _number(claimed.version),
                ":next": _number(claimed.version + 1),
                ":now": _number(now),
            },
            {"#status": "status"},
        )

    def extend(self, state: TaskState, now: float, lifetime: int) -> TaskState | None:
        """Keep an active task alive until `now + lifetime` (never shortens; `version` unchanged)."""
        expires_at = max(state.expires_at, now + lifetime)
        return self._update(
            "SET expires_at = :expires, updated_at = :now",
            "version = :version AND #status IN (:starting, :running)",
            {
                ":expires": _number(expires_at),
                ":now": _number(now),
                ":version": _number(state.version),
                ":starting": {"S": TaskStatus.STARTING.value},
                ":running": {"S": TaskStatus.RUNNING.value},
            },
            {"#status": "status"},
        )

    def mark_stopping(self, state: TaskState, now: float, grace: int, reason: str) -> TaskState | None:
        """active -> stopping, only if still expired and out of its startup grace when written."""
        return self._update(
            "SET #status = :stopping, stopped_reason = :reason, version = :next, updated_at = :now",
            "version = :version AND #status IN (:starting, :running) AND expires_at < :now"
            " AND started_at < :grace_ended",
            {
                ":stopping": {"S": TaskStatus.STOPPING.value},
                ":starting": {"S": TaskStatus.STARTING.value},
                ":running": {"S": TaskStatus.RUNNING.value},
                ":reason": {"S": reason},
                ":version": _number(state.version),
                ":next": _number(state.version + 1),
                ":now": _number(now),
                ":grace_ended": _number(now - grace),
            },
            {"#status": "status"},
        )

    def mark_stopped(self, state: TaskState, now: float, reason: str) -> TaskState | None:
        """Any status -> stopped, if nobody changed the item since `state` was read."""
        return self._update(
            "SET #status = :stopped, stopped_reason = if_not_exists(stopped_reason, :reason),"
            " version = :next, updated_at = :now",
            "version = :version",
            {
                ":stopped": {"S": TaskStatus.STOPPED.value},
                ":reason": {"S": reason},
                ":version": _number(state.version),
                ":next": _number(state.version + 1),
                ":now": _number(now),
            },
            {"#status": "status"},
        )

    def mark_task_stopped(self, task_arn: str, now: float, reason: str) -> TaskState | None:
        """The recorded task `task_arn` has stopped (an ECS event); None if it is not the recorded one."""
        return self._update(
            "SET #status = :stopped, stopped_reason = if_not_exists(stopped_reason, :reason),"
            " version = version + :one, updated_at = :now",
            "task_arn = :arn AND #status <> :stopped",
            {
                ":stopped": {"S": TaskStatus.STOPPED.value},
                ":reason": {"S": reason},
                ":arn": {"S": task_arn},
                ":one": {"N": "1"},
                ":now": _number(now),
            },
            {"#status": "status"},
        )
