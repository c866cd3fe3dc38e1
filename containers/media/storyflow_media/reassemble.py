"""Join inferred segments into one MP4 and put the source's audio back, once (pure media; no S3).

Video: the segments' packets are remuxed in order with rebased timestamps, so nothing is re-encoded
when every segment has the same codec parameters (checked first, from the headers); otherwise the
frames are decoded and re-encoded by libx264. Audio: the source's first audio stream is copied (or
encoded to AAC when its codec does not fit MP4) in a single pass, so the joins add no gap or drift.
Video and audio packets are interleaved by time.

The index (moov) goes first, so the file plays while downloading: written into space reserved at
the start (sized from the sample counts) instead of a faststart pass that rewrites the whole file;
`movflags=+faststart` only when a count is unknown or the reservation proves too small.
Per-packet work is integer arithmetic only (timestamps in stream ticks, float sort keys); exact
fractions are used once per segment.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeAlias

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Discard
from av.video.frame import PictureType
from av.video.stream import VideoStream

from storyflow_media.audio import first_audio, fits_mp4, video_start
from storyflow_media.chunk import DEFAULT_RATE, MP4_VIDEO_CODECS, X264_OPTIONS
from storyflow_media.errors import MediaError
from storyflow_media.probe import open_container, open_video

log = logging.getLogger(__name__)

AAC_BITRATE = 192_000
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

_Packet: TypeAlias = "Packet[VideoStream] | Packet[AudioStream]"  # a string: Packet[...] fails at runtime
_Timed = tuple[float, _Packet]  # (decode time in seconds: the interleaving key, packet)
_Opened = tuple[int, InputContainer, VideoStream]
_Open = tuple[InputContainer, VideoStream]

#: Segments the survey leaves open for the stream copy to read (each holds a file descriptor and its
#: index, a few kB); any further segment is opened again when its turn comes (~1 ms each).
KEEP_OPEN = 256


@dataclass(frozen=True)
class ReassembleResult:
    frames: int
    seconds: float  # video duration
    width: int
    height: int
    video: str  # "copy" or "reencode"
    audio: str | None  # "copy", "aac" (transcoded) or None (the source has no audio)
    audio_seconds: float | None


class _MoovTooSmall(Exception):
    """Control flow: the index outgrew its reserved space; never escapes this module."""


@dataclass
class _Timeline:
    """Where the next segment goes, and what has been written so far (times in seconds)."""

    next_start: Fraction = Fraction(0)  # where the last segment's last frame stops showing
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

    def segment_done(self, end: Fraction, last_pts: Fraction, last_dts: Fraction | None, frames: int) -> None:
        self.next_start = max(self.next_start, end)
        self.last_pts = last_pts if self.last_pts is None else max(self.last_pts, last_pts)
        self.last_dts = last_dts if last_dts is not None else self.last_dts
        self.frames += frames


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
    with ExitStack() as kept:
        copy, reason, samples, surveyed = _survey(segments, kept)
        if not copy:
            log.info("re-encoding the video: %s", reason)
            kept.close()  # the re-encode opens each segment again, to decode it
            surveyed = []
        try:
            return _write(
                segments, dest, audio_source, placed, copy=copy, video_samples=samples, opened=surveyed
            )
        except _MoovTooSmall:
            log.warning("the reserved index space was too small; writing again with a faststart pass")
            return _write(segments, dest, audio_source, placed, copy=copy, video_samples=None)


def _from_zero(starts: Sequence[float]) -> list[Fraction]:
    exact = [Fraction(start).limit_denominator(1_000_000) for start in starts]
    return [start - exact[0] for start in exact]


def _survey(segments: Sequence[Path], keep: ExitStack) -> tuple[bool, str, int | None, list[_Open]]:
    """(stream copy possible, why not, total video samples or None if a count is unknown, and the
    first KEEP_OPEN segments, opened for the copy: in `keep`, which closes them)."""
    reference: tuple[object, ...] | None = None
    reason = ""
    samples: int | None = 0
    kept: list[_Open] = []
    for index, path in enumerate(segments):
        with ExitStack() as this:
            container, stream = this.enter_context(open_video(path, decode=False))
            if index < KEEP_OPEN:
                keep.enter_context(this.pop_all())
                kept.append((container, stream))
            params = _copy_params(stream)
            reference = reference or params
            if not reason and params[0] not in MP4_VIDEO_CODECS:
                reason = f"codec {params[0]} does not stream-copy into mp4"
            elif not reason and params != reference:
                reason = f"{path.name} has other codec parameters than {segments[0].name}"
            count = stream.frames  # the MP4 sample count; 0 (unknown) for containers without one
            samples = samples + count if samples is not None and count else None
    return not reason, reason, samples, kept


def _moov_reserve(video_samples: int | None, audio_samples: int | None) -> int | None:
    """Bytes to reserve for the index at the start of the file (None: unknown, use a faststart pass).

    The MP4 index costs ~10 bytes per sample in practice (stsz, stts, ctts, stss, stco, ...); 48 is
    an upper bound even with one chunk per sample. Writing the index into reserved space avoids the
    faststart pass, which reads and rewrites the whole file after muxing.
    """
    if video_samples is None or audio_samples is None:
        return None
    return 32 * 1024 + 48 * (video_samples + audio_samples)


def _write(
    segments: Sequence[Path],
    dest: Path,
    audio_source: Path | None,
    starts: Sequence[Fraction] | None,
    *,
    copy: bool,
    video_samples: int | None,
    opened: Sequence[_Open] = (),
) -> ReassembleResult:
    timeline = _Timeline()
    with ExitStack() as stack:
        source, audio_in = None, None
        if audio_source is not None:
            source = stack.enter_context(open_container(audio_source, decode=False))
            audio_in = first_audio(source)
            for stream in source.streams:  # the demuxer then skips the source's video entirely
                stream.discard = Discard.default if stream is audio_in else Discard.all
        reserve = _moov_reserve(video_samples, _audio_samples(audio_in, copy_audio=fits_mp4(audio_in)))
        index_options = {"moov_size": str(reserve)} if reserve else {"movflags": "+faststart"}
        each = _open_each(segments, decode=not copy, opened=opened)
        stack.callback(each.close)
        first = next(each)  # stays open: the template of the output stream
        out = stack.enter_context(av.open(str(dest), mode="w", format="mp4", options=index_options))
        if copy:
            video_out = out.add_stream_from_template(first[2])
            video = _copied_video(_chain(first, each), starts, video_out, timeline)
        else:
            video_out = _x264_stream(out, first[2])
            video = _reencoded_video(_chain(first, each), starts, video_out, timeline)
        audio_mode: str | None = None
        audio: Iterator[_Timed] = iter(())
        if source is not None and audio_in is not None:
            audio_mode, audio = _audio(source, audio_in, out, timeline)
        for packet in _interleaved(video, audio):
            out.mux(packet)
        try:
            out.close()
        except av.FFmpegError:
            if reserve is None:
                raise
            raise _MoovTooSmall() from None
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


def _interleaved(video: Iterator[_Timed], audio: Iterator[_Timed]) -> Iterator[_Packet]:
    """The packets of both in time order, video first on a tie: heapq.merge's order, at less cost."""
    pending = next(audio, None)
    for at, packet in video:
        while pending is not None and pending[0] < at:
            yield pending[1]
            pending = next(audio, None)
        yield packet
    if pending is not None:
        yield pending[1]
        for _, packet in audio:
            yield packet


