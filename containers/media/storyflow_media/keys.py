"""The S3 key shapes of the media commands: a copy of the few storyflow.keys functions the media image
needs (it cannot import the Lambda layer). tests/unit/media/test_keys_agree.py proves every function
here returns exactly what storyflow.keys returns; change both together."""

from __future__ import annotations

import argparse
import re

JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{7,63}$")


def job_id(value: str) -> str:
    """argparse type: a job id that is safe inside a key (no `/`, no `.`)."""
    if not JOB_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"job id {value[:80]!r} does not match {JOB_ID.pattern}")
    return value


# Input bucket
def source_key(job: str) -> str:
    return f"input/{job}/source.mp4"


def segment_key(job: str, index: int) -> str:
    return f"segments/{job}/{index:05d}.mp4"


def manifest_key(job: str) -> str:
    return f"segments/{job}/manifest.json"


def audio_key(job: str) -> str:
    """The source's audio, copied by chunk (audio-only MP4) for reassemble."""
    return f"segments/{job}/audio.m4a"


# Output bucket
def inferred_segment_key(job: str, index: int) -> str:
    return f"jobs/{job}/segments/{index:05d}.mp4"


def final_key(job: str) -> str:
    return f"jobs/{job}/final.mp4"


# Step results (output bucket): what the task leaves for the state machine (see storyflow.keys).
def step_result_key(job: str, step: str) -> str:
    return f"jobs/{job}/steps/{step}/result.json"


def step_error_key(job: str, step: str) -> str:
    return f"jobs/{job}/steps/{step}/error.json"
