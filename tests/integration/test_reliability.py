"""Reliability of the stereo workflow: cancel stops the work, retries really retry.

Faults are injected in the local cloud's own process (the SageMaker adapter's model server, the ECS agent's
container plan), so these tests are local-only; everything they check is what AWS shows too.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from storyflow import keys
from storyflow_local import ecs_agent
from storyflow_local.sagemaker import ModelServer
from storyflow_local.samples import make_clip
from tests.support import jobs_api
from tests.support.jobs_api import api
from tests.support.poll import wait_until
from tests.support.target import IntegrationTarget

TIMEOUT = 300
LIFECYCLE = {keys.LIFECYCLE_TAG_KEY: keys.LIFECYCLE_TAG_INTERMEDIATE}


def submit(target: IntegrationTarget, clip: Path, watched: dict[str, Any]) -> str:
    """POST /jobs, note the job id in `watched` (the fault hooks read it), then upload through the ticket."""
    accepted = api(target, "POST", "/jobs", json={"kind": "stereo", "layout": "half"})
    job_id: str = accepted["job_id"]
    watched["job"] = job_id
    ticket = accepted["upload"]
    with clip.open("rb") as handle:
        response = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": ("source.mp4", handle)}, timeout=120
        )
    assert response.status_code in (200, 201, 204), response.text
    return job_id


def job(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(target, "GET", f"/jobs/{job_id}")
    return found


def wait_finished(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    return jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)


def objects(target: IntegrationTarget, bucket_output: str, prefix: str) -> list[str]:
    bucket = target.outputs[bucket_output]
    pages = target.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [str(o["Key"]) for page in pages for o in page.get("Contents", [])]


def requests_of(target: IntegrationTarget, job_id: str, index: int | None = None) -> list[str]:
    """The inference requests submitted for the job (one per attempt): `inference/requests/{job}-{i}-*`."""
    prefix = f"inference/requests/{job_id}-" + (f"{index:05d}-" if index is not None else "")
    return objects(target, "OutputBucketName", prefix)


def tags(target: IntegrationTarget, bucket_output: str, key: str) -> dict[str, str]:
    tag_set = target.client("s3").get_object_tagging(Bucket=target.outputs[bucket_output], Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def callbacks(target: IntegrationTarget, job_id: str) -> list[dict[str, Any]]:
    """The InferenceCallbacks rows (task tokens still out) of the job."""
    table = target.physical_id("InferenceCallbacksTable")
    items = target.client("dynamodb").scan(TableName=table)["Items"]
    return [
        {"token": i["task_token"]["S"], "index": int(i["item_index"]["N"])}
        for i in items
        if i["job_id"]["S"] == job_id
    ]


def execution(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    arn = target.outputs["StereoStateMachineArn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    described: dict[str, Any] = target.client("stepfunctions").describe_execution(executionArn=arn)
    return described


def input_uri(body: bytes) -> str:
    return str(json.loads(body).get("input_uri", ""))


@pytest.fixture(scope="module")
def four_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 s clip: four 10 s segments."""
    return make_clip(tmp_path_factory.mktemp("reliability") / "four.mp4", seconds=40, width=320, height=180)


@pytest.fixture
def hold() -> Iterator[threading.Event]:
    """An event a held inference waits on; always released at the end (the endpoint runs one at a time)."""
    release = threading.Event()
    yield release
    release.set()


def patch_invoke(monkeypatch: pytest.MonkeyPatch, hook: Callable[[ModelServer, bytes], None]) -> None:
    """Run `hook(server, body)` in the SageMaker adapter just before each POST /invocations."""
    original = ModelServer.invoke

    def invoke(self: ModelServer, body: bytes, *args: Any, **kwargs: Any) -> tuple[int, bytes, str]:
        hook(self, body)
        return original(self, body, *args, **kwargs)

    monkeypatch.setattr(ModelServer, "invoke", invoke)


