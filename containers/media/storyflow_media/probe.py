"""Open a file as a video, or say precisely why it is not one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream

from storyflow_media.errors import NotAVideo


@contextmanager
def open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Yield the demuxer and its first real video stream (cover art does not count).

    Raises NotAVideo for an empty file, a file no demuxer recognises, a still image, or a file
    without a video stream.
    """
    if path.stat().st_size == 0:
        raise NotAVideo("empty file (0 bytes)", path.name)
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise NotAVideo(f"unrecognised format ({exc.strerror or exc})", path.name) from None
    try:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise NotAVideo(f"a still image ({fmt})", path.name)
        stream = next(
            (s for s in container.streams.video if not s.disposition & Disposition.attached_pic), None
        )
        if stream is None:
            raise NotAVideo(f"no video stream (container {fmt})", path.name)
        yield container, stream
    finally:
        container.close()


def check_video(path: Path) -> None:
    """Raise NotAVideo unless `path` opens as a video whose first frame decodes."""
    with open_video(path) as (container, stream):
        try:
            for packet in container.demux(stream):
                if packet.decode():
                    return
        except av.FFmpegError as exc:
            raise NotAVideo(f"video does not decode: {exc.strerror or exc}", path.name) from None
    raise NotAVideo("video stream has no frames", path.name)
