"""The stereo service the serving library hosts: load the engine, then render one segment per
invocation (download the input, render side by side, upload the output)."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from storyflow_serving import s3io
from storyflow_serving.service import InvocationRequest

from storyflow_stereo.engines import Engine
from storyflow_stereo.errors import InjectedFault
from storyflow_stereo.params import StereoParams

FAULT_ENV = "STEREO_FAIL_INPUT_SUBSTRING"
READY_WAIT_ENV = "STEREO_READY_WAIT_SECONDS"
MP4 = "video/mp4"


def check_injected_fault(input_uri: str) -> None:
    """Chaos hook: raise :class:`InjectedFault` when ``STEREO_FAIL_INPUT_SUBSTRING`` is in the URI."""
    needle = os.environ.get(FAULT_ENV)
    if needle and needle in input_uri:
        raise InjectedFault(f"injected fault: {FAULT_ENV}={needle!r} matches input_uri {input_uri}")


class StereoService:
    """A :class:`storyflow_serving.service.Service`: ``load()`` loads the engine (the host runs it on a
    thread); ``invoke()`` renders one segment and answers its manifest."""

    def __init__(self, engine: Engine, s3_client: Any = None) -> None:
        self.engine = engine
        self.name = engine.name
        self._s3 = s3_client
        self._ready = threading.Event()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self) -> None:
        """Loads the engine and builds the S3 client before ``/ping`` says ready, so the first invocation
        pays for neither."""
        self.engine.load()
        if self._s3 is None:
            self._s3 = s3io.make_client()
        self._ready.set()

    def validate(self, request: InvocationRequest) -> None:
        """Bad params are a 400 at once, even while the engine is still loading."""
        StereoParams.from_dict(request.params)

    def invoke(self, request: InvocationRequest) -> dict[str, Any]:
        params = StereoParams.from_dict(request.params)
        check_injected_fault(request.input_uri)
        if self._s3 is None:
            self._s3 = s3io.make_client()
        with tempfile.TemporaryDirectory(prefix="stereo-") as tmp:
            src, dst = Path(tmp) / "input.mp4", Path(tmp) / "output.mp4"
            s3io.download(self._s3, request.input_uri, src)
            result = self.engine.render_file(src, dst, params)
            # A rendered segment is an intermediate (reassemble makes the final): tagged as it is written,
            # so it expires even when its job fails or is cancelled before reassembling.
            s3io.upload(self._s3, dst, request.output_uri, MP4, tagging=s3io.INTERMEDIATE_TAGGING)
        return {
            "output_uri": request.output_uri,
            "frames": result.frames,
            "width": result.width,
            "height": result.height,
            "seconds": round(result.seconds, 6),
        }