def _audio_samples(stream: AudioStream | None, *, copy_audio: bool) -> int | None:
    """Audio packets the output will hold: 0 without audio, None when it cannot be known up front."""
    if stream is None:
        return 0
    if copy_audio:
        return stream.frames or None
    if stream.duration is None or stream.time_base is None or not stream.rate:
        return None
    return math.ceil(stream.duration * stream.time_base * _aac_rate(stream.rate) / 1024) + 8


def _open_each(
    segments: Sequence[Path], *, decode: bool, opened: Sequence[_Open] = ()
) -> Generator[_Opened, None, None]:
    """Each segment in turn, open only while its packets are read (the first ones already `opened`)."""
    for index, path in enumerate(segments):
        if index < len(opened):
            container, stream = opened[index]
            try:
                yield index, container, stream
            finally:
                container.close()  # read to the end: let it go now (closing it again later is harmless)
        else:
            with open_video(path, decode=decode) as (container, stream):
                yield index, container, stream


def _chain(first: _Opened, rest: Iterator[_Opened]) -> Iterator[_Opened]:
    yield first
    yield from rest


def _copy_params(stream: VideoStream) -> tuple[object, ...]:
    """What must match for packets of two files to form one valid stream (SPS/PPS live in extradata)."""
    ctx = stream.codec_context
    return ctx.name, ctx.width, ctx.height, ctx.extradata


def _copied_video(
    opened: Iterator[_Opened], starts: Sequence[Fraction] | None, out_stream: VideoStream, timeline: _Timeline
) -> Iterator[_Timed]:
    for index, container, stream in opened:
        tb, frame = _frame_ticks(stream)
        start = timeline.place(starts[index] if starts else None, frame * tb)
        seconds_per_tick = float(tb)
        offset: int | None = None
        end = top = 0
        last_dts: int | None = None
        count = 0
        for packet in container.demux(stream):
            pts = packet.pts
            if pts is None:  # the demuxer's flush packet
                continue
            dts = packet.dts
            if offset is None:
                first = stream.start_time if stream.start_time is not None else pts
                offset = _offset(start, first, dts, timeline.last_dts, tb)
                end = top = pts + offset
            end = max(end, pts + offset + (packet.duration or frame))
            packet.pts = pts = pts + offset
            top = max(top, pts)
            if dts is not None:
                packet.dts = last_dts = dts = dts + offset
            packet.stream = out_stream
            count += 1
            yield (pts if dts is None else dts) * seconds_per_tick, packet
        if offset is not None:
            timeline.segment_done(end * tb, top * tb, None if last_dts is None else last_dts * tb, count)


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
    tb = template.time_base
    assert tb is not None
    stream.codec_context.time_base = tb
    stream.thread_type = "AUTO"
    return stream


