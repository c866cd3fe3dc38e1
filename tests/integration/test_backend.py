"""The on-demand backend on the local cloud: `GET /start` runs the real `storyflow-backend` supervisor as an
ECS task (a local process serving on port 8000), pings keep it alive, the TaskPing alarm and the task
monitor stop it once idle, and its SQLite DB survives the stop as a new version in the versioned bucket.

The session's local cloud runs the backend on a short clock (conftest.STACK_PARAMETERS): lifetime 8 s,
startup grace 4 s, idle alarm after 2 periods of 60 s = 2 local seconds. The tests that rely on that clock,
on the local alarm clock or on killing the task's local processes are local_only; the others also run
against a deployed stack (STORYFLOW_STACK), where a Fargate task starts and stops in minutes, not seconds.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from storyflow.backend.ecs import ECS_STOPPED
from storyflow.backend.models import BACKEND_PORT
from tests.integration.conftest import STACK_PARAMETERS
from tests.support.poll import wait_until
from tests.support.target import IntegrationTarget

LIFETIME = float(STACK_PARAMETERS["BackendLifetimeSeconds"])
GRACE = float(STACK_PARAMETERS["BackendStartupGraceSeconds"])
# The idle alarm fires after this many local seconds without a ping (at the local time scale of 1/60).
IDLE_ALARM = (
    float(STACK_PARAMETERS["BackendAlarmPeriodSeconds"])
    * int(STACK_PARAMETERS["BackendAlarmEvaluationPeriods"])
    / 60
)
# Gaps between pings longer than the idle alarm: it fires in every gap and the monitor must keep the task.
DB_KEY = "backend/app.sqlite3"
SHORT_CLOCK = "runs the backend on the local cloud's short clock (conftest.STACK_PARAMETERS)"


def port_taken(port: int = BACKEND_PORT) -> str | None:
    """Why the backend's port cannot be bound on this machine (None: it is free). Binds like the app does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as error:
            return f"{errno.errorcode.get(error.errno or 0, error.errno)}: {error.strerror}"
    return None


def container_pids(task_arn: str) -> list[int]:
    """The local processes of one ECS task's container: the supervisor and the app it runs (Linux /proc)."""
    marker = f"ECS_TASK_ARN={task_arn}\0".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
    return pids


