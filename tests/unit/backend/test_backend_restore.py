"""restore_database in-process against the moto S3 server: fallback chain, delete markers, errors."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import KEY, make_db, put_version
from storyflow_backend.s3sync import SnapshotStore
from storyflow_backend.supervisor import RestoreError, restore_database


@pytest.fixture
def store(s3: Any, bucket: str) -> SnapshotStore:
    return SnapshotStore(s3, bucket, KEY)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "storyflow-backend.supervisor"]


def test_all_versions_corrupt_walks_back_to_empty(
    store: SnapshotStore, s3: Any, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given only corrupt versions
    older = put_version(s3, bucket, b"garbage one")
    newer = put_version(s3, bucket, b"garbage two")
    db_path = tmp_path / "db" / "app.sqlite3"
    # When the DB is restored
    with caplog.at_level(logging.INFO):
        restored = restore_database(store, db_path)
    # Then each version is rejected in turn, newest first, and nothing is restored
    assert restored is None
    assert not db_path.exists()
    assert messages(caplog) == [
        f"corrupt DB version {newer}: not an SQLite file (bad header); falling back to {older}",
        f"corrupt DB version {older}: not an SQLite file (bad header); falling back to none (starting empty)",
    ]


def test_delete_marker_means_start_empty(
    store: SnapshotStore, s3: Any, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a good version that was deleted afterwards
    put_version(s3, bucket, make_db(tmp_path / "good.sqlite3", ["one"]))
    marker = s3.delete_object(Bucket=bucket, Key=KEY)["VersionId"]
    # When the DB is restored
    with caplog.at_level(logging.INFO):
        restored = restore_database(store, tmp_path / "db" / "app.sqlite3")
    # Then the deletion wins
    assert restored is None
    assert messages(caplog) == [f"DB at {store.location} is deleted (delete marker {marker}); starting empty"]


def test_versions_after_a_delete_marker_are_restored(
    store: SnapshotStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a deleted version, then a new good one
    put_version(s3, bucket, make_db(tmp_path / "old.sqlite3", ["old"]))
    s3.delete_object(Bucket=bucket, Key=KEY)
    newest = put_version(s3, bucket, make_db(tmp_path / "new.sqlite3", ["new", "newer"]))
    db_path = tmp_path / "db" / "app.sqlite3"
    # When the DB is restored
    # Then the newest version is in place
    assert restore_database(store, db_path) == newest
    with sqlite3.connect(db_path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM items ORDER BY id")] == ["new", "newer"]


def test_missing_bucket_is_an_error_not_an_empty_start(s3: Any, tmp_path: Path) -> None:
    # Given a bucket that does not exist
    store = SnapshotStore(s3, "no-such-bucket-for-backend", KEY)
    # When the DB is restored
    # Then it fails loudly: starting empty would hide the real data behind a new "newest" version
    with pytest.raises(RestoreError, match=r"cannot restore the DB from s3://no-such-bucket-for-backend/"):
        restore_database(store, tmp_path / "app.sqlite3")


def test_stale_local_files_never_leak_into_the_restored_db(
    store: SnapshotStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a stale local DB with a leftover journal from an earlier run, and a good version in S3
    db_path = tmp_path / "db" / "app.sqlite3"
    db_path.parent.mkdir()
    make_db(db_path, ["stale"])
    journal = db_path.with_name(db_path.name + "-journal")
    journal.write_bytes(b"left over")
    good = put_version(s3, bucket, make_db(tmp_path / "good.sqlite3", ["fresh"]))
    # When the DB is restored
    # Then the local file is the S3 version and the leftover journal is gone
    assert restore_database(store, db_path) == good
    assert not journal.exists()
    with sqlite3.connect(db_path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM items")] == ["fresh"]


def test_empty_bucket_removes_a_stale_local_db(store: SnapshotStore, tmp_path: Path) -> None:
    # Given a stale local DB and no version in S3
    db_path = tmp_path / "app.sqlite3"
    make_db(db_path, ["stale"])
    # When the DB is restored
    # Then S3 (the source of truth) wins: the task starts empty
    assert restore_database(store, db_path) is None
    assert not db_path.exists()
