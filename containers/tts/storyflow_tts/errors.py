"""Typed errors of the tts container. The generic ones (bad request, missing input, storage, model not
loaded) are the serving library's; the class name is the ``error`` of the JSON body, ``status`` its HTTP
code."""

from __future__ import annotations

from storyflow_serving.errors import (
    InvalidParams,
    ModelError,
    ModelNotAvailable,
    ServingError,
    UnprocessableInput,
)

__all__ = [
    "EngineFailed",
    "InjectedFault",
    "InvalidParams",
    "ModelNotAvailable",
    "NothingToSay",
    "ServingError",
    "UnknownEngine",
]


class NothingToSay(UnprocessableInput):
    """The text is empty, or the engine produced no audio or no word for it (422)."""


class EngineFailed(ModelError):
    """The engine raised while synthesising a valid request (500)."""


class InjectedFault(EngineFailed):
    """Raised on purpose for chaos tests (env ``TTS_FAIL_TEXT_SUBSTRING``)."""


class UnknownEngine(ServingError):
    """``ENGINE`` names no engine this container knows."""

    status = 500
