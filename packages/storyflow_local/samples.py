"""Sample media made on the spot (no downloads): a test scene with depth cues, motion and a tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class Scene:
    """A sky-to-ground gradient, a scrolling checker floor and two moving discs (near and far).

    Everything static is computed once; a frame is a roll of the floor plus two small disc stamps.
    """

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.width, self.height, self.fps = width, height, fps
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.horizon = int(height * 0.45)
        sky = np.clip(1 - ys / max(self.horizon, 1), 0, 1)[..., None]
        self.background = np.array([90, 140, 200], np.float32) + sky * np.array([100, 80, 55], np.float32)
        checker = (((xs // 48) + (ys // 24)) % 2)[..., None]
        self.floor = (60 + 120 * checker) * np.array([0.9, 0.8, 0.6], np.float32)
        self.background = self.background.astype(np.uint8)
        self.floor = self.floor.astype(np.uint8)

    def frame(self, index: int) -> np.ndarray:
        t = index / self.fps
        out: np.ndarray = self.background.copy()
        shift = int(t * 40) % 96
        out[self.horizon :] = np.roll(self.floor[self.horizon :], shift, axis=1)
        for radius, speed, y, color in ((0.08, 0.15, 0.4, (230, 60, 40)), (0.16, -0.25, 0.75, (40, 200, 80))):
            r = max(2, int(radius * self.height))
            cx = int((0.5 + 0.4 * np.sin(2 * np.pi * speed * t)) * self.width)
            cy = int(y * self.height)
            x0, x1, y0, y1 = max(cx - r, 0), min(cx + r, self.width), max(cy - r, 0), min(cy + r, self.height)
            yy, xx = np.ogrid[y0:y1, x0:x1]
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            out[y0:y1, x0:x1][mask] = color
        return out


def make_clip(
    path: Path,
    *,
    seconds: float = 30,
    width: int = 1280,
    height: int = 720,
    fps: int = 24,
    keyframe_seconds: float = 2,
    audio: bool = True,
    tone_hz: float = 440.0,
    variable_frame_rate: bool = False,
) -> Path:
    """Write an H.264 (+ AAC) MP4 with keyframes every `keyframe_seconds` (odd sizes are allowed).

    `variable_frame_rate` alternates frame durations of 0.8 and 1.2 frame periods (same mean rate).
    """
    frames = round(seconds * fps)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        if variable_frame_rate:
            video.codec_context.time_base = Fraction(1, fps * 10)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        gop = max(1, round(keyframe_seconds * fps))
        video.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        astream = container.add_stream("aac", rate=48000) if audio else None
        scene = Scene(width, height, fps)
        sample = 0
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(scene.frame(index), format="rgb24")
            if variable_frame_rate:
                frame.time_base = Fraction(1, fps * 10)
                frame.pts = index * 10 - (2 if index % 2 else 0)
            else:
                frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
            while astream is not None and sample < (index + 1) * 48000 / fps:
                n = 1024
                t = (sample + np.arange(n)) / 48000
                tone = (0.2 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)[None, :]
                aframe = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                aframe.sample_rate, aframe.pts = 48000, sample
                container.mux(astream.encode(aframe))
                sample += n
        container.mux(video.encode())
        if astream is not None:
            container.mux(astream.encode())
    return path
