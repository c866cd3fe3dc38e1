"""The few S3 key shapes this container writes (a copy of storyflow.keys; a unit test checks they agree)."""

from __future__ import annotations

import re

_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{7,63}$")
_STEP = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def job_id(value: str) -> str:
    if not _JOB_ID.fullmatch(value):
        raise ValueError(f"job id {value[:80]!r} does not match ^[a-z0-9][a-z0-9-]{{7,63}}$")
    return value


def step_prefix(job: str, step: str) -> str:
    if not _STEP.fullmatch(step):
        raise ValueError(f"step {step[:40]!r} is not a step name")
    return f"jobs/{job_id(job)}/steps/{step}/"


def step_result_key(job: str, step: str) -> str:
    return step_prefix(job, step) + "result.json"


def step_error_key(job: str, step: str) -> str:
    return step_prefix(job, step) + "error.json"


def video_key(output_prefix: str, index: int) -> str:
    """`{output_prefix}{n}.mp4`; the prefix (`videos/{parent_id}/{task_id}/`) comes from the workflow."""
    return f"{output_prefix}{index}.mp4"
