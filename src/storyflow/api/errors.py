"""The error handlers of every HTTP function (the jobs API and the backend's `/start`): one body shape,
`{message, field}`; request validation is a 400 (never Powertools' 422); a 503 says when to retry; a bug
is a 500 that names the request id and nothing internal."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from storyflow.api.validation import ApiError, describe_validation_errors
from storyflow.errors import StoryflowError, TransientError
from storyflow.observability import logger

RETRY_AFTER_SECONDS = 5


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response[ApiError]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=ApiError(message=message, field=field),
        headers=headers,
    )


def storyflow_error(error: StoryflowError) -> Response[ApiError]:
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error": type(error).__name__, "reason": error.message})
    else:
        logger.info("request refused", extra={"error": type(error).__name__, "field": error.field})
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, TransientError) else None
    return error_response(error.status_code, error.message, error.field, retry)


def validation_error(error: RequestValidationError) -> Response[ApiError]:
    """400 naming every failing field; an oversized body that is also invalid gets this precise answer,
    one that is valid gets 413 from the route."""
    message, field = describe_validation_errors(error.errors())
    logger.info("request refused", extra={"error": "RequestValidationError", "field": field})
    return error_response(HTTPStatus.BAD_REQUEST, message, field)


def unsupported_content_type(error: RequestUnsupportedContentType) -> Response[ApiError]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "body: send JSON (Content-Type: application/json)", "body"
    )


def register(app: APIGatewayRestResolver) -> None:
    """Install the shared handlers on a resolver (call once, after creating it)."""

    def unexpected_error(error: Exception) -> Response[ApiError]:
        """A bug or an AWS failure: logged with its traceback, answered 500 without internals."""
        if isinstance(error, ServiceError):  # Powertools' own HTTP errors keep their status
            return error_response(error.status_code, str(error.msg))
        logger.exception("unhandled error", extra={"error": type(error).__name__})
        request_id = app.current_event.request_context.request_id
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error (request {request_id})")

    def not_found(error: NotFoundError) -> Response[ApiError]:
        event = app.current_event
        return error_response(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path}")

    app.exception_handler(StoryflowError)(storyflow_error)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(RequestUnsupportedContentType)(unsupported_content_type)
    app.exception_handler(Exception)(unexpected_error)
    app.not_found(not_found)
