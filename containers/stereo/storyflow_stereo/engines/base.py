"""The engine interface: ``load()`` once (in the background), then ``render_file()`` per invocation."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from storyflow_stereo.params import StereoParams


@dataclass(frozen=True)
class RenderResult:
    frames: int
    width: int
    height: int
    seconds: float  # duration of the output video


class Engine(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def load(self) -> None:
        """Make the engine ready (weights, warm-up). Raises ``ModelNotAvailable`` when it cannot."""

    @abc.abstractmethod
    def render_file(self, src: Path, dst: Path, params: StereoParams) -> RenderResult:
        """Render the side-by-side video of ``src`` (a local video file) into ``dst`` (an mp4)."""
