"""An upload of `input/{job_id}/source.mp4` starts the stereo workflow, exactly once per job."""

from __future__ import annotations

from urllib.parse import unquote_plus

from storyflow import aws, keys, workflows
from storyflow.errors import NotFound
from storyflow.jobstore import JobStore
from storyflow.models import JobError, JobKind, JobStatus, StereoRequest
from storyflow.observability import logger
from storyflow.settings import Settings

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


def on_source_uploaded(bucket: str, raw_key: str, size: int, settings: Settings) -> str | None:
    """Start the job's execution; returns the job id, or None when the key is not an upload."""
    key = unquote_plus(raw_key)
    job_id = keys.job_id_from_upload_key(key)
    if bucket != settings.input_bucket or job_id is None:
        logger.info("ignored: not an upload key", extra={"bucket": bucket, "key": key[:300]})
        return None
    store = JobStore(settings.require("jobs_table"))
    try:
        job = store.get(job_id)
    except NotFound:
        # Uploaded straight to S3 (not through POST /jobs): the job is created with default parameters.
        job = store.create(JobKind.STEREO, job_id, StereoRequest().model_dump(mode="json"))
        logger.info("job created for a direct upload", extra={"job_id": job_id})
    if job.kind is not JobKind.STEREO or job.status is not JobStatus.QUEUED:
        logger.info("ignored: job is not a queued stereo job", extra={"job_id": job_id, "status": job.status})
        return None
    head = (
        aws.client("s3").get_object(Bucket=bucket, Key=key, Range="bytes=0-15")["Body"].read()
        if size
        else b""
    )
    problem = sniff_video(head, size)
    if problem:
        store.transition(job_id, JobStatus.FAILED, error=JobError(error="NotAVideo", cause=problem))
        logger.warning("upload rejected", extra={"job_id": job_id, "cause": problem})
        return job_id
    request = StereoRequest.model_validate(job.request)
    payload = {
        "job_id": job_id,
        "source": {"bucket": bucket, "key": key},
        "params": request.model_dump(mode="json", include={"layout", "baseline", "convergence"}),
    }
    workflows.start(JobKind.STEREO, job_id, payload, settings)
    return job_id
