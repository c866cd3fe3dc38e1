"""Distributed Map item -> store the task token, then InvokeEndpointAsync (the token is answered later)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow.inference import SegmentRequest, submit
from storyflow.observability import logger, tracer
from storyflow.settings import Settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return {"inference_id": submit(SegmentRequest.model_validate(event), Settings.from_env())}
