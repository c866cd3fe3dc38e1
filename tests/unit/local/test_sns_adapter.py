"""SNS → Lambda: the handler gets the AWS SNS event (moto: placeholder ARNs, synchronous)."""

from __future__ import annotations

from storyflow_local import LocalCloud
from tests.unit.local.support import recorded, wait_for


def test_a_published_message_reaches_the_subscribed_function_in_the_aws_shape(app_cloud: LocalCloud) -> None:
    # Given the template's SNS::Subscription of the recorder to the alarm topic
    topic = app_cloud.physical_id("AlarmTopic")
    # When a message is published with a subject and an attribute
    message_id = app_cloud.client("sns").publish(
        TopicArn=topic,
        Message="plain text",
        Subject="hi",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )["MessageId"]

    def mine() -> list[dict]:
        return [
            e for e in recorded(app_cloud, "aws:sns") if e["Records"][0]["Sns"]["MessageId"] == message_id
        ]

    (event,) = wait_for(mine)
    record = event["Records"][0]
    # Then the record names the real topic and subscription and carries the message as sent
    assert record["EventSubscriptionArn"] == app_cloud.physical_id("RecorderFunctionAlarm")
    assert record["Sns"]["TopicArn"] == topic
    assert record["Sns"]["Message"] == "plain text"
    assert record["Sns"]["Subject"] == "hi"
    assert record["Sns"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "test"}}
