"""The story workflow's first step: its scenes, given (no LLM call) or written by Bedrock Converse."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow.observability import logger, tracer
from storyflow.scenes import ScenesEvent, scenes_output, story_scenes
from storyflow.settings import Settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ScenesEvent)
def handler(event: ScenesEvent, context: LambdaContext) -> dict[str, Any]:
    scenes = story_scenes(event.request, Settings.from_env().scenes_model_id)
    return scenes_output(event.job_id, scenes)
