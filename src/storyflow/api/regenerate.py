"""`POST /jobs/{id}/scenes/{n}/regenerate`: one scene of a finished story made again, the rest kept.

The story is reopened (queued, revision r+1, scene n's text and visual prompt replaced: one conditional
write, so of two concurrent regenerates one wins and the other is a 409), then revision r+1's execution
starts, named `{job_id}-r{r+1}`. Its plan creates new children for scene n only (and for any scene the
story never finished), and compose runs again over every scene's current clip and narration.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from storyflow import keys, registry, workflows
from storyflow.errors import BadRequest, NotFound, TransientError
from storyflow.jobstore import JobStore
from storyflow.models import Job, JobAccepted, JobError, JobKind, JobStatus, SceneEdit
from storyflow.observability import logger, metrics
from storyflow.settings import Settings


def execution_name(job_id: str, revision: int) -> str:
    return keys.check_job_id(f"{job_id}-r{revision}")


def regenerate_scene(job_id: str, scene: int, edit: SceneEdit, settings: Settings) -> JobAccepted:
    store = JobStore(settings.require("jobs_table"))
    story = store.get(keys.check_job_id(job_id))
    if story.kind is not JobKind.STORY:
        raise BadRequest(f"job {job_id} is a {story.kind.value} job; only a story has scenes", field="job_id")
    if not 0 <= scene < len(story.scenes):
        raise NotFound(f"story {job_id} has no scene {scene} (it has {len(story.scenes)})", field="scene")
    current = story.scenes[scene]
    replacement = current.model_copy(update=edit.model_dump(exclude_none=True))
    workflow = registry.get(JobKind.STORY)
    machine = workflows.state_machine_arn(workflow, settings)
    name = execution_name(job_id, story.revision + 1)
    reopened = store.reopen(story, scene, replacement, workflows.execution_arn(machine, name))
    payload = {
        "job_id": job_id,
        "request": story.request,
        "revision": reopened.revision,
        "regenerate": scene,
    }
    try:
        arn, _ = workflows.start(workflow, job_id, payload, settings, name=name)
    except (ClientError, BotoCoreError) as error:
        _mark_not_started(store, reopened, error)
        raise TransientError("could not start the story workflow; try again") from error
    metrics.add_metric(name="ScenesRegenerated", unit="Count", value=1)
    logger.info(
        "scene regenerate started",
        extra={"job_id": job_id, "scene": scene, "revision": reopened.revision, "execution_arn": arn},
    )
    return JobAccepted(job_id=job_id, status=JobStatus.QUEUED)


def _mark_not_started(store: JobStore, story: Job, error: Exception) -> None:
    """Never leave a reopened story queued with nothing to run it: it fails, and can be regenerated again."""
    store.transition(
        story.job_id,
        JobStatus.FAILED,
        error=JobError(error="StartExecutionFailed", cause=str(error)[:1000]),
    )
    logger.exception("could not start the regenerate", extra={"job_id": story.job_id})
