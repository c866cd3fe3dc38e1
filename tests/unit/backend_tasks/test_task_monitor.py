"""The idle stopper: the TaskPing alarm stops an expired backend (never one in its startup grace), and an
ECS STOPPED event of the recorded task marks it stopped."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from storyflow.backend.idle_stop import on_alarm
from storyflow.backend.models import BackendSettings, TaskState, TaskStatus
from storyflow.backend.start import ensure_running
from storyflow.backend.store import TaskStateStore
from tests.unit.backend_tasks.conftest import (
    ALARM_NAME,
    GRACE,
    LIFETIME,
    Backend,
    LambdaContext,
    load_event,
    load_handler,
    moto_client,
)

task_monitor = load_handler("task_monitor")
NOW = 1_800_000_000.0


def monitor(event: dict[str, Any]) -> list[dict[str, Any]]:
    outcomes: list[dict[str, Any]] = task_monitor.handler(event, LambdaContext(function_name="task-monitor"))[
        "outcomes"
    ]
    return outcomes


def alarm_event(new_state: str = "ALARM", alarm_name: str = ALARM_NAME) -> dict[str, Any]:
    event = load_event("alarm_task_ping.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(NewStateValue=new_state, AlarmName=alarm_name)
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def stopped_event(task_arn: str, cluster_arn: str, reason: str = "Essential container in task exited") -> Any:
    event = copy.deepcopy(load_event("task_stopped.json"))
    event["resources"] = [task_arn]
    event["detail"].update(taskArn=task_arn, clusterArn=cluster_arn, stoppedReason=reason)
    return event


def started(backend: Backend, at: float, settings: BackendSettings | None = None) -> TaskState:
    answer = ensure_running(settings or backend.settings, at)
    assert answer.status == "started" and answer.task_arn
    state = TaskStateStore(backend.settings.task_state_table).get()
    assert state is not None
    return state


def state_of(backend: Backend) -> TaskState:
    state = TaskStateStore(backend.settings.task_state_table).get()
    assert state is not None
    return state


def ecs_status(backend: Backend, task_arn: str | None) -> str:
    assert task_arn
    return str(backend.task(task_arn)["lastStatus"])


def alarm_state(backend: Backend) -> str:
    alarm = moto_client("cloudwatch").describe_alarms(AlarmNames=[ALARM_NAME])["MetricAlarms"][0]
    return str(alarm["StateValue"])


def test_alarm_before_expiry_stops_nothing_and_rearms(backend: Backend) -> None:
    """Given a backend whose expires_at is still ahead, When the alarm fires, Then the task keeps running,
    and the alarm is set back to OK so it notifies again once the backend may have expired."""
    state = started(backend, NOW)
    moto_client("cloudwatch").set_alarm_state(AlarmName=ALARM_NAME, StateValue="ALARM", StateReason="test")

    outcome = on_alarm(backend.settings, alarm_event()["Records"][0]["Sns"]["Message"], state.expires_at - 1)

    assert outcome.action == "kept"
    assert ecs_status(backend, state.task_arn) == "RUNNING"
    assert state_of(backend) == state
    assert alarm_state(backend) == "OK"


def test_alarm_past_expiry_within_startup_grace_stops_nothing(backend: Backend) -> None:
    """Given a lifetime shorter than the startup grace, When the alarm fires after expiry but within the
    grace, Then the task is not stopped."""
    short = backend.settings.model_copy(update={"lifetime_seconds": 60})
    state = started(backend, NOW, short)

    outcome = on_alarm(backend.settings, alarm_event()["Records"][0]["Sns"]["Message"], NOW + 120)

    assert (outcome.action, state.expires_at < NOW + 120 < NOW + GRACE) == ("kept", True)
    assert "grace" in outcome.reason
    assert ecs_status(backend, state.task_arn) == "RUNNING"
    assert state_of(backend).status == TaskStatus.RUNNING


def test_alarm_past_expiry_and_grace_stops_the_task(backend: Backend) -> None:
    """Given a backend past expires_at and its grace, When the alarm's SNS message arrives, Then StopTask is
    called with the reason, recorded on the item (stopping); the ECS STOPPED event then marks it stopped
    keeping that reason, and the next /start starts a fresh task."""
    state = started(backend, time.time() - LIFETIME - GRACE - 60)  # the handler reads the real clock

    (outcome,) = monitor(alarm_event())

    assert outcome["action"] == "stopped" and outcome["task_arn"] == state.task_arn
    task = backend.task(state.task_arn or "")
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedReason"].startswith("idle: no ping since it expired")
    stopping = state_of(backend)
    assert stopping.status == TaskStatus.STOPPING
    assert stopping.stopped_reason == outcome["reason"]

    (marked,) = monitor(
        stopped_event(state.task_arn or "", backend.settings.cluster_arn, "Task stopped by user")
    )
    assert marked["action"] == "marked_stopped"
    stopped = state_of(backend)
    assert (stopped.status, stopped.stopped_reason) == (TaskStatus.STOPPED, outcome["reason"])

    fresh = ensure_running(backend.settings, time.time())
    assert fresh.status == "started" and fresh.task_arn != state.task_arn


def test_start_that_extends_first_wins_over_the_stop(backend: Backend) -> None:
    """Given the monitor read an expired item, When a /start extends it before the monitor writes, Then the
    monitor's conditional write fails and nothing is stopped."""
    state = started(backend, NOW)
    later = state.expires_at + 1
    read_by_monitor = state_of(backend)

    ensure_running(backend.settings, later, action="ping")

    store = TaskStateStore(backend.settings.task_state_table)
    assert store.mark_stopping(read_by_monitor, later, GRACE, "idle") is None
    assert state_of(backend).status == TaskStatus.RUNNING
    assert ecs_status(backend, state.task_arn) == "RUNNING"


