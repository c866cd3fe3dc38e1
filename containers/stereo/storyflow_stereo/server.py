"""The SageMaker inference HTTP server: ``GET /ping`` and ``POST /invocations`` (stdlib only)."""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from storyflow_stereo.errors import InvalidRequest, StereoError
from storyflow_stereo.service import StereoService, error_body, error_status

log = logging.getLogger("storyflow_stereo")

MAX_BODY = 1 << 20  # requests are small JSON pointers to S3, never media


class StereoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: StereoService) -> None:
        super().__init__(address, StereoRequestHandler)
        self.service = service


class StereoRequestHandler(BaseHTTPRequestHandler):
    server: StereoHTTPServer
    server_version = "storyflow-stereo"

    def do_GET(self) -> None:
        started = time.monotonic()
        if self.path.split("?", 1)[0] == "/ping":
            status, body = self.server.service.health()
        else:
            status, body = 404, {"error": "NotFound", "cause": f"no route GET {self.path}"}
        self._reply(status, body, started)

    def do_POST(self) -> None:
        started = time.monotonic()
        extra: dict[str, Any] = {}
        if self.path.split("?", 1)[0] != "/invocations":
            self._reply(404, {"error": "NotFound", "cause": f"no route POST {self.path}"}, started)
            return
        try:
            raw = self._read_body()
            extra["input_uri"] = _peek(raw, "input_uri")
            extra["output_uri"] = _peek(raw, "output_uri")
            body = self.server.service.invoke(raw)
            status = 200
            extra["frames"] = body["frames"]
        except Exception as exc:
            status, body = error_status(exc), error_body(exc)
            if not isinstance(exc, StereoError):  # unexpected: keep the traceback for the engine's owner
                log.exception("invocation failed: %s: %s", body["error"], body["cause"])
        self._reply(status, body, started, extra)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_BODY:
                    raise InvalidRequest(f"body larger than {MAX_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise InvalidRequest("bad Content-Length") from exc
        if length > MAX_BODY:
            raise InvalidRequest(f"body larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _reply(
        self, status: int, body: dict[str, Any], started: float, extra: dict[str, Any] | None = None
    ) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        line: dict[str, Any] = {
            "method": self.command,
            "path": self.path,
            "status": status,
            "seconds": round(time.monotonic() - started, 3),
        }
        line.update({k: v for k, v in (extra or {}).items() if v is not None})
        if status >= 400 and "error" in body:
            line["error"] = body["error"]
            line["cause"] = str(body.get("cause", ""))[:300]
        log.info("request %s", json.dumps(line, separators=(",", ":")))

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib access log: ``_reply`` writes one structured line per request."""


def _peek(raw: bytes, field: str) -> Any:
    """A field of the JSON body for the log line, or None (validation happens in the service)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    value = doc.get(field) if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def make_server(host: str, port: int, service: StereoService) -> StereoHTTPServer:
    """A bound (not yet serving) server; port 0 picks a free one (see ``server.server_address``)."""
    return StereoHTTPServer((host, port), service)
