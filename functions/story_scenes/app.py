"""The story workflow's plan step: its scenes (given, or written by Bedrock Converse from the prompt), a tts
and a video child job per scene to run, and the files the Map and compose read (storyflow.story)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow.observability import logger, tracer
from storyflow.story import PlanEnv, PlanEvent, plan


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=PlanEvent)
def handler(event: PlanEvent, context: LambdaContext) -> dict[str, Any]:
    return plan(event, PlanEnv.from_env())
