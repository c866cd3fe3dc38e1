"""Media edge cases on real generated media: a truncated upload, display rotation, Matroska B-frames without
decode timestamps, and error messages that never show the container's scratch paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import boto3
import pytest
from storyflow_media import cli, steps
from storyflow_media.chunk import chunk
from storyflow_media.errors import TruncatedVideo
from storyflow_media.synth import make_clip

from .media_helpers import frame_times, media

JOB = "st-20261123-edge0000cafe"
SOURCE_KEY = f"input/{JOB}/source.mp4"


def remux(source: Path, dest: Path, *, rotation: int | None = None, faststart: bool = False) -> Path:
    """A stream copy of `source` (optionally with a display matrix rotating it, or its index first)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(source)) as src, av.open(str(dest), mode="w", options=options) as out:
        streams = {}
        for stream in src.streams:
            streams[stream.index] = out.add_stream_from_template(stream)
            if rotation is not None and stream.type == "video":
                streams[stream.index].set_display_rotation(rotation)
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream_index]
            out.mux(packet)
    return dest


def rotation_of(path: Path) -> int:
    """The display rotation in degrees counter-clockwise, 0..359."""
    with av.open(str(path)) as container:
        return next(container.decode(container.streams.video[0])).rotation % 360


@pytest.fixture(scope="module")
def truncated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s, 144-frame clip with its index first (faststart), cut to its first 30 %: an upload that
    stopped early. Its index still describes every frame."""
    root = tmp_path_factory.mktemp("truncated")
    whole = remux(make_clip(root / "whole.mp4"), root / "faststart.mp4", faststart=True)
    data = whole.read_bytes()
    cut = root / "source.mp4"
    cut.write_bytes(data[: len(data) * 3 // 10])
    return cut


def test_a_truncated_source_fails_saying_how_much_is_missing(truncated: Path, tmp_path: Path) -> None:
    # Given a source whose data ends before its index says (today: 40 of 144 frames, and success)
    # When it is chunked
    with pytest.raises(TruncatedVideo) as caught:
        chunk(truncated, tmp_path / "segments", 2.0, audio_path=tmp_path / "audio.m4a")
    # Then a typed error says how many bytes and frames are missing, and no segment is left
    error = caught.value
    assert error.size == truncated.stat().st_size < error.expected
    assert 0 < error.frames < error.total_frames == 144
    assert f"only {error.frames} of 144 video frames are present" in str(error)
    assert f"({error.expected - error.size} bytes" in str(error)
    assert not list((tmp_path / "segments").glob("*.mp4"))


def test_a_truncated_upload_fails_the_chunk_step_with_error_json(
    truncated: Path, cli_env: dict[str, str], buckets: tuple[str, str], tmp_path: Path
) -> None:
    # Given the truncated source uploaded, RESULT_BUCKET set as on the task definition
    inb, outb = buckets
    s3 = boto3.client("s3")
    s3.upload_file(str(truncated), inb, SOURCE_KEY)
    workdir = tmp_path / "scratch"
    workdir.mkdir()
    # When chunk runs
    run = media(
        {**cli_env, "RESULT_BUCKET": outb},
        "chunk",
        "--job-id",
        JOB,
        "--bucket",
        inb,
        "--workdir",
        str(workdir),
    )
    # Then it exits 2, error.json names TruncatedVideo and the S3 object, and no scratch path shows anywhere
    assert run.returncode == 2, run.stderr
    document: dict[str, Any] = json.loads(
        s3.get_object(Bucket=outb, Key=f"jobs/{JOB}/steps/chunk/error.json")["Body"].read()
    )
    assert document["error"] == "TruncatedVideo"
    assert document["message"].startswith(f"s3://{inb}/{SOURCE_KEY}: truncated: ")
    assert "of 144 video frames are present" in document["message"]
    assert str(workdir) not in document["message"] and str(workdir) not in run.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=inb, Prefix="segments/")


def test_error_messages_never_show_the_scratch_directory(
    monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str], buckets: tuple[str, str], capsys: Any
) -> None:
    # Given a failure whose message names a file in the command's scratch directory (as FFmpeg's do)
    inb, outb = buckets
    monkeypatch.setenv("RESULT_BUCKET", outb)
    boto3.client("s3").put_object(Bucket=inb, Key=SOURCE_KEY, Body=b"x")
    seen: list[Path] = []

    def failing_chunk(source: Path, out_dir: Path, *args: Any, **kwargs: Any) -> Any:
        seen.append(out_dir.parent)
        raise av.error.InvalidDataError(1094995529, "Invalid data", str(out_dir / "00000.mp4"))

    monkeypatch.setattr(steps, "chunk", failing_chunk)
    # When the command fails
    assert cli.main(["chunk", "--job-id", JOB, "--bucket", inb]) == 1
    # Then neither the stderr line nor error.json shows the scratch directory; the file is named within it
    (work,) = seen
    line = capsys.readouterr().err.strip().splitlines()[-1]
    document = json.loads(
        boto3.client("s3").get_object(Bucket=outb, Key=f"jobs/{JOB}/steps/chunk/error.json")["Body"].read()
    )
    for text in (line, document["message"]):
        assert str(work) not in text and "storyflow-media-" not in text, text
        assert "segments/00000.mp4" in text, text


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_rotation_survives_chunking_by_stream_copy(tmp_path: Path, rotation: int) -> None:
    # Given a clip with a display matrix (a phone's portrait video) and a keyframe every second
    source = remux(
        make_clip(tmp_path / "plain.mp4", seconds=4, audio=False), tmp_path / "rotated.mp4", rotation=rotation
    )
    assert rotation_of(source) == rotation % 360
    # When it is chunked
    result = chunk(source, tmp_path / "segments", 2.0)
    # Then by stream copy, and every segment keeps the rotation (the stereo stage turns its frames upright)
    assert not result.reencoded
    assert len(result.segments) == 2
    assert [rotation_of(seg.path) for seg in result.segments] == [rotation % 360] * 2


def test_display_rotation_survives_the_reencode_path(tmp_path: Path) -> None:
    # Given a rotated clip whose keyframes are too sparse to cut (one every 10 s)
    plain = make_clip(tmp_path / "plain.mp4", seconds=6, audio=False, gop_seconds=10, preset="ultrafast")
    source = remux(plain, tmp_path / "rotated.mp4", rotation=90)
    # When it is chunked (re-encoded with keyframes)
    result = chunk(source, tmp_path / "segments", 2.0)
    # Then the re-encoded segments keep the display matrix too
    assert result.reencoded
    assert [rotation_of(seg.path) for seg in result.segments] == [90] * len(result.segments)


def test_matroska_h264_with_b_frames_and_no_decode_timestamps_converts(tmp_path: Path) -> None:
    # Given H.264 with B-frames in Matroska: its packets carry no DTS (the first ones never do)
    source = make_clip(tmp_path / "bframes.mkv", seconds=6)
    with av.open(str(source)) as container:
        first = next(container.demux(video=0))
        assert first.dts is None
    # When it is chunked
    result = chunk(source, tmp_path / "segments", 2.0, audio_path=tmp_path / "audio.m4a")
    # Then every frame is in a segment, at its time, in order
    assert result.frames == 144
    times = [t for seg in result.segments for t in frame_times(seg.path)]
    assert len(times) == 144
    assert result.audio.present
