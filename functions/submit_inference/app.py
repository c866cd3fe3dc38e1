"""A waitForTaskToken state's work item -> store the task token, then InvokeEndpointAsync."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.inference import WorkItem, submit
from storyflow.observability import logger, tracer
from storyflow.settings import Settings

aws.prepare("dynamodb", "s3", "sagemaker-runtime")  # the clients every invocation uses, built at init

# The event is validated by its pydantic model, as in job_status: Powertools' event_parser does the same
# validation but imports every built-in event model with it (~0.3x bare boto3 of a cold start).


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"inference_id": submit(WorkItem.model_validate(event), Settings.from_env())}
