"""A story's plan: its scenes, a tts and a video child job per scene, and the files its state machine reads.

The story state machine calls `plan` once per revision (through the StoryScenes function). It returns what
the machine needs to run the children and compose the result, and records on the story's item its scenes,
its current children and its progress (scenes done / total).

Invariants:
- a child's job id derives from (the story, the scene, the revision): a retried plan finds the children it
  already created and creates no other, so a Lambda retry never starts a second narration or clip;
- revision 0 plans every scene; a regenerate (revision r > 0, scene n) plans only scene n: every other
  scene keeps its children, and so its clip and narration;
- each child's execution input is built by its kind's registry entry, exactly as a direct submission's;
- the files are in the output bucket, tagged intermediate: `jobs/{story}/plan/r{r}-runs.json` (the Map's
  items: the scenes to run, each with its children's inputs; a 50-scene story is larger than a state's
  payload may be) and `jobs/{story}/plan/r{r}-compose.json` (every scene's clip, narration and words URIs,
  which `storyflow-media compose --scenes-uri` reads).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, Field, field_validator

from storyflow import aws, keys, registry
from storyflow.errors import Conflict, StoryflowError
from storyflow.jobstore import JobStore
from storyflow.keys import S3Location
from storyflow.models import (
    MAX_PROMPT_CHARS,
    ChildJob,
    Job,
    JobKind,
    JobStatus,
    Progress,
    StereoRequest,
    StoryRequest,
    StoryScene,
    TtsRequest,
    VideoRequest,
)
from storyflow.scenes import story_scenes

# The clip size of each aspect at the stack's short side (720: 1280x720, 720x1280, 720x720).
ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}


class PlanEnv(BaseModel):
    """The StoryScenes function's environment."""

    jobs_table: str = Field(alias="JOBS_TABLE", min_length=1)
    input_bucket: str = Field(alias="INPUT_BUCKET", min_length=1)
    output_bucket: str = Field(alias="OUTPUT_BUCKET", min_length=1)
    scenes_model_id: str = Field("", alias="SCENES_MODEL_ID")
    # At most 1080: a 16:9 clip's long side is then 1920, the video model's largest.
    short_side: int = Field(720, alias="STORY_SHORT_SIDE", ge=64, le=1080)
    clip_frames: int = Field(121, alias="STORY_CLIP_FRAMES", ge=5, le=241)

    @field_validator("clip_frames")
    @classmethod
    def _four_k_plus_one(cls, value: int) -> int:
        if value % 4 != 1:
            raise ValueError(f"STORY_CLIP_FRAMES must be 4k+1 (e.g. 49, 121), got {value}")
        return value

    @classmethod
    def from_env(cls) -> PlanEnv:
        return cls.model_validate(dict(os.environ))


class PlanEvent(BaseModel):
    """The story state machine's input to its plan step."""

    job_id: str = Field(pattern=keys.JOB_ID_PATTERN)
    request: StoryRequest
    revision: int = Field(0, ge=0)
    regenerate: int | None = Field(None, ge=0, description="the one scene a regenerate re-runs")


class ScenePlanError(StoryflowError):
    """The plan cannot be made (a regenerate of a scene the story does not have, a child of another job)."""


def clip_size(aspect: str, short_side: int) -> tuple[int, int]:
    """(width, height) of a scene's clip: the short side as given, the long one by the aspect; both
    multiples of 16, as the video model needs."""
    wide, high = ASPECTS[aspect]
    short = short_side - short_side % 16
    long = int(short * max(wide, high) / min(wide, high)) // 16 * 16
    return (long, short) if wide > high else (short, long) if high > wide else (short, short)


def task_id(scene: int, revision: int) -> str:
    """The children's task id (their `videos/{story}/{task}/` prefix and derived job ids)."""
    return f"scene-{scene:02d}-r{revision}"


class Child(BaseModel):
    """A child job to run: its kind, id, validated request and execution input (its registry entry's)."""

    kind: JobKind
    job_id: str
    request: dict[str, Any]
    input: dict[str, Any]

    @classmethod
    def of(cls, kind: JobKind, job_id: str, request: BaseModel, source: S3Location | None = None) -> Child:
        payload = registry.get(kind).payload(job_id, request, source)
        return cls(kind=kind, job_id=job_id, request=request.model_dump(mode="json"), input=payload)


def scene_children(story: Job, env: PlanEnv, scene: int, text: StoryScene, revision: int) -> list[Child]:
    """The tts and the video child of one scene at one revision."""
    request = StoryRequest.model_validate(story.request)
    tts = TtsRequest(
        text=text.text, voice=request.voice, parent_id=story.job_id, task_id=task_id(scene, revision)
    )
    width, height = clip_size(request.aspect, env.short_side)
    video = VideoRequest(
        parent_id=story.job_id,
        task_id=task_id(scene, revision),
        prompt=text.visual_prompt or text.text[:MAX_PROMPT_CHARS],
        width=width,
        height=height,
        num_frames=env.clip_frames,
        image_uri=text.image_uri,
    )
    children = []
    for kind, child in ((JobKind.TTS, tts), (JobKind.VIDEO, video)):
        derive = registry.get(kind).job_id
        if derive is None:  # pragma: no cover - both kinds derive ids from parent_id and task_id
            raise ScenePlanError(f"kind {kind.value} has no derived job id")
        children.append(Child.of(kind, derive(child), child))
    return children


