"""Audio files: a 16-bit PCM WAV (stdlib) and an AAC .m4a (PyAV's bundled FFmpeg)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

AAC_BITRATE = 96_000
FRAME = 1024  # AAC frame size in samples


def pcm16(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")


def write_wav(path: Path, audio: npt.NDArray[np.float32], sample_rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm16(audio).tobytes())


def write_m4a(path: Path, audio: npt.NDArray[np.float32], sample_rate: int) -> None:
    import av

    with av.open(str(path), "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        stream.bit_rate = AAC_BITRATE
        samples = np.clip(audio, -1.0, 1.0).astype(np.float32)
        for offset in range(0, len(samples), FRAME):
            chunk = samples[offset : offset + FRAME]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = offset
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def read_wav(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    with wave.open(str(path), "rb") as source:
        rate = source.getframerate()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    return (data.astype(np.float32) / 32768.0).astype(np.float32), rate
