"""Fixtures for the serving library: fake services hosted by a real HTTP server on a free port."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SERVING_DIR = Path(__file__).resolve().parents[3] / "containers" / "serving"
if importlib.util.find_spec("storyflow_serving") is None:  # an editable install that predates it
    sys.path.insert(0, str(SERVING_DIR))

from storyflow_serving.http import ServingHTTPServer, make_server  # noqa: E402
from storyflow_serving.service import InvocationRequest  # noqa: E402


class FakeService:
    """A service whose load waits for ``gate`` and whose invoke runs ``behaviour`` (default: echo)."""

    name = "fake"

    def __init__(
        self,
        behaviour: Callable[[InvocationRequest], dict[str, Any]] | None = None,
        gated: bool = False,
        load_error: BaseException | None = None,
    ) -> None:
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.behaviour = behaviour
        self.load_error = load_error
        self.requests: list[InvocationRequest] = []
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def load(self) -> None:
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.load_error is not None:
            raise self.load_error
        self._ready = True

    def invoke(self, request: InvocationRequest) -> dict[str, Any]:
        self.requests.append(request)
        if self.behaviour is not None:
            return self.behaviour(request)
        return {"output_uri": request.output_uri, "echo": request.params}


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


Start = Callable[..., tuple[ServingHTTPServer, str]]


@pytest.fixture
def start() -> Iterator[Start]:
    """start(service, routes=None, max_body=...) -> (server, base URL); serving and loading at once."""
    servers: list[ServingHTTPServer] = []

    def _start(service: Any, **kwargs: Any) -> tuple[ServingHTTPServer, str]:
        server = make_server("127.0.0.1", 0, service, **kwargs)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        server.start_loading()
        servers.append(server)
        host, port = server.server_address[:2]
        return server, f"http://{host}:{port}"

    yield _start
    for server in servers:
        if isinstance(server.service, FakeService):
            server.service.gate.set()
        server.shutdown()
        server.server_close()
