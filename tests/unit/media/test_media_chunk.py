"""chunk(): keyframe-aligned stream-copy split, and the libx264 re-encode when keyframes are sparse."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from storyflow_media.audio import SourceAudio
from storyflow_media.chunk import chunk
from storyflow_media.errors import NotAVideo
from storyflow_media.synth import make_clip

from .conftest import Clips
from .media_helpers import delayed_video, first_packet_is_keyframe, frame_times, stream_kinds


def test_dense_keyframes_are_split_by_stream_copy_at_the_target(clips: Clips, tmp_path: Path) -> None:
    # Given a 6 s clip with a keyframe every second and an audio track
    # When it is chunked to 2 s
    result = chunk(clips.gop1, tmp_path, 2.0)
    # Then three 2 s video-only segments of 48 frames are stream-copied, each opening on a keyframe
    assert not result.reencoded
    assert [(s.index, s.start, s.duration, s.frames) for s in result.segments] == [
        (0, 0.0, 2.0, 48),
        (1, 2.0, 2.0, 48),
        (2, 4.0, 2.0, 48),
    ]
    for segment in result.segments:
        assert segment.path == tmp_path / f"{segment.index:05d}.mp4"
        assert stream_kinds(segment.path) == ["video"]
        assert first_packet_is_keyframe(segment.path)
        assert len(frame_times(segment.path)) == segment.frames
    # And every source frame is in exactly one segment
    assert result.frames == len(frame_times(clips.gop1)) == 144


def test_each_cut_is_the_keyframe_closest_to_the_target(clips: Clips, tmp_path: Path) -> None:
    # Given keyframes every second, When chunked to 2.6 s (3 s is closer than 2 s)
    result = chunk(clips.gop1, tmp_path, 2.6)
    # Then the segments are 3 s long, still by stream copy
    assert not result.reencoded
    assert [(s.start, s.duration, s.frames) for s in result.segments] == [(0.0, 3.0, 72), (3.0, 3.0, 72)]


def test_sparse_keyframes_are_reencoded_with_a_keyframe_every_target(clips: Clips, tmp_path: Path) -> None:
    # Given a 6 s clip whose only keyframe is the first one (keyframes > 2x the target apart)
    # When it is chunked to 2 s
    result = chunk(clips.gop10, tmp_path, 2.0)
    # Then it is re-encoded with libx264 and cut at the forced keyframes, size and rate kept
    assert result.reencoded
    assert "more than 2x" in result.reason
    assert [(s.start, s.duration, s.frames) for s in result.segments] == [
        (0.0, 2.0, 48),
        (2.0, 2.0, 48),
        (4.0, 2.0, 48),
    ]
    for segment in result.segments:
        assert first_packet_is_keyframe(segment.path)
        with av.open(str(segment.path)) as container:
            (stream,) = container.streams
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 320, 240)
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert stream.average_rate == 24
    assert not list(tmp_path.glob("*.tmp.mp4"))  # the whole-file re-encode is not left behind


def test_keyframes_exactly_twice_the_target_apart_are_still_copied(clips: Clips, tmp_path: Path) -> None:
    # Given keyframes 1 s apart, When chunked to 0.5 s (the gap is 2x the target, not more)
    result = chunk(clips.gop1, tmp_path, 0.5)
    # Then the stream is copied, one keyframe interval per segment
    assert not result.reencoded
    assert [s.frames for s in result.segments] == [24] * 6


def test_odd_dimensions_are_padded_by_one_pixel_repeating_the_edge(clips: Clips, tmp_path: Path) -> None:
    # Given an 853x480 clip (yuv444p) with sparse keyframes, which libx264 yuv420p cannot take as is
    result = chunk(clips.odd, tmp_path, 1.0)
    # Then the segments are 854x480: the extra column repeats the source's last column
    assert result.reencoded
    assert [s.frames for s in result.segments] == [24, 24, 24]
    with av.open(str(clips.odd)) as container:
        source = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    with av.open(str(result.segments[0].path)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (854, 480)
        padded = frame.to_ndarray(format="rgb24").astype(int)
    assert abs(padded[:, 853] - padded[:, 852]).mean() < 3  # a repeated column, not black
    assert abs(padded[:, :853] - source).mean() < 3  # every source pixel kept in place


def test_variable_frame_rate_timestamps_survive_the_reencode(clips: Clips, tmp_path: Path) -> None:
    # Given a VFR clip (frames alternately 1/48 s and 3/48 s long) with a single keyframe
    result = chunk(clips.vfr, tmp_path, 2.0)
    # Then it is re-encoded into ~2 s segments whose frame times, laid end to end, are the source's
    assert result.reencoded
    assert all(abs(s.duration - 2.0) <= 1 / 12 for s in result.segments[:-1])
    source = frame_times(clips.vfr)
    joined = [s.start + float(t) for s in result.segments for t in frame_times(s.path)]
    assert len(joined) == len(source) == result.frames == 144
    assert max(abs(a - float(b)) for a, b in zip(joined, source, strict=True)) < 1e-3


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file (0 bytes)"), (b"this is not a video\n" * 20, "unrecognised format")],
    ids=["zero-bytes", "text"],
)
def test_not_a_video_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    # Given a file named .mp4 that is empty or text
    source = tmp_path / "source.mp4"
    source.write_bytes(content)
    # When it is chunked, Then NotAVideo says why, and nothing is written
    with pytest.raises(NotAVideo, match=re.escape(f"not a video: source.mp4: {reason}")):
        chunk(source, tmp_path / "out", 10.0)
    assert not (tmp_path / "out").exists()


def test_audio_only_file_is_not_a_video(tmp_path: Path) -> None:
    # Given an M4A file with only an audio track
    path = tmp_path / "tone.mp4"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    # Then it is refused for having no video stream
    with pytest.raises(NotAVideo, match="no video stream"):
        chunk(path, tmp_path / "out", 10.0)


def with_garbage_first_video_sample(clip: Path, dest: Path) -> Path:
    """A copy of `clip` whose first video sample is overwritten (its index still describes a video)."""
    with av.open(str(clip)) as container:
        first = next(container.demux(video=0))
        offset, size = first.pos, first.size
    data = bytearray(clip.read_bytes())
    data[offset + 700 : offset + size] = b"\xff" * (size - 700)
    dest.write_bytes(data)
    return dest


def test_garbage_behind_a_valid_mp4_index_is_not_a_video(clips: Clips, tmp_path: Path) -> None:
    # Given a real MP4 whose first video sample was overwritten (the index still describes a video)
    source = with_garbage_first_video_sample(clips.gop1, tmp_path / "source.mp4")
    # When it is chunked, Then it is refused because the video does not decode
    with pytest.raises(NotAVideo, match="video does not decode"):
        chunk(source, tmp_path / "out", 2.0)


def test_open_gops_are_reencoded_rather_than_cut(tmp_path: Path) -> None:
    # Given a clip whose keyframes are open-GOP I-frames (frames after them in decode order show earlier)
    source = make_clip(
        tmp_path / "open-gop.mp4", seconds=3, audio=False, x264_options={"x264-params": "open-gop=1"}
    )
    # When it is chunked, Then it is re-encoded (a stream-copy cut would leave undecodable frames)
    result = chunk(source, tmp_path / "out", 1.0)
    assert result.reencoded and "open GOP at 1.00s" in result.reason
    assert [s.frames for s in result.segments] == [24, 24, 24]
    for segment in result.segments:
        assert len(frame_times(segment.path)) == 24


# The audio copy: made in the same pass over the source, for reassemble.


def audio_packets(path: Path) -> list[tuple[int | None, int | None, int, bytes]]:
    """(pts, dts, duration, data) of every packet of the first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts, p.dts, p.duration, bytes(p)) for p in container.demux(stream) if p.pts is not None]


