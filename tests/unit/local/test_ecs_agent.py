"""ECS agent: RunTask runs the container definition's command as a local process; .sync follows its exit."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from storyflow_local import LocalCloud
from storyflow_local.ecs_agent import plan_containers, task_processes
from tests.unit.local.support import recorded, run_execution, wait_for


def test_a_sync_task_exiting_0_succeeds_with_the_overrides(app_cloud: LocalCloud) -> None:
    # When the ECS machine runs the worker with a Command override and an Environment override
    result = run_execution(
        app_cloud, app_cloud.outputs["EcsStateMachineArn"], {"command": ["--exit", "0"], "job_id": "job-ok"}
    )
    # Then the state got the stopped task: exit code 0, AWS's stopped reason
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"exit": 0, "reason": "Essential container in task exited"}


def test_a_sync_task_exiting_3_fails_the_state_like_aws_without_its_stderr(
    app_cloud: LocalCloud, caplog: pytest.LogCaptureFixture
) -> None:
    # When the worker writes a one-line reason on stderr and exits 3
    with caplog.at_level(logging.INFO, logger="storyflow_local.ecs"):
        result = run_execution(
            app_cloud,
            app_cloud.outputs["EcsStateMachineArn"],
            {"command": ["--exit", "3", "--stderr", "error: NotAVideo: not a video"], "job_id": "j"},
        )
    # Then the state failed with States.TaskFailed and the task description (exit code, reason) as Cause
    output = json.loads(result["output"])
    assert output["failure"]["Error"] == "States.TaskFailed"
    cause = json.loads(output["failure"]["Cause"])
    assert cause["Containers"][0]["ExitCode"] == 3
    assert cause["LastStatus"] == "STOPPED"
    # And, as on AWS, the reason is ECS's own: the container's stderr is in neither the task's
    # stoppedReason nor the container's reason (a workflow reads the container's error.json instead)
    assert cause["StoppedReason"] == "Essential container in task exited"
    assert not cause["Containers"][0].get("Reason")
    # But the local log keeps it
    assert any("last stderr: error: NotAVideo: not a video" in r.getMessage() for r in caplog.records)


def test_run_task_and_stop_task_through_the_api(app_cloud: LocalCloud) -> None:
    # Given a running task (the worker sleeps 30 s)
    ecs = app_cloud.client("ecs")
    cluster = app_cloud.outputs["ClusterArn"]
    task = ecs.run_task(
        cluster=cluster,
        taskDefinition=app_cloud.outputs["TaskDefinitionArn"],
        launchType="FARGATE",
        overrides={"containerOverrides": [{"name": "worker", "command": ["--sleep", "30"]}]},
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [app_cloud.outputs["SubnetId"]], "assignPublicIp": "ENABLED"}
        },
    )["tasks"][0]

    def status() -> str:
        return str(ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]["lastStatus"])

    wait_for(lambda: status() == "RUNNING")
    # Then its awsvpc ENI answers with this machine's address (its containers listen here)
    described = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]
    eni = next(
        d["value"] for d in described["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    interface = app_cloud.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni])[
        "NetworkInterfaces"
    ][0]
    assert interface["Association"]["PublicIp"] == "127.0.0.1"
    # When it is stopped
    ecs.stop_task(cluster=cluster, task=task["taskArn"], reason="no longer needed")
    # Then the process got SIGTERM and the task is STOPPED with the user's reason and the exit code
    wait_for(lambda: status() == "STOPPED", timeout=10)
    described = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]
    assert described["stoppedReason"] == "no longer needed"
    assert described["stopCode"] == "UserInitiated"
    assert described["containers"][0]["exitCode"] == 143


def _alive(pid: int) -> bool:
    """Running, not exited (a zombie its new parent has not reaped yet counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the agent finds a task's processes in /proc"
)
@pytest.mark.parametrize("ending", ["container SIGKILLed", "StopTask"])
def test_every_process_of_a_stopped_task_dies_with_it(app_cloud: LocalCloud, ending: str) -> None:
    # Given a running task whose container started a child in a session of its own
    ecs = app_cloud.client("ecs")
    cluster = app_cloud.outputs["ClusterArn"]
    task = ecs.run_task(
        cluster=cluster,
        taskDefinition=app_cloud.outputs["TaskDefinitionArn"],
        launchType="FARGATE",
        overrides={"containerOverrides": [{"name": "worker", "command": ["--spawn", "--sleep", "30"]}]},
        networkConfiguration={"awsvpcConfiguration": {"subnets": [app_cloud.outputs["SubnetId"]]}},
    )["tasks"][0]
    arn = task["taskArn"]
    pids = wait_for(lambda: (found := task_processes(arn)) and len(found) >= 2 and found)
    worker = next(
        pid for pid in pids if "fixture-worker-child" not in Path(f"/proc/{pid}/cmdline").read_text()
    )
    # When the container is SIGKILLed (its child is in another process group), or the task is stopped
    if ending == "StopTask":
        ecs.stop_task(cluster=cluster, task=arn, reason="test")
    else:
        os.kill(worker, signal.SIGKILL)

    # Then the task is STOPPED and, as on Fargate, none of its processes outlives it
    def stopped() -> bool:
        return str(ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"]) == "STOPPED"

    wait_for(stopped, timeout=15)
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=5)


def test_task_state_changes_reach_eventbridge(app_cloud: LocalCloud) -> None:
    # Given tasks have run (above or here), Then the recorder saw "ECS Task State Change" STOPPED events
    run_execution(
        app_cloud, app_cloud.outputs["EcsStateMachineArn"], {"command": ["--exit", "0"], "job_id": "ev"}
    )
    events = wait_for(lambda: recorded(app_cloud, "aws.ecs"))
    assert events[0]["detail-type"] == "ECS Task State Change"
    assert events[0]["detail"]["lastStatus"] == "STOPPED"


def test_plan_uses_the_image_program_entry_point_and_overrides(app_cloud: LocalCloud, tmp_path: Path) -> None:
    # Given a container definition without an EntryPoint, and one with
    assert app_cloud.ctx is not None
    definitions = [
        {
            "name": "a",
            "image": "123.dkr.ecr.us-east-1.amazonaws.com/fixture-worker:1",
            "command": ["--exit", "1"],
            "environment": [{"name": "X", "value": "1"}],
        },
        {"name": "b", "image": "x", "entryPoint": [sys.executable, "-c"], "command": ["print(1)"]},
    ]
    overrides = {
        "containerOverrides": [
            {"name": "a", "command": ["--exit", "0"], "environment": [{"name": "Y", "value": "2"}]}
        ]
    }
    # When they are planned
    a, b = plan_containers(definitions, overrides, app_cloud.ctx)
    # Then the image's program comes first, the override's Command and Environment apply
    assert a.argv[1:] == [app_cloud.ctx.config.image_commands["fixture-worker"][1], "--exit", "0"]
    assert a.environment == {"X": "1", "Y": "2"}
    assert b.argv == [sys.executable, "-c", "print(1)"]


def test_a_missing_program_fails_the_task_to_start(app_cloud: LocalCloud) -> None:
    assert app_cloud.ctx is not None
    (plan,) = plan_containers(
        [{"name": "x", "image": "no-such-image", "command": ["nope-not-a-program"]}], None, app_cloud.ctx
    )
    assert plan.error and "CannotStartContainerError" in plan.error
