"""A kind's SQS queue (messages raw or SNS-wrapped) -> jobs, once each: BatchProcessor, partial failures.
One function per queue, the kind in its JOB_KIND environment variable (storyflow.intake)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws, intake
from storyflow.observability import logger, metrics, tracer
from storyflow.settings import Settings

aws.prepare("dynamodb", "stepfunctions")  # the clients every invocation uses, built at init

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str | None:
    settings = Settings.from_env()
    return intake.process_record(settings.require("job_kind"), record.body, settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
