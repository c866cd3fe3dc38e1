"""The failures the video container reports; the class name is the `error` of its error.json."""

from __future__ import annotations


class VideoError(Exception):
    """A failure with a one-line reason (exit code 1 unless the subclass says otherwise)."""

    exit_code = 1


class InvalidRequest(VideoError):
    """The job's request is missing or breaks a rule (sizes, frames, prompt)."""

    exit_code = 2


class InvalidImage(VideoError):
    """The image-to-video input is missing, empty, or not a decodable PNG/JPEG/WebP image."""

    exit_code = 2


class ModelNotFound(VideoError):
    """The `wan` engine found no Wan2.2-TI2V-5B-Diffusers weights in MODEL_DIR or MODEL_URI."""


class EngineUnavailable(VideoError):
    """The engine's libraries (torch, diffusers) are not installed in this image."""


class OutOfMemory(VideoError):
    """The GPU ran out of memory (try model CPU offload, fewer frames or a smaller size)."""


class JobNotRunning(VideoError):
    """The job is no longer running (cancelled meanwhile): the work stopped."""


class InjectedFault(VideoError):
    """Fault injection for tests: VIDEO_FAIL_PROMPT_SUBSTRING is in the prompt."""


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived: unwinds the command so it exits promptly (a BaseException, so no
    `except Exception` on the way swallows it)."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"received {name}")
        self.exit_code = 128 + signum
