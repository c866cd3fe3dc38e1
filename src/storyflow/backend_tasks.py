"""The on-demand backend: the TaskState item, `GET /start` (ensure_running) and the idle stopper.

One item (`task_id = "main"`) in the TaskState table describes the backend's Fargate task:

    starting --RunTask ok--> running --alarm, expired--> stopping --ECS STOPPED--> stopped
       |                        |                                                   ^
       +--RunTask failed--------+--task died on its own (ECS event or DescribeTasks)+

Every status change is a conditional write on `version` (bumped by each change), so of N concurrent
`/start` calls exactly one wins the claim and calls RunTask; the others extend `expires_at` of the
task being started. Extending never bumps `version`: the stopper's conditional write checks
`expires_at < now` itself, so a `/start` that extends first always wins against a stop.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from storyflow import aws
from storyflow.errors import BadRequest, TransientError
from storyflow.observability import logger

TASK_ID = "main"
CONTAINER_NAME = "backend"
BACKEND_PORT = 8000
METRICS_NAMESPACE = "storyflow"
PING_METRIC = "TaskPing"
# The `service` dimension Powertools gives the task manager's metrics; the TaskPing alarm names it.
PING_SERVICE = "task_manager"
ALLOWED_ACTIONS = ("ping",)
# A claim this old that never recorded a task was abandoned (its Lambda died between claim and RunTask):
# longer than the task manager's timeout, so a live claim is never taken over.
CLAIM_TIMEOUT_SECONDS = 120
MAX_ATTEMPTS = 5
STARTING_MESSAGE = "starting; retry in a few seconds for its address"
ECS_STOPPED = "STOPPED"


class TaskStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


ACTIVE = frozenset({TaskStatus.STARTING, TaskStatus.RUNNING})


class TaskState(BaseModel):
    """The TaskState item."""

    task_id: Literal["main"] = "main"
    task_arn: str | None = None
    status: TaskStatus
    started_at: float
    expires_at: float
    version: int = Field(ge=1)
    claim_id: str
    updated_at: float
    stopped_reason: str | None = None


class BackendStatus(BaseModel):
    """What `GET /start` answers."""

    status: Literal["started", "running"]
    task_arn: str | None
    public_ip: str | None
    message: str
    expires_at: float


class MonitorOutcome(BaseModel):
    """What the task monitor did with one notification (logged and returned by the handler)."""

    action: Literal["stopped", "marked_stopped", "kept", "ignored"]
    reason: str
    task_arn: str | None = None


class BackendSettings(BaseModel):
    """Environment of the task manager and task monitor, read per call."""

    model_config = ConfigDict(populate_by_name=True)

    task_state_table: str = Field("", alias="TASK_STATE_TABLE")
    cluster_arn: str = Field("", alias="CLUSTER_ARN")
    task_definition: str = Field("", alias="BACKEND_TASK_DEFINITION")
    subnets: list[str] = Field(default_factory=list, alias="SUBNETS")
    security_group: str = Field("", alias="BACKEND_SECURITY_GROUP")
    lifetime_seconds: int = Field(900, ge=1, alias="BACKEND_LIFETIME_SECONDS")
    startup_grace_seconds: int = Field(300, ge=0, alias="BACKEND_STARTUP_GRACE_SECONDS")
    alarm_name: str = Field("", alias="TASK_PING_ALARM_NAME")

    @field_validator("subnets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BackendSettings:
        return cls.model_validate(dict(os.environ if environ is None else environ))

    def require(self, name: str) -> Any:
        value = getattr(self, name)
        if not value:
            field = type(self).model_fields[name]
            raise RuntimeError(f"{field.alias or name} is not set in this function's environment")
        return value


class BackendStopping(TransientError):
    """The recorded task is saving its database and stopping; a new one starts once it has stopped."""


def parse_action(raw: str | None) -> str:
    """`action` of `GET /start`: absent (start or keep alive) or `ping` (the same); anything else is a 400."""
    if raw is None or raw == "":
        return "start"
    if raw in ALLOWED_ACTIONS:
        return raw
    allowed = ", ".join(ALLOWED_ACTIONS)
    raise BadRequest(f"unknown action {raw[:40]!r}; allowed values: {allowed} (or no action)", field="action")


def put_ping_metric() -> None:
    """One `TaskPing` (Count 1) in EMF, dimension `service` exactly as the TaskPing alarm expects."""
    with single_metric(
        name=PING_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value=PING_SERVICE)


# ------------------------------------------------------------------ the TaskState item

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
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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


# ------------------------------------------------------------------ ECS and EC2


class EcsTask(BaseModel):
    task_arn: str
    last_status: str
    stopped_reason: str = ""
    eni_id: str | None = None

    @classmethod
    def from_api(cls, task: dict[str, Any]) -> EcsTask:
        eni_id = None
        for attachment in task.get("attachments", []):
            if attachment.get("type") != "ElasticNetworkInterface":
                continue
            for detail in attachment.get("details", []):
                if detail.get("name") == "networkInterfaceId" and detail.get("value"):
                    eni_id = detail["value"]
        return cls(
            task_arn=task["taskArn"],
            last_status=task.get("lastStatus", ""),
            stopped_reason=task.get("stoppedReason") or "",
            eni_id=eni_id,
        )


def describe_task(cluster_arn: str, task_arn: str) -> EcsTask | None:
    """The task as ECS sees it now; None when ECS no longer knows it."""
    response = aws.client("ecs").describe_tasks(cluster=cluster_arn, tasks=[task_arn])
    tasks = response.get("tasks") or []
    return EcsTask.from_api(tasks[0]) if tasks else None


def public_ip(task: EcsTask | None) -> str | None:
    """The public IPv4 address of the task's network interface, once it has one."""
    if task is None or task.eni_id is None:
        return None
    try:
        interfaces = aws.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[task.eni_id])
    except ClientError as error:
        logger.info("network interface not readable yet", extra={"eni": task.eni_id, "error": str(error)})
        return None
    for interface in interfaces.get("NetworkInterfaces", []):
        address = (interface.get("Association") or {}).get("PublicIp")
        if address:
            return str(address)
    return None


