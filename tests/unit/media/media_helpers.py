"""What the media tests share: measurements they assert on (decoded frame times, audio length, MP4 box order),
remuxes, and running `storyflow-media` as the container does."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import boto3


def frame_times(path: Path) -> list[Fraction]:
    """Presentation time of every decoded video frame, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * stream.time_base for frame in container.decode(stream)]


def audio_seconds(path: Path) -> float | None:
    """Decoded audio length (samples / rate) of the first audio stream, or None without audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def assert_same_audio_length(final: Path, source: Path, tolerance: float = 0.050) -> None:
    """The final's decoded audio lasts as long as the source's, within `tolerance` seconds."""
    final_audio, source_audio = audio_seconds(final), audio_seconds(source)
    assert final_audio is not None and source_audio is not None, (final_audio, source_audio)
    assert abs(final_audio - source_audio) <= tolerance, (final_audio, source_audio)


def stream_kinds(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.type for stream in container.streams]


def first_packet_is_keyframe(path: Path) -> bool:
    with av.open(str(path)) as container:
        packet = next(container.demux(video=0))
        return packet.is_keyframe


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode("latin-1"))
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        offset += size if size else len(data)
    return boxes


def delayed_video(source: Path, dest: Path, seconds: float) -> Path:
    """A remux of `source` whose video packets are `seconds` later (its audio unchanged)."""
    with av.open(str(source)) as src, av.open(str(dest), mode="w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                assert packet.pts is not None and packet.time_base is not None
                shift = round(Fraction(seconds) / packet.time_base)
                packet.pts += shift
                packet.dts += shift
            packet.stream = streams[packet.stream_index]
            out.mux(packet)
    return dest


def media(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m storyflow_media ARGS` in a fresh process with `env`, as the container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "storyflow_media", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_json(bucket: str, key: str) -> Any:
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
