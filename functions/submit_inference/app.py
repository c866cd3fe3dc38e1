"""A waitForTaskToken state's work item -> store the task token, then InvokeEndpointAsync."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow.inference import WorkItem, submit
from storyflow.observability import logger, tracer
from storyflow.settings import Settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=WorkItem)
def handler(event: WorkItem, context: LambdaContext) -> dict[str, Any]:
    return {"inference_id": submit(event, Settings.from_env())}
