"""Every S3 key shape and identifier format lives here, so a `../` can never reach a key."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from storyflow.errors import BadRequest

JOB_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{7,63}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # parent_id / task_id from queue messages
_JOB_ID = re.compile(JOB_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_UPLOAD_KEY = re.compile(r"^input/(?P<job_id>[a-z0-9][a-z0-9-]{7,63})/source\.mp4$")

LIFECYCLE_TAG_KEY = "storyflow-lifecycle"
LIFECYCLE_TAG_INTERMEDIATE = "expire-intermediate"
SOURCE_CONTENT_TYPE = "video/mp4"


def new_job_id(kind: str) -> str:
    """`<kind>-<yyyymmdd>-<12 hex>`: sortable by day, unguessable, safe in keys and execution names."""
    return f"{kind}-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(6)}"


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise BadRequest(f"job_id {job_id[:80]!r} does not match {JOB_ID_PATTERN}", field="job_id")
    return job_id


def check_name(value: str, field: str) -> str:
    if not _NAME.fullmatch(value):
        raise BadRequest(f"{field} {value[:80]!r} does not match {NAME_PATTERN}", field=field)
    return value


def job_id_from_upload_key(key: str) -> str | None:
    """The job id of an upload key `input/{job_id}/source.mp4`, or None for any other key."""
    match = _UPLOAD_KEY.fullmatch(key)
    return match["job_id"] if match else None


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
def upload_key(job_id: str) -> str:
    return f"input/{check_job_id(job_id)}/source.mp4"


def segment_key(job_id: str, index: int) -> str:
    return f"segments/{check_job_id(job_id)}/{index:05d}.mp4"


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


def video_key(parent_id: str, task_id: str, n: int) -> str:
    return f"videos/{check_name(parent_id, 'parent_id')}/{check_name(task_id, 'task_id')}/{n}.mp4"


def tts_key(job_id: str, ext: str) -> str:
    return f"tts/{check_job_id(job_id)}/narration.{ext}"
