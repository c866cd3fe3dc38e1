"""Synthetic clips for tests and benchmarks: a moving pattern plus a sine tone, fully controlled; and a
story scene's narration (`make_tone`, a 16-bit mono WAV) with its word timings (`make_words`, words.json as
the tts container writes it).

`make_clip` sets the GOP exactly (keyint = min-keyint, no scene cuts) so keyframe spacing is known,
and can write variable-frame-rate video, odd sizes (yuv444p: libx264 refuses odd yuv420p sizes), no
audio, or an audio codec that does not fit MP4 (`audio_codec="pcm_s16le"` into .mkv/.mov).
"""

from __future__ import annotations

import json
import math
import wave
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.video.frame import VideoFrame

if TYPE_CHECKING:
    from numpy.typing import NDArray

SAMPLE_RATE = 48_000
TONE_HZ = 440.0


def make_clip(
    path: Path,
    *,
    seconds: float = 6.0,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    gop_seconds: float = 1.0,
    audio: bool = True,
    audio_codec: str = "aac",
    vfr: bool = False,
    preset: str = "veryfast",
    grain: int = 0,
    x264_options: Mapping[str, str] | None = None,
) -> Path:
    """Write an H.264 clip with a keyframe every `gop_seconds`; return `path`.

    With `vfr`, frame durations alternate between 0.5 and 1.5 frame periods (same mean rate).
    `grain` (0-64) adds film-grain-like noise that changes every frame, for a camera-like bitrate.
    `x264_options` are added to the encoder's (e.g. {"x264-params": "open-gop=1"}).
    """
    odd = width % 2 or height % 2
    pix_fmt = "yuv444p" if odd else "yuv420p"
    frames = round(seconds * fps)
    gop = max(1, round(gop_seconds * fps))
    with av.open(str(path), mode="w") as out:
        video = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": preset,
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                **(x264_options or {}),
            },
        )
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        tb = Fraction(1, fps * 2) if vfr else Fraction(1, fps)
        video.codec_context.time_base = tb
        tone = _Tone(out, audio_codec, round(frames / fps * SAMPLE_RATE)) if audio else None
        pattern = _pattern(width, height)
        noise = _grain(width, height, grain)
        pts = 0
        for i in range(frames):
            frame = _frame(pattern if noise is None else pattern + noise[i % len(noise)], i, pix_fmt)
            frame.pts, frame.time_base = pts, tb
            pts += (1 if i % 2 == 0 else 3) if vfr else 1
            for packet in video.encode(frame):
                out.mux(packet)
            if tone is not None:
                tone.write_until(pts * tb)  # interleave the audio with the video, like a camera does
        for packet in video.encode(None):
            out.mux(packet)
        if tone is not None:
            tone.finish()
    return path


def _pattern(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]  # numpy types mgrid[...] as Any
    pattern: NDArray[np.uint8] = ((x * 3 + y * 2) % 256).astype(np.uint8)
    return pattern


def _grain(width: int, height: int, amplitude: int) -> np.ndarray | None:
    """A few frames of zero-mean noise (uint8, wrapping): cycled, they defeat motion prediction."""
    if amplitude <= 0:
        return None
    rng = np.random.default_rng(0)
    return rng.integers(-amplitude, amplitude + 1, size=(7, height, width)).astype(np.uint8)


def _frame(pattern: np.ndarray, i: int, pix_fmt: str) -> VideoFrame:
    luma = np.roll(pattern, i * 4, axis=1)
    height, width = luma.shape
    if pix_fmt == "yuv420p":
        chroma = np.full((height // 2, width), 128 + (i % 64), np.uint8)  # U and V planes, stacked
        return VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")
    planes = np.stack([luma, np.full_like(luma, 100), np.full_like(luma, 150 + i % 64)])
    return VideoFrame.from_ndarray(planes, format="yuv444p")


class _Tone:
    """A stereo sine tone of `total` samples, encoded in 1024-sample frames."""

    def __init__(self, out: av.container.OutputContainer, codec: str, total: int) -> None:
        self.out, self.total, self.done = out, total, 0
        stream = out.add_stream(codec, rate=SAMPLE_RATE, layout="stereo")
        if not isinstance(stream, AudioStream):
            raise ValueError(f"{codec} is not an audio codec")
        self.stream = stream

    def write_until(self, seconds: Fraction) -> None:
        while self.done < self.total and self.done < seconds * SAMPLE_RATE:
            n = min(1024, self.total - self.done)
            t = np.arange(self.done, self.done + n) / SAMPLE_RATE
            tone = (0.25 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
            frame = AudioFrame.from_ndarray(np.vstack([tone, tone]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, self.done, Fraction(1, SAMPLE_RATE)
            self.done += n
            for packet in self.stream.encode(frame):
                self.out.mux(packet)

    def finish(self) -> None:
        self.write_until(Fraction(self.total, SAMPLE_RATE))
        for packet in self.stream.encode(None):
            self.out.mux(packet)


def make_tone(
    path: Path, seconds: float, hz: float = 330.0, rate: int = 22_050, amplitude: float = 0.3
) -> Path:
    """A mono 16-bit PCM WAV of a sine tone: a stand-in narration of an exact length."""
    t = np.arange(round(seconds * rate)) / rate
    samples = (np.sin(2 * math.pi * hz * t) * amplitude * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def make_words(path: Path, text: str, seconds: float) -> Path:
    """words.json for `text` spread evenly over `seconds` (the tts container's shape, engine "espeak")."""
    tokens = text.split()
    step = seconds * 1000 / len(tokens)
    document = {
        "engine": "espeak",
        "duration_ms": round(seconds * 1000),
        "words": [
            {"text": w, "start_ms": round(i * step), "end_ms": round((i + 1) * step)}
            for i, w in enumerate(tokens)
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
