"""The built-in app: a small JSON API over an SQLite database (stdlib only).

Routes (a trailing slash is optional):
  GET    /health/        200 {"status": "ok", "items": N}
  GET    /items/         200 {"items": [...], "next": <id or null>}
                         (?limit=1..1000, default 100; ?after=<id> for the next page)
  POST   /items/         {"name": str, "data": any} → 201 item (with "id"), Location header
  GET    /items/{id}     200 item | 404
  DELETE /items/{id}     204 | 404
Errors are JSON {"error": "<ErrorClass>", "cause": "<reason>"}: 400 ValidationError, 404 NotFound,
405 MethodNotAllowed, 413 PayloadTooLarge, 500 InternalError.

The database stays in rollback-journal mode (no WAL), so every commit lands in the one file the
supervisor copies with the backup API.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("storyflow-backend.app")

MAX_BODY_BYTES = 1 << 20
MAX_NAME_LENGTH = 200
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
MAX_SQLITE_INT = 2**63 - 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, error: str, cause: str, headers: dict[str, str] | None = None):
        super().__init__(cause)
        self.status = status
        self.error = error
        self.cause = cause
        self.headers = headers or {}


def _validation(cause: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "ValidationError", cause)


class ItemStore:
    """Items in SQLite. One connection, serialised by a lock (the server is threaded)."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # timeout: wait (instead of failing) while the supervisor holds a read lock for a backup.
        self._conn = sqlite3.connect(db_path, isolation_level=None, timeout=30, check_same_thread=False)
        with self._lock:
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "delete":
                self._conn.execute("PRAGMA journal_mode=DELETE").fetchall()
            self._conn.execute(SCHEMA)

    @staticmethod
    def _row(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"id": row[0], "name": row[1], "data": json.loads(row[2]), "created_at": row[3]}

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def create(self, name: str, data: Any) -> dict[str, Any]:
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        encoded = json.dumps(data, separators=(",", ":"))
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO items (name, data, created_at) VALUES (?, ?, ?)", (name, encoded, created_at)
            )
            item_id = cursor.lastrowid
        return {"id": item_id, "name": name, "data": data, "created_at": created_at}

    def list(self, limit: int, after: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, data, created_at FROM items WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [self._row(row) for row in rows]

    def get(self, item_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, data, created_at FROM items WHERE id = ?", (item_id,)
            ).fetchone()
        return None if row is None else self._row(row)

    def delete(self, item_id: int) -> bool:
        with self._lock:
            return self._conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _parse_item(body: bytes) -> tuple[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _validation(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _validation("body must be a JSON object")
    unknown = sorted(set(payload) - {"name", "data"})
    if unknown:
        raise _validation(f"unknown field(s): {', '.join(unknown)}")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _validation("name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise _validation(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name, payload.get("data")


def _parse_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_SQLITE_INT:
        raise _validation(f"item id must be a positive integer, got {raw!r}")
    return int(raw)


def _query_int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = query.get(name)
    if not values:
        return default
    raw = values[-1]
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise _validation(f"{name} must be an integer in {low}..{high}, got {raw!r}")
    return int(raw)


class AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: ItemStore) -> None:
        self.store = store
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: AppServer
    server_version = "storyflow-backend"
    sys_version = ""

    # -- plumbing ----------------------------------------------------------------------------------
    def _send_json(self, status: HTTPStatus, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_empty(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise _validation("chunked request bodies are not supported; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "ValidationError", "Content-Length is required")
        if not raw_length.isdigit():
            raise _validation("Content-Length must be a non-negative integer")
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PayloadTooLarge", f"body exceeds {MAX_BODY_BYTES} bytes"
            )
        return self.rfile.read(length)

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except ApiError as exc:
            self._send_json(exc.status, {"error": exc.error, "cause": exc.cause}, exc.headers)
        except sqlite3.Error as exc:
            log.exception("database error on %s %s", method, self.path)
            self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "InternalError", "cause": f"database error: {exc}"},
            )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- routes ------------------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        store = self.server.store

        def allow(*methods: str) -> None:
            if method not in methods:
                raise ApiError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    f"{method} is not allowed on {url.path}",
                    {"Allow": ", ".join(methods)},
                )

        if parts == ["health"]:
            allow("GET")
            self._send_json(HTTPStatus.OK, {"status": "ok", "items": store.count()})
        elif parts == ["items"]:
            allow("GET", "POST")
            if method == "POST":
                name, data = _parse_item(self._read_body())
                item = store.create(name, data)
                self._send_json(HTTPStatus.CREATED, item, {"Location": f"/items/{item['id']}"})
            else:
                query = parse_qs(url.query)
                limit = _query_int(query, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT)
                after = _query_int(query, "after", 0, 0, MAX_SQLITE_INT)
                items = store.list(limit, after)
                next_after = items[-1]["id"] if len(items) == limit else None
                self._send_json(HTTPStatus.OK, {"items": items, "next": next_after})
        elif len(parts) == 2 and parts[0] == "items":
            allow("GET", "DELETE")
            item_id = _parse_id(parts[1])
            if method == "GET":
                found = store.get(item_id)
                if found is None:
                    raise ApiError(HTTPStatus.NOT_FOUND, "NotFound", f"item {item_id} does not exist")
                self._send_json(HTTPStatus.OK, found)
            else:
                if not store.delete(item_id):
                    raise ApiError(HTTPStatus.NOT_FOUND, "NotFound", f"item {item_id} does not exist")
                self._send_empty(HTTPStatus.NO_CONTENT)
        else:
            raise ApiError(HTTPStatus.NOT_FOUND, "NotFound", f"no route for {url.path}")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        level = logging.DEBUG if self.path.startswith("/health") else logging.INFO
        log.log(level, '%s "%s" %s', self.address_string(), self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.warning("%s %s", self.address_string(), format % args)


def serve(db_path: Path, port: int, host: str = "0.0.0.0") -> int:
    """Run the app until SIGTERM/SIGINT; return the exit status."""
    store = ItemStore(db_path)
    server = AppServer((host, port), store)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("app received %s; shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, so it must not run in this (main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("app listening on http://%s:%d (db %s, %d items)", host, port, db_path, store.count())
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        store.close()
    log.info("app stopped")
    return 0