def test_malformed_alarm_message_is_a_noop(backend: Backend) -> None:
    """Given a backend long expired, When the SNS message is not a valid alarm, Then nothing changes."""
    state = started(backend, time.time() - 10 * LIFETIME)

    (outcome,) = monitor(load_event("alarm_malformed.json"))

    assert (outcome["action"], outcome["reason"]) == ("ignored", "malformed alarm message")
    assert state_of(backend) == state
    assert ecs_status(backend, state.task_arn) == "RUNNING"


@pytest.mark.parametrize(("new_state", "name"), [("OK", ALARM_NAME), ("ALARM", "someone-elses-alarm")])
def test_other_alarm_states_and_names_are_ignored(backend: Backend, new_state: str, name: str) -> None:
    """Given an expired backend, When an OK notification or another alarm arrives, Then nothing is stopped."""
    state = started(backend, NOW)
    message = alarm_event(new_state, name)["Records"][0]["Sns"]["Message"]

    outcome = on_alarm(backend.settings, message, NOW + 10 * LIFETIME)

    assert outcome.action == "ignored"
    assert ecs_status(backend, state.task_arn) == "RUNNING"


def test_ecs_stopped_event_of_the_recorded_task_marks_it_stopped(backend: Backend) -> None:
    """Given a running backend, When its task dies on its own (ECS event), Then the item is marked stopped
    with ECS's reason and the next /start starts a fresh task."""
    state = started(backend, NOW)
    backend.ecs.stop_task(cluster=backend.settings.cluster_arn, task=state.task_arn, reason="OutOfMemory")

    (outcome,) = monitor(stopped_event(state.task_arn or "", backend.settings.cluster_arn, "OutOfMemory"))

    assert outcome["action"] == "marked_stopped"
    stopped = state_of(backend)
    assert stopped.status == TaskStatus.STOPPED
    assert stopped.stopped_reason == "task stopped: OutOfMemory"
    assert stopped.version == state.version + 1
    fresh = ensure_running(backend.settings, NOW + 60)
    assert fresh.status == "started" and fresh.task_arn != state.task_arn


def test_ecs_stopped_event_of_another_task_is_a_noop(backend: Backend) -> None:
    """Given a running backend, When an ECS STOPPED event names another (older) task, Then nothing changes."""
    state = started(backend, NOW)
    other = state.task_arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef" if state.task_arn else ""

    (outcome,) = monitor(stopped_event(other, backend.settings.cluster_arn))

    assert outcome["action"] == "ignored"
    assert state_of(backend) == state


def test_unrecognised_event_is_ignored(backend: Backend) -> None:
    """Given any state, When the monitor gets an event that is neither SNS nor ECS, Then it does nothing."""
    assert monitor({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}) == []