def _answer(status: Literal["started", "running"], state: TaskState, task: EcsTask | None) -> BackendStatus:
    address = public_ip(task)
    if address is None:
        message = STARTING_MESSAGE
    else:
        message = f"{'started' if status == 'started' else 'running'} at http://{address}:{BACKEND_PORT}/"
    return BackendStatus(
        status=status,
        task_arn=state.task_arn,
        public_ip=address,
        message=message,
        expires_at=state.expires_at,
    )


def _claim_abandoned(state: TaskState, now: float) -> bool:
    return (
        state.status == TaskStatus.STARTING
        and state.task_arn is None
        and now - state.started_at > CLAIM_TIMEOUT_SECONDS
    )


def _run_task(
    settings: BackendSettings, store: TaskStateStore, claimed: TaskState, now: float
) -> BackendStatus:
    ecs = aws.client("ecs")
    cluster = settings.require("cluster_arn")
    try:
        response = ecs.run_task(
            cluster=cluster,
            taskDefinition=settings.require("task_definition"),
            launchType="FARGATE",
            count=1,
            startedBy="storyflow-task-manager",
            clientToken=claimed.claim_id,  # a retried RunTask request never starts a second task
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": settings.require("subnets"),
                    "securityGroups": [settings.require("security_group")],
                    "assignPublicIp": "ENABLED",
                }
            },
        )
    except (ClientError, BotoCoreError) as error:
        store.mark_stopped(claimed, now, reason=f"RunTask failed: {error}"[:1000])
        raise TransientError(f"could not start the backend: {error}") from error
    tasks = response.get("tasks") or []
    if not tasks:
        failures = json.dumps(response.get("failures") or [], default=str)
        store.mark_stopped(claimed, now, reason=f"RunTask failed: {failures}"[:1000])
        raise TransientError(f"could not start the backend: {failures}")
    task = EcsTask.from_api(tasks[0])
    recorded = store.record_task(claimed, task.task_arn, now)
    if recorded is None:
        # Our claim was taken over while RunTask ran (it looked abandoned): never leak a running task.
        logger.warning("claim superseded; stopping the task it started", extra={"task_arn": task.task_arn})
        ecs.stop_task(cluster=cluster, task=task.task_arn, reason="storyflow: superseded start claim")
        raise TransientError("the backend is being started by another call; retry")
    logger.info("backend task started", extra={"task_arn": task.task_arn, "version": recorded.version})
    return _answer("started", recorded, task)


