"""The supervisor as a real subprocess against a moto S3 server: restore, snapshots, stop, APP_COMMAND."""

from __future__ import annotations

import shlex
import signal
import socket
import sqlite3
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import KEY, StartBackend, damaged_db, make_db, put_version, version_ids


def rows_in_version(s3: Any, bucket: str, version_id: str, tmp_path: Path, table: str = "items") -> list[Any]:
    copy = tmp_path / f"check-{version_id}.sqlite3"
    copy.write_bytes(s3.get_object(Bucket=bucket, Key=KEY, VersionId=version_id)["Body"].read())
    conn = sqlite3.connect(copy)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


def write_app(tmp_path: Path, body: str) -> str:
    """A custom app script; returns an APP_COMMAND running it with this interpreter."""
    script = tmp_path / "custom_app.py"
    script.write_text(textwrap.dedent(body))
    return shlex.join([sys.executable, str(script)])


def test_empty_bucket_starts_empty_and_serves_health(start_backend: StartBackend) -> None:
    # Given a versioned bucket without any DB version
    # When the supervisor starts
    backend = start_backend()
    # Then it says so, starts empty and the built-in app answers /health/
    backend.wait_for_log(r"no DB versions at s3://\S+; starting empty")
    assert backend.wait_healthy() == {"status": "ok", "items": 0}
    # And SIGINT (Ctrl-C) stops it as cleanly as SIGTERM
    assert backend.stop(signal.SIGINT) == 0
    backend.wait_for_log(r"received SIGINT; stopping")
    backend.wait_for_log(r"app stopped with status 0")
    backend.wait_for_log(r"exiting with status 0")


