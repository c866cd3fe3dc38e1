"""Typed errors. The class name is the ``error`` field of the JSON error body, ``status`` its HTTP code.

A container subclasses these for its own failures (``class NotAVideo(UnprocessableInput)``); anything
that is not a :class:`ServingError` answers 500 with its own class name (an engine bug stays visible).
"""

from __future__ import annotations

from typing import Any


class ServingError(Exception):
    """Base of every error the server answers with a JSON ``{"error", "cause"}`` body."""

    status = 500

    @property
    def error(self) -> str:
        return type(self).__name__


class InvalidRequest(ServingError):
    """The request body is not the expected JSON document (bad JSON, missing field, bad S3 URI)."""

    status = 400


class InvalidParams(InvalidRequest):
    """``params`` has an unknown key or an out-of-range / wrongly typed value."""


class NotFound(ServingError):
    """No route for this method and path."""

    status = 404


class InputNotFound(ServingError):
    """The ``input_uri`` object (or its bucket) does not exist."""

    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class PayloadTooLarge(ServingError):
    """The request body is larger than the server accepts (requests are S3 pointers, never media)."""

    status = 413


class UnprocessableInput(ServingError):
    """The input exists but the engine cannot use it (e.g. not a video, empty text)."""

    status = 422


class ModelError(ServingError):
    """The engine failed on a valid input."""

    status = 500


class StorageError(ServingError):
    """Reading or writing S3 failed for a reason other than a missing input."""

    status = 502


class ModelNotAvailable(ServingError):
    """The engine cannot load: weights or runtime libraries missing."""

    status = 503


class EngineNotReady(ServingError):
    """An invocation arrived before the engine finished loading (or after loading failed)."""

    status = 503


class ShuttingDown(ServingError):
    """The server received SIGTERM and takes no new invocations."""

    status = 503


def error_name(exc: BaseException) -> str:
    return exc.error if isinstance(exc, ServingError) else type(exc).__name__


def error_body(exc: BaseException) -> dict[str, Any]:
    """The contract's JSON error: ``{"error": <TypedName>, "cause": <message>}``."""
    name = error_name(exc)
    return {"error": name, "cause": str(exc) or name}


def error_status(exc: BaseException) -> int:
    return exc.status if isinstance(exc, ServingError) else 500
