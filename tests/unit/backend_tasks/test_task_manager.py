"""GET /start: start the backend exactly once, keep it alive, replace a task that stopped."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storyflow.backend.models import BackendStatus, TaskStatus
from storyflow.backend.start import CLAIM_TIMEOUT_SECONDS, STARTING_MESSAGE, BackendStopping, ensure_running
from storyflow.backend.store import TaskStateStore
from tests.unit.backend_tasks.conftest import (
    GRACE,
    LIFETIME,
    Backend,
    LambdaContext,
    load_event,
    load_handler,
    metrics_from,
)

task_manager = load_handler("task_manager")
NOW = 1_800_000_000.0


def call(event_name: str, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    event = load_event(event_name)
    if query is not None:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {name: [value] for name, value in query.items()}
    response = task_manager.handler(event, LambdaContext(function_name="task-manager"))
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], json.loads(response["body"]), headers


def store(backend: Backend) -> TaskStateStore:
    return TaskStateStore(backend.settings.task_state_table)


def test_start_when_none_runs_starts_one_task(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    """Given no backend recorded, When GET /start, Then one Fargate task is started and recorded."""
    status, body, _ = call("task_start.json")

    assert status == 200
    assert body["status"] == "started"
    tasks = backend.tasks()
    assert [t["taskArn"] for t in tasks] == [body["task_arn"]]
    assert body["public_ip"] is None
    assert body["message"] == STARTING_MESSAGE
    assert body["expires_at"] == pytest.approx(time.time() + LIFETIME, abs=30)

    assert len(backend.run_task_calls) == 1
    run = backend.run_task_calls[0]
    assert run["launchType"] == "FARGATE"
    assert run["taskDefinition"] == backend.settings.task_definition
    vpc = run["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc == {
        "subnets": backend.settings.subnets,
        "securityGroups": [backend.settings.security_group],
        "assignPublicIp": "ENABLED",
    }

    state = store(backend).get()
    assert state is not None
    assert (state.status, state.task_arn) == (TaskStatus.RUNNING, body["task_arn"])

    pings = [m for m in metrics_from(capsys.readouterr().out) if "TaskPing" in m]
    assert len(pings) == 1
    assert pings[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "storyflow"
    assert pings[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert pings[0]["service"] == "task_manager"
    assert pings[0]["TaskPing"] == [1.0]


def test_second_call_extends_the_running_task(backend: Backend) -> None:
    """Given a started backend that got its public address, When pinged later, Then it answers `running`
    with the same task, the address, and expires_at moved to the ping time + lifetime."""
    first = ensure_running(backend.settings, NOW)
    assert first.task_arn is not None
    address = backend.give_public_ip(first.task_arn)

    second = ensure_running(backend.settings, NOW + 600, action="ping")

    assert second.status == "running"
    assert second.task_arn == first.task_arn
    assert second.public_ip == address
    assert address in second.message
    assert second.expires_at == NOW + 600 + LIFETIME > first.expires_at
    assert len(backend.tasks()) == 1
    stored = store(backend).get()
    assert stored is not None and stored.expires_at == second.expires_at


def test_ping_action_through_the_api(backend: Backend) -> None:
    """Given a running backend, When GET /start?action=ping, Then 200 `running` and no new task."""
    call("task_start.json")

    status, body, _ = call("task_start_ping.json")

    assert (status, body["status"]) == (200, "running")
    assert len(backend.tasks()) == 1


def test_ten_concurrent_starts_run_exactly_one_task(backend: Backend) -> None:
    """Given no backend, When ten /start calls race, Then RunTask happens once and all name the same task."""
    barrier = threading.Barrier(10)

    def start(i: int) -> BackendStatus:
        barrier.wait()  # all ten read the empty item, then race for the claim
        return ensure_running(backend.settings, NOW + i / 10)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(start, range(10)))

    assert len(backend.tasks()) == 1
    assert len(backend.run_task_calls) == 1
    assert sorted(a.status for a in answers).count("started") == 1
    arn = backend.tasks()[0]["taskArn"]
    # Losers that looked before the winner recorded its ARN answer `starting` without a task; the others
    # `running` with the winner's task: never `running` without one.
    assert {(a.status, a.task_arn) for a in answers} <= {
        ("started", arn),
        ("running", arn),
        ("starting", None),
    }
    state = store(backend).get()
    assert state is not None and (state.status, state.task_arn) == (TaskStatus.RUNNING, arn)


def test_start_while_the_task_is_being_launched_answers_starting(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a /start whose RunTask has not returned yet, When another /start comes (API too), Then it answers
    `starting` with no task (not `running` with a null task_arn), and runs no second task; once the first
    returns, a /start answers `running` with its task."""
    from storyflow.backend import ecs

    launching, release = threading.Event(), threading.Event()
    real_run_task = ecs.run_task

    def slow_run_task(*args: Any, **kwargs: Any) -> Any:
        launching.set()
        assert release.wait(10)
        return real_run_task(*args, **kwargs)

    monkeypatch.setattr(ecs, "run_task", slow_run_task)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(ensure_running, backend.settings, NOW)
        assert launching.wait(10)
        meanwhile = ensure_running(backend.settings, NOW + 1)
        status, body, _ = call("task_start.json")
        release.set()
        started = first.result(10)

    assert (meanwhile.status, meanwhile.task_arn, meanwhile.message) == ("starting", None, STARTING_MESSAGE)
    assert (status, body["status"], body["task_arn"]) == (200, "starting", None)
    assert started.status == "started" and started.task_arn is not None
    assert len(backend.run_task_calls) == 1
    after = ensure_running(backend.settings, NOW + 2)
    assert (after.status, after.task_arn) == ("running", started.task_arn)


