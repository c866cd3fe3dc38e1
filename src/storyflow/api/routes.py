"""The jobs API's routes: a Powertools `Router` whose every route is one call into `storyflow.api`.

`functions/api/app.py` includes it into its resolver with the shared error handlers; the OpenAPI
document is generated from these declarations (`python -m storyflow.openapi`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from storyflow import registry
from storyflow.api import catalog, jobs, regenerate, submit
from storyflow.api.validation import ApiError, Health, check_body_size
from storyflow.keys import JOB_ID_PATTERN
from storyflow.models import MAX_SCENES, Job, JobAccepted, JobOutputs, JobPage, JobStatus, SceneEdit
from storyflow.settings import Settings

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves Router.__init__ untyped

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="A job id as returned by POST /jobs.")]

ERROR_REASONS = {
    400: "Bad request: malformed JSON, unknown kind, a missing or out-of-range field, a bad job id "
    "or pagination token. `message` names the field.",
    404: "No such job.",
    409: "The job is not in a state that allows this, or an Idempotency-Key reused with another body.",
    413: "Request body over 64 kB.",
    503: "The workflow could not be started (the job is marked failed); try again.",
}


def _ok(model: type[BaseModel], code: int = HTTPStatus.OK, description: str = "OK") -> dict[int, Any]:
    return {code: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}}


def _errors(*codes: int) -> dict[int, Any]:
    return {
        code: {
            "description": ERROR_REASONS[code],
            "content": {content_types.APPLICATION_JSON: {"model": ApiError}},
        }
        for code in codes
    }


def _caller() -> str:
    """Who signed the request: the Cognito user (UserApi) or the IAM principal (Api); empty for neither."""
    event: APIGatewayProxyEvent = router.current_event  # type: ignore[assignment]  # a REST API event
    context = event.request_context
    claims = context.authorizer.claims or {}
    return str(claims.get("sub") or context.identity.user_arn or "")


def _kinds_description() -> str:
    return "; ".join(f"`{w.kind.value}`: {w.summary}" for w in registry.WORKFLOWS)


@router.post(
    "/jobs",
    summary="Submit a job",
    description="Creates a queued job. A kind that takes an upload answers with a presigned POST: upload "
    "the file to it and the upload starts the workflow. Other kinds start their workflow at once. Kinds: "
    + _kinds_description(),
    responses=_ok(JobAccepted, HTTPStatus.ACCEPTED, "Accepted") | _errors(400, 409, 413, 503),
    tags=["jobs"],
)
def submit_job(
    request: Annotated[registry.JobRequest, Body(description="The job: `kind` picks the parameters.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=submit.IDEMPOTENCY_KEY_HEADER,
            pattern=submit.IDEMPOTENCY_KEY_PATTERN,
            description="Makes the submission safe to retry: the same key and body answer the first "
            "response (the same job) while its upload ticket is valid; the same key with another body "
            "is a 409.",
        ),
    ] = None,
) -> Response[JobAccepted]:
    event = router.current_event
    check_body_size(event.body, bool(event.is_base64_encoded))
    accepted = submit.submit_job_once(
        request, idempotency_key, _caller(), Settings.from_env(), router.lambda_context
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED, content_type=content_types.APPLICATION_JSON, body=accepted
    )


@router.get(
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
    return jobs.list_jobs(status, limit, next_token, Settings.from_env())


@router.get("/jobs/<job_id>", summary="Get a job", responses=_ok(Job) | _errors(400, 404), tags=["jobs"])
def get_job(job_id: JobId) -> Job:
    return jobs.get_job(job_id, Settings.from_env())


@router.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job",
    description="Stops the job's execution (if any) and marks it cancelled. A finished job answers 409.",
    responses=_ok(Job) | _errors(400, 404, 409),
    tags=["jobs"],
)
def cancel_job(job_id: JobId) -> Job:
    return jobs.cancel_job(job_id, Settings.from_env())


@router.post(
    "/jobs/<job_id>/scenes/<scene>/regenerate",
    summary="Regenerate one scene of a story",
    description="Makes scene `scene` (from 0) of a completed or failed story again, with its new text "
    "and/or visual prompt if given, and composes the story again; the other scenes keep their narration "
    "and clip. The story is queued again at its next revision. 409 while the story is queued or running.",
    responses=_ok(JobAccepted, HTTPStatus.ACCEPTED, "Accepted") | _errors(400, 404, 409, 413, 503),
    tags=["jobs"],
)
def regenerate_scene(
    job_id: JobId,
    scene: Annotated[int, Path(ge=0, le=MAX_SCENES - 1, description="The scene's index, from 0.")],
    edit: Annotated[
        SceneEdit | None, Body(description="What changes in the scene; none or {} for a new take.")
    ] = None,
) -> Response[JobAccepted]:
    event = router.current_event
    check_body_size(event.body, bool(event.is_base64_encoded))
    accepted = regenerate.regenerate_scene(job_id, scene, edit or SceneEdit(), Settings.from_env())
    return Response(
        status_code=HTTPStatus.ACCEPTED, content_type=content_types.APPLICATION_JSON, body=accepted
    )


@router.get(
    "/jobs/<job_id>/outputs",
    summary="Download links for a completed job's outputs",
    description="Presigned GET URLs, one per output name. 409 until the job is completed.",
    responses=_ok(JobOutputs) | _errors(400, 404, 409),
    tags=["jobs"],
)
def job_outputs(job_id: JobId) -> JobOutputs:
    return jobs.job_outputs(job_id, Settings.from_env())


@router.get(
    "/workflows",
    summary="The job kinds and what each needs",
    description="Every registry entry: its summary, whether this stack runs it (`deployed`), its upload "
    "(content type, size limit) or null, its outputs (name, media type), its stages and the JSON schema "
    "of its `POST /jobs` body. Clients build their forms from it.",
    responses=_ok(catalog.WorkflowList),
    tags=["jobs"],
)
def list_workflows() -> catalog.WorkflowList:
    return catalog.list_workflows(Settings.from_env())


@router.get("/health", summary="Liveness (no auth)", responses=_ok(Health), tags=["health"])
def health() -> Health:
    return Health()
