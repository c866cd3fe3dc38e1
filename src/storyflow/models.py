"""Pydantic models for every job request, the Job item and its status machine."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def allowed_sources(target: JobStatus) -> list[JobStatus]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StereoParams(_Request):
    layout: Literal["full", "half"] = "full"
    baseline: float = Field(0.03, gt=0, le=0.1, description="max disparity as a fraction of width")
    convergence: float = Field(0.5, ge=0, le=1, description="depth plane with zero disparity")


class StereoRequest(StereoParams):
    kind: Literal[JobKind.STEREO] = JobKind.STEREO
    max_upload_bytes: int = Field(2 * 1024**3, ge=1, le=5 * 1024**3)


class VideoRequest(_Request):
    """Exactly the seed message fields and defaults of the video queue."""

    kind: Literal[JobKind.VIDEO] = JobKind.VIDEO
    parent_id: Annotated[str, Field(pattern=NAME_PATTERN)]
    task_id: Annotated[str, Field(pattern=NAME_PATTERN)]
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    steps: int = Field(15, ge=1, le=100)
    guidance: float = Field(7.0, ge=0, le=30)
    width: int = Field(1280, ge=64, le=1920)
    height: int = Field(720, ge=64, le=1920)
    num_videos: int = Field(1, ge=1, le=2)
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    image_uri: str | None = Field(None, pattern=r"^s3://[a-z0-9.-]{3,63}/.+$", max_length=1024)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_16(cls, value: int) -> int:
        if value % 16:
            raise ValueError(f"must be a multiple of 16, got {value}")
        return value


class TtsRequest(_Request):
    kind: Literal[JobKind.TTS] = JobKind.TTS
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    voice: Annotated[str, Field(pattern=r"^[a-z]{2}[a-z_]{0,30}$")] = "af_heart"
    speed: float = Field(1.0, ge=0.5, le=2.0)
    format: Literal["wav", "mp3"] = "wav"


class Scene(_Request):
    narration: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]


class StoryRequest(_Request):
    kind: Literal[JobKind.STORY] = JobKind.STORY
    prompt: Annotated[str | None, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] = None
    scenes: Annotated[list[Scene] | None, Field(min_length=1, max_length=20)] = None
    voice: str = "af_heart"
    stereo: bool = False


class Progress(BaseModel):
    done: int = 0
    total: int = 0


class JobError(BaseModel):
    error: str
    cause: str = ""


class Job(BaseModel):
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


class UploadTicket(BaseModel):
    """A presigned POST: the client sends `fields` + the file as multipart form data to `url`."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expires_in: int


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    upload: UploadTicket | None = None


class JobPage(BaseModel):
    items: list[Job]
    next: str | None = None


class JobOutputs(BaseModel):
    job_id: str
    status: JobStatus
    outputs: dict[str, str]
    expires_in: int