def test_rows_survive_sigterm_and_restart(
    start_backend: StartBackend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a running backend whose periodic snapshot never comes due
    first = start_backend(SNAPSHOT_SECONDS="3600")
    first.wait_healthy()
    # When two items are written through the HTTP app and the task is stopped with SIGTERM
    for name, data in (("alpha", {"n": 1}), ("beta", [1, "two", None])):
        status, body = first.request("POST", "/items/", {"name": name, "data": data})
        assert status == 201 and isinstance(body["id"], int)
    assert first.stop() == 0
    # Then the app was stopped, the final snapshot is a new S3 version, and the supervisor exited 0
    first.wait_for_log(r"received SIGTERM; stopping")
    first.wait_for_log(r"app stopped with status 0")
    uploaded = first.wait_for_log(r"final snapshot uploaded: version (\S+)").group(1)
    assert version_ids(s3, bucket) == [uploaded]

    # When a new task starts on a fresh local disk
    restarted = start_backend(SNAPSHOT_SECONDS="3600", DB_PATH=str(tmp_path / "fresh" / "app.sqlite3"))
    # Then it restores that version and serves the rows
    restarted.wait_for_log(rf"restored DB version {uploaded} ")
    assert restarted.wait_healthy() == {"status": "ok", "items": 2}
    status, body = restarted.request("GET", "/items/")
    assert status == 200
    assert [(item["name"], item["data"]) for item in body["items"]] == [
        ("alpha", {"n": 1}),
        ("beta", [1, "two", None]),
    ]
    # And stopping it without changes adds no version
    assert restarted.stop() == 0
    restarted.wait_for_log(rf"final snapshot: unchanged since version {uploaded}")
    assert version_ids(s3, bucket) == [uploaded]


def test_periodic_snapshot_only_when_changed(
    start_backend: StartBackend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a bucket holding a DB with one item, and a backend checking every 0.2 s
    seeded = put_version(s3, bucket, make_db(tmp_path / "seed.sqlite3", ["seed"]))
    backend = start_backend(SNAPSHOT_SECONDS="0.2", LOG_LEVEL="DEBUG")
    backend.wait_for_log(rf"restored DB version {seeded} ")
    assert backend.wait_healthy()["items"] == 1
    # When it idles for two checks
    backend.wait_for_log(r"periodic snapshot: unchanged", count=2)
    # Then no version was added (opening the restored DB is not a change)
    assert version_ids(s3, bucket) == [seeded]

    # When an item is written
    status, _ = backend.request("POST", "/items/", {"name": "new", "data": 1})
    assert status == 201
    # Then the next check uploads exactly one new version holding it
    uploaded = backend.wait_for_log(r"periodic snapshot uploaded: version (\S+)").group(1)
    mark = backend.line_count()
    backend.wait_for_log(r"periodic snapshot: unchanged", after=mark, count=2)
    assert version_ids(s3, bucket) == [uploaded, seeded]
    assert [row[1] for row in rows_in_version(s3, bucket, uploaded, tmp_path)] == ["seed", "new"]

    # And the stop takes no extra snapshot
    assert backend.stop() == 0
    backend.wait_for_log(rf"final snapshot: unchanged since version {uploaded}")
    assert version_ids(s3, bucket) == [uploaded, seeded]


def test_corrupt_newest_versions_fall_back_to_the_newest_good_one(
    start_backend: StartBackend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a good version with two items, then (oldest to newest) four corrupt versions on top of it:
    # damaged pages behind a valid header, an empty object, a checksum mismatch, and plain garbage
    good = put_version(s3, bucket, make_db(tmp_path / "good.sqlite3", ["one", "two"]))
    damaged = put_version(s3, bucket, damaged_db(tmp_path))
    empty = put_version(s3, bucket, b"")
    mismatch = put_version(s3, bucket, make_db(tmp_path / "other.sqlite3", ["x"]), sha256="0" * 64)
    garbage = put_version(s3, bucket, b"this is not a database at all")
    # When the backend starts
    backend = start_backend()
    # Then it logs why each corrupt version was rejected and which one it tries next
    for corrupt, reason, previous in (
        (garbage, r"not an SQLite file \(bad header\)", mismatch),
        (mismatch, r"sha256 mismatch", empty),
        (empty, r"not an SQLite file \(empty\)", damaged),
        (damaged, r"integrity_check", good),
    ):
        backend.wait_for_log(rf"corrupt DB version {corrupt}: {reason}.*; falling back to {previous}$")
    # And it restores the good version and serves its rows
    backend.wait_for_log(rf"restored DB version {good} ")
    assert backend.wait_healthy() == {"status": "ok", "items": 2}
    assert backend.stop() == 0


def test_custom_app_command_gets_env_and_its_exit_status_is_kept(
    start_backend: StartBackend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given APP_COMMAND: an app that records the PORT it was given in DB_PATH, then exits with status 3
    command = write_app(
        tmp_path,
        """
        import os, sqlite3
        conn = sqlite3.connect(os.environ["DB_PATH"])
        conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO kv VALUES ('port', ?)", (os.environ["PORT"],))
        conn.commit()
        conn.close()
        raise SystemExit(3)
        """,
    )
    # When the supervisor runs it
    backend = start_backend(APP_COMMAND=command, SNAPSHOT_SECONDS="3600")
    # Then, when the app dies on its own, the supervisor takes a final snapshot and exits with its status
    assert backend.wait() == 3
    backend.wait_for_log(r"started custom app pid=\d+")
    backend.wait_for_log(r"app exited on its own with status 3")
    uploaded = backend.wait_for_log(r"final snapshot uploaded: version (\S+)").group(1)
    assert rows_in_version(s3, bucket, uploaded, tmp_path, table="kv") == [("port", str(backend.port))]


def test_app_ignoring_sigterm_is_killed_after_the_stop_timeout(
    start_backend: StartBackend, s3: Any, bucket: str, tmp_path: Path
) -> None:
    # Given a custom app that writes a row, then ignores SIGTERM
    command = write_app(
        tmp_path,
        """
        import os, signal, sqlite3, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        conn = sqlite3.connect(os.environ["DB_PATH"])
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('kept')")
        conn.commit()
        print("custom app ready", flush=True)
        while True:
            time.sleep(1)
        """,
    )
    backend = start_backend(APP_COMMAND=command, SNAPSHOT_SECONDS="3600", STOP_TIMEOUT_SECONDS="0.5")
    backend.wait_for_log(r"custom app ready")
    # When the supervisor gets SIGTERM
    code = backend.stop()
    # Then it kills the app after the bound, still takes the final snapshot and exits 0
    assert code == 0
    backend.wait_for_log(r"did not stop within 0.5s; killing it")
    uploaded = backend.wait_for_log(r"final snapshot uploaded: version (\S+)").group(1)
    assert rows_in_version(s3, bucket, uploaded, tmp_path, table="t") == [("kept",)]


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _port_free(port: int) -> bool:
    """A server could listen on the port (as the app's does, with SO_REUSEADDR: TIME_WAIT is no owner)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_a_supervisor_killed_with_sigkill_takes_its_app_with_it(start_backend: StartBackend) -> None:
    # Given a running backend (the supervisor and the app it started, in the app's own session)
    backend = start_backend()
    backend.wait_healthy()
    app_pid = int(backend.wait_for_log(r"app pid=(\d+)").group(1))
    # When the supervisor is SIGKILLed (no handler runs: an OOM kill, a crash)
    backend.proc.kill()
    backend.wait()
    # Then its app dies too and the port is free for the next task (not "Address already in use")
    deadline = time.monotonic() + 10
    while not (_gone(app_pid) and _port_free(backend.port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(app_pid), f"app pid={app_pid} outlived its supervisor"
    assert _port_free(backend.port)
