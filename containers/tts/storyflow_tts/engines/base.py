"""The engine interface: ``load()`` once (in the background), then ``synthesize()`` per invocation.

An engine answers the audio (mono float32 in [-1, 1]) and one timing per spoken word, in seconds from the
start of the audio. Timings need not be tidy (the outputs step clamps them monotonic and inside the
audio), but they must already include each chunk's offset: an engine that synthesises in chunks adds
the audio length of the chunks before.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from storyflow_tts.params import TtsParams


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds
    end: float  # seconds


@dataclass
class Speech:
    audio: npt.NDArray[np.float32]
    sample_rate: int
    words: list[Word] = field(default_factory=list)
    chunks: int = 1  # how many pieces the engine synthesised (kokoro: one per sentence or 510 phonemes)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate if self.sample_rate else 0.0


class Engine(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def load(self) -> None:
        """Make the engine ready (weights, voices, G2P). Raises ``ModelNotAvailable`` when it cannot."""

    @abc.abstractmethod
    def synthesize(self, text: str, params: TtsParams) -> Speech:
        """Speak ``text``; raises ``EngineFailed`` (or a subclass) when the engine fails."""
