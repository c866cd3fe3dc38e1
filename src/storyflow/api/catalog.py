"""`GET /workflows`: what the registry says about every job kind, for clients that build forms from it.

The dashboard shows a submit form for each kind with `deployed` true, built from `request_schema` (the
request model's JSON schema); new kinds appear there when their registry entry's state machine is set in the
API function's environment, with no client change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from storyflow import registry
from storyflow.models import JobKind
from storyflow.settings import Settings


class WorkflowUpload(BaseModel, defer_build=True):
    """The one file a kind's job waits for (sent to the presigned POST of `POST /jobs`)."""

    name: str = Field(description="The file's name under input/{job_id}/.")
    content_type: str
    max_bytes: int = Field(description="The largest upload a request with default values accepts.")
    required: bool = Field(
        description="Every request waits for the upload; false: only a request that asks for one (its "
        "`POST /jobs` answer then has an upload ticket)."
    )


class WorkflowOutput(BaseModel, defer_build=True):
    name: str = Field(description="The key of the output in `Job.outputs` and `GET /jobs/{id}/outputs`.")
    media_type: str
    description: str = ""


class WorkflowInfo(BaseModel, defer_build=True):
    kind: JobKind
    summary: str
    deployed: bool = Field(description="This stack runs the kind: its state machine is configured.")
    upload: WorkflowUpload | None = Field(description="The upload the job waits for, or null for none.")
    outputs: list[WorkflowOutput]
    stages: list[str] = Field(description="The `stage` values a running job goes through, in order.")
    optional_stages: dict[str, str] = Field(
        default_factory=dict,
        description="Stages a job goes through only when a field of its request is set (not null "
        "or false): stage -> that field (a story's `stereo`).",
    )
    request_schema: dict[str, Any] = Field(description="JSON schema of the kind's `POST /jobs` body.")


class WorkflowList(BaseModel, defer_build=True):
    items: list[WorkflowInfo]


def _upload(workflow: registry.Workflow) -> WorkflowUpload | None:
    upload = workflow.upload
    if upload is None:
        return None
    defaults = workflow.request.model_construct()
    try:
        max_bytes = upload.max_bytes(defaults)
    except (AttributeError, TypeError, ValueError):  # the limit needs fields that have no default
        max_bytes = 0
    try:
        required = bool(upload.wanted(defaults))
    except (AttributeError, TypeError, ValueError):
        required = False
    return WorkflowUpload(
        name=upload.name, content_type=upload.content_type, max_bytes=max_bytes, required=required
    )


def describe(workflow: registry.Workflow, settings: Settings) -> WorkflowInfo:
    return WorkflowInfo(
        kind=workflow.kind,
        summary=workflow.summary,
        deployed=bool(getattr(settings, workflow.state_machine_setting, "")),
        upload=_upload(workflow),
        outputs=[
            WorkflowOutput(name=o.name, media_type=o.media_type, description=o.description)
            for o in workflow.outputs
        ],
        stages=list(workflow.stages),
        optional_stages=dict(workflow.optional_stages),
        request_schema=workflow.request.model_json_schema(),
    )


def list_workflows(settings: Settings) -> WorkflowList:
    return WorkflowList(items=[describe(workflow, settings) for workflow in registry.WORKFLOWS])
