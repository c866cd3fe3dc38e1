"""SageMaker async: InvokeEndpointAsync runs the model container's serve command and notifies SNS."""

from __future__ import annotations

import json

from storyflow_local import LocalCloud
from tests.unit.local.support import run_execution, wait_for


def _put(cloud: LocalCloud, key: str, text: str) -> str:
    bucket = cloud.outputs["DataBucketName"]
    cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps({"text": text}))
    return f"s3://{bucket}/{key}"


def test_an_inference_completes_and_the_waiting_task_succeeds(app_cloud: LocalCloud) -> None:
    # Given a request in S3
    location = _put(app_cloud, "inference/in/ok.json", "hello")
    # When the inference machine submits it (waitForTaskToken) and the result Lambda answers from SNS
    result = run_execution(
        app_cloud,
        app_cloud.outputs["InferenceStateMachineArn"],
        {"inference_id": "inf-ok", "input_location": location},
    )
    # Then the model's answer is at S3OutputPath/{InferenceId}.out and came through the success topic
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    bucket = app_cloud.outputs["DataBucketName"]
    assert output["output"] == f"s3://{bucket}/inference/out/inf-ok.out"
    assert output["topic"] == app_cloud.physical_id("InferenceSuccessTopic")
    body = app_cloud.client("s3").get_object(Bucket=bucket, Key="inference/out/inf-ok.out")["Body"].read()
    assert json.loads(body) == {"upper": "HELLO", "greeting": "hello"}


def test_an_inference_error_reaches_the_error_topic_and_the_waiting_task_fails(app_cloud: LocalCloud) -> None:
    # Given a request the model refuses (500)
    location = _put(app_cloud, "inference/in/bad.json", "a bad one")
    # When it is submitted
    result = run_execution(
        app_cloud,
        app_cloud.outputs["InferenceStateMachineArn"],
        {"inference_id": "inf-bad", "input_location": location},
    )
    # Then the error notification reached the result Lambda, which failed the task with the failureReason
    assert result["status"] == "FAILED"
    assert result["error"] == "InferenceFailed"
    assert "Received server error (500) from model" in result["cause"]
    assert "InjectedFault" in result["cause"]
    # And the error body was written to S3FailurePath
    bucket = app_cloud.outputs["DataBucketName"]
    failure = app_cloud.client("s3").get_object(Bucket=bucket, Key="inference/failed/inf-bad-error.out")
    assert json.loads(failure["Body"].read())["error"] == "InjectedFault"


def test_the_sdk_call_answers_like_aws_and_honours_the_inference_id(app_cloud: LocalCloud) -> None:
    location = _put(app_cloud, "inference/in/sdk.json", "sdk")
    response = app_cloud.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=app_cloud.outputs["EndpointName"],
        InputLocation=location,
        InferenceId="mine-1",
        ContentType="application/json",
    )
    bucket = app_cloud.outputs["DataBucketName"]
    assert response["InferenceId"] == "mine-1"
    assert response["OutputLocation"] == f"s3://{bucket}/inference/out/mine-1.out"
    assert response["FailureLocation"] == f"s3://{bucket}/inference/failed/mine-1-error.out"
    s3 = app_cloud.client("s3")
    wait_for(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="inference/out/mine-1.out").get("KeyCount"))


def test_the_aws_sdk_task_integration_reaches_the_endpoint(app_cloud: LocalCloud) -> None:
    location = _put(app_cloud, "inference/in/task.json", "task")
    result = run_execution(
        app_cloud,
        app_cloud.outputs["SdkStateMachineArn"],
        {"inference_id": "from-task", "input_location": location},
    )
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["InferenceId"] == "from-task"
    bucket = app_cloud.outputs["DataBucketName"]
    s3 = app_cloud.client("s3")
    wait_for(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="inference/out/from-task.out").get("KeyCount"))


def test_an_unknown_endpoint_is_a_validation_error(app_cloud: LocalCloud) -> None:
    import botocore.exceptions
    import pytest

    with pytest.raises(botocore.exceptions.ClientError) as error:
        app_cloud.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName="nope", InputLocation="s3://b/k"
        )
    assert error.value.response["Error"]["Code"] == "ValidationError"
