"""open_container(decode=False): for MP4, the fast demux-only open gives the packets a default open does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest
from storyflow_media.probe import open_container

from .conftest import Clips


def packets(container: av.container.InputContainer) -> list[tuple[Any, ...]]:
    return [
        (p.stream_index, p.pts, p.dts, p.duration, p.is_keyframe, p.is_discard, bytes(p))
        for p in container.demux()
    ]


@pytest.mark.parametrize("clip", ["gop1", "vfr", "odd", "silent"])
def test_demux_only_open_of_an_mp4_gives_the_same_packets(clips: Clips, clip: str) -> None:
    # Given an MP4 (B-frames and AAC, VFR, odd size, no audio)
    path: Path = getattr(clips, clip)
    # When it is opened for demuxing only (no probing, no parser) and the default way
    with open_container(path, decode=False) as fast, av.open(str(path)) as default:
        # Then every packet of every stream is the same: data, timestamps, duration, keyframe flag
        assert packets(fast) == packets(default)
