"""The idle stopper: the TaskPing alarm (SNS) and ECS task state changes (EventBridge) of the backend.

Invariants: the alarm stops the backend only if its item is still active, expired (`expires_at < now`) and
out of its startup grace, both when read and in the conditional write (`TaskStateStore.mark_stopping`), so
a `/start` that extended first always wins; a kept backend re-arms the alarm (an alarm notifies only on a
change); a StopTask that fails while the task still runs raises, so the asynchronous invocation is retried.
An ECS STOPPED event changes the item only if it names the recorded task. Malformed or foreign messages are
ignored, never raised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storyflow import aws
from storyflow.backend import ecs
from storyflow.backend.models import ACTIVE, BackendSettings, MonitorOutcome
from storyflow.backend.store import TaskStateStore
from storyflow.observability import logger


class AlarmTrigger(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="ignore")

    metric_name: str | None = Field(None, alias="MetricName")
    namespace: str | None = Field(None, alias="Namespace")


class AlarmNotification(BaseModel, defer_build=True):
    """The JSON CloudWatch publishes to SNS when an alarm changes state."""

    model_config = ConfigDict(extra="ignore")

    alarm_name: str = Field(alias="AlarmName", min_length=1)
    new_state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] = Field(alias="NewStateValue")
    new_state_reason: str = Field("", alias="NewStateReason")
    state_change_time: str | None = Field(None, alias="StateChangeTime")
    trigger: AlarmTrigger | None = Field(None, alias="Trigger")


class EcsTaskStateChange(BaseModel, defer_build=True):
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
        ecs.stop_task(cluster, stopping.task_arn, reason=reason)
    except ClientError:
        task = ecs.describe_task(cluster, stopping.task_arn)
        if task is not None and task.last_status != ecs.ECS_STOPPED:
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
    if change.last_status != ecs.ECS_STOPPED:
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
