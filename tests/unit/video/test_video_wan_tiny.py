"""The wan engine's code path on a tiny randomly initialised Wan 2.2 pipeline (CPU, offline, ~seconds):
text-to-video and image-to-video (from_pipe), per-step progress, seeds, Wan's size rounding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the tiny Wan test needs the video-wan extra (make wan)")

from storyflow_video.cli import render
from storyflow_video.engines.wan import WanEngine
from storyflow_video.request import parse

from tests.unit.video.helpers import moov_before_mdat, probe


@pytest.fixture(scope="module")
def engine() -> WanEngine:
    return WanEngine.tiny()


def test_text_to_video_runs_the_wan_path_with_progress_per_step(engine: WanEngine, tmp_path: Path) -> None:
    # Given a 96x80 request (Wan renders 96x64), 9 frames, 3 steps
    job = parse(
        {"prompt": "a w1 w2 lighthouse", "seed": 3, "width": 96, "height": 80, "num_frames": 9, "steps": 3}
    )
    steps: list[tuple[int, int, str]] = []

    # When the wan code path renders it on the tiny pipeline
    result = render(job, engine, None, tmp_path, lambda v, s, stage: steps.append((v, s, stage)) or True)

    # Then a real H.264 clip of the size Wan renders, with the frames asked for, and progress once a step
    clip = probe(tmp_path / "0.mp4")
    assert (clip["codec"], clip["pix_fmt"], clip["width"], clip["height"], clip["frames"]) == (
        "h264",
        "yuv420p",
        96,
        64,
        9,
    )
    assert moov_before_mdat(tmp_path / "0.mp4")
    assert (result["engine"], result["width"], result["height"]) == ("tiny", 96, 64)
    assert (result["requested_width"], result["requested_height"]) == (96, 80)
    assert [s for v, s, stage in steps if stage == "generating"] == [1, 2, 3]


def test_the_same_seed_reproduces_the_frames(engine: WanEngine) -> None:
    job = parse({"prompt": "w3", "width": 64, "height": 64, "num_frames": 5, "steps": 2})
    runs = [np.stack(list(engine.frames(job, seed, None, lambda d, t: None))) for seed in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_image_to_video_shares_the_loaded_pipeline(engine: WanEngine, tmp_path: Path) -> None:
    from PIL import Image

    # Given an image and a request with it
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    job = parse(
        {
            "prompt": "w4",
            "seed": 1,
            "width": 64,
            "height": 64,
            "num_frames": 5,
            "steps": 2,
            "image_uri": "s3://b/i.png",
        }
    )
    seen: list[Any] = []

    # When rendered
    result = render(job, engine, image, tmp_path, lambda v, s, stage: seen.append(s) or True)

    # Then the image-to-video pipeline ran on the same modules (from_pipe) and made the clip
    assert engine._i2v is not None and engine._i2v.transformer is engine.pipe.transformer
    assert probe(tmp_path / "0.mp4")["frames"] == 5 and result["image"] is True
