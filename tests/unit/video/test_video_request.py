"""The container checks its request again and makes Wan's size rule explicit."""

from __future__ import annotations

import pytest
from storyflow_video import keys
from storyflow_video.errors import InvalidRequest
from storyflow_video.request import parse, wan_size

from storyflow import keys as layer_keys


@pytest.mark.parametrize(
    ("requested", "rendered"), [((1280, 720), (1280, 704)), ((832, 480), (832, 480)), ((96, 80), (96, 64))]
)
def test_wan_renders_sizes_rounded_down_to_multiples_of_32(
    requested: tuple[int, int], rendered: tuple[int, int]
) -> None:
    assert wan_size(*requested) == rendered


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 1000}, "width must be a multiple of 16"),
        ({"num_frames": 120}, r"num_frames must be 4k\+1"),
        ({"num_videos": 3}, "num_videos"),
        ({"prompt": ""}, "prompt"),
        ({"image_uri": "http://x/y.png"}, "image_uri"),
    ],
)
def test_a_bad_request_is_invalid_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        parse({"prompt": "a lighthouse", **change})


def test_the_seed_message_defaults_hold() -> None:
    job = parse({"prompt": "a lighthouse"})
    assert (job.steps, job.guidance, job.width, job.height, job.num_videos, job.num_frames, job.fps) == (
        15,
        7.0,
        1280,
        720,
        1,
        121,
        24,
    )
    assert len(job.seeds()) == 1


def test_container_keys_agree_with_the_layer() -> None:
    job = "video-0123456789abcdef0123456789abcdef"
    assert keys.step_result_key(job, "generate") == layer_keys.step_result_key(job, "generate")
    assert keys.step_error_key(job, "generate") == layer_keys.step_error_key(job, "generate")
    prefix = layer_keys.video_prefix("parent-1", "task_1")
    assert (
        keys.video_key(prefix, 1)
        == layer_keys.video_key("parent-1", "task_1", 1)
        == "videos/parent-1/task_1/1.mp4"
    )