def plan(event: PlanEvent, env: PlanEnv, bedrock: Any | None = None) -> dict[str, Any]:
    """Plan revision `event.revision` of the story: see the module docstring. Returns the state machine's
    `$.plan`: {job_id, revision, count, runs, runs_key, compose_uri, music_uri, stereo}."""
    store = JobStore(env.jobs_table)
    story = store.get(event.job_id)
    current: dict[int, dict[str, Job]] = {}  # scene -> kind -> the child it composes from
    if event.regenerate is None:
        # A retried plan reuses the scenes its first attempt recorded: a prompt's scenes are written once
        # (Bedrock would write others), before any child is created from them.
        scenes = list(story.scenes) or story_scenes(event.request, env.scenes_model_id, bedrock)
        if not story.scenes:
            store.record_plan(
                story.job_id,
                event.revision,
                scenes=scenes,
                children=[],
                progress=Progress(done=0, total=len(scenes)),
            )
        runs = list(range(len(scenes)))
    else:
        scenes = list(story.scenes)
        if not 0 <= event.regenerate < len(scenes):
            raise ScenePlanError(f"story {story.job_id} has no scene {event.regenerate}")
        kept = store.get_many([c.job_id for c in story.children if c.scene is not None])
        for child in story.children:
            if child.scene is not None and child.job_id in kept:
                current.setdefault(child.scene, {})[child.kind.value] = kept[child.job_id]
        # The scene asked for, and any scene a failed or cancelled story did not finish.
        runs = [
            scene
            for scene in range(len(scenes))
            if scene == event.regenerate
            or {c.status for c in current.get(scene, {}).values()} != {JobStatus.COMPLETED}
            or len(current.get(scene, {})) != 2
        ]
    items = []
    for scene in runs:
        children = scene_children(story, env, scene, scenes[scene], event.revision)
        current[scene] = {child.kind.value: _create(store, story, child) for child in children}
        items.append(
            {"scene": scene}
            | {child.kind.value: {"job_id": child.job_id, "input": child.input} for child in children}
        )
    stereo = _stereo_child(store, story, env, event)
    child_list = [
        ChildJob(kind=job.kind, job_id=job.job_id, scene=scene)
        for scene in sorted(current)
        for _, job in sorted(current[scene].items())
    ]
    if stereo is not None:
        child_list.append(ChildJob(kind=JobKind.STEREO, job_id=stereo["job_id"]))
    prefix = f"{keys.job_prefix(story.job_id)}plan/r{event.revision}"
    compose = [_compose_scene(env, current[scene]) for scene in range(len(scenes))]
    _put_json(env.output_bucket, f"{prefix}-runs.json", items)
    _put_json(env.output_bucket, f"{prefix}-compose.json", compose)
    store.record_plan(
        story.job_id,
        event.revision,
        scenes=scenes,
        children=child_list,
        progress=Progress(done=len(scenes) - len(runs), total=len(scenes)),
    )
    return {
        "job_id": story.job_id,
        "revision": event.revision,
        "count": len(scenes),
        "runs": len(runs),
        "runs_key": f"{prefix}-runs.json",
        "compose_uri": S3Location(env.output_bucket, f"{prefix}-compose.json").uri,
        "music_uri": event.request.music_uri or "",
        "stereo": stereo,
    }


def _stereo_child(store: JobStore, story: Job, env: PlanEnv, event: PlanEvent) -> dict[str, Any] | None:
    """The 3D conversion of this revision's composed video, when the story asks for one: its job, its
    execution input, and the copy of the composed video it reads (the stereo workflow chunks a source in
    the input bucket; `segments/{stereo job}/source.mp4` is under the intermediate prefix, and is not an
    upload key, so no upload event starts it a second time)."""
    if event.request.stereo is None:
        return None
    job_id = keys.derived_job_id(JobKind.STEREO.value, story.job_id, f"r{event.revision}")
    source = S3Location(env.input_bucket, keys.stereo_source_key(job_id))
    child = Child.of(JobKind.STEREO, job_id, StereoRequest(layout=event.request.stereo), source)
    _create(store, story, child)
    composed = keys.final_key(story.job_id)
    return {
        "job_id": job_id,
        "input": child.input,
        "source": {"bucket": source.bucket, "key": source.key},
        "copy_source": f"{env.output_bucket}/{composed}",
        "output_uri": S3Location(env.output_bucket, keys.final_key(job_id)).uri,
    }


def _create(store: JobStore, story: Job, child: Child) -> Job:
    """The child's job, once: a retried plan finds the one it created (a job of that id under another
    parent is a bug to fail on, never something to adopt)."""
    try:
        return store.create(child.kind, child.job_id, child.request, parent_id=story.job_id)
    except Conflict:
        existing = store.get(child.job_id)
        if existing.parent_id != story.job_id:
            raise ScenePlanError(f"job {child.job_id} exists and is not a child of {story.job_id}") from None
        return existing


def _compose_scene(env: PlanEnv, children: dict[str, Job]) -> dict[str, str]:
    """Where a scene's children write what compose reads (their state machines' output keys)."""
    tts, video = children.get(JobKind.TTS.value), children.get(JobKind.VIDEO.value)
    if tts is None or video is None:
        raise ScenePlanError(f"a scene lacks a child: it has {sorted(children)}")
    clip = keys.video_key(str(video.request["parent_id"]), str(video.request["task_id"]), 0)
    return {
        "clip_uri": S3Location(env.output_bucket, clip).uri,
        "narration_uri": S3Location(env.output_bucket, keys.tts_output_key(tts.job_id, "narration.wav")).uri,
        "words_uri": S3Location(env.output_bucket, keys.tts_output_key(tts.job_id, "words.json")).uri,
    }


def _put_json(bucket: str, key: str, body: Any) -> None:
    aws.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body).encode(),
        ContentType="application/json",
        Tagging=f"{keys.LIFECYCLE_TAG_KEY}={keys.LIFECYCLE_TAG_INTERMEDIATE}",
    )