def _reencoded_video(
    opened: Iterator[_Opened], starts: Sequence[Fraction] | None, enc: VideoStream, timeline: _Timeline
) -> Iterator[_Timed]:
    enc_tb = enc.codec_context.time_base
    assert enc_tb is not None
    seconds_per_tick = float(enc_tb)
    last_pts = -1  # in encoder ticks
    for index, container, stream in opened:
        stream.thread_type = "AUTO"
        tb, frame_ticks = _frame_ticks(stream)
        start = timeline.place(starts[index] if starts else None, frame_ticks * tb)
        first: int | None = None
        end, count = start, 0
        for frame in container.decode(stream):
            pts = frame.pts if frame.pts is not None else (first or 0) + frame_ticks * count
            if first is None:
                first = pts
            seconds = start + (pts - first) * tb
            end = max(end, seconds + (frame.duration or frame_ticks) * tb)
            last_pts = max(last_pts + 1, round(seconds / enc_tb))
            frame.pts, frame.time_base = last_pts, enc_tb
            frame.pict_type = PictureType.NONE  # let x264 choose; a decoded frame carries its old type
            count += 1
            for packet in enc.encode(frame):
                yield _timed(packet, seconds_per_tick)
        timeline.segment_done(end, last_pts * enc_tb, None, count)
    for packet in enc.encode(None):
        yield _timed(packet, seconds_per_tick)


def _timed(packet: _Packet, seconds_per_tick: float) -> _Timed:
    ts = packet.dts if packet.dts is not None else packet.pts
    assert ts is not None
    return ts * seconds_per_tick, packet


def _audio(
    source: InputContainer, stream: AudioStream, out: OutputContainer, timeline: _Timeline
) -> tuple[str, Iterator[_Timed]]:
    # Keep A/V sync: the output video starts at 0 where the source's first video frame was (an audio
    # file written by chunk has no video: its timestamps are already shifted that way).
    shift = video_start(next(iter(source.streams.video), None))
    if fits_mp4(stream):
        out_stream = out.add_stream_from_template(stream)
        return "copy", _copied_audio(source, stream, out_stream, shift, timeline)
    encoder = out.add_stream("aac", rate=_aac_rate(stream.rate), layout=_aac_layout(stream))
    encoder.bit_rate = AAC_BITRATE
    return "aac", _encoded_audio(source, stream, encoder, shift, timeline)


def _aac_rate(rate: int) -> int:
    """The source rate when AAC supports it, else the nearest rate it does (48 kHz for odd ones)."""
    rates = av.Codec("aac", "w").audio_rates or (48000,)
    return rate if rate in rates else min(rates, key=lambda r: (abs(r - rate), -r))


def _aac_layout(stream: AudioStream) -> str:
    """A named layout for the channel count: the AAC encoder rejects unordered "N channels" layouts."""
    return _AAC_LAYOUTS.get(len(stream.layout.channels), "stereo")


def _copied_audio(
    source: InputContainer, stream: AudioStream, out_stream: AudioStream, shift: Fraction, timeline: _Timeline
) -> Iterator[_Timed]:
    tb = stream.time_base
    assert tb is not None
    ticks, seconds_per_tick = round(shift / tb), float(tb)
    first: int | None = None
    end = 0
    for packet in source.demux(stream):
        pts = packet.pts
        if pts is None:
            continue
        packet.pts = pts = pts - ticks
        dts = packet.dts
        if dts is not None:
            packet.dts = dts = dts - ticks
        duration = packet.duration
        if duration is None:
            raise MediaError(f"an audio packet at {pts * tb}s has no duration")
        first = pts if first is None else min(first, pts)
        end = max(end, pts + duration)
        packet.stream = out_stream
        yield (pts if dts is None else dts) * seconds_per_tick, packet
    if first is not None:
        timeline.audio_start, timeline.audio_end = first * tb, end * tb


def _encoded_audio(
    source: InputContainer, stream: AudioStream, encoder: AudioStream, shift: Fraction, timeline: _Timeline
) -> Iterator[_Timed]:
    tb = stream.time_base
    assert tb is not None
    ticks = round(shift / tb)
    enc_tb: Fraction | None = None
    first: int | None = None
    end = 0

    def timed(packets: list[Packet[AudioStream]]) -> Iterator[_Timed]:
        nonlocal enc_tb, first, end
        for packet in packets:
            assert packet.pts is not None and packet.time_base is not None
            if packet.duration is None:
                raise MediaError(f"the AAC encoder gave a packet without a duration (pts {packet.pts})")
            enc_tb = packet.time_base
            first = packet.pts if first is None else min(first, packet.pts)
            end = max(end, packet.pts + packet.duration)
            yield _timed(packet, float(enc_tb))

    for frame in source.decode(stream):
        if frame.pts is not None:
            frame.pts -= ticks
        yield from timed(encoder.encode(frame))
    yield from timed(encoder.encode(None))
    if first is not None and enc_tb is not None:
        timeline.audio_start, timeline.audio_end = first * enc_tb, end * enc_tb
