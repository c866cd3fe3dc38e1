"""EventBridge `Object Created` on the input bucket -> start the stereo workflow for that job."""

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.observability import logger, tracer
from storyflow.settings import Settings
from storyflow.uploads import on_source_uploaded

aws.prepare("dynamodb", "s3", "stepfunctions")  # the clients every invocation uses, built at init


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@event_source(data_class=S3EventBridgeNotificationEvent)
def handler(event: S3EventBridgeNotificationEvent, context: LambdaContext) -> dict[str, str | None]:
    detail = event.detail
    job_id = on_source_uploaded(
        detail.bucket.name, detail.object.key, detail.object.size or 0, Settings.from_env()
    )
    return {"job_id": job_id}
