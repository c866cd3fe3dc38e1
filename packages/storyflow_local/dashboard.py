"""The dashboard (web/dist, built by `make web`) served at /ui on the local API's port, with no sign-in.

`/ui/config.json` is written on the fly: the API base is this server's own stage path (same origin, so no
CORS), auth is `none`. The headers are the deployed CloudFront policy's (CSP, nosniff, frame-ancestors
'none'), with the local S3 endpoint in place of the buckets, so a CSP mistake fails locally too.
"""

from __future__ import annotations

import json
import mimetypes
from http.server import BaseHTTPRequestHandler
from pathlib import Path

PREFIX = "/ui"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def url(api_url: str) -> str:
    """The dashboard's URL on the server of `api_url` (http://127.0.0.1:<port>/<stage> -> .../ui/)."""
    return api_url.rsplit("/", 1)[0] + PREFIX + "/" if api_url else ""


def default_dist(root: Path) -> Path:
    return root / "web" / "dist"


def is_dashboard_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def content_security_policy(storage_origin: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"connect-src 'self' {storage_origin}",
            f"media-src 'self' {storage_origin}",
            "img-src 'self' data:",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def config_document(stage: str) -> dict[str, str]:
    """What the app reads from config.json locally: the API at this origin's stage path, no sign-in."""
    return {"apiBase": f"/{stage}", "auth": "none", "stage": stage}


def serve(request: BaseHTTPRequestHandler, path: str, dist: Path, stage: str, storage_origin: str) -> None:
    """Answer one request under /ui: a file of the build, config.json, or index.html for app routes."""
    headers = {
        "Content-Security-Policy": content_security_policy(storage_origin),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
    }
    if request.command not in ("GET", "HEAD"):
        _reply(request, 405, {**headers, "Allow": "GET, HEAD", "Content-Type": "text/plain"}, b"GET only\n")
        return
    if path == PREFIX:
        _reply(request, 308, {**headers, "Location": PREFIX + "/"}, b"")
        return
    relative = path[len(PREFIX) + 1 :] or "index.html"
    if relative == "config.json":
        body = json.dumps(config_document(stage)).encode()
        _reply(
            request, 200, {**headers, "Content-Type": "application/json", "Cache-Control": "no-store"}, body
        )
        return
    index = dist / "index.html"
    if not index.is_file():
        message = f"the dashboard is not built ({index} is missing): run `make web`\n".encode()
        _reply(request, 404, {**headers, "Content-Type": "text/plain; charset=utf-8"}, message)
        return
    root = dist.resolve()
    target = (root / relative).resolve()
    if root not in target.parents and target != root:
        _reply(request, 404, {**headers, "Content-Type": "text/plain"}, b"not found\n")
        return
    if not target.is_file():
        if "." in Path(relative).name:  # a missing asset, not an app route
            _reply(request, 404, {**headers, "Content-Type": "text/plain"}, b"not found\n")
            return
        target = index  # the SPA fallback (CloudFront answers index.html the same way)
    suffix = target.suffix.lower()
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    cache = "public, max-age=31536000, immutable" if relative.startswith("assets/") else "no-cache"
    _reply(
        request, 200, {**headers, "Content-Type": content_type, "Cache-Control": cache}, target.read_bytes()
    )


def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
