"""The story workflow's plan step: its scenes (given, or written by Bedrock Converse from the prompt), a tts
and a video child job per scene to run, and the files the Map and compose read (storyflow.story)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.observability import logger, tracer
from storyflow.story import PlanEnv, PlanEvent, plan

aws.prepare("dynamodb", "s3")  # the clients every invocation uses, built at init

# The event is validated by its pydantic model, as in job_status: Powertools' event_parser does the same
# validation but imports every built-in event model with it (~0.3x bare boto3 of a cold start).


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return plan(PlanEvent.model_validate(event), PlanEnv.from_env())
