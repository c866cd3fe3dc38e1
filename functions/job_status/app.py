"""A workflow's last step: mark the job completed or failed (conditional write) and publish its event."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws, job_status
from storyflow.observability import logger, tracer
from storyflow.settings import Settings

aws.prepare("dynamodb", "s3", "events")  # the clients every invocation uses, built at init


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str | None]:
    job = job_status.apply(job_status.StatusUpdate.model_validate(event), Settings.from_env())
    return {"status": job.status.value if job else None}
