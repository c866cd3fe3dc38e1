"""`GET /start` and `GET /start?action=ping`: start the on-demand backend, or keep it alive."""

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from storyflow import backend_tasks
from storyflow.errors import StoryflowError, TransientError
from storyflow.observability import logger, tracer

app = APIGatewayRestResolver(enable_validation=True)


@app.get("/start")
def start(
    action: Annotated[
        str | None, Query(description="none (start or keep alive) or `ping` (the same: keep alive)")
    ] = None,
) -> backend_tasks.BackendStatus:
    settings = backend_tasks.BackendSettings.from_env()
    return backend_tasks.ensure_running(settings, time.time(), action=action)


@app.exception_handler(StoryflowError)
def storyflow_error(error: StoryflowError) -> Response[Any]:
    """The jobs API's error body (`{message, field}`); a 503 says when to retry."""
    if error.status_code >= 500:
        logger.warning("start refused", extra={"error": type(error).__name__, "reason": error.message})
    else:
        logger.info("request refused", extra={"error": type(error).__name__, "field": error.field})
    return Response(
        status_code=error.status_code,
        content_type=content_types.APPLICATION_JSON,
        body={"message": error.message, "field": error.field},
        headers={"Retry-After": "5"} if isinstance(error, TransientError) else None,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
