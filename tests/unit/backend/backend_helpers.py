"""Helpers for the backend container tests (a unique module name: no clash with other areas' conftest)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

BACKEND_DIR = Path(__file__).resolve().parents[3] / "containers" / "backend"
# Works before and after `pip install -e .` picks up the package.
if str(BACKEND_DIR) not in sys.path:
    sys.path.insert(0, str(BACKEND_DIR))

from storyflow_backend.app import ItemStore  # noqa: E402

KEY = "backend/app.sqlite3"
# Safety limit for waits on a subprocess; never a timing assertion.
WAIT_LIMIT = 20.0
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version_ids(s3: Any, bucket: str, key: str = KEY) -> list[str]:
    """Version ids of key, newest first."""
    response = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in response.get("Versions", []) if v["Key"] == key]


def make_db(path: Path, names: list[str]) -> bytes:
    """A database with the built-in app's schema holding one item per name; returns the file's bytes."""
    store = ItemStore(path)
    for name in names:
        store.create(name, {"name": name})
    store.close()
    return path.read_bytes()


def put_version(s3: Any, bucket: str, body: bytes, sha256: str | None = None) -> str:
    """Upload body as a new version of the DB key, with the checksum metadata the supervisor writes."""
    metadata = {"sha256": sha256 or hashlib.sha256(body).hexdigest()}
    return str(s3.put_object(Bucket=bucket, Key=KEY, Body=body, Metadata=metadata)["VersionId"])


def damaged_db(tmp_path: Path) -> bytes:
    """A real SQLite file (valid header) whose b-tree pages are overwritten with garbage."""
    path = tmp_path / "damaged.sqlite3"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 40)
    conn.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    raw[page : 4 * page] = b"\xa5" * (3 * page)
    return bytes(raw)


class BackendProcess:
    """The supervisor running as a real subprocess; its log lines are collected as they arrive."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_log(self, pattern: str, *, after: int = 0, count: int = 1) -> re.Match[str]:
        """Wait until `count` lines from index `after` on match the regex; return the last match."""
        regex = re.compile(pattern)

        def found() -> list[re.Match[str]]:
            return [m for line in self.lines[after:] if (m := regex.search(line))]

        with self._cond:
            ok = self._cond.wait_for(
                lambda: (
                    len(found()) >= count or (self.proc.poll() is not None and not self._reader.is_alive())
                ),
                timeout=WAIT_LIMIT,
            )
            matches = found()
        if not ok or len(matches) < count:
            raise AssertionError(f"no {count}x /{pattern}/ in the backend log:\n{self.log}")
        return matches[count - 1]

    def line_count(self) -> int:
        with self._cond:
            return len(self.lines)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_LIMIT)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def wait_healthy(self) -> dict[str, Any]:
        self.wait_for_log(r"app listening on|started custom app")
        status, body = self.request("GET", "/health/")
        assert status == 200, body
        return dict(body)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        code = self.proc.wait(timeout=WAIT_LIMIT)
        self._reader.join(timeout=WAIT_LIMIT)
        return code

    def kill_leftovers(self) -> None:
        """Teardown: end this supervisor and the app it started (its own process group), if still alive."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for match in re.finditer(r"app pid=(\d+)", self.log):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(match.group(1)), signal.SIGKILL)


StartBackend = Callable[..., BackendProcess]
