"""SQLite file helpers: verification of a downloaded copy, consistent backups, cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
# Files SQLite keeps beside a database; a stale one next to a restored file would be replayed into it.
SIDECAR_SUFFIXES = ("-journal", "-wal", "-shm")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_db_files(path: Path) -> None:
    """Remove a database file and its journal/WAL sidecars, if present."""
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDECAR_SUFFIXES)):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


def verify_sqlite_file(path: Path) -> str | None:
    """Return None when ``path`` is a healthy SQLite database, else the reason it is not.

    Checks the header magic, then runs ``PRAGMA integrity_check`` (which must answer exactly ``ok``).
    The file is a private copy: opening it may create and remove sidecar files next to it.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        return f"cannot read file: {exc}"
    if not header:
        return "not an SQLite file (empty)"
    if not header.startswith(SQLITE_MAGIC):
        return "not an SQLite file (bad header)"
    if len(header) < 100:
        return f"not an SQLite file (truncated header, {len(header)} bytes)"
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"integrity_check failed: {exc}"
    finally:
        for suffix in SIDECAR_SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + suffix).unlink()
    if rows != ["ok"]:
        detail = "; ".join(rows[:3]) + (f" (+{len(rows) - 3} more)" if len(rows) > 3 else "")
        return f"integrity_check: {detail or 'no result'}"
    return None


def backup_to_file(source: sqlite3.Connection, dest: Path) -> None:
    """Write a consistent copy of ``source`` (committed data, WAL included) to a fresh file ``dest``.

    Uses the online backup API in one step, so the copy is a single point-in-time state. The copy is
    switched to rollback-journal mode so it is one self-contained file.
    """
    remove_db_files(dest)
    target = sqlite3.connect(dest, isolation_level=None)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE").fetchall()
    finally:
        target.close()
