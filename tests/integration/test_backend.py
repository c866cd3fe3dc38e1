"""The on-demand backend on the local cloud: `GET /start` runs the real `storyflow-backend` supervisor as an
ECS task (a local process serving on port 8000), pings keep it alive, the TaskPing alarm and the task
monitor stop it once idle, and its SQLite DB survives the stop as a new version in the versioned bucket.

The session's local cloud runs the backend on a short clock (conftest.STACK_PARAMETERS): lifetime 8 s,
startup grace 4 s, idle alarm after 2 periods of 60 s = 2 local seconds.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from storyflow.backend_tasks import BACKEND_PORT, ECS_STOPPED
from storyflow.local import LocalCloud
from tests.integration.conftest import STACK_PARAMETERS

T = TypeVar("T")

LIFETIME = float(STACK_PARAMETERS["BackendLifetimeSeconds"])
GRACE = float(STACK_PARAMETERS["BackendStartupGraceSeconds"])
# The idle alarm fires after this many local seconds without a ping (at the local time scale of 1/60).
IDLE_ALARM = (
    float(STACK_PARAMETERS["BackendAlarmPeriodSeconds"])
    * int(STACK_PARAMETERS["BackendAlarmEvaluationPeriods"])
    / 60
)
# Gaps between pings longer than the idle alarm: it fires in every gap and the monitor must keep the task.
PING_GAP = IDLE_ALARM + 2.0
DB_KEY = "backend/app.sqlite3"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` (and the last value) otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")


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

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.outputs = cloud.outputs
        self.ecs = cloud.client("ecs")
        self.dynamodb = cloud.client("dynamodb")
        self.s3 = cloud.client("s3")
        self.cloudwatch = cloud.client("cloudwatch")
        self.sns = cloud.client("sns")
        self.cluster = self.outputs["ClusterArn"]
        definition = self.ecs.describe_task_definition(
            taskDefinition=self.outputs["BackendTaskDefinitionArn"]
        )
        self.family = definition["taskDefinition"]["family"]
        self.alarm = self.outputs["TaskPingAlarmName"]

    # --- the API
    def get_start(self, action: str | None = None) -> requests.Response:
        params = {"action": action} if action is not None else None
        return requests.get(self.cloud.api_url + "/start", params=params, timeout=30)

    def start(self, action: str | None = None) -> dict[str, Any]:
        """`GET /start`, retried while the previous task is stopping (503 + Retry-After)."""
        deadline = time.monotonic() + 40
        while True:
            response = self.get_start(action)
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, f"GET /start: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    def wait_ready(self, task_arn: str) -> str:
        """Ping until the task has a public IP, then until its /health/ answers; the backend's base URL."""

        def address() -> str | None:
            answer = self.start("ping")
            assert answer["task_arn"] in (task_arn, None), answer  # never another task meanwhile
            return str(answer["public_ip"]) if answer["public_ip"] else None

        base = f"http://{wait_for('a public IP in the ping answer', address, 20, every=0.2)}:{BACKEND_PORT}"

        def healthy() -> dict[str, Any] | None:
            with contextlib.suppress(requests.ConnectionError):
                response = requests.get(base + "/health/", timeout=2)
                if response.status_code == 200:
                    health: dict[str, Any] = response.json()
                    return health
            return None

        assert wait_for(f"{base}/health/", healthy, 20, every=0.1)["status"] == "ok"
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
        seen: list[dict[str, Any] | None] = [None]

        def reached() -> dict[str, Any] | None:
            seen[0] = self.state()
            return seen[0] if seen[0] is not None and seen[0]["status"] == status else None

        try:
            return wait_for(f"TaskState {status}", reached, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; TaskState is {seen[0]}") from None

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
        seen: list[str] = [""]

        def reached() -> dict[str, Any] | None:
            task = self.task(task_arn)
            seen[0] = task["lastStatus"]
            return task if task["lastStatus"] == last_status else None

        try:
            return wait_for(f"task {task_arn.rsplit('/', 1)[-1]} {last_status}", reached, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; it is {seen[0]}") from None

    def stop_all(self, reason: str, *, port_free: bool = True) -> None:
        """Stop every running backend task; wait until the monitor recorded it (and the port is free)."""
        for arn in self.task_arns("RUNNING"):
            if self.task(arn)["lastStatus"] != ECS_STOPPED:
                self.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)
        for arn in self.task_arns():
            self.wait_task(arn, ECS_STOPPED, 40)
        state = self.state()
        if state is not None and state.get("task_arn"):
            self.wait_state("stopped", 10)
        if port_free:
            wait_for(f"port {BACKEND_PORT} free again", lambda: port_taken() is None, 10)

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
        sqs = self.cloud.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"alarm-watch-{int(time.time() * 1000)}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        topic = self.cloud.physical_id("AlarmTopic")
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


@pytest.fixture(scope="module")
def backend(local_cloud: LocalCloud) -> Iterator[Backend]:
    """Given the deployed backend, with port 8000 (the task definition's PORT) free on this machine."""
    client = Backend(local_cloud)
    client.stop_all("test_backend: before the module", port_free=False)
    taken = port_taken()
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

    # ... and pings keep coming PING_GAP apart (the idle alarm fires in each gap), past the lifetime
    began = backend.state()
    assert began is not None and began["status"] == "running" and began["task_arn"] == first_arn
    last_ping = started
    with backend.alarm_notifications() as notified_states:
        while time.time() <= began["started_at"] + LIFETIME:
            gap_ends = time.monotonic() + PING_GAP
            time.sleep(max(0.0, gap_ends - time.monotonic()))
            last_ping = backend.start("ping")
            assert (last_ping["status"], last_ping["task_arn"]) == ("running", first_arn), last_ping
            assert last_ping["message"] == f"running at {base}/"
        alarms_fired = notified_states()

    # Then the task outlived its lifetime: the alarm fired in the gaps and the monitor kept it (not expired)
    assert "ALARM" in alarms_fired, alarms_fired
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
    assert sorted(b["status"] for b in bodies) == ["running"] * 9 + ["started"], bodies
    arns = {b["task_arn"] for b in bodies} - {None}
    assert len(arns) == 1, arns
    # ... and ECS ran exactly one new task of the backend's family, which is the one recorded and serving
    (arn,) = arns
    assert backend.task_arns() - tasks_before == {arn}
    state = backend.state()
    assert state is not None and (state["status"], state["task_arn"]) == ("running", arn)
    backend.wait_ready(arn)


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


def test_unknown_action_is_a_400_naming_the_allowed_values_and_starts_nothing(backend: Backend) -> None:
    tasks_before = backend.task_arns()
    response = backend.get_start("stop")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "action"
    assert "'stop'" in body["message"] and "allowed values: ping" in body["message"], body
    assert backend.task_arns() == tasks_before


def test_malformed_alarm_message_stops_nothing(backend: Backend) -> None:
    topic = backend.cloud.physical_id("AlarmTopic")
    # Given a backend that has expired and is past its startup grace, while the alarm's own notifications
    # are held back (so only the messages below reach the monitor)
    backend.cloudwatch.disable_alarm_actions(AlarmNames=[backend.alarm])
    try:
        started = backend.start()
        arn = started["task_arn"]
        backend.wait_ready(arn)
        state = backend.state()
        assert state is not None
        time.sleep(max(0.0, max(state["expires_at"], state["started_at"] + GRACE) + 0.5 - time.time()))

        # When malformed (and foreign) alarm messages are published to the alarm topic
        messages = [
            "not json at all",
            "[]",
            json.dumps({}),
            json.dumps({"AlarmName": backend.alarm, "NewStateValue": "EXPLODED"}),
            json.dumps({"NewStateValue": "ALARM"}),
            json.dumps({"AlarmName": "someone-elses-alarm", "NewStateValue": "ALARM"}),
        ]
        for message in messages:
            backend.sns.publish(TopicArn=topic, Message=message, Subject="ALARM")
        time.sleep(2.0)

        # Then nothing is stopped: the task still runs and its TaskState item is unchanged
        assert backend.task(arn)["lastStatus"] == "RUNNING"
        assert backend.state() == state
    finally:
        backend.cloudwatch.enable_alarm_actions(AlarmNames=[backend.alarm])

    # ... while the real alarm, notifying through the same topic again, does stop it (it had expired)
    backend.cloudwatch.set_alarm_state(AlarmName=backend.alarm, StateValue="OK", StateReason="test: re-arm")
    stopped = backend.wait_state("stopped", IDLE_ALARM + 10)
    assert stopped["task_arn"] == arn and stopped["stopped_reason"].startswith("idle: no ping"), stopped
