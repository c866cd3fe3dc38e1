"""EventBridge: rules deliver to Lambda and Step Functions targets (moto: NotImplementedError)."""

from __future__ import annotations

import json

from storyflow_local import LocalCloud
from storyflow_local.events_adapter import rate_seconds, target_payload
from tests.unit.local.support import recorded, wait_for


def test_a_custom_event_reaches_the_lambda_target(app_cloud: LocalCloud) -> None:
    # When an event matching the recorder's rule is put on the default bus
    entries = app_cloud.client("events").put_events(
        Entries=[{"Source": "fixture.app", "DetailType": "Thing Happened", "Detail": json.dumps({"n": 1})}]
    )
    assert entries["FailedEntryCount"] == 0
    # Then the function received the EventBridge event (ISO time, detail as JSON)
    (event,) = wait_for(lambda: recorded(app_cloud, "fixture.app"))
    assert event["detail-type"] == "Thing Happened"
    assert event["detail"] == {"n": 1}
    assert event["time"].endswith("Z")


def test_an_s3_upload_starts_the_state_machine_through_eventbridge(app_cloud: LocalCloud) -> None:
    # Given a bucket with EventBridge notifications and a rule for uploads/ → state machine
    bucket = app_cloud.outputs["DataBucketName"]
    sfn = app_cloud.client("stepfunctions")
    machine = app_cloud.outputs["UploadsStateMachineArn"]
    # When an object is created under uploads/ (and one elsewhere)
    app_cloud.client("s3").put_object(Bucket=bucket, Key="elsewhere/a.txt", Body=b"x")
    app_cloud.client("s3").put_object(Bucket=bucket, Key="uploads/a.mp4", Body=b"x")
    # Then exactly one execution started, with the S3 "Object Created" event as input
    executions = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"])
    event = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "uploads/a.mp4"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1


def test_a_rate_schedule_fires_on_the_scaled_clock(app_cloud: LocalCloud) -> None:
    # Given the disabled rate(1 minute) rule, When it is enabled (1 minute = 1 local second)
    events = app_cloud.client("events")
    events.enable_rule(Name=app_cloud.outputs["TickRuleName"])
    try:
        # Then its target receives the rule's constant Input
        ticks = wait_for(lambda: recorded(app_cloud, "fixture.tick"), timeout=10)
    finally:
        events.disable_rule(Name=app_cloud.outputs["TickRuleName"])
    assert ticks[0] == {"source": "fixture.tick"}


def test_target_input_forms() -> None:
    event = {"source": "s", "detail": {"a": {"b": 2}}}
    assert target_payload({"Arn": "x"}, event) == event
    assert target_payload({"Arn": "x", "Input": '{"k": 1}'}, event) == {"k": 1}
    assert target_payload({"Arn": "x", "InputPath": "$.detail.a"}, event) == {"b": 2}
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("cron(0 * * * ? *)") is None
