"""SageMaker async success/error notification (SNS) -> answer the waiting segment's task token."""

from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.inference import AsyncNotification, on_notification
from storyflow.observability import logger, tracer
from storyflow.settings import Settings

aws.prepare("dynamodb", "stepfunctions")  # the clients every invocation uses, built at init


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> None:
    settings = Settings.from_env()
    for record in event.records:
        on_notification(AsyncNotification.model_validate_json(record.sns.message), settings)
