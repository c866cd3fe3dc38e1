"""Scheduled (EventBridge rate rule): fail queued jobs whose upload ticket expired with no upload."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.expiry import expire_uploads
from storyflow.observability import logger, tracer
from storyflow.settings import Settings

aws.prepare("dynamodb")  # the clients every invocation uses, built at init


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    return {"expired": expire_uploads(Settings.from_env(), time.time())}
