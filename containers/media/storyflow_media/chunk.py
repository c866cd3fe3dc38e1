"""Split a video into ~N-second segment files at keyframes (pure media; no S3).

Stream copy (video only) is the normal path: one demux pass, packets buffered a GOP at a time, each
GOP placed in whichever segment leaves it closest to the target length. When the source's keyframes
are further apart than twice the target (or a cut cannot stand alone: an open GOP, a first frame
that is not a keyframe, a codec MP4 cannot hold), the source is first re-encoded once with libx264
and a keyframe forced at every target boundary, then split the same way.

Asked to, the pass that reads the source also copies its audio packets into an audio-only file
(`storyflow_media.audio`), so that reassemble does not have to read the source again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from storyflow_media.audio import AudioCopy, SourceAudio
from storyflow_media.errors import MediaError, NotAVideo
from storyflow_media.probe import check_bitstream, open_video

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: Video codecs that stream-copy into MP4; anything else is re-encoded.
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
#: libx264 settings for the re-encode path: near-transparent, since inference reads these frames.
X264_OPTIONS = {"preset": "veryfast", "crf": "18"}
DEFAULT_RATE = Fraction(24)


@dataclass(frozen=True)
class Segment:
    index: int
    path: Path
    start: float  # seconds from the source's first video frame
    duration: float  # seconds
    frames: int


@dataclass(frozen=True)
class ChunkResult:
    segments: tuple[Segment, ...]
    reencoded: bool
    reason: str  # why the source was re-encoded ("" when it was stream-copied)
    audio: SourceAudio = field(default_factory=SourceAudio)  # the audio copy, when one was asked for

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)


class _NeedsReencode(Exception):
    """Control flow: the stream-copy split cannot be used; never escapes this module."""


def chunk(
    source: Path, out_dir: Path, segment_seconds: float = 10.0, *, audio_path: Path | None = None
) -> ChunkResult:
    """Write `out_dir/{i:05d}.mp4` (video only) and describe them; raises NotAVideo for bad input.

    With `audio_path`, the same pass over the source copies its audio there when the codec
    stream-copies into MP4 (`result.audio` says what it did; see `storyflow_media.audio`).
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be > 0, got {segment_seconds}")
    target = Fraction(segment_seconds).limit_denominator(1000)
    try:
        segments, audio = _split(source, out_dir, target, max_gap=2 * target, audio_path=audio_path)
        return ChunkResult(segments, reencoded=False, reason="", audio=audio)
    except _NeedsReencode as why:
        reason = str(why)
    for stale in out_dir.glob("[0-9][0-9][0-9][0-9][0-9].mp4"):
        stale.unlink()
    log.info("re-encoding %s: %s", source.name, reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    keyframed = out_dir / "keyframed.tmp.mp4"
    try:
        audio = reencode_with_keyframes(source, keyframed, target, audio_path=audio_path)
        segments, _ = _split(keyframed, out_dir, target, max_gap=None)
        return ChunkResult(segments, reencoded=True, reason=reason, audio=audio)
    except BaseException:
        if audio_path is not None:
            audio_path.unlink(missing_ok=True)
        raise
    finally:
        keyframed.unlink(missing_ok=True)


class _SegmentWriter:
    """One output segment: packets rebased so the segment starts at 0."""

    def __init__(self, path: Path, template: VideoStream, index: int, start: int) -> None:
        self.path, self.index, self.start, self.end, self.frames = path, index, start, start, 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w", format="mp4")
        self.stream = self.container.add_stream_from_template(template)

    def write(self, packets: list[Packet[VideoStream]], end: int) -> None:
        for packet in packets:
            pts = packet.pts
            assert pts is not None  # _split keeps no packet without a pts
            packet.pts = pts - self.start
            if packet.dts is not None:
                packet.dts -= self.start
            packet.stream = self.stream
            self.container.mux(packet)
        self.frames += len(packets)
        self.end = end

    def close(self, time_base: Fraction, origin: int) -> Segment:
        self.container.close()
        return Segment(
            index=self.index,
            path=self.path,
            start=round(float((self.start - origin) * time_base), 6),
            duration=round(float((self.end - self.start) * time_base), 6),
            frames=self.frames,
        )


class _Splitter:
    """Places whole GOPs into segments, cutting wherever a segment's length lands closest to target."""

    def __init__(
        self, stream: VideoStream, out_dir: Path, target: Fraction, max_gap: Fraction | None
    ) -> None:
        assert stream.time_base is not None
        self.stream, self.out_dir, self.tb = stream, out_dir, stream.time_base
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_RATE
        self.frame_ticks = 1 / (rate * self.tb)
        self.target, self.slack = target / self.tb, self.frame_ticks / 2  # in stream ticks
        self.max_gap = None if max_gap is None else max_gap / self.tb
        self.segments: list[Segment] = []
        self.writer: _SegmentWriter | None = None
        self.origin: int | None = None

    def add(self, gop: list[Packet[VideoStream]], end: int) -> None:
        """Write one GOP (keyframe first, decode order) that is shown until `end` (stream ticks)."""
        start = gop[0].pts
        assert start is not None
        at = float((start - (start if self.origin is None else self.origin)) * self.tb)
        if self.max_gap is not None and end - start > self.max_gap:
            gap = float((end - start) * self.tb)
            limit = float(self.max_gap * self.tb)
            raise _NeedsReencode(
                f"keyframes {gap:.2f}s apart at {at:.2f}s (more than 2x the target: {limit:g}s)"
            )
        if any(p.pts is not None and p.pts < start for p in gop):
            raise _NeedsReencode(f"open GOP at {at:.2f}s: its first frames need the previous GOP")
        if self.origin is None:
            self.origin = start
        if self.writer is not None:
            before, after = start - self.writer.start, end - self.writer.start
            if after > self.target + self.slack and self.target - before < after - self.target:
                self._close()  # cutting before this GOP lands closer to the target than after it
        if self.writer is None:
            index = len(self.segments)
            self.writer = _SegmentWriter(self.out_dir / f"{index:05d}.mp4", self.stream, index, start)
        self.writer.write(gop, end)
        if end - self.writer.start >= self.target - self.slack:
            self._close()

    def last_end(self, gop: list[Packet[VideoStream]]) -> int:
        """Where the stream's last GOP stops showing: its latest frame plus that frame's duration."""
        return max(p.pts + (p.duration or round(self.frame_ticks)) for p in gop if p.pts is not None)

    def finish(self) -> tuple[Segment, ...]:
        if self.writer is not None:
            self._close()
        return tuple(self.segments)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.container.close()

    def _close(self) -> None:
        assert self.writer is not None and self.origin is not None
        self.segments.append(self.writer.close(self.tb, self.origin))
        self.writer = None


def _split(
    source: Path, out_dir: Path, target: Fraction, *, max_gap: Fraction | None, audio_path: Path | None = None
) -> tuple[tuple[Segment, ...], SourceAudio]:
    """One demux pass, a GOP at a time (bounded memory); raises _NeedsReencode if copying cannot work.

    With `audio_path`, the pass also copies the audio there (see AudioCopy).
    """
    with open_video(source, decode=False) as (container, stream):
        codec = stream.codec_context.name
        if codec not in MP4_VIDEO_CODECS:
            raise _NeedsReencode(f"codec {codec} does not stream-copy into mp4")
        splitter = _Splitter(stream, out_dir, target, max_gap)
        audio = AudioCopy.start(container, stream, audio_path)
        audio_index = -1 if audio is None else audio.stream.index
        gop: list[Packet[VideoStream]] = []
        timestamps = _DecodeTimestamps(splitter.frame_ticks)

        def take(packet: Packet[VideoStream]) -> None:
            nonlocal gop
            assert packet.pts is not None
            if not gop:  # the very first packet
                check_bitstream(stream.codec_context, packet, source.name)
                if not packet.is_keyframe:
                    raise _NeedsReencode("the video does not start on a keyframe")
            if packet.is_keyframe and gop:
                splitter.add(gop, packet.pts)
                gop = []
            gop.append(packet)

        try:
            for demuxed in container.demux(stream if audio is None else (stream, audio.stream)):
                if demuxed.stream_index == audio_index and audio is not None:
                    audio.write(cast("Packet[AudioStream]", demuxed))
                    continue
                packet = cast("Packet[VideoStream]", demuxed)  # demux() reads no other stream
                if packet.pts is None:  # the demuxer's flush packet
                    continue
                for ready in timestamps.add(packet):
                    take(ready)
            for ready in timestamps.finish():
                take(ready)
            if not gop:
                raise NotAVideo("the video stream has no frames", source.name)
            splitter.add(gop, splitter.last_end(gop))
            segments = splitter.finish()
            return segments, AudioCopy.finish(audio, container)
        except BaseException:
            splitter.abort()
            if audio is not None:
                audio.abort()
            raise


class _DecodeTimestamps:
    """Gives every packet a decode timestamp before it is muxed into MP4 (which needs them).

    Matroska stores presentation times only: with B-frames, the demuxer cannot tell the first packets'
    DTS (they come out without one) until a packet that has one. Those are filled in backwards, one
    frame apart, from that packet's DTS (never after their PTS), as FFmpeg's own remux would order them.
    A DTS missing later on, or one that cannot be placed, falls back to re-encoding.
    """

    #: Leading packets without a DTS held back at most (a B-frame pyramid is a few frames deep).
    MAX_PENDING = 32

    def __init__(self, frame_ticks: Fraction) -> None:
        self.step = max(1, round(frame_ticks))
        self.pending: list[Packet[VideoStream]] = []
        self.seen = False

    def add(self, packet: Packet[VideoStream]) -> list[Packet[VideoStream]]:
        if packet.dts is None:
            if self.seen:
                raise _NeedsReencode("a video packet without a decode timestamp")
            self.pending.append(packet)
            if len(self.pending) > self.MAX_PENDING:
                raise _NeedsReencode(f"no decode timestamps in the first {self.MAX_PENDING} video packets")
            return []
        self.seen = True
        return [*self._backfill(packet.dts), packet]

    def finish(self) -> list[Packet[VideoStream]]:
        """The packets still held when the stream ends (a stream that never had a DTS)."""
        if not self.pending:
            return []
        pts = [p.pts for p in self.pending if p.pts is not None]
        if pts != sorted(pts):  # reordered frames, and nothing to derive their decode order from
            raise _NeedsReencode("video packets without decode timestamps")
        for packet in self.pending:
            packet.dts = packet.pts
        ready, self.pending = self.pending, []
        return ready

    def _backfill(self, known: int) -> list[Packet[VideoStream]]:
        ready, self.pending = self.pending, []
        for back, packet in enumerate(reversed(ready), start=1):
            dts = known - back * self.step
            if packet.pts is not None and dts > packet.pts:
                raise _NeedsReencode("decode timestamps cannot be derived for the first video packets")
            packet.dts = dts
        return ready


def reencode_with_keyframes(
    source: Path, dest: Path, interval: Fraction, *, audio_path: Path | None = None
) -> SourceAudio:
    """Re-encode the video of `source` to `dest` (libx264, yuv420p) with an IDR frame every `interval`.

    Frame timestamps are kept (so frame rate, and variable frame rate, survive). yuv420p needs even
    dimensions: an odd width or height is PADDED by one pixel that repeats the last column/row, so no
    source pixel is lost (853x480 becomes 854x480). With `audio_path`, the pass also copies the
    source's audio there (see AudioCopy).
    """
    with open_video(source) as (src, in_stream):
        audio = AudioCopy.start(src, in_stream, audio_path)
        try:
            _reencode(src, in_stream, dest, interval, audio, source.name)
            return AudioCopy.finish(audio, src)
        except BaseException:
            if audio is not None:
                audio.abort()
            raise


def _reencode(
    src: InputContainer,
    in_stream: VideoStream,
    dest: Path,
    interval: Fraction,
    audio: AudioCopy | None,
    name: str,
) -> None:
    with av.open(str(dest), mode="w", format="mp4") as out:
        in_stream.thread_type = "AUTO"
        tb = in_stream.time_base
        assert tb is not None
        rate = in_stream.average_rate or in_stream.guessed_rate or DEFAULT_RATE
        width, height = in_stream.width + in_stream.width % 2, in_stream.height + in_stream.height % 2
        enc = out.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.codec_context.time_base = tb
        enc.thread_type = "AUTO"
        interval_ticks, slack = interval / tb, 1 / (2 * rate * tb)
        origin: int | None = None
        next_key = Fraction(0)
        last_pts = -1
        for frame in _decoded(src, in_stream, name, audio):
            pts = frame.pts if frame.pts is not None else last_pts + 1
            if pts <= last_pts:  # a duplicate/out-of-order timestamp would break the muxer; nudge it
                pts = last_pts + 1
            last_pts = pts
            if origin is None:
                origin = pts
                if frame.rotation:  # keep the display matrix, as stream copy does (before any encode)
                    enc.set_display_rotation(frame.rotation)
            if (width, height) != (frame.width, frame.height):
                frame = _pad_to(frame, width, height)
            frame.pts, frame.time_base = pts - origin, tb
            if frame.pts >= next_key - slack:
                frame.pict_type = PictureType.I
                while next_key - slack <= frame.pts:
                    next_key += interval_ticks
            else:
                frame.pict_type = PictureType.NONE  # let x264 choose; a decoded frame carries its old type
            for packet in enc.encode(frame):
                out.mux(packet)
        if origin is None:
            raise NotAVideo("no video frame decodes", name)
        for packet in enc.encode(None):
            out.mux(packet)


def _decoded(
    container: InputContainer, stream: VideoStream, name: str, audio: AudioCopy | None = None
) -> Iterator[VideoFrame]:
    """The stream's frames; a decode error is NotAVideo before the first frame, MediaError after.

    Audio packets of the same pass go to `audio`.
    """
    count = 0
    audio_index = -1 if audio is None else audio.stream.index
    for demuxed in container.demux(stream if audio is None else (stream, audio.stream)):
        if demuxed.stream_index == audio_index and audio is not None:
            audio.write(cast("Packet[AudioStream]", demuxed))
            continue
        packet = cast("Packet[VideoStream]", demuxed)  # demux() reads no other stream
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            reason = exc.strerror or str(exc)
            if count:
                raise MediaError(
                    f"{name}: the video does not decode after frame {count} ({reason})"
                ) from None
            raise NotAVideo(f"video does not decode ({reason})", name) from None
        count += len(frames)
        yield from frames


def _pad_to(frame: VideoFrame, width: int, height: int) -> VideoFrame:
    # (3, h, w) uint8: full-resolution chroma pads exactly
    planes = cast("NDArray[np.uint8]", frame.to_ndarray(format="yuv444p"))
    padded = np.pad(planes, ((0, 0), (0, height - frame.height), (0, width - frame.width)), mode="edge")
    out = VideoFrame.from_ndarray(padded, format="yuv444p")
    out.colorspace, out.color_range = frame.colorspace, frame.color_range
    return out
