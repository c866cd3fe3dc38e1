"""Pydantic models for every job request, the Job item and its status machine."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from storyflow import voices
from storyflow.keys import JOB_ID_PATTERN, NAME_PATTERN

MAX_PROMPT_CHARS = 4000
MAX_TEXT_CHARS = 20000


class JobKind(StrEnum):
    STEREO = "stereo"
    VIDEO = "video"
    TTS = "tts"
    STORY = "story"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# The status machine. JobStore enforces it with a conditional write; nothing else changes `status`.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
# The one way back from a finished status is JobStore.reopen: a completed or failed story is queued again
# when one of its scenes is regenerated (a conditional write on its kind, status and revision).
REOPENABLE = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


def allowed_sources(target: JobStatus) -> list[JobStatus]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


class _Model(BaseModel):
    """The base of every model here: its validator and serializer are built on first use, not at import
    (`defer_build`), so a function pays only for the models it uses (bench/cold_start.py)."""

    model_config = ConfigDict(defer_build=True)


def known_voice(value: str) -> str:
    """The `voice` field's check (tts, story): one of Kokoro's voices."""
    if value not in voices.VOICES:
        raise ValueError(f"unknown voice; known: {', '.join(voices.VOICES)}")
    return value


class _Request(_Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StereoParams(_Request):
    layout: Literal["full", "half"] = "full"
    baseline: float = Field(0.03, gt=0, le=0.1, description="max disparity as a fraction of width")
    convergence: float = Field(0.5, ge=0, le=1, description="depth plane with zero disparity")


class StereoRequest(StereoParams):
    kind: Literal[JobKind.STEREO] = JobKind.STEREO
    max_upload_bytes: int = Field(2 * 1024**3, ge=1, le=5 * 1024**3)


IMAGE_CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_IMAGE_BYTES = 50 * 1024**2


class VideoRequest(_Request):
    """Exactly the seed message fields and defaults of the video queue, plus the optional clip length
    (`num_frames`, `fps`) and an image for image-to-video (`image_uri`, or `image_upload` for a presigned
    POST)."""

    kind: Literal[JobKind.VIDEO] = JobKind.VIDEO
    parent_id: Annotated[str, Field(pattern=NAME_PATTERN)]
    task_id: Annotated[str, Field(pattern=NAME_PATTERN)]
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="video n uses seed + n; none: random")
    steps: int = Field(15, ge=1, le=100)
    guidance: float = Field(7.0, ge=0, le=30)
    width: int = Field(
        1280,
        ge=64,
        le=1920,
        description="a multiple of 16; Wan renders it rounded down to a multiple of 32 (1280 stays 1280), "
        "and the job's `result` records the size rendered",
    )
    height: int = Field(
        720,
        ge=64,
        le=1920,
        description="a multiple of 16; Wan renders it rounded down to a multiple of 32 (720 renders 704)",
    )
    num_videos: int = Field(1, ge=1, le=2)
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    num_frames: int = Field(121, ge=5, le=241, description="4k+1 frames (121 = 5 s at 24 fps)")
    fps: int = Field(24, ge=1, le=60)
    image_uri: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9.-]{3,63}/.+$",
        max_length=1024,
        description="image-to-video: a PNG/JPEG/WebP in one of the stack's buckets",
    )
    image_upload: Literal["image/png", "image/jpeg", "image/webp"] | None = Field(
        None,
        description="image-to-video from an upload: the answer has a presigned POST for an image of this "
        "type (at most 50 MiB); the upload starts the job",
    )

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_16(cls, value: int) -> int:
        if value % 16:
            raise ValueError(f"must be a multiple of 16, got {value}")
        return value

    @field_validator("num_frames")
    @classmethod
    def _four_k_plus_one(cls, value: int) -> int:
        if value % 4 != 1:
            raise ValueError(f"must be 4k+1 (e.g. 81, 121), got {value}")
        return value

    @field_validator("image_upload")
    @classmethod
    def _one_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("image_uri"):
            raise ValueError("give image_uri or image_upload, not both")
        return value


class TtsRequest(_Request):
    """A narration (`POST /jobs {kind: tts}`, or a TTS queue message: see storyflow.intake)."""

    kind: Literal[JobKind.TTS] = JobKind.TTS
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_TEXT_CHARS,
            description="what to say (surrounding whitespace is dropped); split at sentence ends",
        ),
    ]
    voice: str = Field(
        voices.DEFAULT_VOICE,
        description="a Kokoro voice: a/b = American/British, f/m = female/male",
        json_schema_extra={"enum": list(voices.VOICES)},
    )
    speed: float = Field(1.0, ge=0.5, le=2.0)
    lang: Literal["en-us", "en-gb"] | None = Field(None, description="default: the voice's language")
    format: Literal["wav", "m4a"] = Field(
        "wav", description="the audio players take first; narration.wav and narration.m4a are both written"
    )
    parent_id: Annotated[str | None, Field(pattern=NAME_PATTERN)] = Field(
        None, description="the caller's id of what this narrates; with task_id, the job id derives from it"
    )
    task_id: Annotated[str | None, Field(pattern=NAME_PATTERN)] = Field(
        None, description="the caller's id of this narration (a repeat with the same ids is the same job)"
    )

    _known_voice = field_validator("voice")(known_voice)


S3_URI_PATTERN = r"^s3://[a-z0-9.-]{3,63}/.+$"
MAX_SCENES = 50
MAX_SCENE_CHARS = 4000


class StoryScene(_Request):
    """One scene of a story: what the narrator says, and what the clip shows."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_SCENE_CHARS, description="the narration")]
    visual_prompt: Annotated[str | None, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] = Field(
        None, description="what the scene's clip shows (default: the narration text)"
    )
    image_uri: Annotated[str | None, Field(pattern=S3_URI_PATTERN, max_length=1024)] = Field(
        None, description="image-to-video for this scene: a PNG/JPEG/WebP in one of the stack's buckets"
    )


