"""Typed errors. Their class name is the ``error`` field of the JSON error body; ``status`` its HTTP code."""

from __future__ import annotations


class StereoError(Exception):
    """Base of every error the container answers with a JSON ``{"error", "cause"}`` body."""

    status = 500

    @property
    def error(self) -> str:
        return type(self).__name__


class InvalidRequest(StereoError):
    """The request body is not the expected JSON document (bad JSON, missing field, bad S3 URI)."""

    status = 400


class InvalidParams(InvalidRequest):
    """``params`` has an unknown key or an out-of-range / wrongly typed value."""


class InputNotFound(StereoError):
    """The ``input_uri`` object (or its bucket) does not exist."""

    status = 404


class NotAVideo(StereoError):
    """The input object cannot be decoded as a video with at least one frame."""

    status = 422


class InjectedFault(StereoError):
    """Raised on purpose for chaos tests (env ``STEREO_FAIL_INPUT_SUBSTRING``)."""

    status = 500


class UnknownEngine(StereoError):
    """``ENGINE`` names no engine this container knows."""

    status = 500


class ModelNotAvailable(StereoError):
    """The engine cannot load: weights missing under ``MODEL_DIR``, or torch / CUDA / model code missing."""

    status = 503


class EngineNotReady(StereoError):
    """An invocation arrived before the engine finished loading (or after loading failed)."""

    status = 503


class StorageError(StereoError):
    """Reading or writing S3 failed for a reason other than a missing input."""

    status = 502
