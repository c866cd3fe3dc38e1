"""The failures the media container reports; the class name is the `error:` word on stderr."""

from __future__ import annotations


class MediaError(Exception):
    """A failure with a one-line reason (exit code 1 unless the subclass says otherwise)."""

    exit_code = 1


class NotAVideo(MediaError):
    """The input is empty, not demuxable, or has no decodable video stream."""

    exit_code = 2

    def __init__(self, reason: str, where: str | None = None) -> None:
        super().__init__(f"not a video: {where}: {reason}" if where else f"not a video: {reason}")
        self.reason, self.where = reason, where


class TruncatedVideo(MediaError):
    """The file ends before the data its index describes (an upload cut short): what is there would
    convert to a shorter video without a word, so it is refused, saying how much is missing."""

    exit_code = 2

    def __init__(self, where: str, size: int, expected: int, frames: int, total_frames: int) -> None:
        missing = expected - size
        super().__init__(
            f"{where}: truncated: the file has {size} bytes but its index describes {expected} "
            f"({missing} bytes, {missing / expected:.0%}, missing); only {frames} of {total_frames} "
            "video frames are present"
        )
        self.where, self.size, self.expected = where, size, expected
        self.frames, self.total_frames = frames, total_frames


class BadManifest(MediaError):
    """The chunk manifest is missing, malformed, or has gaps."""


class MissingObject(MediaError):
    """An S3 object the command needs does not exist."""


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived: unwinds the command so it exits promptly.

    A BaseException, so no `except Exception` on the way swallows it.
    """

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"received {name}")
        self.exit_code = 128 + signum
