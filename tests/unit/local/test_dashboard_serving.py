"""The local dashboard at /ui: the build's files, config.json for the local API, SPA fallback, no escape."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from storyflow_local import dashboard


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "index-1.js").write_text("export {}")
    (tmp_path / "secret.txt").write_text("no")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            dashboard.serve(self, self.path, dist, "local", "http://127.0.0.1:5000")

        do_HEAD = do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_files_config_and_fallback(served: str) -> None:
    # When the app, an asset, config.json and an app route are fetched
    index = requests.get(f"{served}/ui/", timeout=5)
    asset = requests.get(f"{served}/ui/assets/index-1.js", timeout=5)
    config = requests.get(f"{served}/ui/config.json", timeout=5)
    route = requests.get(f"{served}/ui/jobs/some-job", timeout=5)
    # Then each is what it should be, with the security headers
    assert index.status_code == 200 and "<title>app</title>" in index.text
    assert (
        index.headers["Content-Type"].startswith("text/html") and index.headers["Cache-Control"] == "no-cache"
    )
    assert (
        asset.headers["Content-Type"].startswith("text/javascript")
        and "immutable" in asset.headers["Cache-Control"]
    )
    assert json.loads(config.text) == {"apiBase": "/local", "auth": "none", "stage": "local"}
    assert route.status_code == 200 and route.text == index.text
    csp = index.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "connect-src 'self' http://127.0.0.1:5000" in csp
    assert index.headers["X-Content-Type-Options"] == "nosniff"


def test_redirects_missing_assets_and_traversal(served: str) -> None:
    bare = requests.get(f"{served}/ui", timeout=5, allow_redirects=False)
    assert bare.status_code == 308 and bare.headers["Location"] == "/ui/"
    assert requests.get(f"{served}/ui/assets/gone.js", timeout=5).status_code == 404
    # A path that climbs out of the build (sent as is: clients would normalise it) finds nothing
    host, port = served.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/ui/../secret.txt")
    answer = connection.getresponse()
    assert answer.status == 404 and answer.read() != b"no"
    connection.close()
    assert requests.post(f"{served}/ui/", timeout=5).status_code == 405


def test_url_of_the_dashboard() -> None:
    assert dashboard.url("http://127.0.0.1:4567/local") == "http://127.0.0.1:4567/ui/"
    assert dashboard.url("") == ""
