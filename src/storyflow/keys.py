"""Every S3 key shape and identifier format lives here, so a `../` can never reach a key."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from storyflow.errors import BadRequest

JOB_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{7,63}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # parent_id / task_id from queue messages
_JOB_ID = re.compile(JOB_ID_PATTERN)
_UPLOAD_KEY = re.compile(
    r"^input/(?P<job_id>[a-z0-9][a-z0-9-]{7,63})/(?P<name>[A-Za-z0-9_-]{1,48}\.[a-z0-9]{1,8})$"
)

LIFECYCLE_TAG_KEY = "storyflow-lifecycle"
LIFECYCLE_TAG_INTERMEDIATE = "expire-intermediate"
SOURCE_CONTENT_TYPE = "video/mp4"


def new_job_id(kind: str) -> str:
    """`<kind>-<yyyymmdd>-<12 hex>`: sortable by day, unguessable, safe in keys and execution names."""
    return f"{kind}-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(6)}"


def derived_job_id(kind: str, *parts: str) -> str:
    """`<kind>-<32 hex>` from a caller's own ids (a queue message's parent_id and task_id): the same ids
    always give the same job, so a redelivered or repeated message never starts a second execution."""
    digest = hashlib.sha256("\n".join((kind, *parts)).encode()).hexdigest()[:32]
    return check_job_id(f"{kind}-{digest}")


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise BadRequest(f"job_id {job_id[:80]!r} does not match {JOB_ID_PATTERN}", field="job_id")
    return job_id


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(job id, file name) of an upload key `input/{job_id}/{name}`, or None for any other key."""
    match = _UPLOAD_KEY.fullmatch(key)
    return (match["job_id"], match["name"]) if match else None


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise BadRequest(f"not an s3:// URI: {uri[:120]!r}")
        bucket, key = uri[5:].split("/", 1)
        return cls(bucket, key)


# Input bucket
def upload_key(job_id: str, name: str = "source.mp4") -> str:
    """Where a job's upload lands: `input/{job_id}/{name}` (stereo's is `source.mp4`)."""
    return f"input/{check_job_id(job_id)}/{name}"


def segment_key(job_id: str, index: int) -> str:
    return f"segments/{check_job_id(job_id)}/{index:05d}.mp4"


def stereo_source_key(job_id: str) -> str:
    """A stereo child's source (a story's composed video, copied): under the job's intermediate
    `segments/` prefix, and not an upload key, so no upload event starts the job a second time."""
    return f"segments/{check_job_id(job_id)}/source.mp4"


def manifest_key(job_id: str) -> str:
    return f"segments/{check_job_id(job_id)}/manifest.json"


def audio_key(job_id: str) -> str:
    """The source's audio track, copied out by chunk so reassemble need not download the whole source."""
    return f"segments/{check_job_id(job_id)}/audio.m4a"


# Output bucket
def job_prefix(job_id: str) -> str:
    return f"jobs/{check_job_id(job_id)}/"


def inferred_segment_key(job_id: str, index: int) -> str:
    return f"{job_prefix(job_id)}segments/{index:05d}.mp4"


def final_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}final.mp4"


_NAME = re.compile(NAME_PATTERN)


def video_prefix(parent_id: str, task_id: str) -> str:
    """Where a video task's clips go: `videos/{parent_id}/{task_id}/` (then `{n}.mp4`, n from 0)."""
    for field, value in (("parent_id", parent_id), ("task_id", task_id)):
        if not _NAME.fullmatch(value):
            raise BadRequest(f"{field} {value[:80]!r} does not match {NAME_PATTERN}", field=field)
    return f"videos/{parent_id}/{task_id}/"


def video_key(parent_id: str, task_id: str, index: int) -> str:
    return f"{video_prefix(parent_id, task_id)}{index}.mp4"


TTS_OUTPUTS = ("narration.wav", "narration.m4a", "narration.srt", "narration.vtt", "words.json")


def tts_output_key(job_id: str, name: str) -> str:
    """A narration output (`tts/{job_id}/{name}`, one of TTS_OUTPUTS), where the tts machine writes it."""
    if name not in TTS_OUTPUTS:
        raise BadRequest(f"not a tts output: {name[:40]!r}", field="name")
    return f"tts/{check_job_id(job_id)}/{name}"


# Step results (output bucket): every ECS task container writes one of these when it ends, because a
# stopped task reports only its exit code to Step Functions (stderr never reaches the task's reason).
STEP_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_STEP = re.compile(STEP_PATTERN)


def check_step(step: str) -> str:
    """A workflow step name as it appears in keys (`chunk`, `reassemble`): lowercase, no `/` or `.`."""
    if not _STEP.fullmatch(step):
        raise BadRequest(f"step {step[:40]!r} does not match {STEP_PATTERN}", field="step")
    return step


def step_prefix(job_id: str, step: str) -> str:
    return f"{job_prefix(job_id)}steps/{check_step(step)}/"


def step_result_key(job_id: str, step: str) -> str:
    """A step's success document: the container's result manifest (JSON object)."""
    return f"{step_prefix(job_id, step)}result.json"


def step_error_key(job_id: str, step: str) -> str:
    """A step's failure document: `{"error": TypedName, "message": ...}`."""
    return f"{step_prefix(job_id, step)}error.json"