def ensure_running(settings: BackendSettings, now: float, *, action: str | None = None) -> BackendStatus:
    """`GET /start`: start the backend if none runs (exactly once under concurrency), else keep it alive."""
    action = parse_action(action)
    put_ping_metric()
    store = TaskStateStore(settings.require("task_state_table"))
    cluster = settings.require("cluster_arn")
    for _ in range(MAX_ATTEMPTS):
        state = store.get()
        if state is None or state.status == TaskStatus.STOPPED or _claim_abandoned(state, now):
            claimed = store.claim(state, now, settings.lifetime_seconds)
            if claimed is None:
                continue  # another call claimed first: look again
            return _run_task(settings, store, claimed, now)
        task = describe_task(cluster, state.task_arn) if state.task_arn else None
        if state.task_arn and (task is None or task.last_status == ECS_STOPPED):
            reason = (task.stopped_reason if task else "") or "task no longer known to ECS"
            store.mark_stopped(state, now, reason=f"stopped on its own: {reason}")
            continue  # whoever wrote first, the next pass starts a fresh task
        if state.status == TaskStatus.STOPPING:
            raise BackendStopping("the backend is saving its database and stopping; retry in a few seconds")
        extended = store.extend(state, now, settings.lifetime_seconds)
        if extended is None:
            continue
        logger.info("backend kept alive", extra={"action": action, "expires_at": extended.expires_at})
        return _answer("running", extended, task)
    raise TransientError("the backend's state kept changing; retry")


# ------------------------------------------------------------------ the idle stopper


class AlarmTrigger(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric_name: str | None = Field(None, alias="MetricName")
    namespace: str | None = Field(None, alias="Namespace")


class AlarmNotification(BaseModel):
    """The JSON CloudWatch publishes to SNS when an alarm changes state."""

    model_config = ConfigDict(extra="ignore")

    alarm_name: str = Field(alias="AlarmName", min_length=1)
    new_state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] = Field(alias="NewStateValue")
    new_state_reason: str = Field("", alias="NewStateReason")
    state_change_time: str | None = Field(None, alias="StateChangeTime")
    trigger: AlarmTrigger | None = Field(None, alias="Trigger")


class EcsTaskStateChange(BaseModel):
    """`detail` of an EventBridge "ECS Task State Change" event."""

    model_config = ConfigDict(extra="ignore")

    task_arn: str = Field(alias="taskArn", min_length=1)
    last_status: str = Field(alias="lastStatus")
    cluster_arn: str | None = Field(None, alias="clusterArn")
    stopped_reason: str = Field("", alias="stoppedReason")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _rearm(settings: BackendSettings, why: str) -> None:
    """Put the alarm back to OK so it fires again next period (an alarm only notifies on a change)."""
    if not settings.alarm_name:
        return
    try:
        aws.client("cloudwatch").set_alarm_state(
            AlarmName=settings.alarm_name, StateValue="OK", StateReason=f"task-monitor: {why}"[:1000]
        )
    except ClientError as error:
        logger.warning(
            "could not re-arm the alarm", extra={"alarm": settings.alarm_name, "error": str(error)}
        )


def _outcome(outcome: MonitorOutcome) -> MonitorOutcome:
    logger.info("task monitor", extra=outcome.model_dump())
    return outcome


