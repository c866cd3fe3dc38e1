"""The workflow registry: one entry per job kind, and the only place that knows what a kind needs.

An entry names the kind's request model, whether it takes an upload (and what the upload must look
like), the Settings field that holds its state machine ARN, how to build the execution's input, and
the outputs a completed job has. The API, job status, `storyflow submit KIND`, the OpenAPI document
and the demo read it; nothing else branches on the kind.

Invariants:
- every `JobKind` has exactly one entry (checked at import);
- an upload key names its job (`input/{job_id}/<name>`), and no two kinds share an upload name, so an
  Object Created event maps to at most one kind;
- `payload` builds the execution input from validated data only: the state machine never re-validates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field

from storyflow import images, keys
from storyflow.errors import BadRequest
from storyflow.keys import S3Location
from storyflow.models import (
    MAX_IMAGE_BYTES,
    JobKind,
    StereoRequest,
    StoryRequest,
    TtsRequest,
    VideoRequest,
)
from storyflow.settings import Settings

Payload = dict[str, Any]


@dataclass(frozen=True)
class Upload:
    """The one file a kind's job waits for before its workflow starts (a presigned POST)."""

    name: str  # the file name under input/{job_id}/
    content_type: str
    max_bytes: Callable[[BaseModel], int]
    check: Callable[[bytes, int], str | None]  # (first 16 bytes, size) -> why it is refused, or None
    refused_as: str = "InvalidUpload"  # the failed job's error name when `check` refuses it
    # Whether this request waits for the upload (default: every request of the kind does), and the
    # Content-Type its ticket requires when it depends on the request (default: `content_type`).
    wanted: Callable[[BaseModel], bool] = lambda request: True
    content_type_of: Callable[[BaseModel], str] | None = None

    def key(self, job_id: str) -> str:
        return keys.upload_key(job_id, self.name)

    def content_type_for(self, request: BaseModel) -> str:
        return self.content_type_of(request) if self.content_type_of else self.content_type


@dataclass(frozen=True)
class Output:
    """One named output of a completed job: its media type, for players and file names."""

    name: str
    media_type: str
    description: str = ""


@dataclass(frozen=True)
class Workflow:
    kind: JobKind
    request: type[BaseModel]
    summary: str
    state_machine_setting: str  # the Settings field holding the state machine ARN ("" = not deployed)
    payload: Callable[[str, Any, S3Location | None], Payload]
    outputs: tuple[Output, ...] = ()
    upload: Upload | None = None
    stages: tuple[str, ...] = ()  # the `stage` values its state machine writes, in order
    # A stage that runs only when a field of the request is set (not null or false): stage -> that field.
    optional_stages: dict[str, str] = field(default_factory=dict)
    # The job id of a request, when the kind derives it from the caller's own ids (queue messages: a
    # redelivery is the same job); None: a fresh id per submission.
    job_id: Callable[[Any], str] | None = None
    # Checks that need the stack (its buckets, objects), run before anything is written: BadRequest.
    check: Callable[[Any, Settings], None] | None = None
    # The SQS intake's queue message → request body (None: the kind has no queue).
    message: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def upload_for(self, request: BaseModel) -> Upload | None:
        """The upload this request waits for, or None when it starts at once."""
        return self.upload if self.upload is not None and self.upload.wanted(request) else None


def _stereo_payload(job_id: str, request: StereoRequest, source: S3Location | None) -> Payload:
    if source is None:
        raise ValueError("a stereo execution starts from its uploaded source")
    return {
        "job_id": job_id,
        "source": {"bucket": source.bucket, "key": source.key},
        "params": request.model_dump(mode="json", include={"layout", "baseline", "convergence"}),
    }


def _video_payload(job_id: str, request: VideoRequest, source: S3Location | None) -> Payload:
    """The request, where its clips go (`videos/{parent_id}/{task_id}/`) and its image ("" for none)."""
    image = source.uri if source is not None else (request.image_uri or "")
    return {
        "job_id": job_id,
        "request": request.model_dump(mode="json"),
        "output_prefix": keys.video_prefix(request.parent_id, request.task_id),
        "image_uri": image,
    }


