"""The jobs REST API: the routes of `storyflow.api.routes` behind the shared error handlers."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws
from storyflow.api import body_guard, cors, errors, routes
from storyflow.observability import logger, metrics, tracer

aws.prepare("dynamodb")  # the clients every invocation uses, built at init

# A GET emits no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

app = APIGatewayRestResolver(enable_validation=True, cors=cors.dashboard_cors())
app.include_router(routes.router)
errors.register(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return body_guard.refusal(event) or app.resolve(event, context)
