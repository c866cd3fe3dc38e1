"""Typed errors of the stereo container. The generic ones (bad request, missing input, storage, model
not loaded) are the serving library's; the class name is the ``error`` of the JSON body, ``status``
its HTTP code."""

from __future__ import annotations

from storyflow_serving.errors import (
    EngineNotReady,
    InputNotFound,
    InvalidParams,
    InvalidRequest,
    ModelNotAvailable,
    ServingError,
    StorageError,
    UnprocessableInput,
)

__all__ = [
    "EngineNotReady",
    "InjectedFault",
    "InputNotFound",
    "InvalidParams",
    "InvalidRequest",
    "ModelNotAvailable",
    "NotAVideo",
    "ServingError",
    "StorageError",
    "UnknownEngine",
]


class NotAVideo(UnprocessableInput):
    """The input object cannot be decoded as a video with at least one frame (422)."""


class InjectedFault(ServingError):
    """Raised on purpose for chaos tests (env ``STEREO_FAIL_INPUT_SUBSTRING``)."""

    status = 500


class UnknownEngine(ServingError):
    """``ENGINE`` names no engine this container knows."""

    status = 500
