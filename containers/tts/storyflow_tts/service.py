"""The tts service the serving library hosts: load the engine, then per invocation read the text from
``input_uri``, speak it with the params' voice, and write the five outputs beside ``output_uri``."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from storyflow_serving import s3io
from storyflow_serving.errors import InvalidRequest, error_body
from storyflow_serving.service import Host, InvocationRequest

from storyflow_tts.engines import Engine
from storyflow_tts.errors import EngineFailed, InjectedFault, ServingError
from storyflow_tts.outputs import AUDIO, FILES, write_outputs
from storyflow_tts.params import TtsParams, read_text

FAULT_ENV = "TTS_FAIL_TEXT_SUBSTRING"
READY_WAIT_ENV = "TTS_READY_WAIT_SECONDS"


def check_injected_fault(text: str) -> None:
    """Chaos hook: raise :class:`InjectedFault` when ``TTS_FAIL_TEXT_SUBSTRING`` is in the text."""
    needle = os.environ.get(FAULT_ENV)
    if needle and needle in text:
        raise InjectedFault(f"injected fault: {FAULT_ENV}={needle!r} is in the text")


def sibling(output_uri: str, name: str) -> str:
    return output_uri.rsplit("/", 1)[0] + "/" + name


class TtsService:
    """A :class:`storyflow_serving.service.Service`; ``health()`` is also its ``/healthz`` route."""

    def __init__(self, engine: Engine, s3_client: Any = None) -> None:
        self.engine = engine
        self.name = engine.name
        self._s3 = s3_client
        self._ready = threading.Event()
        self._started = time.time()
        self.invocations = 0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self) -> None:
        self.engine.load()
        self._ready.set()

    def validate(self, request: InvocationRequest) -> None:
        """Bad params are a 400 at once, even while the engine is still loading."""
        TtsParams.from_dict(request.params)
        if not request.output_uri.endswith("/narration.wav"):
            raise InvalidRequest(
                f"output_uri must name the narration.wav of the job's output prefix, got {request.output_uri}"
            )

    def invoke(self, request: InvocationRequest) -> dict[str, Any]:
        params = TtsParams.from_dict(request.params)
        if self._s3 is None:
            self._s3 = s3io.make_client()
        text = read_text(s3io.get_json(self._s3, request.input_uri))
        check_injected_fault(text)
        started = time.monotonic()
        try:
            speech = self.engine.synthesize(text, params)
        except ServingError:
            raise
        except Exception as exc:  # an engine bug or a runtime failure: typed, with its own class in the cause
            raise EngineFailed(f"{self.engine.name}: {type(exc).__name__}: {exc}") from exc
        synth_seconds = time.monotonic() - started
        outputs: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            summary = write_outputs(speech, params, self.engine.name, Path(tmp))
            for name, media_type in FILES.items():
                uri = request.output_uri if name == "narration.wav" else sibling(request.output_uri, name)
                s3io.upload(self._s3, Path(tmp) / name, uri, media_type)
                outputs[name] = uri
        self.invocations += 1
        return {
            "output_uri": request.output_uri,
            "audio": sibling(request.output_uri, AUDIO[params.format]),
            "outputs": outputs,
            "engine": self.engine.name,
            "voice": params.voice,
            "lang": params.lang,
            **summary,
            "synth_seconds": round(synth_seconds, 3),
            "rtf": round(summary["seconds"] / synth_seconds, 1) if synth_seconds > 0 else None,
        }

    def health(self, host: Host | None = None) -> tuple[int, dict[str, Any]]:
        """``GET /healthz`` (the replaced worker's health check): 200 once the engine is loaded, with its
        name, invocation count and uptime; 503 while loading, draining or after a failed load."""
        body: dict[str, Any] = {
            "status": "ok" if self.ready else "loading",
            "engine": self.name,
            "invocations": self.invocations,
            "uptime_seconds": round(time.time() - self._started, 1),
        }
        if host is not None and host.load_error is not None:
            body.update(status="failed", **error_body(host.load_error))
        elif host is not None and host.draining:
            body["status"] = "stopping"
        return (200 if body["status"] == "ok" else 503), body