def on_alarm(settings: BackendSettings, message: str | dict[str, Any], now: float) -> MonitorOutcome:
    """The TaskPing alarm fired (SNS): stop the backend only if it expired and is out of its startup grace."""
    try:
        if isinstance(message, str):
            alarm = AlarmNotification.model_validate_json(message)
        else:
            alarm = AlarmNotification.model_validate(message)
    except ValidationError as error:
        logger.warning("malformed alarm message; nothing stopped", extra={"errors": error.errors()[:5]})
        return _outcome(MonitorOutcome(action="ignored", reason="malformed alarm message"))
    if settings.alarm_name and alarm.alarm_name != settings.alarm_name:
        return _outcome(
            MonitorOutcome(action="ignored", reason=f"not the TaskPing alarm: {alarm.alarm_name}")
        )
    if alarm.new_state != "ALARM":
        return _outcome(MonitorOutcome(action="ignored", reason=f"alarm state {alarm.new_state}"))

    store = TaskStateStore(settings.require("task_state_table"))
    state = store.get()
    if state is None or state.status not in ACTIVE:
        status = state.status.value if state else "none"
        return _outcome(MonitorOutcome(action="ignored", reason=f"no active backend (status {status})"))
    grace_ends = state.started_at + settings.startup_grace_seconds
    if state.expires_at >= now or grace_ends >= now:
        why = (
            f"expires at {_iso(state.expires_at)}"
            if state.expires_at >= now
            else f"in its startup grace until {_iso(grace_ends)}"
        )
        _rearm(settings, f"backend kept: {why}")
        return _outcome(MonitorOutcome(action="kept", reason=why, task_arn=state.task_arn))

    reason = (
        f"idle: no ping since it expired at {_iso(state.expires_at)} "
        f"(alarm {alarm.alarm_name} at {alarm.state_change_time or _iso(now)})"
    )
    stopping = store.mark_stopping(state, now, settings.startup_grace_seconds, reason)
    if stopping is None:
        return _outcome(
            MonitorOutcome(action="kept", reason="changed meanwhile (a /start won)", task_arn=state.task_arn)
        )
    if stopping.task_arn is None:
        # An abandoned claim: no task was ever started, so there is nothing to stop.
        store.mark_stopped(stopping, now, reason=reason)
        return _outcome(MonitorOutcome(action="marked_stopped", reason=reason))
    cluster = settings.require("cluster_arn")
    try:
        aws.client("ecs").stop_task(cluster=cluster, task=stopping.task_arn, reason=reason[:255])
    except ClientError:
        task = describe_task(cluster, stopping.task_arn)
        if task is not None and task.last_status != ECS_STOPPED:
            raise  # still running: fail, so the asynchronous invocation is retried
        store.mark_stopped(stopping, now, reason=reason)  # it was gone already
        return _outcome(MonitorOutcome(action="marked_stopped", reason=reason, task_arn=stopping.task_arn))
    return _outcome(MonitorOutcome(action="stopped", reason=reason, task_arn=stopping.task_arn))


def on_task_stopped(settings: BackendSettings, detail: dict[str, Any], now: float) -> MonitorOutcome:
    """An ECS task stopped: if it is the recorded backend, mark it so the next `/start` starts afresh."""
    try:
        change = EcsTaskStateChange.model_validate(detail)
    except ValidationError as error:
        logger.warning("malformed ECS task event; ignored", extra={"errors": error.errors()[:5]})
        return _outcome(MonitorOutcome(action="ignored", reason="malformed ECS task event"))
    if change.last_status != ECS_STOPPED:
        return _outcome(
            MonitorOutcome(action="ignored", reason=f"task is {change.last_status}", task_arn=change.task_arn)
        )
    if settings.cluster_arn and change.cluster_arn and change.cluster_arn != settings.cluster_arn:
        return _outcome(MonitorOutcome(action="ignored", reason="another cluster", task_arn=change.task_arn))
    store = TaskStateStore(settings.require("task_state_table"))
    reason = f"task stopped: {change.stopped_reason or 'no reason given'}"
    marked = store.mark_task_stopped(change.task_arn, now, reason)
    if marked is None:
        return _outcome(
            MonitorOutcome(
                action="ignored",
                reason="not the recorded task (or already stopped)",
                task_arn=change.task_arn,
            )
        )
    return _outcome(
        MonitorOutcome(
            action="marked_stopped", reason=marked.stopped_reason or reason, task_arn=change.task_arn
        )
    )