class Backend:
    """The backend's API, its TaskState item, its ECS tasks and its DB bucket, as a client sees them."""

    def __init__(self, target: IntegrationTarget) -> None:
        self.target = target
        self.outputs = target.outputs
        self.ecs = target.client("ecs")
        self.dynamodb = target.client("dynamodb")
        self.s3 = target.client("s3")
        self.cloudwatch = target.client("cloudwatch")
        self.sns = target.client("sns")
        # Seconds to wait for a task to start / to stop: local processes, or Fargate pulling an image.
        local = target.local is not None
        self.starts_within, self.stops_within = (20.0, 40.0) if local else (300.0, 180.0)
        self.cluster = self.outputs["ClusterArn"]
        definition = self.ecs.describe_task_definition(
            taskDefinition=self.outputs["BackendTaskDefinitionArn"]
        )
        self.family = definition["taskDefinition"]["family"]
        self.alarm = self.outputs["TaskPingAlarmName"]

    # --- the API
    def get_start(self, action: str | None = None) -> requests.Response:
        params = {"action": action} if action is not None else None
        return self.target.http("GET", "/start", params=params)

    def start(self, action: str | None = None) -> dict[str, Any]:
        """`GET /start`, retried while the previous task is stopping (503 + Retry-After)."""
        response = wait_until(
            lambda: self.get_start(action),
            self.stops_within,
            "GET /start answering other than 503 (the previous task stopped)",
            until=lambda r: r.status_code != 503,
        )
        assert response.status_code == 200, f"GET /start: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def wait_ready(self, task_arn: str) -> str:
        """Ping until the task has a public IP, then until its /health/ answers; the backend's base URL."""

        def address() -> str | None:
            answer = self.start("ping")
            assert answer["task_arn"] in (task_arn, None), answer  # never another task meanwhile
            return str(answer["public_ip"]) if answer["public_ip"] else None

        ip = wait_until(address, self.starts_within, "a public IP in the ping answer")
        base = f"http://{ip}:{BACKEND_PORT}"

        health = wait_until(
            lambda: requests.get(base + "/health/", timeout=2),
            self.starts_within,
            f"{base}/health/ answering 200",
            until=lambda r: r.status_code == 200,
            ignore=(requests.ConnectionError,),
        )
        assert health.json()["status"] == "ok", health.text
        return base

    # --- the TaskState item
    def state(self) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.outputs["TaskStateTableName"], Key={"task_id": {"S": "main"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        plain: dict[str, Any] = {}
        for name, typed in item.items():
            ((kind, value),) = typed.items()
            plain[name] = float(value) if kind == "N" else (None if kind == "NULL" else value)
        return plain

    def wait_state(self, status: str, timeout: float) -> dict[str, Any]:
        state = wait_until(
            self.state,
            timeout,
            f"TaskState {status}",
            until=lambda s: s is not None and s["status"] == status,
        )
        assert state is not None
        return state

    # --- ECS
    def task(self, task_arn: str) -> dict[str, Any]:
        tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=[task_arn])["tasks"]
        assert len(tasks) == 1, f"ECS does not know {task_arn}"
        task: dict[str, Any] = tasks[0]
        return task

    def task_arns(self, desired: str | None = None) -> set[str]:
        """Every task of the backend's family ECS knows (or only those with this desired status)."""
        statuses = [desired] if desired else ["RUNNING", "STOPPED"]
        arns: set[str] = set()
        for status in statuses:
            arns.update(
                self.ecs.list_tasks(cluster=self.cluster, family=self.family, desiredStatus=status)[
                    "taskArns"
                ]
            )
        return arns

    def wait_task(self, task_arn: str, last_status: str, timeout: float) -> dict[str, Any]:
        return wait_until(
            lambda: self.task(task_arn),
            timeout,
            f"task {task_arn.rsplit('/', 1)[-1]} {last_status}",
            until=lambda task: task["lastStatus"] == last_status,
        )

    def stop_all(self, reason: str, *, port_free: bool = True) -> None:
        """Stop every running backend task; wait until the monitor recorded it (and the port is free)."""
        for arn in self.task_arns("RUNNING"):
            if self.task(arn)["lastStatus"] != ECS_STOPPED:
                self.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)
        for arn in self.task_arns():
            self.wait_task(arn, ECS_STOPPED, self.stops_within)
        state = self.state()
        if state is not None and state.get("task_arn"):
            self.wait_state("stopped", 10 if self.target.local is not None else 60)
        if port_free and self.target.local is not None:  # the local ECS agent runs the task on this host
            wait_until(lambda: port_taken() is None, 10, f"port {BACKEND_PORT} free again")

    # --- the DB bucket
    def db_versions(self) -> list[dict[str, Any]]:
        """Versions of the DB object, newest first."""
        response = self.s3.list_object_versions(Bucket=self.outputs["BackendDbBucketName"], Prefix=DB_KEY)
        versions = [v for v in response.get("Versions", []) if v["Key"] == DB_KEY]
        return sorted(versions, key=lambda v: (v["IsLatest"], v["LastModified"]), reverse=True)

    def db_rows(self, version_id: str, into: Path) -> list[str]:
        """The item names stored in one version of the DB snapshot."""
        body = self.s3.get_object(
            Bucket=self.outputs["BackendDbBucketName"], Key=DB_KEY, VersionId=version_id
        )
        into.write_bytes(body["Body"].read())
        connection = sqlite3.connect(into)
        try:
            return [row[0] for row in connection.execute("SELECT name FROM items ORDER BY id")]
        finally:
            connection.close()

    # --- the alarm
    @contextlib.contextmanager
    def alarm_notifications(self) -> Iterator[Callable[[], list[str]]]:
        """Subscribe a queue to the alarm topic (as an operator would); yields a reader of the new states
        the TaskPing alarm notified. The ALARM state itself lasts only until the monitor re-arms it, so
        polling describe_alarms can miss it; its notifications cannot be missed."""
        sqs = self.target.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"alarm-watch-{int(time.time() * 1000)}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        topic = self.target.physical_id("AlarmTopic")
        subscription = self.sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )["SubscriptionArn"]

        def states() -> list[str]:
            seen = []
            while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                for message in messages:
                    with contextlib.suppress(ValueError, AttributeError):
                        body = json.loads(message["Body"])
                        if body.get("AlarmName") == self.alarm:
                            seen.append(str(body.get("NewStateValue")))
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return seen

        try:
            yield states
        finally:
            self.sns.unsubscribe(SubscriptionArn=subscription)
            sqs.delete_queue(QueueUrl=queue_url)

    def wait_alarm_fired_and_kept(self, notified_states: Callable[[], list[str]]) -> None:
        """Wait until the idle alarm notifies ALARM, then until the task monitor, having found the task not
        expired yet, re-armed it (back to OK, saying it kept the backend)."""
        wait_until(lambda: "ALARM" in notified_states(), IDLE_ALARM + 10, "the TaskPing alarm's ALARM")

        wait_until(
            lambda: self.cloudwatch.describe_alarms(AlarmNames=[self.alarm])["MetricAlarms"][0],
            10,
            "the task monitor keeping the backend (the alarm re-armed to OK)",
            until=lambda alarm: (
                alarm["StateValue"] == "OK"
                and str(alarm["StateReason"]).startswith("task-monitor: backend kept")
            ),
        )


