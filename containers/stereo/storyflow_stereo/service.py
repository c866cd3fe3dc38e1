"""The inference service behind the HTTP server: background engine load, one invocation at a time."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyflow_stereo import s3io
from storyflow_stereo.engines import Engine
from storyflow_stereo.errors import (
    EngineNotReady,
    InjectedFault,
    InvalidRequest,
    ModelNotAvailable,
    StereoError,
)
from storyflow_stereo.params import StereoParams

log = logging.getLogger("storyflow_stereo")

FAULT_ENV = "STEREO_FAIL_INPUT_SUBSTRING"
READY_WAIT_ENV = "STEREO_READY_WAIT_SECONDS"


@dataclass(frozen=True)
class InvocationRequest:
    input_uri: str
    output_uri: str
    params: StereoParams

    @classmethod
    def from_body(cls, body: bytes) -> InvocationRequest:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidRequest(f"body must be a JSON object, got {type(doc).__name__}")
        missing = [name for name in ("input_uri", "output_uri") if name not in doc]
        if missing:
            raise InvalidRequest(f"missing field(s) {missing}; expected input_uri, output_uri and params")
        s3io.parse_s3_uri(doc["input_uri"], "input_uri")
        s3io.parse_s3_uri(doc["output_uri"], "output_uri")
        return cls(doc["input_uri"], doc["output_uri"], StereoParams.from_dict(doc.get("params")))


def check_injected_fault(input_uri: str) -> None:
    """Chaos hook: raise :class:`InjectedFault` when ``STEREO_FAIL_INPUT_SUBSTRING`` is in the URI."""
    needle = os.environ.get(FAULT_ENV)
    if needle and needle in input_uri:
        raise InjectedFault(f"injected fault: {FAULT_ENV}={needle!r} matches input_uri {input_uri}")


class StereoService:
    """Owns the engine. ``start_loading()`` loads it on a thread; ``invoke()`` serialises inference."""

    def __init__(self, engine: Engine, s3_client: Any = None) -> None:
        self.engine = engine
        self._s3 = s3_client
        self._ready = threading.Event()
        self._done_loading = threading.Event()
        self._load_error: BaseException | None = None
        self._lock = threading.Lock()  # MaxConcurrentInvocationsPerInstance = 1
        self._loader: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def load_error(self) -> BaseException | None:
        return self._load_error

    def start_loading(self) -> threading.Thread:
        if self._loader is None:
            self._loader = threading.Thread(target=self._load, name="stereo-engine-load", daemon=True)
            self._loader.start()
        return self._loader

    def _load(self) -> None:
        started = time.monotonic()
        try:
            self.engine.load()
        except BaseException as exc:
            self._load_error = exc
            log.error("engine %s failed to load: %s: %s", self.engine.name, type(exc).__name__, exc)
        else:
            self._ready.set()
            log.info("engine %s loaded in %.2fs", self.engine.name, time.monotonic() - started)
        finally:
            self._done_loading.set()

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, body) for ``GET /ping``: 200 once loaded, 503 while loading or after a failed load."""
        if self.ready:
            return 200, {"status": "ok", "engine": self.engine.name}
        if self._load_error is not None:
            err = self._load_error
            return 503, {"status": "failed", "engine": self.engine.name, **error_body(err)}
        return 503, {"status": "loading", "engine": self.engine.name}

    def _wait_ready(self) -> None:
        if self.ready:
            return
        # SageMaker only invokes after /ping says 200; a local caller may be quicker: wait a little.
        self._done_loading.wait(float(os.environ.get(READY_WAIT_ENV, "60")))
        if self.ready:
            return
        if self._load_error is not None:
            cause = f"engine {self.engine.name} failed to load: {self._load_error}"
            if isinstance(self._load_error, ModelNotAvailable):
                raise ModelNotAvailable(cause)
            raise EngineNotReady(cause)
        raise EngineNotReady(f"engine {self.engine.name} is still loading")

    def invoke(self, body: bytes) -> dict[str, Any]:
        """Run one ``POST /invocations``; raises :class:`StereoError` subclasses (or engine errors)."""
        request = InvocationRequest.from_body(body)
        self._wait_ready()
        with self._lock:
            check_injected_fault(request.input_uri)
            if self._s3 is None:
                self._s3 = s3io.make_client()
            with tempfile.TemporaryDirectory(prefix="stereo-") as tmp:
                src, dst = Path(tmp) / "input.mp4", Path(tmp) / "output.mp4"
                s3io.download(self._s3, request.input_uri, src)
                result = self.engine.render_file(src, dst, request.params)
                s3io.upload(self._s3, dst, request.output_uri)
        return {
            "output_uri": request.output_uri,
            "frames": result.frames,
            "width": result.width,
            "height": result.height,
            "seconds": round(result.seconds, 6),
        }


def error_body(exc: BaseException) -> dict[str, str]:
    """The contract's JSON error: ``{"error": <class name>, "cause": <message>}``."""
    name = exc.error if isinstance(exc, StereoError) else type(exc).__name__
    return {"error": name, "cause": str(exc) or name}


def error_status(exc: BaseException) -> int:
    return exc.status if isinstance(exc, StereoError) else 500
