"""Story fixtures: a module-lived moto account (tables from template.yaml), the plan step's environment,
and a story job in the Jobs table."""

from __future__ import annotations

from typing import Any

import pytest

from storyflow.jobstore import JobStore
from storyflow.models import JobKind, JobStatus, StoryRequest
from storyflow.story import PlanEnv
from tests.unit.api.boto_cache import shared_botocore_loader  # noqa: F401 (session fixture)
from tests.unit.api.conftest import api_module, call_api, state_machines  # noqa: F401 (the API's fixtures)
from tests.unit.api.moto_stack import _module_account, module_lived_stack  # noqa: F401 (overrides `stack`)

STORY = "story-20261201-0a1b2c3d4e5f"
CLIP_FRAMES = 33  # 4k+1, and not the VideoRequest default (121), so the test sees it is the env's
SCENES = [
    {"text": "A fox dreams of the sky.", "visual_prompt": "a red fox looking up at clouds, golden hour"},
    {"text": "One morning, it leaps."},
    {"text": "It lands in the river and laughs.", "image_uri": "s3://storyflow-input/images/river.png"},
]


@pytest.fixture
def store(stack: dict[str, Any]) -> JobStore:
    return JobStore(stack["JOBS_TABLE"])


@pytest.fixture
def env(stack: dict[str, Any]) -> PlanEnv:
    """The StoryScenes function's environment on the moto account."""
    return PlanEnv.model_validate(
        {
            "JOBS_TABLE": stack["JOBS_TABLE"],
            "INPUT_BUCKET": stack["INPUT_BUCKET"],
            "OUTPUT_BUCKET": stack["OUTPUT_BUCKET"],
            "SCENES_MODEL_ID": "anthropic.claude-3-haiku-20240307-v1:0",
            "STORY_CLIP_FRAMES": str(CLIP_FRAMES),
        }
    )


def story_request(**fields: Any) -> dict[str, Any]:
    """A validated story request as the API stores it (JSON mode); given scenes unless `prompt` is set."""
    body = {"scenes": SCENES} | fields if "prompt" not in fields else fields
    return StoryRequest.model_validate(body).model_dump(mode="json")


def running_story(store: JobStore, request: dict[str, Any], job_id: str = STORY) -> str:
    """Given a story job as the state machine's MarkRunning leaves it (before its plan)."""
    store.create(JobKind.STORY, job_id, request)
    store.transition(job_id, JobStatus.RUNNING)
    return job_id
