"""SNS → Lambda: deliver asynchronously with the AWS SNS event shape (moto sends placeholders,
`"TopicArn": "arn:aws:sns:EXAMPLE"`, and blocks the publisher until the handler returns)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter

log = logging.getLogger("storyflow_local.sns")


def sns_event(
    subscription_arn: str,
    topic_arn: str,
    message_id: str,
    message: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None,
    region: str,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    attributes = {
        name: {
            "Type": value.get("Type", value.get("DataType", "String")),
            "Value": value.get("Value", value.get("StringValue")),
        }
        for name, value in (message_attributes or {}).items()
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": now,
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
                    "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
                    f"&SubscriptionArn={subscription_arn}",
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


class SnsAdapter:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas

    def install(self) -> None:
        from moto.sns.models import Subscription

        adapter = self
        original_publish = Subscription.publish

        def publish(
            subscription: Any,
            message: str,
            message_id: str,
            subject: str | None = None,
            message_attributes: dict[str, Any] | None = None,
            group_id: str | None = None,
            deduplication_id: str | None = None,
            message_structure: str | None = None,
        ) -> None:
            if subscription.protocol != "lambda":
                return original_publish(
                    subscription,
                    message,
                    message_id,
                    subject,
                    message_attributes,
                    group_id,
                    deduplication_id,
                    message_structure,
                )
            matcher = subscription._filter_policy_matcher
            if matcher is not None and not matcher.matches(message_attributes, message):
                return None
            if message_structure == "json":
                message = subscription._parse_message_structure(message, "lambda")
            region = subscription.endpoint.split(":")[3]
            event = sns_event(
                subscription.arn,
                subscription.topic.arn,
                message_id,
                message,
                subject,
                message_attributes,
                region,
            )
            adapter.lambdas.invoke_arn_async(subscription.endpoint, event)
            return None

        self.ctx.patches.set(Subscription, "publish", publish)
