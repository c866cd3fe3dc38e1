"""Frames → an H.264 (libx264) yuv420p MP4 with faststart (moov first), through PyAV."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_mp4(
    frames: Iterable[np.ndarray], path: Path, fps: int, crf: int = 18, preset: str = "medium"
) -> int:
    """Encode RGB uint8 frames (H, W, 3; even sizes) to `path`; returns the number of frames written."""
    import av

    count = 0
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = None
        for frame in frames:
            if stream is None:
                height, width = int(frame.shape[0]), int(frame.shape[1])
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return count


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (what diffusers' output_type="np" gives) → uint8 RGB."""
    if frames.dtype == np.uint8:
        return frames
    out: np.ndarray = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out