class SceneEdit(_Request):
    """A scene regenerate's body: what changes in the scene (nothing: the same text, a new take)."""

    text: Annotated[str | None, Field(min_length=1, max_length=MAX_SCENE_CHARS)] = Field(
        None, description="the scene's new narration"
    )
    visual_prompt: Annotated[str | None, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] = Field(
        None, description="what the scene's new clip shows"
    )


class StoryRequest(_Request):
    """A story: a `prompt` (scenes written by the LLM) or the `scenes` themselves, narrated, illustrated
    with a clip per scene and composed into one video."""

    kind: Literal[JobKind.STORY] = JobKind.STORY
    prompt: Annotated[str | None, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] = Field(
        None, description="what the story is about (give prompt or scenes)"
    )
    scenes: Annotated[list[StoryScene] | None, Field(min_length=1, max_length=MAX_SCENES)] = Field(
        None, description="the scenes, in order (give prompt or scenes); no LLM is asked"
    )
    voice: str = Field(
        voices.DEFAULT_VOICE,
        description="the narrator: a Kokoro voice",
        json_schema_extra={"enum": list(voices.VOICES)},
    )
    aspect: Literal["16:9", "9:16", "1:1"] = "16:9"
    subtitles: Literal["burned", "soft", "both"] = "burned"
    music_uri: Annotated[str | None, Field(pattern=S3_URI_PATTERN, max_length=1024)] = Field(
        None, description="background music in one of the stack's buckets, ducked under the narration"
    )
    stereo: Literal["full", "half"] | None = Field(
        None, description="also convert the story to side-by-side 3D (full or half width per eye)"
    )

    _known_voice = field_validator("voice")(known_voice)

    @field_validator("scenes")
    @classmethod
    def _prompt_or_scenes(
        cls, value: list[StoryScene] | None, info: ValidationInfo
    ) -> list[StoryScene] | None:
        if value is not None and info.data.get("prompt"):
            raise ValueError("give prompt or scenes, not both")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> StoryRequest:
        if self.prompt is None and self.scenes is None:
            raise ValueError("give prompt or scenes")
        return self


class Progress(_Model):
    done: int = 0
    total: int = 0


class JobError(_Model):
    error: str
    cause: str = ""


class ChildJob(_Model):
    """A job a story started: its kind, its id and the scene it belongs to (None: the whole story)."""

    kind: JobKind
    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    scene: int | None = None


class Job(_Model):
    """One item of the Jobs table."""

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    kind: JobKind
    status: JobStatus = JobStatus.QUEUED
    stage: str | None = None
    created_at: float
    updated_at: float
    completed_at: float | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    progress: Progress = Field(default_factory=Progress)
    error: JobError | None = None
    execution_arn: str | None = None
    result: dict[str, Any] = Field(
        default_factory=dict,
        description="what the workflow's last step reported about its outputs (video: the size rendered, "
        "frames, fps, seeds)",
    )
    parent_id: Annotated[str | None, Field(pattern=JOB_ID_PATTERN)] = Field(
        None, description="the story job that started this one"
    )
    children: list[ChildJob] = Field(
        default_factory=list, description="a story's current child jobs: a tts and a video job per scene"
    )
    scenes: list[StoryScene] = Field(
        default_factory=list, description="a story's scenes as planned (given, or written from its prompt)"
    )
    revision: int = Field(0, ge=0, description="a story's revision: each scene regenerate adds one")


class UploadTicket(_Model):
    """A presigned POST: the client sends `fields` + the file as multipart form data to `url`."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_in: int


class JobAccepted(_Model):
    job_id: str
    status: JobStatus
    upload: UploadTicket | None = None


class JobPage(_Model):
    items: list[Job]
    next: str | None = None


class JobOutputs(_Model):
    job_id: str
    status: JobStatus
    outputs: dict[str, str]
    expires_in: int
