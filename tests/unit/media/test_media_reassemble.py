"""reassemble(): segments joined by stream copy (or re-encoded), the source's audio muxed once."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from storyflow_media.chunk import chunk
from storyflow_media.errors import MediaError, NotAVideo
from storyflow_media.reassemble import reassemble
from storyflow_media.synth import make_clip

from .conftest import Clips
from .media_helpers import (
    assert_same_audio_length,
    delayed_video,
    frame_times,
    stream_kinds,
    top_level_boxes,
)

AUDIO_TOLERANCE = 0.050  # seconds


def _segments(source: Path, out: Path, seconds: float) -> list[Path]:
    return [segment.path for segment in chunk(source, out, seconds).segments]


def test_round_trip_keeps_every_frame_and_the_audio(clips: Clips, tmp_path: Path) -> None:
    # Given the 2 s segments of a 6 s clip with audio
    segments = _segments(clips.gop1, tmp_path / "segments", 2.0)
    # When they are reassembled with the source's audio
    final = tmp_path / "final.mp4"
    result = reassemble(segments, final, audio_source=clips.gop1)
    # Then the video is stream-copied, frame for frame, at the source's times
    assert (result.video, result.audio, result.frames, result.seconds) == ("copy", "copy", 144, 6.0)
    assert frame_times(final) == frame_times(clips.gop1)
    # And the audio, muxed once, lasts as long as the source's
    assert_same_audio_length(final, clips.gop1)
    assert result.audio_seconds is not None and abs(result.audio_seconds - 6.0) <= AUDIO_TOLERANCE
    # And the file starts with its index (faststart), one video and one audio stream
    assert top_level_boxes(final)[:2] == ["ftyp", "moov"]
    assert stream_kinds(final) == ["video", "audio"]


def test_side_by_side_segments_are_joined_without_reencoding(clips: Clips, tmp_path: Path) -> None:
    # Given three 2x-wide (640x240) 1 s segments from the same encoder settings, as the stereo engine writes
    segments = [
        make_clip(tmp_path / f"{i:05d}.mp4", seconds=1, width=640, height=240, audio=False) for i in range(3)
    ]
    # When they are reassembled with the 320x240 source's audio
    final = tmp_path / "final.mp4"
    result = reassemble(segments, final, audio_source=clips.gop1)
    # Then the frames are copied in order into one 640x240 stream of 72 frames, with the audio
    assert (result.video, result.width, result.height, result.frames) == ("copy", 640, 240, 72)
    times = frame_times(final)
    assert times == [Fraction(i, 24) for i in range(72)]
    assert_same_audio_length(final, clips.gop1)


def test_segments_with_different_codec_parameters_are_reencoded(clips: Clips, tmp_path: Path) -> None:
    # Given 320x240 segments (x264 veryfast, B-frames) followed by a 640x480 one (x264 ultrafast)
    segments = _segments(clips.gop1, tmp_path / "s", 3.0)
    segments.append(make_clip(tmp_path / "odd-one.mp4", seconds=2, width=640, height=480, preset="ultrafast"))
    # When they are reassembled
    final = tmp_path / "final.mp4"
    result = reassemble(segments, final, audio_source=clips.gop1)
    # Then the video falls back to one libx264 encode at the first segment's size, every frame in order
    assert (result.video, result.width, result.height) == ("reencode", 320, 240)
    times = frame_times(final)
    assert len(times) == result.frames == 144 + 48
    assert times == sorted(times)
    assert abs(float(times[-1]) - (8 - 1 / 24)) < 1e-3
    assert_same_audio_length(final, clips.gop1)


def test_source_without_audio_gives_video_only(clips: Clips, tmp_path: Path) -> None:
    # Given segments of a silent clip, When reassembled with it as the audio source
    final = tmp_path / "final.mp4"
    result = reassemble(_segments(clips.silent, tmp_path / "s", 2.0), final, audio_source=clips.silent)
    # Then the output has no audio stream
    assert result.audio is None and result.audio_seconds is None
    assert stream_kinds(final) == ["video"]
    assert len(frame_times(final)) == 144


def test_audio_that_does_not_fit_mp4_is_encoded_to_aac(clips: Clips, tmp_path: Path) -> None:
    # Given a source whose audio is PCM (Matroska)
    final = tmp_path / "final.mp4"
    result = reassemble(_segments(clips.pcm, tmp_path / "s", 2.0), final, audio_source=clips.pcm)
    # Then the audio is encoded to AAC once, within 50 ms of the source's length
    assert result.audio == "aac"
    with av.open(str(final)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert_same_audio_length(final, clips.pcm)


def test_variable_frame_rate_round_trip_keeps_frame_times(clips: Clips, tmp_path: Path) -> None:
    # Given the (re-encoded) segments of a VFR clip and their manifest start times
    chunked = chunk(clips.vfr, tmp_path / "s", 2.0).segments
    # When they are reassembled at those start times
    final = tmp_path / "final.mp4"
    result = reassemble(
        [s.path for s in chunked], final, audio_source=clips.vfr, starts=[s.start for s in chunked]
    )
    # Then the joined video has the source's frame times and the audio its length
    source = frame_times(clips.vfr)
    joined = frame_times(final)
    assert result.frames == len(joined) == len(source)
    assert max(abs(float(a - b)) for a, b in zip(joined, source, strict=True)) < 1e-3
    assert_same_audio_length(final, clips.vfr)


def test_a_broken_segment_is_named(clips: Clips, tmp_path: Path) -> None:
    # Given a segment list where one file is not a video
    bad = tmp_path / "00001.mp4"
    bad.write_text("oops")
    segments = [_segments(clips.gop1, tmp_path / "s", 2.0)[0], bad]
    # Then reassembly refuses it by name
    with pytest.raises(NotAVideo, match=r"not a video: 00001\.mp4: "):
        reassemble(segments, tmp_path / "final.mp4", audio_source=clips.gop1)


def test_no_segments_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no segments"):
        reassemble([], tmp_path / "final.mp4")


def test_an_index_that_outgrows_its_reserved_space_falls_back_to_faststart(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the space reserved at the start of the file for the MP4 index is (wrongly) too small
    from storyflow_media import reassemble as module

    monkeypatch.setattr(module, "_moov_reserve", lambda video, audio: None if video is None else 1000)
    # When segments are reassembled
    final = tmp_path / "final.mp4"
    result = reassemble(_segments(clips.gop1, tmp_path / "s", 2.0), final, audio_source=clips.gop1)
    # Then the file is written again with a faststart pass: complete, index first
    assert "reserved index space was too small" in caplog.text
    assert result.frames == len(frame_times(final)) == 144
    assert top_level_boxes(final)[:2] == ["ftyp", "moov"]


@pytest.mark.parametrize("source", ["gop1", "vfr"], ids=["stream-copy", "vfr-re-encoded"])
def test_the_audio_copy_of_chunk_gives_the_same_file_as_the_source(
    clips: Clips, tmp_path: Path, source: str
) -> None:
    # Given a clip chunked with an audio copy
    clip = getattr(clips, source)
    chunked = chunk(clip, tmp_path / "s", 2.0, audio_path=tmp_path / "audio.m4a")
    assert chunked.audio.copy is not None
    paths, starts = [s.path for s in chunked.segments], [s.start for s in chunked.segments]
    # When the segments are reassembled with the audio of the copy, and with that of the source
    from_copy = reassemble(paths, tmp_path / "copy.mp4", audio_source=chunked.audio.copy, starts=starts)
    from_source = reassemble(paths, tmp_path / "source.mp4", audio_source=clip, starts=starts)
    # Then both give the same file, byte for byte: every frame, the audio within 50 ms of the source's
    assert (tmp_path / "copy.mp4").read_bytes() == (tmp_path / "source.mp4").read_bytes()
    assert from_copy == from_source
    assert from_copy.audio == "copy" and from_copy.frames == len(frame_times(clip))
    assert_same_audio_length(tmp_path / "copy.mp4", clip)
    assert top_level_boxes(tmp_path / "copy.mp4")[:2] == ["ftyp", "moov"]


def test_the_audio_copy_keeps_sync_when_the_video_starts_late(tmp_path: Path) -> None:
    # Given a source whose video starts 0.5 s after its audio, chunked with an audio copy
    source = delayed_video(make_clip(tmp_path / "clip.mp4", preset="ultrafast"), tmp_path / "late.mp4", 0.5)
    chunked = chunk(source, tmp_path / "s", 2.0, audio_path=tmp_path / "audio.m4a")
    assert chunked.audio.copy is not None
    paths, starts = [s.path for s in chunked.segments], [s.start for s in chunked.segments]
    # When reassembled from the copy and from the source
    reassemble(paths, tmp_path / "copy.mp4", audio_source=chunked.audio.copy, starts=starts)
    reassemble(paths, tmp_path / "source.mp4", audio_source=source, starts=starts)
    # Then both place the audio the same way against the video (the same file)
    assert (tmp_path / "copy.mp4").read_bytes() == (tmp_path / "source.mp4").read_bytes()


def test_segments_surveyed_beyond_those_kept_open_are_opened_again(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the survey keeps only the first segment open for the copy
    from storyflow_media import reassemble as module

    monkeypatch.setattr(module, "KEEP_OPEN", 1)
    segments = _segments(clips.gop1, tmp_path / "s", 2.0)
    # When the segments are reassembled
    result = reassemble(segments, tmp_path / "final.mp4", audio_source=clips.gop1)
    # Then every frame is there, in order, at the source's times
    assert result.frames == 144
    assert frame_times(tmp_path / "final.mp4") == frame_times(clips.gop1)
