"""CloudWatch alarms: evaluated from the emulated metrics; actions published to SNS (moto: never)."""

from __future__ import annotations

import json

from storyflow_local import LocalCloud
from storyflow_local.alarms import decide, statistic
from tests.unit.local.support import recorded, wait_for


def _alarm_messages(cloud: LocalCloud, state: str) -> list[dict]:
    messages = [json.loads(e["Records"][0]["Sns"]["Message"]) for e in recorded(cloud, "aws:sns")]
    return [m for m in messages if isinstance(m, dict) and m.get("NewStateValue") == state]


def test_an_alarm_breach_reaches_its_sns_subscriber_and_recovers_on_data(app_cloud: LocalCloud) -> None:
    # Given the ping alarm (Sum of Pings < 1 over a 60 s period, missing data breaching; 1 s locally)
    name = app_cloud.outputs["AlarmName"]
    # When no pings arrive, Then it goes to ALARM and the AWS alarm message reaches the topic's subscriber
    (message,) = wait_for(lambda: _alarm_messages(app_cloud, "ALARM"), timeout=10)
    assert message["AlarmName"] == name
    assert message["Trigger"]["MetricName"] == "Pings"
    assert message["Trigger"]["Dimensions"] == [{"value": "fixture", "name": "Service"}]
    assert message["Trigger"]["Statistic"] == "SUM"
    assert message["Region"] == "US East (N. Virginia)"
    # When pings arrive, Then it returns to OK (OKActions publish too)
    cloudwatch = app_cloud.client("cloudwatch")

    def ping_and_check() -> list[dict]:
        cloudwatch.put_metric_data(
            Namespace="Fixture",
            MetricData=[
                {"MetricName": "Pings", "Value": 1, "Dimensions": [{"Name": "Service", "Value": "fixture"}]}
            ],
        )
        return _alarm_messages(app_cloud, "OK")

    assert wait_for(ping_and_check, timeout=10, interval=0.2)
    state = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
    assert state in ("OK", "ALARM")  # pings stopped again: it may already be breaching


def test_set_alarm_state_publishes_the_actions(app_cloud: LocalCloud) -> None:
    # When the alarm's state is set by hand (moto: stored, nothing published)
    cloudwatch = app_cloud.client("cloudwatch")
    name = app_cloud.outputs["AlarmName"]
    current = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
    target = "OK" if current != "OK" else "ALARM"
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=target, StateReason="set by the test")
    # Then the new state's actions got the AWS alarm message with that reason
    messages = wait_for(
        lambda: [m for m in _alarm_messages(app_cloud, target) if m["NewStateReason"] == "set by the test"]
    )
    assert messages[0]["OldStateValue"] == current


def test_decisions() -> None:
    assert decide([None], 1, "LessThanThreshold", 1, "breaching").state == "ALARM"
    assert decide([None], 1, "LessThanThreshold", 1, "notBreaching").state == "OK"
    assert decide([None], 1, "LessThanThreshold", 1, "missing").state == "INSUFFICIENT_DATA"
    assert decide([None], 1, "LessThanThreshold", 1, "ignore").state is None
    assert decide([5, 0, 5], 1, "LessThanThreshold", 2, "missing").state == "OK"
    assert decide([0, 0, 5], 1, "LessThanThreshold", 2, "missing").state == "ALARM"
    assert decide([2.0], 1, "GreaterThanOrEqualToThreshold", 1, "missing").state == "ALARM"
    assert statistic([(1, 1, 1, 1), (3, 1, 3, 3)], "Average") == 2
    assert statistic([(1, 1, 1, 1), (3, 1, 3, 3)], "SampleCount") == 2
    assert statistic([], "Sum") is None