@contextlib.contextmanager
def monitor_outcomes(target: IntegrationTarget) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The outcomes the task monitor logs (`task monitor` lines: action, reason), read from the local cloud's
    function log while the block runs; yields a reader of those logged so far."""
    function = target.physical_id("TaskMonitorFunction")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            name, _, line = record.getMessage().partition(": ")
            if name == function:
                lines.append(line)

    def outcomes() -> list[dict[str, Any]]:
        found = []
        for line in list(lines):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("message") == "task monitor":
                    found.append(entry)
        return found

    log = logging.getLogger("storyflow_local.function")
    handler, level = Collect(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield outcomes
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@pytest.fixture(scope="module")
def backend(target: IntegrationTarget) -> Iterator[Backend]:
    """Given the deployed backend, with no task running; on the local cloud, with port 8000 (the task
    definition's PORT) free on this machine."""
    client = Backend(target)
    client.stop_all("test_backend: before the module", port_free=False)
    taken = port_taken() if target.local is not None else None
    if taken is not None:
        pytest.fail(
            f"port {BACKEND_PORT} is already in use on this machine ({taken}); the backend task definition "
            f"serves on PORT {BACKEND_PORT} and the local ECS agent runs it on this host. Free the port "
            f"(see `ss -ltnp 'sport = :{BACKEND_PORT}'`) and run again.",
            pytrace=False,
        )
    yield client
    client.stop_all("test_backend: after the module")


@pytest.fixture(autouse=True)
def no_backend_left_running(backend: Backend) -> Iterator[None]:
    """Every test starts and ends with no backend task running, and the port free."""
    yield
    backend.stop_all("test_backend: cleanup")


@pytest.mark.local_only(f"{SHORT_CLOCK}: an 8 s lifetime, a 2 s idle alarm")
def test_backend_lives_while_pinged_stops_when_idle_and_keeps_its_rows(
    backend: Backend, tmp_path: Path
) -> None:
    versions_before = {v["VersionId"] for v in backend.db_versions()}

    # Given a backend started by GET /start
    started = backend.start()
    assert started["status"] == "started", started
    first_arn = started["task_arn"]
    assert first_arn and first_arn in backend.task_arns("RUNNING")
    # ... whose container (the supervisor, run by the local ECS agent) answers /health/ at its public IP
    base = backend.wait_ready(first_arn)
    # When rows are written through the app
    names = ["alpha", "beta", "gamma"]
    for name in names:
        created = requests.post(base + "/items/", json={"name": name, "data": {"n": len(name)}}, timeout=5)
        assert created.status_code == 201, created.text
    assert [i["name"] for i in requests.get(base + "/items/", timeout=5).json()["items"]] == names

    # ... and pings keep coming past the lifetime, each once the idle alarm fired and the monitor kept it
    began = backend.state()
    assert began is not None and began["status"] == "running" and began["task_arn"] == first_arn
    last_ping = started
    gaps = 0
    with backend.alarm_notifications() as notified_states:
        while time.time() <= began["started_at"] + LIFETIME:
            backend.wait_alarm_fired_and_kept(notified_states)
            gaps += 1
            last_ping = backend.start("ping")
            assert (last_ping["status"], last_ping["task_arn"]) == ("running", first_arn), last_ping
            assert last_ping["message"] == f"running at {base}/"
            notified_states()  # an ALARM notified before this ping belongs to this gap, not the next

    # Then the task outlived its lifetime: the alarm fired in every gap and the monitor kept it (not expired)
    assert gaps >= 2, gaps
    assert time.time() > began["started_at"] + LIFETIME
    assert backend.task(first_arn)["lastStatus"] == "RUNNING"
    assert requests.get(base + "/health/", timeout=5).json() == {"status": "ok", "items": len(names)}

    # When the pings stop
    # Then the alarm fires once the task has expired, and the monitor stops it, saying why
    stopped = backend.wait_state("stopped", LIFETIME + IDLE_ALARM + 10)
    assert stopped["task_arn"] == first_arn
    assert stopped["stopped_reason"].startswith("idle: no ping since it expired"), stopped
    assert stopped["updated_at"] >= last_ping["expires_at"]  # never before it expired
    task = backend.wait_task(first_arn, ECS_STOPPED, 5)
    assert task["stoppedReason"].startswith("idle: no ping since it expired"), task
    assert [c.get("exitCode") for c in task["containers"]] == [0]  # the supervisor stopped cleanly
    # ... and the supervisor's final snapshot is a new version of the DB, holding the rows
    new_versions = [v for v in backend.db_versions() if v["VersionId"] not in versions_before]
    assert new_versions, "no new DB version after the stop"
    assert new_versions[0]["IsLatest"]
    assert backend.db_rows(new_versions[0]["VersionId"], tmp_path / "snapshot.sqlite3") == names

    # When GET /start is called again
    restarted = backend.start()
    # Then a new task starts, restores the DB, and serves the same rows
    assert restarted["status"] == "started", restarted
    assert restarted["task_arn"] not in (None, first_arn)
    base = backend.wait_ready(restarted["task_arn"])
    assert [i["name"] for i in requests.get(base + "/items/", timeout=5).json()["items"]] == names
    assert backend.task_arns("RUNNING") == {restarted["task_arn"]}


@pytest.mark.parametrize("previous", ["none", "stopped"], ids=["first-start-ever", "after-a-stopped-task"])
def test_ten_concurrent_starts_run_exactly_one_task(backend: Backend, previous: str) -> None:
    # Given no backend running: no TaskState item at all, or the one a stopped task left
    if previous == "none":
        backend.dynamodb.delete_item(
            TableName=backend.outputs["TaskStateTableName"], Key={"task_id": {"S": "main"}}
        )
    elif (backend.state() or {}).get("status") != "stopped":
        backend.start()
        backend.stop_all("test_backend: a stopped task for the Given")
    tasks_before = backend.task_arns()

    # When ten clients call GET /start at once
    barrier = threading.Barrier(10)
    answers: list[requests.Response] = []

    def call() -> None:
        barrier.wait()
        answers.append(backend.get_start())

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then all answer 200, exactly one of them started a task, and they all name that task (or none yet)
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert sorted(b["status"] for b in bodies).count("started") == 1, bodies
    # ... the others `running` with that task, or `starting` (no task yet) while it is being launched
    assert all((b["status"] == "starting") == (b["task_arn"] is None) for b in bodies), bodies
    arns = {b["task_arn"] for b in bodies} - {None}
    assert len(arns) == 1, arns
    # ... and ECS ran exactly one new task of the backend's family, which is the one recorded and serving
    (arn,) = arns
    assert backend.task_arns() - tasks_before == {arn}
    state = backend.state()
    assert state is not None and (state["status"], state["task_arn"]) == ("running", arn)
    backend.wait_ready(arn)


@pytest.mark.local_only("kills the task's container processes on this host (the local ECS agent runs them)")
def test_task_killed_from_outside_is_noticed_and_replaced_on_next_start(backend: Backend) -> None:
    # Given a running backend
    started = backend.start()
    first_arn = started["task_arn"]
    backend.wait_ready(first_arn)
    # When its container dies without being asked to (every process of it SIGKILLed, as an OOM kill does)
    pids = container_pids(first_arn)
    assert len(pids) >= 2, f"expected the supervisor and its app, found {pids}"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    # Then ECS reports the task STOPPED, and the monitor (ECS task state-change event) records it: no /start
    task = backend.wait_task(first_arn, ECS_STOPPED, 10)
    assert task["stoppedReason"].startswith("Essential container in task exited"), task
    stopped = backend.wait_state("stopped", 10)
    assert stopped["task_arn"] == first_arn
    assert stopped["stopped_reason"].startswith("task stopped: Essential container in task exited"), stopped

    # When GET /start is called again
    restarted = backend.start()
    # Then a fresh task starts and serves
    assert restarted["status"] == "started" and restarted["task_arn"] not in (None, first_arn), restarted
    backend.wait_ready(restarted["task_arn"])


@pytest.mark.local_only("kills the task's supervisor process on this host (the local ECS agent runs it)")
def test_supervisor_killed_alone_leaves_nothing_on_the_port_and_the_next_task_serves(
    backend: Backend,
) -> None:
    # Given a running backend
    first_arn = backend.start()["task_arn"]
    backend.wait_ready(first_arn)
    # When only its supervisor is SIGKILLed (its app runs in a session of its own: a group kill misses it)
    pids = container_pids(first_arn)
    (supervisor,) = [
        pid for pid in pids if not Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"\0app\0")
    ]
    os.kill(supervisor, signal.SIGKILL)
    # Then the task stops, and none of its processes keeps the port (as on Fargate)
    backend.wait_task(first_arn, ECS_STOPPED, 10)
    backend.wait_state("stopped", 10)
    wait_until(lambda: port_taken() is None, 10, f"port {BACKEND_PORT} free once the task stopped")
    # ... and the next /start runs a task that serves, not one that crashes on "Address already in use"
    restarted = backend.start()
    assert restarted["status"] == "started" and restarted["task_arn"] not in (None, first_arn), restarted
    backend.wait_ready(restarted["task_arn"])
    assert backend.task(restarted["task_arn"])["lastStatus"] == "RUNNING"


