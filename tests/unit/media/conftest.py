"""Fixtures for the media container: small generated clips, and a moto server for the CLI subprocesses."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

MEDIA_DIR = Path(__file__).resolve().parents[3] / "containers" / "media"
if str(MEDIA_DIR) not in sys.path:  # whether or not the editable install maps storyflow_media yet
    sys.path.insert(0, str(MEDIA_DIR))

from storyflow_media.synth import make_clip  # noqa: E402

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Clips:
    """Sources every media test can read (never write): 320x240 24 fps unless said otherwise."""

    gop1: Path  # 6 s, keyframe every 1 s, AAC stereo sine
    gop10: Path  # 6 s, a single keyframe (10 s GOP), AAC
    silent: Path  # 6 s, keyframe every 1 s, no audio
    odd: Path  # 853x480, 3 s, single keyframe, AAC
    vfr: Path  # 6 s, frame durations alternating 1/48 s and 3/48 s, single keyframe, AAC
    pcm: Path  # 6 s, keyframe every 1 s, PCM audio (does not fit MP4) in Matroska


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("clips")
    fast = "ultrafast"  # no B-frames; only gop1 (the stream-copy source) needs them
    return Clips(
        gop1=make_clip(root / "gop1.mp4"),
        gop10=make_clip(root / "gop10.mp4", gop_seconds=10, preset=fast),
        silent=make_clip(root / "silent.mp4", audio=False, preset=fast),
        odd=make_clip(root / "odd.mp4", width=853, height=480, seconds=3, gop_seconds=10, preset=fast),
        vfr=make_clip(root / "vfr.mp4", vfr=True, gop_seconds=10, preset=fast),
        pcm=make_clip(root / "pcm.mkv", audio_codec="pcm_s16le", preset=fast),
    )


@pytest.fixture
def cli_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for `python -m storyflow_media` (and this process's boto3): fake creds, moto endpoint."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS, "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(name, value)
    pythonpath = os.pathsep.join(filter(None, [str(MEDIA_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath}


@pytest.fixture
def buckets(cli_env: dict[str, str]) -> tuple[str, str]:
    """Given a fresh input and output bucket on the moto server."""
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:12]
    names = (f"media-in-{suffix}", f"media-out-{suffix}")
    for name in names:
        s3.create_bucket(Bucket=name)
    return names
