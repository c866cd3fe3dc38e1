"""Join inferred segments into one MP4 and put the source's audio back, once (pure media; no S3).

Video: the segments' packets are remuxed in order with rebased timestamps (each segment starts where
the previous one ended), so nothing is re-encoded when every segment shares the same codec
parameters; otherwise the frames are decoded and re-encoded with libx264. Audio: the source's first
audio stream is copied (or encoded to AAC when its codec does not fit MP4) in a single pass, so the
joins add no gap or drift. Video and audio packets are interleaved by time and the file is written
with `movflags=+faststart` (moov first, playable while downloading).
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.frame import PictureType
from av.video.stream import VideoStream

from storyflow_media.chunk import DEFAULT_RATE, MP4_VIDEO_CODECS, X264_OPTIONS
from storyflow_media.errors import MediaError
from storyflow_media.probe import open_video

log = logging.getLogger(__name__)

#: Audio codecs that stream-copy into MP4; anything else is encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
AAC_BITRATE = 192_000


@dataclass(frozen=True)
class ReassembleResult:
    frames: int
    seconds: float  # video duration
    width: int
    height: int
    video: str  # "copy" or "reencode"
    audio: str | None  # "copy", "aac" (transcoded) or None (the source has no audio)
    audio_seconds: float | None


@dataclass(frozen=True)
class _VideoParams:
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    extradata: bytes | None


@dataclass
class _Timeline:
    """Where the next segment goes, and what has been written so far (times in seconds)."""

    next_start: Fraction = Fraction(0)  # where the last segment's last frame ended
    last_pts: Fraction | None = None
    last_dts: Fraction | None = None
    frames: int = 0
    audio_start: Fraction | None = None
    audio_end: Fraction | None = None

    def place(self, planned: Fraction | None, frame: Fraction) -> Fraction:
        """Start of the next segment: `planned` (manifest) or the previous end, never on a shown frame."""
        start = self.next_start if planned is None else planned
        if self.last_pts is not None and start <= self.last_pts:
            start = self.last_pts + frame
        return start

    def wrote(self, pts: Fraction, dts: Fraction | None) -> None:
        self.frames += 1
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)
        if dts is not None:
            self.last_dts = dts


def reassemble(
    segments: Sequence[Path],
    dest: Path,
    audio_source: Path | None = None,
    starts: Sequence[float] | None = None,
) -> ReassembleResult:
    """Concatenate the video of `segments` into `dest`, with the audio of `audio_source` if it has any.

    `starts` (the manifest's segment start times, seconds) places each segment exactly where its
    source frames were, which matters for variable frame rate, where a segment's last frame duration
    is not recorded; without it each segment starts where the previous one's last frame ends.
    """
    if not segments:
        raise MediaError("no segments to reassemble")
    if starts is not None and len(starts) != len(segments):
        raise MediaError(f"{len(starts)} start times for {len(segments)} segments")
    placed = _from_zero(starts) if starts is not None else None
    params = [_video_params(path) for path in segments]
    first = params[0]
    copy = first.codec in MP4_VIDEO_CODECS and all(p == first for p in params)
    if not copy:
        log.info("segments differ in codec parameters: re-encoding the video")
    timeline = _Timeline()
    with av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        with open_video(segments[0]) as (_, template):
            if copy:
                video_out = out.add_stream_from_template(template)
                video: Iterator[Packet] = _copied_video(segments, placed, video_out, timeline)
            else:
                video_out = _x264_stream(out, template)
                video = _reencoded_video(segments, placed, video_out, timeline)
        source = av.open(str(audio_source)) if audio_source is not None else None
        try:
            audio_mode, audio = _audio(source, out, timeline) if source is not None else (None, iter(()))
            for packet in heapq.merge(video, audio, key=_dts_seconds):
                out.mux(packet)
        finally:
            if source is not None:
                source.close()
    audio_seconds = None
    if timeline.audio_start is not None and timeline.audio_end is not None:
        # From 0, where the video starts: an AAC priming packet before it is not heard.
        audio_seconds = round(float(timeline.audio_end - max(timeline.audio_start, Fraction(0))), 6)
    return ReassembleResult(
        frames=timeline.frames,
        seconds=round(float(timeline.next_start), 6),
        width=video_out.width,
        height=video_out.height,
        video="copy" if copy else "reencode",
        audio=audio_mode,
        audio_seconds=audio_seconds,
    )


def _from_zero(starts: Sequence[float]) -> list[Fraction]:
    exact = [Fraction(start).limit_denominator(1_000_000) for start in starts]
    return [start - exact[0] for start in exact]


def _video_params(path: Path) -> _VideoParams:
    with open_video(path) as (_, stream):
        ctx = stream.codec_context
        return _VideoParams(ctx.name, ctx.width, ctx.height, ctx.pix_fmt, ctx.extradata)


def _dts_seconds(packet: Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    assert ts is not None and packet.time_base is not None
    return ts * packet.time_base


def _copied_video(
    segments: Sequence[Path], starts: Sequence[Fraction] | None, out_stream: VideoStream, timeline: _Timeline
) -> Iterator[Packet]:
    for i, path in enumerate(segments):
        with open_video(path) as (container, stream):
            tb, frame = _frame_ticks(stream)
            start = timeline.place(starts[i] if starts else None, frame * tb)
            offset: int | None = None
            end = 0
            for packet in container.demux(stream):
                if packet.pts is None:  # the demuxer's flush packet
                    continue
                if offset is None:
                    first = stream.start_time if stream.start_time is not None else packet.pts
                    offset = _offset(start, first, packet.dts, timeline.last_dts, tb)
                end = max(end, packet.pts + (packet.duration or frame))
                packet.pts += offset
                if packet.dts is not None:
                    packet.dts += offset
                packet.stream = out_stream
                timeline.wrote(packet.pts * tb, None if packet.dts is None else packet.dts * tb)
                yield packet
            if offset is not None:
                timeline.next_start = (end + offset) * tb


def _offset(
    start: Fraction, first_pts: int, first_dts: int | None, last_dts: Fraction | None, tb: Fraction
) -> int:
    """Ticks to add to a segment's timestamps so it shows from `start`, keeping dts increasing."""
    offset = round(start / tb) - first_pts
    if first_dts is not None and last_dts is not None:
        behind = last_dts - (first_dts + offset) * tb
        if behind >= 0:  # a deeper B-frame delay than the previous segment's: shift by whole ticks
            offset += math.floor(behind / tb) + 1
    return offset


def _frame_ticks(stream: VideoStream) -> tuple[Fraction, int]:
    """The stream's time base, and one frame period in its ticks."""
    rate = stream.average_rate or stream.guessed_rate or DEFAULT_RATE
    tb = stream.time_base
    assert tb is not None
    return tb, max(1, round(1 / (rate * tb)))


def _x264_stream(out: OutputContainer, template: VideoStream) -> VideoStream:
    rate = template.average_rate or template.guessed_rate or DEFAULT_RATE
    stream = out.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
    stream.width = template.width + template.width % 2
    stream.height = template.height + template.height % 2
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = template.time_base
    stream.thread_type = "AUTO"
    return stream


def _reencoded_video(
    segments: Sequence[Path], starts: Sequence[Fraction] | None, enc: VideoStream, timeline: _Timeline
) -> Iterator[Packet]:
    enc_tb = enc.codec_context.time_base
    assert enc_tb is not None
    last_pts = -1  # in encoder ticks
    for i, path in enumerate(segments):
        with open_video(path) as (container, stream):
            stream.thread_type = "AUTO"
            tb, frame_ticks = _frame_ticks(stream)
            start = timeline.place(starts[i] if starts else None, frame_ticks * tb)
            first: int | None = None
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else (first or 0) + frame_ticks * timeline.frames
                if first is None:
                    first = pts
                seconds = start + (pts - first) * tb
                timeline.next_start = max(timeline.next_start, seconds + (frame.duration or frame_ticks) * tb)
                last_pts = max(last_pts + 1, round(seconds / enc_tb))
                frame.pts, frame.time_base = last_pts, enc_tb
                frame.pict_type = PictureType.NONE  # let x264 choose; a decoded frame carries its old type
                timeline.wrote(last_pts * enc_tb, None)
                yield from enc.encode(frame)
    yield from enc.encode(None)


def _audio(
    source: InputContainer, out: OutputContainer, timeline: _Timeline
) -> tuple[str | None, Iterator[Packet]]:
    stream = next(iter(source.streams.audio), None)
    if stream is None:
        return None, iter(())
    # Keep A/V sync: the output video starts at 0 where the source's first video frame was.
    video = next(iter(source.streams.video), None)
    video_start = Fraction(0)
    if video is not None and video.start_time is not None and video.time_base is not None:
        video_start = video.start_time * video.time_base
    if stream.codec_context.name in MP4_AUDIO_CODECS:
        out_stream = out.add_stream_from_template(stream)
        return "copy", _copied_audio(source, stream, out_stream, video_start, timeline)
    encoder = out.add_stream("aac", rate=_aac_rate(stream.rate), layout=_aac_layout(stream))
    encoder.bit_rate = AAC_BITRATE
    return "aac", _encoded_audio(source, stream, encoder, video_start, timeline)


def _aac_rate(rate: int) -> int:
    """The source rate when AAC supports it, else the nearest rate it does (48 kHz for odd ones)."""
    rates = av.Codec("aac", "w").audio_rates or (48000,)
    return rate if rate in rates else min(rates, key=lambda r: (abs(r - rate), -r))


def _aac_layout(stream: AudioStream) -> str:
    """A named layout for the channel count: the AAC encoder rejects unordered "N channels" layouts."""
    return _AAC_LAYOUTS.get(len(stream.layout.channels), "stereo")


_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _copied_audio(
    source: InputContainer, stream: AudioStream, out_stream: AudioStream, shift: Fraction, timeline: _Timeline
) -> Iterator[Packet]:
    tb = stream.time_base
    assert tb is not None
    ticks = round(shift / tb)
    for packet in source.demux(stream):
        if packet.pts is None:
            continue
        packet.pts -= ticks
        if packet.dts is not None:
            packet.dts -= ticks
        _audio_span(timeline, packet.pts * tb, (packet.pts + packet.duration) * tb)
        packet.stream = out_stream
        yield packet


def _encoded_audio(
    source: InputContainer, stream: AudioStream, encoder: AudioStream, shift: Fraction, timeline: _Timeline
) -> Iterator[Packet]:
    tb = stream.time_base
    assert tb is not None
    for frame in source.decode(stream):
        if frame.pts is not None:
            frame.pts -= round(shift / tb)
        for packet in encoder.encode(frame):
            yield from _track_audio(packet, timeline)
    for packet in encoder.encode(None):
        yield from _track_audio(packet, timeline)


def _track_audio(packet: Packet, timeline: _Timeline) -> Iterator[Packet]:
    assert packet.pts is not None and packet.time_base is not None
    _audio_span(timeline, packet.pts * packet.time_base, (packet.pts + packet.duration) * packet.time_base)
    yield packet


def _audio_span(timeline: _Timeline, start: Fraction, end: Fraction) -> None:
    timeline.audio_start = start if timeline.audio_start is None else min(timeline.audio_start, start)
    timeline.audio_end = end if timeline.audio_end is None else max(timeline.audio_end, end)