def test_unknown_action_is_a_400_naming_the_allowed_values_and_starts_nothing(backend: Backend) -> None:
    tasks_before = backend.task_arns()
    response = backend.get_start("stop")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "action"
    assert "'stop'" in body["message"] and "allowed values: ping" in body["message"], body
    assert backend.task_arns() == tasks_before


@pytest.mark.local_only(f"{SHORT_CLOCK}, and reads the task monitor's outcomes from the local function log")
def test_malformed_alarm_message_stops_nothing(backend: Backend) -> None:
    topic = backend.target.physical_id("AlarmTopic")
    # Given a backend that has expired and is past its startup grace, while the alarm's own notifications
    # are held back (so only the messages below reach the monitor)
    backend.cloudwatch.disable_alarm_actions(AlarmNames=[backend.alarm])
    try:
        started = backend.start()
        arn = started["task_arn"]
        backend.wait_ready(arn)
        state = backend.state()
        assert state is not None
        stoppable_from = max(state["expires_at"], state["started_at"] + GRACE) + 0.5
        wait_until(lambda: time.time() > stoppable_from, LIFETIME + GRACE + 5, "expiry, past the grace")

        # When malformed (and foreign) alarm messages are published to the alarm topic
        messages = [
            "not json at all",
            "[]",
            json.dumps({}),
            json.dumps({"AlarmName": backend.alarm, "NewStateValue": "EXPLODED"}),
            json.dumps({"NewStateValue": "ALARM"}),
            json.dumps({"AlarmName": "someone-elses-alarm", "NewStateValue": "ALARM"}),
        ]
        with monitor_outcomes(backend.target) as outcomes:
            for message in messages:
                backend.sns.publish(TopicArn=topic, Message=message, Subject="ALARM")

            # ... once the monitor has handled every one of them
            def all_handled() -> list[dict[str, Any]] | None:
                found = outcomes()
                return found if len(found) >= len(messages) else None

            handled = wait_until(all_handled, 20, f"the monitor's outcomes of all {len(messages)} messages")

        # Then each was ignored, and nothing stopped: the task still runs and its TaskState item is unchanged
        assert [o.get("action") for o in handled] == ["ignored"] * len(messages), handled
        assert backend.task(arn)["lastStatus"] == "RUNNING"
        assert backend.state() == state
    finally:
        backend.cloudwatch.enable_alarm_actions(AlarmNames=[backend.alarm])

    # ... while the real alarm, notifying through the same topic again, does stop it (it had expired)
    backend.cloudwatch.set_alarm_state(AlarmName=backend.alarm, StateValue="OK", StateReason="test: re-arm")
    stopped = backend.wait_state("stopped", IDLE_ALARM + 10)
    assert stopped["task_arn"] == arn and stopped["stopped_reason"].startswith("idle: no ping"), stopped
