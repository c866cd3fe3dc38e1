"""The engine-agnostic side of an invocation: the request model, the service contract, and the host
that loads the service in the background and runs one invocation at a time."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from storyflow_serving import s3io
from storyflow_serving.errors import (
    EngineNotReady,
    InvalidParams,
    InvalidRequest,
    ModelError,
    ModelNotAvailable,
    ShuttingDown,
    error_body,
)

log = logging.getLogger("storyflow_serving")

READY_WAIT_ENV = "SERVING_READY_WAIT_SECONDS"
DEFAULT_READY_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class InvocationRequest:
    """``POST /invocations``: ``{"input_uri": "s3://..", "output_uri": "s3://..", "params": {...}}``."""

    input_uri: str
    output_uri: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: bytes) -> InvocationRequest:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}") from exc
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> InvocationRequest:
        if not isinstance(doc, dict):
            raise InvalidRequest(f"body must be a JSON object, got {type(doc).__name__}")
        missing = [name for name in ("input_uri", "output_uri") if name not in doc]
        if missing:
            raise InvalidRequest(f"missing field(s) {missing}; expected input_uri, output_uri and params")
        s3io.parse_s3_uri(doc["input_uri"], "input_uri")
        s3io.parse_s3_uri(doc["output_uri"], "output_uri")
        params = doc.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidParams(f"params must be a JSON object, got {type(params).__name__}")
        return cls(doc["input_uri"], doc["output_uri"], params)


@runtime_checkable
class Service(Protocol):
    """What a container supplies. ``load()`` runs once on a background thread (raise
    :class:`ModelNotAvailable` when weights are missing); ``ready`` turns true when it has finished;
    ``invoke()`` reads ``input_uri``, writes ``output_uri`` and returns a small JSON manifest.
    A service may also define ``validate(request)``: it runs before waiting for the engine, so a bad
    request is a 4xx at once even while loading."""

    name: str

    @property
    def ready(self) -> bool: ...

    def load(self) -> None: ...

    def invoke(self, request: InvocationRequest) -> dict[str, Any]: ...


class Host:
    """Owns a service: loads it on a thread, reports health, serialises invocations
    (``MaxConcurrentInvocationsPerInstance = 1``), and refuses new work once draining."""

    def __init__(
        self, service: Service, ready_wait_seconds: float | None = None, ready_wait_env: str = READY_WAIT_ENV
    ) -> None:
        self.service = service
        self._ready_wait = ready_wait_seconds
        self._ready_wait_env = ready_wait_env
        self._done_loading = threading.Event()
        self._load_error: BaseException | None = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._draining = threading.Event()

    @property
    def ready(self) -> bool:
        return self._load_error is None and bool(self.service.ready)

    @property
    def load_error(self) -> BaseException | None:
        return self._load_error

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def drain(self) -> None:
        self._draining.set()

    def start_loading(self) -> threading.Thread:
        if self._loader is None:
            self._loader = threading.Thread(target=self._load, name="serving-load", daemon=True)
            self._loader.start()
        return self._loader

    def _load(self) -> None:
        started = time.monotonic()
        try:
            self.service.load()
        except BaseException as exc:
            self._load_error = exc
            log.error(
                "engine %s failed to load",
                self.service.name,
                extra={"engine": self.service.name, **error_body(exc)},
            )
        else:
            log.info(
                "engine %s loaded",
                self.service.name,
                extra={"engine": self.service.name, "duration_ms": _ms(started)},
            )
        finally:
            self._done_loading.set()

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, body) for ``GET /ping``: 200 once loaded; 503 while loading, draining or after a
        failed load (with its typed error)."""
        name = self.service.name
        if self._load_error is not None:
            return 503, {"status": "failed", "engine": name, **error_body(self._load_error)}
        if self.draining:
            return 503, {"status": "stopping", "engine": name}
        if self.ready:
            return 200, {"status": "ok", "engine": name}
        return 503, {"status": "loading", "engine": name}

    def _wait_ready(self) -> None:
        if self.ready:
            return
        # SageMaker only invokes after /ping says 200; a local caller may be quicker: wait a little.
        wait = self._ready_wait
        if wait is None:
            wait = float(os.environ.get(self._ready_wait_env) or DEFAULT_READY_WAIT_SECONDS)
        self._done_loading.wait(wait)
        if self.ready:
            return
        name = self.service.name
        if self._load_error is not None:
            cause = f"engine {name} failed to load: {self._load_error}"
            if isinstance(self._load_error, ModelNotAvailable):
                raise ModelNotAvailable(cause)
            raise EngineNotReady(cause)
        raise EngineNotReady(f"engine {name} is still loading")

    def invoke(self, request: InvocationRequest) -> dict[str, Any]:
        """Run one invocation; raises :class:`ServingError` subclasses (or whatever the engine raises)."""
        if self.draining:
            raise ShuttingDown("the server is shutting down (SIGTERM); retry on another instance")
        validate = getattr(self.service, "validate", None)
        if callable(validate):
            validate(request)
        self._wait_ready()
        with self._lock:
            manifest = self.service.invoke(request)
        if not isinstance(manifest, dict):
            raise ModelError(f"service {self.service.name} returned {type(manifest).__name__}, not a dict")
        return manifest


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
