"""The jobs REST API: thin Powertools routes over `storyflow.api` (logic and data access live there)."""

from __future__ import annotations

import warnings
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from storyflow import api
from storyflow.errors import StoryflowError
from storyflow.keys import JOB_ID_PATTERN
from storyflow.models import Job, JobAccepted, JobOutputs, JobPage, JobRequest, JobStatus
from storyflow.observability import logger, metrics, tracer
from storyflow.settings import Settings

# A GET emits no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

app = APIGatewayRestResolver(enable_validation=True)

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="A job id as returned by POST /jobs.")]


def _ok(model: type[BaseModel], code: int = HTTPStatus.OK, description: str = "OK") -> dict[int, Any]:
    return {code: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}}


def _errors(*codes: int) -> dict[int, Any]:
    reasons = {
        400: "Bad request: malformed JSON, unknown kind, a missing or out-of-range field, a bad job id "
        "or pagination token. `message` names the field.",
        404: "No such job.",
        409: "The job is not in a state that allows this, or an Idempotency-Key reused with another body.",
        413: "Request body over 64 kB.",
        503: "The workflow could not be started (the job is marked failed); try again.",
    }
    return {
        code: {
            "description": reasons[code],
            "content": {content_types.APPLICATION_JSON: {"model": api.ApiError}},
        }
        for code in codes
    }


def _error(status: int, message: str, field: str | None = None) -> Response[api.ApiError]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=api.ApiError(message=message, field=field),
    )


def _caller() -> str:
    """Who signed the request: the Cognito user (UserApi) or the IAM principal (Api); empty for neither."""
    context = app.current_event.request_context
    claims = context.authorizer.claims or {}
    return str(claims.get("sub") or context.identity.user_arn or "")


# ---------------------------------------------------------------- routes
@app.post(
    "/jobs",
    summary="Submit a job",
    description="Creates a queued job. `stereo` answers with a presigned POST: upload the .mp4 to it and "
    "the upload starts the workflow. Other kinds start their workflow at once.",
    responses=_ok(JobAccepted, HTTPStatus.ACCEPTED, "Accepted") | _errors(400, 409, 413, 503),
    tags=["jobs"],
)
def submit_job(
    request: Annotated[JobRequest, Body(description="The job: `kind` picks the parameters.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=api.IDEMPOTENCY_KEY_HEADER,
            pattern=api.IDEMPOTENCY_KEY_PATTERN,
            description="Makes the submission safe to retry: the same key and body answer the first "
            "response (the same job) while its upload ticket is valid; the same key with another body "
            "is a 409.",
        ),
    ] = None,
) -> Response[JobAccepted]:
    api.check_body_size(app.current_event.body, bool(app.current_event.is_base64_encoded))
    accepted = api.submit_job_once(
        request, idempotency_key, _caller(), Settings.from_env(), app.lambda_context
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED, content_type=content_types.APPLICATION_JSON, body=accepted
    )


@app.get(
    "/jobs",
    summary="List jobs by status",
    description="Newest first (by created_at, or completed_at for finished statuses). Pass `next` from the "
    "previous page to get the following one.",
    responses=_ok(JobPage) | _errors(400),
    tags=["jobs"],
)
def list_jobs(
    status: Annotated[JobStatus, Query(description="Which status to list.")] = JobStatus.RUNNING,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    next_token: Annotated[
        str | None, Query(alias="next", max_length=2048, description="Opaque token from the previous page.")
    ] = None,
) -> JobPage:
    return api.list_jobs(status, limit, next_token, Settings.from_env())


@app.get("/jobs/<job_id>", summary="Get a job", responses=_ok(Job) | _errors(400, 404), tags=["jobs"])
def get_job(job_id: JobId) -> Job:
    return api.get_job(job_id, Settings.from_env())


@app.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job",
    description="Stops the job's execution (if any) and marks it cancelled. A finished job answers 409.",
    responses=_ok(Job) | _errors(400, 404, 409),
    tags=["jobs"],
)
def cancel_job(job_id: JobId) -> Job:
    return api.cancel_job(job_id, Settings.from_env())


@app.get(
    "/jobs/<job_id>/outputs",
    summary="Download links for a completed job's outputs",
    description="Presigned GET URLs, one per output name. 409 until the job is completed.",
    responses=_ok(JobOutputs) | _errors(400, 404, 409),
    tags=["jobs"],
)
def job_outputs(job_id: JobId) -> JobOutputs:
    return api.job_outputs(job_id, Settings.from_env())


@app.get("/health", summary="Liveness (no auth)", responses=_ok(api.Health), tags=["health"])
def health() -> api.Health:
    return api.Health()


# ---------------------------------------------------------------- errors: always {"message", "field"}
@app.exception_handler(StoryflowError)
def storyflow_error(error: StoryflowError) -> Response[api.ApiError]:
    if error.status_code >= 500:
        logger.exception("request failed", extra={"error": type(error).__name__})
    else:
        logger.info("request refused", extra={"error": type(error).__name__, "field": error.field})
    return _error(error.status_code, error.message, error.field)


@app.exception_handler(RequestValidationError)
def validation_error(error: RequestValidationError) -> Response[api.ApiError]:
    """400 (not Powertools' 422) naming every failing field; an oversized body that is also invalid gets
    this precise answer, one that is valid gets 413 from the route."""
    message, field = api.describe_validation_errors(error.errors())
    logger.info("request refused", extra={"error": "RequestValidationError", "field": field})
    return _error(HTTPStatus.BAD_REQUEST, message, field)


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_content_type(error: RequestUnsupportedContentType) -> Response[api.ApiError]:
    return _error(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "body: send JSON (Content-Type: application/json)", "body"
    )


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response[api.ApiError]:
    """A bug or an AWS failure: logged with its traceback, answered 500 without internals."""
    if isinstance(error, ServiceError):  # Powertools' own HTTP errors keep their status
        return _error(error.status_code, str(error.msg))
    logger.exception("unhandled error", extra={"error": type(error).__name__})
    request_id = app.current_event.request_context.request_id
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error (request {request_id})")


@app.not_found
def not_found(error: NotFoundError) -> Response[api.ApiError]:
    return _error(HTTPStatus.NOT_FOUND, f"no route {app.current_event.http_method} {app.current_event.path}")


# ---------------------------------------------------------------- Lambda entry point
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