@pytest.mark.local_only("the inference is held inside the local cloud's SageMaker adapter")
def test_cancel_mid_map_aborts_freezes_progress_submits_nothing_more_and_tags_intermediates(
    target: IntegrationTarget, four_segments: Path, monkeypatch: pytest.MonkeyPatch, hold: threading.Event
) -> None:
    # Given a 4-segment job whose first inference completes and whose next one is held on the endpoint
    state: dict[str, Any] = {"job": None, "passed": 0, "held": threading.Event()}

    def hook(server: ModelServer, body: bytes) -> None:
        if state["job"] is None or f"/{state['job']}/" not in input_uri(body):
            return
        if state["passed"] == 0:
            state["passed"] = 1
            return
        state["held"].set()
        hold.wait(TIMEOUT)

    patch_invoke(monkeypatch, hook)
    job_id = submit(target, four_segments, state)
    wait_until(
        lambda: job(target, job_id), TIMEOUT, "one segment done", until=lambda j: j["progress"]["done"]
    )
    assert state["held"].wait(TIMEOUT), "the second inference never reached the endpoint"
    submitted = requests_of(target, job_id)
    assert len(submitted) == 4  # the Map submitted every segment (MaxConcurrency 20)

    # When the job is cancelled mid-Map
    cancelled = api(target, "POST", f"/jobs/{job_id}/cancel")

    # Then the job is cancelled and its execution ABORTED at once
    assert cancelled["status"] == "cancelled"
    assert execution(target, job_id)["status"] == "ABORTED"
    # ... and when the held inferences finish after the cancel, their results are not counted: once the
    # result function has handled all three (their tokens refused: the rows are gone, their outputs tagged)
    hold.set()
    late = [keys.inferred_segment_key(job_id, i) for i in range(4)]

    def settled() -> bool:
        present = set(objects(target, "OutputBucketName", f"jobs/{job_id}/segments/"))
        return (
            not callbacks(target, job_id)
            and set(late) <= present
            and all(tags(target, "OutputBucketName", key) == LIFECYCLE for key in late)
        )

    wait_until(settled, TIMEOUT, "the late results of the cancelled job to be handled")
    final = job(target, job_id)
    assert final["status"] == "cancelled"
    assert final["progress"]["done"] == 1  # frozen (moto: moved on to 4/4)
    assert sorted(requests_of(target, job_id)) == sorted(submitted)  # nothing submitted after the cancel
    arn = execution(target, job_id)["executionArn"]
    sfn = target.client("stepfunctions")
    history = wait_until(
        lambda: sfn.get_execution_history(executionArn=arn)["events"],
        TIMEOUT,
        "the execution's history to end",
        until=lambda events: events[-1]["type"] == "ExecutionAborted",
    )
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert "MarkReassembling" not in entered and "MarkFailed" not in entered
    assert execution(target, job_id)["status"] == "ABORTED"
    # ... and every intermediate of the job is tagged to expire
    for key in objects(target, "InputBucketName", f"segments/{job_id}/"):
        assert tags(target, "InputBucketName", key) == LIFECYCLE, key
    for key in requests_of(target, job_id):
        assert tags(target, "OutputBucketName", key) == LIFECYCLE, key