def _video_job_id(request: VideoRequest) -> str:
    return keys.derived_job_id(JobKind.VIDEO.value, request.parent_id, request.task_id)


def _check_video(request: VideoRequest, settings: Settings) -> None:
    if request.image_uri:
        images.check_image_uri(request.image_uri, settings)


def _video_message(message: dict[str, Any]) -> dict[str, Any]:
    """The seed message as it comes (raw or SNS-unwrapped): its fields are the request's."""
    return {"kind": JobKind.VIDEO.value, **message}


def _tts_job_id(request: TtsRequest) -> str:
    """Derived from parent_id and task_id when the request carries both (a queue redelivery is the same
    job); a fresh id otherwise."""
    if request.parent_id and request.task_id:
        return keys.derived_job_id(JobKind.TTS.value, request.parent_id, request.task_id)
    return keys.new_job_id(JobKind.TTS.value)


def _tts_message(message: dict[str, Any]) -> dict[str, Any]:
    """The TTS queue's message (raw or SNS-unwrapped): the request's fields, `kind` optional."""
    return {**message, "kind": JobKind.TTS.value}


def _check_story(request: StoryRequest, settings: Settings) -> None:
    """music_uri must be in this stack's buckets; every scene image must be an image there."""
    if request.music_uri:
        location = S3Location.parse(request.music_uri)
        buckets = {b for b in (settings.input_bucket, settings.output_bucket) if b}
        if location.bucket not in buckets:
            raise BadRequest(
                f"music_uri must be in this stack's buckets ({', '.join(sorted(buckets))}), "
                f"not {location.bucket}",
                field="music_uri",
            )
    for index, scene in enumerate(request.scenes or []):
        if scene.image_uri:
            images.check_image_uri(scene.image_uri, settings, field=f"scenes.{index}.image_uri")


def _story_payload(job_id: str, request: StoryRequest, source: S3Location | None) -> Payload:
    """Revision 0 plans every scene; a regenerate starts revision r with the one scene to re-run."""
    return {"job_id": job_id, "request": request.model_dump(mode="json"), "revision": 0, "regenerate": None}


def _request_payload(job_id: str, request: BaseModel, source: S3Location | None) -> Payload:
    return {"job_id": job_id, "request": request.model_dump(mode="json")}


# Container signatures at byte 4 (ISO BMFF: MP4/QuickTime) or byte 0 (EBML: Matroska/WebM).
_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
_EBML = b"\x1a\x45\xdf\xa3"


def sniff_video(head: bytes, size: int) -> str | None:
    """Why this upload cannot be a video, or None if its header looks like one."""
    if size == 0:
        return "empty upload (0 bytes)"
    if head[4:8] in _BMFF_BOXES or head.startswith(_EBML):
        return None
    return f"not a video: no MP4/QuickTime or Matroska header (first bytes {head[:12]!r})"


def _max_upload_bytes(request: BaseModel) -> int:
    return int(getattr(request, "max_upload_bytes"))  # noqa: B009 - the field of upload kinds' requests


