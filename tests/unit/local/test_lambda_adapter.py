"""Lambda adapter: moto's invoke paths run the real handler in-process (no Docker)."""

from __future__ import annotations

import json
import logging

import pytest

from storyflow_local import LocalCloud
from tests.unit.local.support import recorded, wait_for


def test_invoke_runs_the_handler_with_the_template_environment(app_cloud: LocalCloud) -> None:
    # Given the echo function of the fixture template
    name = app_cloud.outputs["EchoFunctionName"]
    # When it is invoked through the Lambda API
    response = app_cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"a": 1}))
    body = json.loads(response["Payload"].read())
    # Then the handler ran with its resolved Environment (Fn::Sub with Stage=local) and an AWS-like context
    assert "FunctionError" not in response
    assert body["event"] == {"a": 1}
    assert body["greeting"] == "hello from local"
    assert body["table"] == app_cloud.outputs["TableName"]
    assert body["function_name"] == name
    assert body["memory"] == 256
    assert 0 < body["remaining_ms"] <= 10_000


def test_a_handler_exception_is_an_aws_error_payload(app_cloud: LocalCloud) -> None:
    # When a handler raises
    response = app_cloud.client("lambda").invoke(
        FunctionName=app_cloud.outputs["FlakyFunctionName"], Payload=json.dumps({"item": "x"})
    )
    payload = json.loads(response["Payload"].read())
    # Then the response is a function error with the AWS shape: errorType is the exception class name
    assert response["FunctionError"]
    assert payload["errorType"] == "TransientError"
    assert payload["errorMessage"] == "try again later (x)"
    assert payload["stackTrace"]


def test_the_function_timeout_is_enforced(app_cloud: LocalCloud) -> None:
    # Given a function whose Timeout is 1 s, When it sleeps for 3 s
    response = app_cloud.client("lambda").invoke(
        FunctionName=app_cloud.outputs["FlakyFunctionName"], Payload=json.dumps({"sleep": 3, "fail": False})
    )
    payload = json.loads(response["Payload"].read())
    # Then the invocation fails like AWS's: Sandbox.Timedout after 1.00 seconds
    assert response["FunctionError"]
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_event_invocations_return_at_once_and_run_in_the_background(app_cloud: LocalCloud) -> None:
    # Given the recorder function
    name = app_cloud.physical_id("RecorderFunction")
    # When it is invoked asynchronously
    response = app_cloud.client("lambda").invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"source": "fixture.async"})
    )
    # Then the API answers 202 and the handler runs afterwards
    assert response["StatusCode"] == 202
    assert wait_for(lambda: recorded(app_cloud, "fixture.async"))


def test_metrics_printed_in_emf_reach_cloudwatch(app_cloud: LocalCloud) -> None:
    # When a handler prints a metric in Embedded Metric Format (what Powertools Metrics does)
    app_cloud.client("lambda").invoke(
        FunctionName=app_cloud.outputs["EchoFunctionName"], Payload=json.dumps({"emf": True})
    )
    # Then the metric is in CloudWatch, with its dimension, as CloudWatch Logs would extract it
    metrics = app_cloud.client("cloudwatch").list_metrics(Namespace="Fixture", MetricName="Echoes")["Metrics"]
    assert metrics and metrics[0]["Dimensions"] == [{"Name": "Service", "Value": "echo"}]


def test_what_a_handler_prints_goes_to_the_local_log_not_the_terminal(
    app_cloud: LocalCloud, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a handler prints a log line (its stdout: CloudWatch Logs in AWS) and an EMF metric
    caplog.set_level(logging.INFO, logger="storyflow_local.function")
    lambda_ = app_cloud.client("lambda")
    lambda_.invoke(
        FunctionName=app_cloud.outputs["EchoFunctionName"], Payload=json.dumps({"say": "hello log"})
    )
    lambda_.invoke(FunctionName=app_cloud.outputs["EchoFunctionName"], Payload=json.dumps({"emf": True}))

    # Then the line is in the local log under the function's name, and neither reached the terminal
    lines = [r.getMessage() for r in caplog.records if r.name == "storyflow_local.function"]
    assert any(line.endswith(": hello log") and "Echo" in line for line in lines), lines
    assert not any('"_aws"' in line for line in lines)  # EMF became a metric, not a log line
    printed = capsys.readouterr().out
    assert "hello log" not in printed and '"_aws"' not in printed