def test_recorded_task_stopped_starts_a_new_one(backend: Backend) -> None:
    """Given the recorded task was stopped from outside (no event seen yet), When /start, Then a new task
    is started and recorded, and the old one's reason is kept until then."""
    first = ensure_running(backend.settings, NOW)
    assert first.task_arn is not None
    backend.ecs.stop_task(cluster=backend.settings.cluster_arn, task=first.task_arn, reason="killed by hand")

    again = ensure_running(backend.settings, NOW + 60)

    assert again.status == "started"
    assert again.task_arn not in (None, first.task_arn)
    assert len(backend.run_task_calls) == 2
    state = store(backend).get()
    assert state is not None
    assert (state.status, state.task_arn, state.stopped_reason) == (TaskStatus.RUNNING, again.task_arn, None)


def test_unknown_action_is_a_400_naming_the_allowed_values(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given any state, When GET /start?action=restart, Then 400 naming `ping`, and nothing is started."""
    status, body, _ = call("task_start_bad_action.json")

    assert status == 400
    assert body["field"] == "action"
    assert "ping" in body["message"] and "restart" in body["message"]
    assert backend.tasks() == []
    assert store(backend).get() is None
    assert not [m for m in metrics_from(capsys.readouterr().out) if "TaskPing" in m]


def test_a_query_that_fails_validation_gets_the_jobs_apis_400_not_a_422(backend: Backend) -> None:
    """Given any state, When GET /start with an action longer than any action, Then the request validator's
    refusal has the jobs API's shape (400 `{message, field}`), and nothing is started."""
    status, body, _ = call("task_start.json", query={"action": "x" * 33})

    assert status == 400
    assert body["field"] == "action" and "action" in body["message"]
    assert set(body) == {"message", "field"}
    assert backend.tasks() == []


def test_stopping_task_answers_503_until_it_has_stopped(backend: Backend) -> None:
    """Given the monitor is stopping an idle backend (it is still saving its DB), When /start, Then 503 with
    Retry-After; once ECS reports it stopped, /start starts a fresh task."""
    first = ensure_running(backend.settings, NOW)
    assert first.task_arn is not None
    state = store(backend).get()
    assert state is not None
    later = first.expires_at + GRACE + 1
    assert store(backend).mark_stopping(state, later, GRACE, "idle") is not None

    with pytest.raises(BackendStopping):
        ensure_running(backend.settings, later)
    status, body, headers = call("task_start.json")
    assert (status, headers.get("Retry-After")) == (503, "5")
    assert "stopping" in body["message"]

    backend.ecs.stop_task(cluster=backend.settings.cluster_arn, task=first.task_arn, reason="idle")
    fresh = ensure_running(backend.settings, later + 30)
    assert fresh.status == "started" and fresh.task_arn != first.task_arn


def test_abandoned_claim_is_taken_over(backend: Backend) -> None:
    """Given a claim whose Lambda died before RunTask (starting, no task, long ago), When /start, Then a task
    starts; a recent claim instead answers `running` (starting) without a second RunTask."""
    stale = store(backend).claim(None, NOW, LIFETIME)
    assert stale is not None

    recent = ensure_running(backend.settings, NOW + 10)
    assert (recent.status, recent.task_arn, recent.message) == ("starting", None, STARTING_MESSAGE)
    assert backend.run_task_calls == []

    taken = ensure_running(backend.settings, NOW + CLAIM_TIMEOUT_SECONDS + 10)
    assert taken.status == "started" and taken.task_arn is not None
    assert len(backend.tasks()) == 1


def test_run_task_failure_is_recorded_and_retryable(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given RunTask fails, When /start, Then 503 and the item is marked stopped with the reason, so the next
    /start tries again."""
    monkeypatch.setenv("BACKEND_TASK_DEFINITION", "storyflow-missing:1")
    status, body, _ = call("task_start.json")
    assert status == 503 and "could not start the backend" in body["message"]
    state = store(backend).get()
    assert state is not None and state.status == TaskStatus.STOPPED
    assert state.stopped_reason and state.stopped_reason.startswith("RunTask failed")

    monkeypatch.setenv("BACKEND_TASK_DEFINITION", backend.settings.task_definition)
    status, body, _ = call("task_start.json")
    assert (status, body["status"]) == (200, "started")
