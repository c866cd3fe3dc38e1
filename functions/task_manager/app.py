"""`GET /start` and `GET /start?action=ping`: start the on-demand backend, or keep it alive."""

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import aws, backend
from storyflow.api import cors, errors
from storyflow.observability import logger, tracer

aws.prepare("dynamodb", "ecs")  # the clients every invocation uses, built at init

app = APIGatewayRestResolver(enable_validation=True, cors=cors.dashboard_cors())
errors.register(
    app
)  # the jobs API's error body, `{message, field}`: a bad query is a 400, a 503 has Retry-After


@app.get("/start")
def start(
    action: Annotated[
        str | None,
        Query(max_length=32, description="none (start or keep alive) or `ping` (the same: keep alive)"),
    ] = None,
) -> backend.BackendStatus:
    return backend.ensure_running(backend.BackendSettings.from_env(), time.time(), action=action)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
