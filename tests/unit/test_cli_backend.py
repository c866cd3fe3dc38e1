"""`storyflow start` / `storyflow ping` against a recorded /start endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from storyflow_cli import commands


@pytest.fixture
def start_endpoint() -> Iterator[tuple[str, list[str]]]:
    """Given an API whose /start answers like the task manager and records each request's path."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps(
                {
                    "status": "running",
                    "task_arn": "arn:aws:ecs:us-east-1:1:task/c/abc",
                    "public_ip": "203.0.113.9",
                    "message": "extended",
                    "expires_at": 1790000000,
                }
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/local", seen
    server.shutdown()


@pytest.mark.parametrize(
    ("command", "path"), [("start", "/local/start"), ("ping", "/local/start?action=ping")]
)
def test_start_and_ping_call_the_task_manager(
    start_endpoint: tuple[str, list[str]], command: str, path: str
) -> None:
    url, seen = start_endpoint
    result = CliRunner().invoke(commands.app, ["--api-url", url, command])
    assert result.exit_code == 0, result.output
    assert seen == [path]
    assert "running" in result.output and "203.0.113.9" in result.output
