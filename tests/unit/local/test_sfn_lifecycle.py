"""Step Functions task tokens and StopExecution behave as on AWS (storyflow_local/sfn_lifecycle.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storyflow_local import LocalCloud
from tests.unit.local.support import wait_for

ROLE = "arn:aws:iam::123456789012:role/r"


def _submitter(cloud: LocalCloud) -> str:
    """The fixture's submitter: stores `$$.Task.Token` under `token#{inference_id}` and answers nothing."""
    definition = json.loads(
        cloud.client("stepfunctions").describe_state_machine(
            stateMachineArn=cloud.outputs["InferenceStateMachineArn"]
        )["definition"]
    )
    return str(definition["States"]["Infer"]["Parameters"]["FunctionName"])


def _wait_state(cloud: LocalCloud, inference_id: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A waitForTaskToken state; `inference_id` is its payload binding (`{"inference_id": ...}` or `.$`)."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": _submitter(cloud),
            "Payload": {"token.$": "$$.Task.Token", "input_location": "none", **inference_id},
        },
        "TimeoutSeconds": 60,
        "End": True,
        **extra,
    }


def _machine(cloud: LocalCloud, definition: dict[str, Any]) -> str:
    arn: str = cloud.client("stepfunctions").create_state_machine(
        name=f"lifecycle-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return arn


def _token(cloud: LocalCloud, inference_id: str) -> str | None:
    item = (
        cloud.client("dynamodb")
        .get_item(TableName=cloud.outputs["TableName"], Key={"id": {"S": f"token#{inference_id}"}})
        .get("Item")
    )
    return str(item["token"]["S"]) if item else None


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def _finished(cloud: LocalCloud, arn: str) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d)


def _history(cloud: LocalCloud, arn: str) -> list[str]:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    return [str(e["type"]) for e in events]


def test_each_retry_attempt_of_a_wait_for_task_token_state_gets_its_own_token(app_cloud: LocalCloud) -> None:
    # Given a waitForTaskToken state retried once on InferenceFailed
    inference_id = f"retry-{uuid.uuid4().hex[:8]}"
    state = _wait_state(
        app_cloud,
        {"inference_id": inference_id},
        Retry=[
            {"ErrorEquals": ["InferenceFailed"], "IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 1}
        ],
    )
    sfn = app_cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=_machine(app_cloud, {"StartAt": "Infer", "States": {"Infer": state}}), input="{}"
    )["executionArn"]
    first = wait_for(lambda: _token(app_cloud, inference_id))
    # When its first attempt fails with a retryable error
    sfn.send_task_failure(taskToken=first, error="InferenceFailed", cause="model server went away")
    # Then the retry is submitted with a new token (moto: the same token, and the attempt fails at once)
    second = wait_for(lambda: (token := _token(app_cloud, inference_id)) != first and token)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    # ... a late answer to the first attempt's token is refused and completes nothing
    assert _code(lambda: sfn.send_task_success(taskToken=first, output='{"stale": true}')) == "TaskTimedOut"
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    # ... and the answer to the new token completes the state
    sfn.send_task_success(taskToken=second, output='{"fresh": true}')
    result = _finished(app_cloud, arn)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"fresh": True}
    # ... after which its token is closed too, and an unknown token is invalid
    assert _code(lambda: sfn.send_task_success(taskToken=second, output="{}")) == "TaskTimedOut"
    assert _code(lambda: sfn.send_task_failure(taskToken="no-such-token", error="X")) == "InvalidToken"


def test_stopping_an_execution_during_a_map_aborts_it_and_runs_nothing_more(app_cloud: LocalCloud) -> None:
    # Given a Distributed Map, one item at a time, each item waiting on its token (item 0 is waiting)
    prefix = f"map-{uuid.uuid4().hex[:8]}"
    item = _wait_state(app_cloud, {"inference_id.$": f"States.Format('{prefix}-{{}}', $.n)"})
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Infer",
                    "States": {"Infer": item},
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "Next": "Caught",
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = app_cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=_machine(app_cloud, definition),
        input=json.dumps({"items": [{"n": n} for n in range(3)]}),
    )["executionArn"]
    token = wait_for(lambda: _token(app_cloud, f"{prefix}-0"))
    # When the execution is stopped
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="cancelled by the test")
    # Then it is ABORTED at once (moto: RUNNING until the token's timeout, then FAILED)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    # ... the waiting item's token is closed
    assert _code(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    assert _code(lambda: sfn.send_task_failure(taskToken=token, error="X")) == "TaskTimedOut"
    # ... the interpreter unwinds to ExecutionAborted (with the stop's error and cause)
    wait_for(lambda: "ExecutionAborted" in _history(app_cloud, arn))
    events = sfn.get_execution_history(executionArn=arn)["events"]
    aborted = next(e for e in events if e["type"] == "ExecutionAborted")["executionAbortedEventDetails"]
    assert (aborted["error"], aborted["cause"]) == ("Cancelled", "cancelled by the test")
    # ... having run no further item, no Catch and no next state, and it stays ABORTED
    assert _token(app_cloud, f"{prefix}-1") is None and _token(app_cloud, f"{prefix}-2") is None
    history = _history(app_cloud, arn)
    assert history[-1] == "ExecutionAborted"
    assert "PassStateEntered" not in history and "MapRunFailed" not in history
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_stopping_an_execution_stops_the_ecs_task_its_sync_state_waits_on(app_cloud: LocalCloud) -> None:
    # Given an ecs:runTask.sync state whose task runs for a long time
    sfn, ecs = app_cloud.client("stepfunctions"), app_cloud.client("ecs")
    job = f"stop-{uuid.uuid4().hex[:8]}"
    arn = sfn.start_execution(
        stateMachineArn=app_cloud.outputs["EcsStateMachineArn"],
        input=json.dumps({"command": ["--sleep", "120"], "job_id": job}),
    )["executionArn"]
    cluster = app_cloud.outputs["ClusterArn"]

    def running_task() -> str | None:
        arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
            env = task["overrides"]["containerOverrides"][0].get("environment", [])
            if {"name": "JOB_ID", "value": job} in env and task["lastStatus"] == "RUNNING":
                return str(task["taskArn"])
        return None

    task_arn = wait_for(running_task)
    # When the execution is stopped
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="test")
    # Then it is ABORTED and its task is stopped (Step Functions calls StopTask; moto: the task runs on)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    task = wait_for(
        lambda: (
            (t := ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0])["lastStatus"]
            == "STOPPED"
            and t
        )
    )
    assert task["stopCode"] == "UserInitiated"
    assert arn in task["stoppedReason"]
    wait_for(lambda: "ExecutionAborted" in _history(app_cloud, arn))
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
