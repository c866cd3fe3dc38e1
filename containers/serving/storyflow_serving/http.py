"""The SageMaker inference HTTP server (stdlib only): ``GET /ping``, ``POST /invocations``, extra GET
routes a container registers, typed errors -> status + ``{"error", "cause"}``, one JSON log line per
request, and a SIGTERM drain.

Port: ``--port`` of the container's CLI, else ``SAGEMAKER_BIND_TO_PORT``, else 8080 (:func:`default_port`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from storyflow_serving.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServingError,
    error_body,
    error_status,
)
from storyflow_serving.service import Host, InvocationRequest, Service

log = logging.getLogger("storyflow_serving")

DEFAULT_PORT = 8080
MAX_BODY = 1 << 20  # requests are small JSON pointers to S3, never media
DRAIN_SECONDS_ENV = "SERVING_DRAIN_SECONDS"
DEFAULT_DRAIN_SECONDS = 25.0  # SageMaker and ECS give a stopping container 30 s before SIGKILL

#: An extra GET route: no arguments, returns (status, JSON body).
Route = Callable[[], tuple[int, dict[str, Any]]]


def default_port() -> int:
    """SageMaker always uses 8080 for inference containers; ``SAGEMAKER_BIND_TO_PORT`` overrides."""
    return int(os.environ.get("SAGEMAKER_BIND_TO_PORT") or DEFAULT_PORT)


class ServingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck request never blocks exit past the drain deadline
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        host: Host,
        routes: Mapping[str, Route] | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.host = host
        self.routes: dict[str, Route] = {"/ping": host.health, **(routes or {})}
        self.max_body = max_body
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__(address, ServingRequestHandler)

    @property
    def service(self) -> Service:
        return self.host.service

    def start_loading(self) -> threading.Thread:
        """Load the service on a background thread (``/ping`` answers 503 until it is ready)."""
        return self.host.start_loading()

    def track(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation is running; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


class ServingRequestHandler(BaseHTTPRequestHandler):
    server: ServingHTTPServer
    server_version = "storyflow-serving"

    def do_GET(self) -> None:
        started = time.monotonic()
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            status, body = self._error(NotFound(f"no route GET {self.path}"))
        else:
            try:
                status, body = route()
            except Exception as exc:
                status, body = self._error(exc)
        self._reply(status, body, started)

    def do_POST(self) -> None:
        started = time.monotonic()
        fields: dict[str, Any] = {}
        if self.path.split("?", 1)[0] != "/invocations":
            self._drain_body()
            self._reply(*self._error(NotFound(f"no route POST {self.path}")), started)
            return
        self.server.track(+1)
        try:
            try:
                request = InvocationRequest.from_body(self._read_body())
                fields.update(input_uri=request.input_uri, output_uri=request.output_uri)
                body = self.server.host.invoke(request)
                status = 200
                fields.update({k: v for k, v in body.items() if _loggable(k, v, fields)})
            except Exception as exc:
                status, body = self._error(exc)
            self._reply(status, body, started, fields)
        finally:
            self.server.track(-1)

    def do_PUT(self) -> None:
        self._unsupported()

    def do_DELETE(self) -> None:
        self._unsupported()

    def _unsupported(self) -> None:
        started = time.monotonic()
        self._drain_body()
        self._reply(*self._error(NotFound(f"no route {self.command} {self.path}")), started)

    def _error(self, exc: BaseException) -> tuple[int, dict[str, Any]]:
        if not isinstance(exc, ServingError):  # unexpected: keep the traceback for the engine's owner
            log.error("unexpected %s", type(exc).__name__, exc_info=exc, extra={"path": self.path})
        return error_status(exc), error_body(exc)

    def _read_body(self) -> bytes:
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                except ValueError as exc:
                    self.close_connection = True
                    raise InvalidRequest("bad chunked encoding") from exc
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > limit:
                    self.close_connection = True
                    raise PayloadTooLarge(f"body larger than {limit} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            self.close_connection = True
            raise InvalidRequest("bad Content-Length") from exc
        if length > limit:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise PayloadTooLarge(f"body of {length} bytes is larger than {limit} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _drain_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= self.server.max_body:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _reply(
        self, status: int, body: dict[str, Any], started: float, fields: dict[str, Any] | None = None
    ) -> None:
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError as exc:  # the client went away; the log line still says what happened
            (fields := fields if fields is not None else {})["reply_error"] = str(exc)
        line: dict[str, Any] = {
            "method": self.command,
            "path": self.path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        line.update({k: v for k, v in (fields or {}).items() if v is not None})
        if status >= 400 and "error" in body:
            line["error"] = body["error"]
            line["cause"] = str(body.get("cause", ""))[:300]
        quiet = self.command == "GET" and status < 400
        log.log(logging.DEBUG if quiet else logging.INFO, "request", extra=line)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib access log: ``_reply`` writes one structured line per request."""


def _loggable(key: str, value: Any, fields: Mapping[str, Any]) -> bool:
    """Small scalar manifest fields go on the request's log line (never lists or nested documents)."""
    return key not in fields and isinstance(value, str | int | float | bool) and len(str(value)) <= 300


def make_server(
    host: str,
    port: int,
    service: Service | Host,
    routes: Mapping[str, Route] | None = None,
    max_body: int = MAX_BODY,
) -> ServingHTTPServer:
    """A bound (not yet serving, not yet loading) server; port 0 picks a free one
    (see ``server.server_address``)."""
    owner = service if isinstance(service, Host) else Host(service)
    return ServingHTTPServer((host, port), owner, routes, max_body)


def serve(
    service: Service | Host,
    host: str = "0.0.0.0",
    port: int | None = None,
    routes: Mapping[str, Route] | None = None,
    drain_seconds: float | None = None,
    banner: str | None = None,
) -> int:
    """What a container's ``serve`` command runs: bind, start loading, serve until SIGTERM/SIGINT,
    then drain (running invocations finish, up to ``drain_seconds``) and return 0. ``banner`` is the
    first log line, formatted with ``{engine}``, ``{host}`` and ``{port}``."""
    server = make_server(host, default_port() if port is None else port, service, routes)
    bound_host, bound_port = server.server_address[:2]
    name = server.service.name
    message = (banner or "serving engine {engine} on {host}:{port}").format(
        engine=name, host=bound_host, port=bound_port
    )
    log.info(message, extra={"engine": name, "host": bound_host, "port": bound_port})
    server.start_loading()
    if drain_seconds is None:
        drain_seconds = float(os.environ.get(DRAIN_SECONDS_ENV) or DEFAULT_DRAIN_SECONDS)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("signal %s: shutting down", signal.Signals(signum).name, extra={"signal": signum})
        server.host.drain()
        threading.Thread(target=server.shutdown, name="serving-shutdown", daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.2)
        if not server.wait_idle(drain_seconds):
            log.warning("invocations still running after %.0fs; exiting anyway", drain_seconds)
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped", extra={"engine": name})
    return 0