@pytest.mark.local_only("the chunk step is slowed inside the local cloud's ECS agent")
def test_cancel_during_chunk_stops_the_ecs_task(
    target: IntegrationTarget, four_segments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose chunk task runs long (its container waits a minute before chunking)
    watched: dict[str, str] = {}
    original = ecs_agent.plan_containers

    def slow(definitions: Any, overrides: Any, ctx: Any) -> list[ecs_agent.ContainerPlan]:
        plans = original(definitions, overrides, ctx)
        for plan in plans:
            if watched.get("job") and watched["job"] in plan.argv:
                plan.argv = ["sh", "-c", 'sleep 60; exec "$@"', "sh", *plan.argv]
        return plans

    monkeypatch.setattr(ecs_agent, "plan_containers", slow)
    job_id = submit(target, four_segments, watched)
    ecs = target.client("ecs")
    cluster = target.physical_id("Cluster")

    def chunk_task() -> dict[str, Any] | None:
        arns = ecs.list_tasks(cluster=cluster)["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
            overrides = task.get("overrides", {}).get("containerOverrides", [])
            commands = [c.get("command", []) for c in overrides]
            if any(job_id in command for command in commands) and task["lastStatus"] == "RUNNING":
                found: dict[str, Any] = task
                return found
        return None

    task = wait_until(chunk_task, TIMEOUT, "the job's chunk task to run")

    # When the job is cancelled
    assert api(target, "POST", f"/jobs/{job_id}/cancel")["status"] == "cancelled"

    # Then its execution is ABORTED and Step Functions stopped the task (moto: the task runs on)
    assert execution(target, job_id)["status"] == "ABORTED"
    stopped = wait_until(
        lambda: ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0],
        TIMEOUT,
        "the chunk task to stop",
        until=lambda t: t["lastStatus"] == "STOPPED",
    )
    assert stopped["stopCode"] == "UserInitiated"
    assert job(target, job_id)["status"] == "cancelled"


@pytest.mark.local_only("the model server is killed inside the local cloud")
def test_a_killed_model_server_is_retried_with_a_fresh_token_and_the_job_completes(
    target: IntegrationTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose first inference finds the model server killed (SIGKILL) as it is sent
    state: dict[str, Any] = {"job": None, "tokens": [], "calls": 0}

    def hook(server: ModelServer, body: bytes) -> None:
        if state["job"] is None or f"/{state['job']}/00000" not in input_uri(body):
            return
        state["calls"] += 1
        for row in callbacks(target, state["job"]):
            if row["index"] == 0 and row["token"] not in state["tokens"]:
                state["tokens"].append(row["token"])
        if state["calls"] == 1 and server.process is not None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(30)

    patch_invoke(monkeypatch, hook)
    job_id = submit(target, make_clip(tmp_path / "two.mp4", seconds=20, width=320, height=180), state)

    # When the workflow runs
    finished = wait_finished(target, job_id)

    # Then the failed inference (transient: the connection was refused) was retried and the job completed
    assert finished["status"] == "completed", finished.get("error")
    assert finished["progress"]["done"] == finished["progress"]["total"] == 2
    assert len(requests_of(target, job_id, 0)) == 2  # two attempts, two inference ids
    # ... the retry had its own token (moto: the first one's, so it failed at once on the stale answer)
    first, second = state["tokens"]
    assert first != second
    # ... and a late answer to the first attempt's token is refused and changes nothing
    with pytest.raises(ClientError) as refused:
        target.client("stepfunctions").send_task_success(taskToken=first, output="{}")
    assert refused.value.response["Error"]["Code"] in {"TaskTimedOut", "InvalidToken"}
    assert execution(target, job_id)["status"] == "SUCCEEDED"


@pytest.mark.local_only("the segment is replaced inside the local cloud's SageMaker adapter")
def test_a_deterministic_model_error_fails_the_job_after_one_attempt(
    target: IntegrationTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose segment 00000 is no video by the time the model reads it (the model answers 422)
    state: dict[str, Any] = {"job": None}

    def hook(server: ModelServer, body: bytes) -> None:
        uri = input_uri(body)
        if state["job"] is not None and f"/{state['job']}/00000" in uri:
            bucket, key = uri[5:].split("/", 1)
            target.client("s3").put_object(Bucket=bucket, Key=key, Body=b"this is not a video\n" * 10)

    patch_invoke(monkeypatch, hook)
    job_id = submit(target, make_clip(tmp_path / "two.mp4", seconds=20, width=320, height=180), state)

    # When the workflow runs
    finished = wait_finished(target, job_id)

    # Then the job failed with the model's typed error for that segment, after ONE attempt (not retried)
    assert finished["status"] == "failed"
    assert finished["error"]["error"] == "NotAVideo", finished["error"]
    assert finished["error"]["cause"].startswith("item 00000: "), finished["error"]
    assert len(requests_of(target, job_id, 0)) == 1
    assert execution(target, job_id)["status"] == "FAILED"