@pytest.mark.parametrize("source", ["gop1", "gop10"], ids=["stream-copy", "re-encode"])
def test_the_audio_is_copied_packet_for_packet_beside_the_segments(
    clips: Clips, tmp_path: Path, source: str
) -> None:
    # Given a clip with AAC audio, split by stream copy (gop1) or re-encoded first (gop10)
    clip = getattr(clips, source)
    # When it is chunked with an audio path
    result = chunk(clip, tmp_path / "segments", 2.0, audio_path=tmp_path / "audio.m4a")
    # Then the audio is stream-copied there, packet for packet (the video starts at 0: no shift)
    assert result.audio == SourceAudio(copy=tmp_path / "audio.m4a", present=True)
    assert stream_kinds(tmp_path / "audio.m4a") == ["audio"]
    assert audio_packets(tmp_path / "audio.m4a") == audio_packets(clip)
    # And the segments are the same as without it: video only, every frame
    assert result.reencoded is (source == "gop10")
    assert all(stream_kinds(s.path) == ["video"] for s in result.segments)
    assert result.frames == 144


def test_audio_that_does_not_fit_mp4_or_no_audio_is_not_copied(clips: Clips, tmp_path: Path) -> None:
    # Given a clip with PCM audio and a clip without audio, When both are chunked with an audio path
    pcm = chunk(clips.pcm, tmp_path / "pcm", 2.0, audio_path=tmp_path / "pcm.m4a")
    silent = chunk(clips.silent, tmp_path / "silent", 2.0, audio_path=tmp_path / "silent.m4a")
    # Then neither writes a copy: PCM audio stays in the source, and the silent source has none
    assert pcm.audio == SourceAudio(copy=None, present=True)
    assert silent.audio == SourceAudio(copy=None, present=False)
    assert not (tmp_path / "pcm.m4a").exists() and not (tmp_path / "silent.m4a").exists()
    # And without an audio path nothing is copied or looked at
    assert chunk(clips.gop1, tmp_path / "plain", 2.0).audio == SourceAudio()


def test_the_audio_copy_keeps_sync_with_a_video_that_starts_late(tmp_path: Path) -> None:
    # Given a source whose video starts 0.5 s after its audio
    source = delayed_video(make_clip(tmp_path / "clip.mp4", preset="ultrafast"), tmp_path / "late.mp4", 0.5)
    # When it is chunked with an audio path
    result = chunk(source, tmp_path / "segments", 2.0, audio_path=tmp_path / "audio.m4a")
    # Then the copy's audio is shifted by 0.5 s: its time 0 is the video's first frame
    assert result.audio.copy is not None
    shifted, original = audio_packets(result.audio.copy), audio_packets(source)
    assert len(shifted) == len(original)
    half_second = 24_000  # audio ticks at 48 kHz
    assert [(pts, data) for pts, _, _, data in shifted] == [
        (None if pts is None else pts - half_second, data) for pts, _, _, data in original
    ]


def test_a_failed_chunk_leaves_no_audio_copy(clips: Clips, tmp_path: Path) -> None:
    # Given a real MP4 whose first video sample is garbage (found once the pass has begun)
    source = with_garbage_first_video_sample(clips.gop1, tmp_path / "source.mp4")
    # When it is chunked with an audio path, Then it is refused and no audio copy is left behind
    with pytest.raises(NotAVideo):
        chunk(source, tmp_path / "out", 2.0, audio_path=tmp_path / "out" / "audio.m4a")
    assert not (tmp_path / "out" / "audio.m4a").exists()
