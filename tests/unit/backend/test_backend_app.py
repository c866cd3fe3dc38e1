"""The built-in app, served in-process on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from storyflow_backend.app import MAX_BODY_BYTES, AppServer, ItemStore


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=payload)
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), (json.loads(data) if data else None)
        finally:
            conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "app" / "app.sqlite3"


@pytest.fixture
def client(db_path: Path) -> Iterator[Client]:
    store = ItemStore(db_path)
    server = AppServer(("127.0.0.1", 0), store)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Client(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def test_health_counts_items(client: Client) -> None:
    # Given an empty DB
    assert client.call("GET", "/health/")[::2] == (200, {"status": "ok", "items": 0})
    # When an item is added
    client.call("POST", "/items/", {"name": "a"})
    # Then health counts it (with or without the trailing slash)
    assert client.call("GET", "/health")[::2] == (200, {"status": "ok", "items": 1})


def test_item_lifecycle(client: Client) -> None:
    # Given a new item with structured data
    status, headers, created = client.call(
        "POST", "/items/", {"name": "first", "data": {"k": [1, None, "x"]}}
    )
    assert status == 201
    assert created["name"] == "first" and created["data"] == {"k": [1, None, "x"]}
    item_id = created["id"]
    assert headers["Location"] == f"/items/{item_id}"
    # When it is read back, alone and in the list
    assert client.call("GET", f"/items/{item_id}")[::2] == (200, created)
    status, _, listing = client.call("GET", "/items/")
    assert status == 200 and listing == {"items": [created], "next": None}
    # When it is deleted
    status, _, body = client.call("DELETE", f"/items/{item_id}")
    assert (status, body) == (204, None)
    # Then it is gone
    assert client.call("GET", f"/items/{item_id}")[0] == 404
    assert client.call("DELETE", f"/items/{item_id}")[::2] == (
        404,
        {"error": "NotFound", "cause": f"item {item_id} does not exist"},
    )


def test_data_is_optional_and_ids_are_not_reused(client: Client) -> None:
    first = client.call("POST", "/items", {"name": "no data"})[2]
    assert first["data"] is None
    client.call("DELETE", f"/items/{first['id']}")
    second = client.call("POST", "/items", {"name": "again"})[2]
    assert second["id"] > first["id"]


def test_list_pages_with_limit_and_after(client: Client) -> None:
    ids = [client.call("POST", "/items/", {"name": f"n{i}"})[2]["id"] for i in range(5)]
    status, _, page = client.call("GET", "/items/?limit=2")
    assert status == 200 and [i["id"] for i in page["items"]] == ids[:2] and page["next"] == ids[1]
    page = client.call("GET", f"/items/?limit=2&after={page['next']}")[2]
    assert [i["id"] for i in page["items"]] == ids[2:4]
    page = client.call("GET", f"/items/?limit=2&after={page['next']}")[2]
    assert [i["id"] for i in page["items"]] == ids[4:] and page["next"] is None


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"{}", "name must be a non-empty string"),
        (b'{"name": "   "}', "name must be a non-empty string"),
        (b'{"name": 7}', "name must be a non-empty string"),
        (b'{"name": "' + b"x" * 201 + b'"}', "name must be at most 200 characters"),
        (b'{"name": "a", "colour": "red", "size": 1}', "unknown field(s): colour, size"),
    ],
)
def test_invalid_item_is_a_400_with_the_reason(client: Client, raw: bytes, cause: str) -> None:
    status, _, body = client.call("POST", "/items/", raw=raw)
    assert status == 400
    assert body["error"] == "ValidationError" and body["cause"].startswith(cause)
    assert client.call("GET", "/health/")[2]["items"] == 0


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("/items/abc", "item id must be a positive integer"),
        ("/items/0", "item id must be a positive integer"),
        ("/items/-1", "item id must be a positive integer"),
        ("/items/99999999999999999999", "item id must be a positive integer"),
        ("/items/?limit=0", "limit must be an integer in 1..1000"),
        ("/items/?limit=x", "limit must be an integer in 1..1000"),
        ("/items/?after=-3", "after must be an integer"),
    ],
)
def test_invalid_id_or_query_is_a_400(client: Client, path: str, cause: str) -> None:
    status, _, body = client.call("GET", path)
    assert status == 400 and body["cause"].startswith(cause)


@pytest.mark.parametrize("path", ["/", "/nope", "/items/1/extra", "/health/x"])
def test_unknown_path_is_a_404(client: Client, path: str) -> None:
    status, _, body = client.call("GET", path)
    assert status == 404 and body["error"] == "NotFound"


def test_wrong_method_is_a_405_with_allow(client: Client) -> None:
    status, headers, body = client.call("PUT", "/items/1", {"name": "x"})
    assert status == 405 and headers["Allow"] == "GET, DELETE" and body["error"] == "MethodNotAllowed"
    assert client.call("DELETE", "/items/")[1]["Allow"] == "GET, POST"


def test_oversized_body_is_a_413(client: Client) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    conn.putrequest("POST", "/items/")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "PayloadTooLarge"
    conn.close()


def test_missing_content_length_is_rejected(client: Client) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    conn.putrequest("POST", "/items/")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411
    conn.close()


def test_database_stays_in_rollback_journal_mode(client: Client, db_path: Path) -> None:
    # Given a running app with a write
    client.call("POST", "/items/", {"name": "a"})
    # Then every commit is in the main file: no WAL for a snapshot to miss
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()
    assert not db_path.with_name(db_path.name + "-wal").exists()
