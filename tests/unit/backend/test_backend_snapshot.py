"""SQLite helpers and the Snapshotter's change detection (in-process, with a fake store: no S3)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from backend_helpers import damaged_db, make_db
from storyflow_backend.dbfile import backup_to_file, sha256_file, verify_sqlite_file
from storyflow_backend.supervisor import Snapshotter


class FakeStore:
    """Records uploads instead of writing to S3."""

    location = "s3://fake/backend/app.sqlite3"

    def __init__(self) -> None:
        self.uploads: list[bytes] = []
        self.fail = False

    def upload(self, path: Path, sha256: str) -> str:
        if self.fail:
            raise OSError("injected upload failure")
        assert sha256_file(path) == sha256
        self.uploads.append(path.read_bytes())
        return f"v{len(self.uploads)}"


def write(db_path: Path, sql: str) -> None:
    """Commit a statement from another connection (as the app would)."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(sql)
    conn.close()


def rows(data: bytes, tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    copy = tmp_path / "uploaded-copy.sqlite3"
    copy.write_bytes(data)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def snap(tmp_path: Path) -> tuple[Snapshotter, FakeStore, Path]:
    store = FakeStore()
    db_path = tmp_path / "app.sqlite3"
    return Snapshotter(db_path, store), store, db_path  # type: ignore[arg-type]


# -- verify_sqlite_file --------------------------------------------------------------------------


def test_verify_accepts_a_healthy_database(tmp_path: Path) -> None:
    path = tmp_path / "ok.sqlite3"
    make_db(path, ["a", "b"])
    assert verify_sqlite_file(path) is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not an SQLite file (empty)"),
        (b"PK\x03\x04 a zip file, not a database" * 10, "not an SQLite file (bad header)"),
        (b"SQLite format 3\x00" + b"\x00" * 20, "not an SQLite file (truncated header, 36 bytes)"),
    ],
)
def test_verify_rejects_files_that_are_not_sqlite(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(content)
    assert verify_sqlite_file(path) == reason


def test_verify_rejects_damaged_pages_and_leaves_no_sidecars(tmp_path: Path) -> None:
    path = tmp_path / "damaged-copy.sqlite3"
    path.write_bytes(damaged_db(tmp_path))
    reason = verify_sqlite_file(path)
    assert reason is not None and reason.startswith("integrity_check")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged-copy.sqlite3", "damaged.sqlite3"]


# -- backup_to_file ------------------------------------------------------------------------------


def test_backup_includes_committed_wal_content_and_is_one_self_contained_file(tmp_path: Path) -> None:
    # Given a WAL database whose last commit is still only in the -wal file (writer kept open)
    source_path = tmp_path / "wal.sqlite3"
    writer = sqlite3.connect(source_path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x)")
    writer.execute("INSERT INTO t VALUES ('in the wal')")
    assert source_path.with_name("wal.sqlite3-wal").stat().st_size > 0
    reader = sqlite3.connect(source_path, isolation_level=None)
    # When it is backed up
    dest = tmp_path / "copy.sqlite3"
    backup_to_file(reader, dest)
    reader.close()
    writer.close()
    # Then the copy alone holds the row, in rollback-journal mode, and verifies
    assert verify_sqlite_file(dest) is None
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert conn.execute("SELECT x FROM t").fetchall() == [("in the wal",)]
    conn.close()


# -- Snapshotter ---------------------------------------------------------------------------------


def test_snapshot_only_after_a_commit_by_another_connection(
    snap: tuple[Snapshotter, FakeStore, Path], tmp_path: Path
) -> None:
    snapshotter, store, db_path = snap
    # Given a restored DB marked clean
    make_db(db_path, ["restored"])
    snapshotter.mark_clean("v0")
    # When nothing was written, or a no-op schema statement ran (the app's start-up)
    write(db_path, "CREATE TABLE IF NOT EXISTS items (id INTEGER)")
    # Then no upload happens
    assert snapshotter.snapshot("periodic") is False
    assert store.uploads == []
    # When a row is committed
    write(db_path, "INSERT INTO items (name, data, created_at) VALUES ('new', '1', 'now')")
    # Then exactly one upload holds it
    assert snapshotter.snapshot("periodic") is True
    assert snapshotter.snapshot("periodic") is False
    assert len(store.uploads) == 1
    assert rows(store.uploads[0], tmp_path, "SELECT name FROM items ORDER BY id") == [("restored",), ("new",)]
    assert snapshotter.last_version_id == "v1"
    snapshotter.close()


def test_empty_start_uploads_once_the_db_has_content(snap: tuple[Snapshotter, FakeStore, Path]) -> None:
    snapshotter, store, db_path = snap
    # Given an empty start (no local file)
    snapshotter.mark_clean(None)
    assert snapshotter.snapshot("periodic") is False
    # When the app only opens the DB (a zero-byte file)
    sqlite3.connect(db_path).close()
    assert db_path.exists()
    # Then there is nothing to upload
    assert snapshotter.snapshot("periodic") is False
    # When it creates its schema
    write(db_path, "CREATE TABLE t (x)")
    # Then that is uploaded, once
    assert snapshotter.snapshot("periodic") is True
    assert snapshotter.snapshot("final") is False
    assert len(store.uploads) == 1
    snapshotter.close()


def test_replaced_db_file_counts_as_changed(
    snap: tuple[Snapshotter, FakeStore, Path], tmp_path: Path
) -> None:
    snapshotter, store, db_path = snap
    # Given a clean DB
    make_db(db_path, ["before"])
    snapshotter.mark_clean("v0")
    # When the app swaps in a new file (new inode) without committing through the old one
    replacement = tmp_path / "replacement.sqlite3"
    make_db(replacement, ["after"])
    os.replace(replacement, db_path)
    # Then the new content is uploaded
    assert snapshotter.snapshot("periodic") is True
    assert rows(store.uploads[0], tmp_path, "SELECT name FROM items") == [("after",)]
    snapshotter.close()


def test_failed_upload_is_retried_on_the_next_check(snap: tuple[Snapshotter, FakeStore, Path]) -> None:
    snapshotter, store, db_path = snap
    # Given a change and a failing store
    make_db(db_path, ["x"])
    snapshotter.mark_clean("v0")
    write(db_path, "DELETE FROM items")
    store.fail = True
    # When the snapshot fails
    with pytest.raises(OSError, match="injected"):
        snapshotter.snapshot("periodic")
    # Then the change is still pending and the next check uploads it
    store.fail = False
    assert snapshotter.snapshot("periodic") is True
    assert snapshotter.last_version_id == "v1"
    snapshotter.close()