WORKFLOWS: tuple[Workflow, ...] = (
    Workflow(
        kind=JobKind.STEREO,
        request=StereoRequest,
        summary="2D to side-by-side 3D video; upload an .mp4 to the presigned POST and the upload starts it",
        state_machine_setting="stereo_state_machine_arn",
        payload=_stereo_payload,
        outputs=(Output("final.mp4", keys.SOURCE_CONTENT_TYPE, "the side-by-side 3D video"),),
        upload=Upload("source.mp4", keys.SOURCE_CONTENT_TYPE, _max_upload_bytes, sniff_video, "NotAVideo"),
        stages=("chunking", "inferring", "reassembling"),
    ),
    Workflow(
        kind=JobKind.VIDEO,
        request=VideoRequest,
        summary="text or image to video clips (Wan 2.2 TI2V-5B on ECS GPU tasks); the job id derives from "
        "parent_id and task_id",
        state_machine_setting="video_state_machine_arn",
        payload=_video_payload,
        outputs=(
            Output("0.mp4", keys.SOURCE_CONTENT_TYPE, "the first clip (videos/{parent_id}/{task_id}/0.mp4)"),
            Output("1.mp4", keys.SOURCE_CONTENT_TYPE, "the second clip, when num_videos is 2"),
        ),
        upload=Upload(
            "image.upload",
            "image/png",
            lambda request: MAX_IMAGE_BYTES,
            images.sniff_image,
            "InvalidImage",
            wanted=lambda request: getattr(request, "image_upload", None) is not None,
            content_type_of=lambda request: str(getattr(request, "image_upload", None) or "image/png"),
        ),
        stages=("provisioning", "generating", "uploading"),
        job_id=_video_job_id,
        check=_check_video,
        message=_video_message,
    ),
    Workflow(
        kind=JobKind.TTS,
        request=TtsRequest,
        summary="text to narration with word-aligned subtitles (Kokoro on a SageMaker async endpoint); "
        "with parent_id and task_id the job id derives from them",
        state_machine_setting="tts_state_machine_arn",
        payload=_request_payload,
        outputs=(
            Output("narration.wav", "audio/wav", "the narration, 16-bit PCM (24 kHz with kokoro)"),
            Output("narration.m4a", "audio/mp4", "the narration, AAC"),
            Output("narration.srt", "application/x-subrip", "subtitles cut at sentences, 2 lines of 42"),
            Output("narration.vtt", "text/vtt", "the same cues as WebVTT"),
            Output("words.json", "application/json", "every word's start_ms and end_ms"),
        ),
        stages=("synthesizing",),
        job_id=_tts_job_id,
        message=_tts_message,
    ),
    Workflow(
        kind=JobKind.STORY,
        request=StoryRequest,
        summary="a prompt or scenes to a narrated, subtitled story video: a tts and a video child job per "
        "scene, composed (and with `stereo`, converted to 3D by a stereo child job)",
        state_machine_setting="story_state_machine_arn",
        payload=_story_payload,
        outputs=(
            Output("final.mp4", keys.SOURCE_CONTENT_TYPE, "the composed story (subtitles as asked)"),
            Output(
                "stereo.mp4", keys.SOURCE_CONTENT_TYPE, "the story in side-by-side 3D, when stereo is set"
            ),
        ),
        stages=("planning", "scenes", "composing", "stereo"),
        optional_stages={"stereo": "stereo"},
        check=_check_story,
    ),
)

_BY_KIND: dict[JobKind, Workflow] = {workflow.kind: workflow for workflow in WORKFLOWS}
if set(_BY_KIND) != set(JobKind) or len(_BY_KIND) != len(WORKFLOWS):
    raise RuntimeError("the registry must have exactly one entry per JobKind")
_UPLOADS = [w.upload.name for w in WORKFLOWS if w.upload]
if len(set(_UPLOADS)) != len(_UPLOADS):
    raise RuntimeError("two kinds share an upload name")


def get(kind: JobKind | str) -> Workflow:
    return _BY_KIND[JobKind(kind)]


def for_upload_key(key: str) -> tuple[Workflow, str] | None:
    """(the kind that waits for this upload, its job id), or None for any key that is not an upload."""
    parsed = keys.parse_upload_key(key)
    if parsed is None:
        return None
    job_id, name = parsed
    for workflow in WORKFLOWS:
        if workflow.upload and workflow.upload.name == name:
            return workflow, job_id
    return None


if TYPE_CHECKING:
    JobRequest = BaseModel
else:
    # The discriminated union of every entry's request model: POST /jobs validates against it.
    JobRequest = Annotated[Union[tuple(w.request for w in WORKFLOWS)], Field(discriminator="kind")]  # noqa: UP007
