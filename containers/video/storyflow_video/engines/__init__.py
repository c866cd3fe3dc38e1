"""Engines: `wan` (Wan 2.2 TI2V-5B, GPU), `tiny` (a random tiny Wan: the same code path, CPU, tests) and
`preview` (CPU, no weights: a real clip drawn from the prompt or the input image)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from storyflow_video.errors import InvalidRequest
from storyflow_video.request import VideoJob

#: (steps done in this video, steps of this video)
OnStep = Callable[[int, int], None]
ENGINE_ENV = "ENGINE"
ENGINES = ("wan", "tiny", "preview")


class Engine(Protocol):
    name: str
    encode_preset: str  # libx264 preset: speed of the CPU encode against the clip's size

    def size(self, job: VideoJob) -> tuple[int, int]:
        """(width, height) this engine really renders for the job."""
        ...

    def steps(self, job: VideoJob) -> int:
        """Progress steps per video."""
        ...

    def frames(self, job: VideoJob, seed: int, image: Any, on_step: OnStep) -> Iterator[np.ndarray]:
        """The video's RGB uint8 frames (H, W, 3); `image` is a PIL image or None."""
        ...


def load(name: str | None = None) -> Engine:
    """The engine named by `name` or $ENGINE (default preview)."""
    chosen = (name or os.environ.get(ENGINE_ENV) or "preview").strip().lower()
    if chosen == "preview":
        from storyflow_video.engines.preview import PreviewEngine

        return PreviewEngine()
    if chosen in ("wan", "tiny"):
        from storyflow_video.engines.wan import WanEngine

        return WanEngine.tiny() if chosen == "tiny" else WanEngine.from_environment()
    raise InvalidRequest(f"{ENGINE_ENV}={chosen!r} is not an engine ({', '.join(ENGINES)})")
