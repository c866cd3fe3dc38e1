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
