"""The source's audio track as a small file of its own, so that reassemble need not read the source.

`chunk` demuxes the whole source anyway: in the same pass it copies the packets of the source's
first audio stream (no re-encode) into an audio-only MP4, their timestamps shifted so that 0 is the
source's first video frame, which is where the reassembled video starts. `reassemble` then muxes
the audio from that file exactly as it would from the source (the final file is the same, byte for
byte). Only codecs that reassemble stream-copies into MP4 are copied; for any other codec (which
reassemble encodes to AAC) there is no file, and reassemble reads the audio from the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Discard
from av.video.stream import VideoStream

#: Audio codecs that stream-copy into MP4; reassemble encodes anything else to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})


@dataclass(frozen=True)
class SourceAudio:
    """What chunk made of the source's audio: `copy`, the audio-only MP4 when one was written;
    `present`, whether the source has an audio stream at all (True when not looked at)."""

    copy: Path | None = None
    present: bool = True


def first_audio(container: InputContainer) -> AudioStream | None:
    return next(iter(container.streams.audio), None)


def fits_mp4(stream: AudioStream | None) -> bool:
    return stream is not None and stream.codec_context.name in MP4_AUDIO_CODECS


def video_start(video: VideoStream | None) -> Fraction:
    """Where the video starts on the file's timeline (seconds): the audio's shift that keeps A/V sync."""
    if video is None or video.start_time is None or video.time_base is None:
        return Fraction(0)
    return video.start_time * video.time_base


class AudioCopy:
    """Stream copy of a container's first audio stream into an audio-only MP4, during a demux pass.

    The pass that reads the video also demuxes `stream` and hands its packets to `write`; `finish`
    (or `abort`, on failure) ends the file.
    """

    def __init__(self, path: Path, stream: AudioStream, video: VideoStream) -> None:
        assert stream.time_base is not None
        self.path, self.stream, self.packets = path, stream, 0
        self._shift = round(video_start(video) / stream.time_base)
        stream.discard = Discard.default  # open_video() discards every stream but the video
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(path), mode="w", format="mp4")
        self._stream = self._out.add_stream_from_template(stream)

    @classmethod
    def start(cls, container: InputContainer, video: VideoStream, path: Path | None) -> AudioCopy | None:
        """The copy of the container's first audio stream to `path`; None without `path`, without
        audio, or for a codec that does not stream-copy into MP4."""
        audio = first_audio(container)
        if path is None or audio is None or not fits_mp4(audio):
            return None
        return cls(path, audio, video)

    def write(self, packet: Packet[AudioStream]) -> None:
        pts = packet.pts
        if pts is None:  # the demuxer's flush packet
            return
        if self._shift:
            packet.pts = pts - self._shift
            dts = packet.dts
            if dts is not None:
                packet.dts = dts - self._shift
        packet.stream = self._stream
        self._out.mux(packet)
        self.packets += 1

    @staticmethod
    def finish(copy: AudioCopy | None, container: InputContainer) -> SourceAudio:
        """End the copy (if any) and say what the source's audio came to."""
        path = None
        if copy is not None:
            copy._out.close()
            if copy.packets:
                path = copy.path
            else:
                copy.path.unlink(missing_ok=True)
        return SourceAudio(copy=path, present=first_audio(container) is not None)

    def abort(self) -> None:
        try:
            self._out.close()
        finally:
            self.path.unlink(missing_ok=True)
