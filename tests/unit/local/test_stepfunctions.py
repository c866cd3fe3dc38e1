"""Step Functions: the template's machines run in moto's ASL interpreter with the local fixes."""

from __future__ import annotations

import json

from storyflow_local import LocalCloud
from tests.unit.local.support import run_execution, wait_for


def test_state_machines_are_created_in_the_executing_backend_with_substitutions(
    app_cloud: LocalCloud,
) -> None:
    # Given the deployed fixture
    sfn = app_cloud.client("stepfunctions")
    # When the state machine is described
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=app_cloud.outputs["RetryStateMachineArn"])["definition"]
    )
    # Then DefinitionSubstitutions were applied with the stack's physical ids
    params = definition["States"]["Flaky"]["Parameters"]
    assert params["FunctionName"].endswith(":function:" + app_cloud.outputs["FlakyFunctionName"])
    assert definition["States"]["Caught"]["Parameters"]["table"] == app_cloud.outputs["TableName"]


def test_a_lambda_task_raising_transient_error_is_retried_then_caught(app_cloud: LocalCloud) -> None:
    # When the retry machine runs (its Lambda always raises TransientError)
    result = run_execution(app_cloud, app_cloud.outputs["RetryStateMachineArn"], {"item": "a"})
    # Then the task was tried twice (Retry matched the class name) and the Catch got the AWS error shape
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["caught"]["Error"] == "TransientError"
    assert json.loads(output["caught"]["Cause"])["errorMessage"] == "try again later (a)"
    events = app_cloud.client("stepfunctions").get_execution_history(executionArn=result["executionArn"])[
        "events"
    ]
    assert [e["type"] for e in events].count("TaskFailed") == 2


def test_a_chain_of_three_lambdas(app_cloud: LocalCloud) -> None:
    result = run_execution(app_cloud, app_cloud.outputs["ChainStateMachineArn"], {})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"step": 3}


def test_a_distributed_map_reads_its_items_from_s3(app_cloud: LocalCloud) -> None:
    # Given 40 items in a JSON array in S3
    bucket = app_cloud.outputs["DataBucketName"]
    app_cloud.client("s3").put_object(
        Bucket=bucket, Key="items.json", Body=json.dumps([{"n": i} for i in range(40)])
    )
    # When the Distributed Map runs them through a Lambda
    result = run_execution(
        app_cloud, app_cloud.outputs["MapStateMachineArn"], {"bucket": bucket, "key": "items.json"}
    )
    # Then every item came back, in order
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == [{"n": i} for i in range(40)]


def test_executions_without_a_name_do_not_collide(app_cloud: LocalCloud) -> None:
    sfn = app_cloud.client("stepfunctions")
    arns = {
        sfn.start_execution(stateMachineArn=app_cloud.outputs["ChainStateMachineArn"])["executionArn"]
        for _ in range(2)
    }
    assert len(arns) == 2


def test_send_task_failure_keeps_the_cause(app_cloud: LocalCloud) -> None:
    # Given an inference execution waiting on its task token (the submitter leaves the token to the test)
    sfn = app_cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=app_cloud.outputs["InferenceStateMachineArn"],
        input=json.dumps({"inference_id": "cause-test", "input_location": "none"}),
    )["executionArn"]
    table = app_cloud.outputs["TableName"]
    token = wait_for(
        lambda: (
            app_cloud.client("dynamodb")
            .get_item(TableName=table, Key={"id": {"S": "token#cause-test"}})
            .get("Item")
        )
    )["token"]["S"]
    # When the task is failed with an error and a cause
    sfn.send_task_failure(taskToken=token, error="InferenceFailed", cause="the cause")
    # Then both reach the execution
    described = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d)
    assert described["status"] == "FAILED"
    assert described["error"] == "InferenceFailed"
    assert described["cause"] == "the cause"


def test_start_sync_execution(app_cloud: LocalCloud) -> None:
    response = app_cloud.client("stepfunctions").start_sync_execution(
        stateMachineArn=app_cloud.outputs["ChainStateMachineArn"], input="{}"
    )
    assert response["status"] == "SUCCEEDED"
    assert json.loads(response["output"]) == {"step": 3}


def test_a_failed_item_fails_the_distributed_map_like_aws(app_cloud: LocalCloud) -> None:
    # Given a Distributed Map whose item 2 fails (no tolerated failures)
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "C",
                    "States": {
                        "C": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}],
                            "Default": "P",
                        },
                        "F": {"Type": "Fail", "Error": "Boom", "Cause": "item 2"},
                        "P": {"Type": "Pass", "End": True},
                    },
                },
                "End": True,
            }
        },
    }
    sfn = app_cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="map-fails", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    # When it runs, Then the Map fails with AWS's error (moto: succeeds with a null output)
    result = run_execution(app_cloud, arn, {"items": [1, 2, 3]})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failure_rules() -> None:
    from storyflow_local.stepfunctions import exceeds_tolerance

    assert not exceeds_tolerance(0, 10, 0, 0.0)
    assert exceeds_tolerance(1, 10, 0, 0.0)
    assert not exceeds_tolerance(1, 10, 1, 0.0)
    assert exceeds_tolerance(2, 10, 1, 0.0)
    assert not exceeds_tolerance(2, 10, 0, 20.0)
    assert exceeds_tolerance(3, 10, 0, 20.0)
    assert exceeds_tolerance(3, 10, 5, 20.0)


def test_definite_jsonpaths_give_one_value() -> None:
    from storyflow_local.stepfunctions import extract_json

    data = {"Containers": [{"ExitCode": 3}], "a": [1, 2]}
    assert extract_json("$.Containers[0].ExitCode", data) == 3
    assert extract_json("$.a[*]", data) == [1, 2]
    assert extract_json("$.a[1:]", data) == [2]
