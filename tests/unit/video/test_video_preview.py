"""The preview engine renders a real, watchable clip: decodable H.264, the requested size, frames and fps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from storyflow_video.cli import render
from storyflow_video.engines import load
from storyflow_video.engines.preview import PreviewEngine
from storyflow_video.request import parse

from tests.unit.video.helpers import differs, moov_before_mdat, probe

REQUEST = {"prompt": "A lighthouse at dusk, waves on the rocks", "seed": 11, "width": 320, "height": 176}


def rendered(tmp_path: Path, image: Image.Image | None = None, **change: object) -> tuple[dict, list]:
    steps: list[tuple[int, int, str]] = []
    job = parse({**REQUEST, "num_frames": 25, "fps": 12, **change})

    def progress(videos: int, step: int, stage: str) -> bool:
        steps.append((videos, step, stage))
        return True

    return render(job, PreviewEngine(), image, tmp_path, progress), steps


def test_text_only_renders_a_decodable_h264_clip_of_the_requested_size_frames_and_fps(tmp_path: Path) -> None:
    # Given a text-only request for 25 frames of 320x176 at 12 fps  When the preview engine renders it
    result, _ = rendered(tmp_path)

    # Then 0.mp4 is H.264 yuv420p, faststart, 320x176, 25 frames at 12 fps, and the result says so
    clip = probe(tmp_path / "0.mp4")
    assert (clip["codec"], clip["pix_fmt"], clip["width"], clip["height"]) == ("h264", "yuv420p", 320, 176)
    assert (clip["frames"], clip["fps"]) == (25, 12.0)
    assert moov_before_mdat(tmp_path / "0.mp4")
    assert (result["width"], result["height"], result["num_frames"], result["fps"]) == (320, 176, 25, 12)
    assert result["videos"][0]["frames"] == 25 and result["videos"][0]["seed"] == 11
    # And it moves (not a still) and shows something (not a flat colour)
    assert differs(clip["first"], clip["last"]) > 1.0
    assert float(clip["first"].std()) > 5.0


def test_the_same_seed_gives_the_same_clip_and_another_seed_another(tmp_path: Path) -> None:
    engine, job = PreviewEngine(), parse({**REQUEST, "num_frames": 9})
    first = list(engine.frames(job, 5, None, lambda done, total: None))
    again = list(engine.frames(job, 5, None, lambda done, total: None))
    other = list(engine.frames(job, 6, None, lambda done, total: None))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert differs(first[4], other[4]) > 1.0


def test_two_videos_get_consecutive_seeds_and_progress_counts_every_step(tmp_path: Path) -> None:
    # Given num_videos 2 and 5 steps  When rendered
    result, steps = rendered(tmp_path, num_videos=2, steps=5)

    # Then two clips with seeds seed and seed+1, and progress reached 5 steps in each video, then uploading
    assert [v["seed"] for v in result["videos"]] == [11, 12]
    assert (tmp_path / "1.mp4").is_file() and probe(tmp_path / "1.mp4")["frames"] == 25
    generating = [(v, s) for v, s, stage in steps if stage == "generating"]
    assert generating == [(0, s) for s in range(1, 6)] + [(1, s) for s in range(1, 6)]
    assert [(v, stage) for v, _, stage in steps if stage == "uploading"] == [
        (1, "uploading"),
        (2, "uploading"),
    ]


def test_an_image_pans_and_zooms_at_the_requested_size(tmp_path: Path) -> None:
    # Given a 640x480 image with a bright square in its middle
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[180:300, 260:380] = (250, 200, 40)
    result, _ = rendered(tmp_path, Image.fromarray(pixels), image_uri="s3://bucket/in.png")

    # Then the clip is the requested size and shows the image (its colour), moving over time
    clip = probe(tmp_path / "0.mp4")
    assert (clip["width"], clip["height"], clip["frames"]) == (320, 176, 25)
    assert result["image"] is True
    middle = clip["first"][60:110, 130:190].reshape(-1, 3).mean(axis=0)
    assert middle[0] > 150 and middle[2] < 120, middle
    assert differs(clip["first"], clip["last"]) > 1.0


def test_engines_are_chosen_by_name_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE", "preview")
    assert load().name == "preview"
    from storyflow_video.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="not an engine"):
        load("sdxl")
