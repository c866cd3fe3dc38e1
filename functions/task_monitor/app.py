"""The on-demand backend's stopper: the TaskPing alarm (SNS) and ECS task state changes (EventBridge)."""

import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws, backend
from storyflow.observability import logger, tracer

aws.prepare("dynamodb", "ecs")  # the clients every invocation uses, built at init


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = backend.BackendSettings.from_env()
    outcomes: list[backend.MonitorOutcome] = []
    if "Records" in event:
        for record in SNSEvent(event).records:
            outcomes.append(backend.on_alarm(settings, record.sns.message, time.time()))
    elif event.get("source") == "aws.ecs" and event.get("detail-type") == "ECS Task State Change":
        change = EventBridgeEvent(event)
        outcomes.append(backend.on_task_stopped(settings, change.detail, time.time()))
    else:
        logger.warning("unrecognised event; ignored", extra={"keys": sorted(event)[:20]})
    return {"outcomes": [outcome.model_dump() for outcome in outcomes]}
