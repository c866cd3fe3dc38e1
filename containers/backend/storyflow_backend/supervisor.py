"""The supervisor: restore the DB from S3, run the app, snapshot on change and on stop.

Change detection: one long-lived read connection asks ``PRAGMA data_version``, which changes exactly
when another connection (any process) committed to the database since the previous ask on the same
connection. The file's (device, inode) is watched too: if the app replaces the file, the connection is
reopened and the database counts as changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError

from storyflow_backend.config import SupervisorConfig
from storyflow_backend.dbfile import backup_to_file, remove_db_files, sha256_file, verify_sqlite_file
from storyflow_backend.s3sync import IntegrityMismatch, SnapshotStore, make_s3_client

log = logging.getLogger("storyflow-backend.supervisor")

# A fingerprint of the committed state: (connection generation, data_version on that connection).
Fingerprint = tuple[int, int]


class RestoreError(Exception):
    """The bucket could not be read: starting empty would hide the real data, so the supervisor stops."""


def restore_database(store: SnapshotStore, db_path: Path) -> str | None:
    """Put the newest good version of the DB at ``db_path``; return its version id (None: start empty).

    A version that is not an SQLite file, fails ``PRAGMA integrity_check`` or does not match its
    recorded checksum is skipped for the previous one. Errors talking to S3 raise RestoreError.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    staging = db_path.with_name(db_path.name + ".restore")
    try:
        versions = store.iter_versions()
        current = next(versions, None)
        if current is None:
            log.info("no DB versions at %s; starting empty", store.location)
        elif current.is_delete_marker:
            log.info(
                "DB at %s is deleted (delete marker %s); starting empty", store.location, current.version_id
            )
            current = None
        while current is not None:
            remove_db_files(staging)
            try:
                store.download(current.version_id, staging)
                reason = verify_sqlite_file(staging)
            except IntegrityMismatch as exc:
                reason = str(exc)
            following = next(versions, None)
            if reason is None:
                remove_db_files(db_path)
                os.replace(staging, db_path)
                log.info(
                    "restored DB version %s (%d bytes) from %s to %s",
                    current.version_id,
                    db_path.stat().st_size,
                    store.location,
                    db_path,
                )
                return current.version_id
            fallback = following.version_id if following is not None else "none (starting empty)"
            log.warning("corrupt DB version %s: %s; falling back to %s", current.version_id, reason, fallback)
            current = following
    except (BotoCoreError, ClientError) as exc:
        raise RestoreError(f"cannot restore the DB from {store.location}: {exc}") from exc
    finally:
        remove_db_files(staging)
    if db_path.exists():
        log.info("removing stale local DB %s (S3 holds no good version)", db_path)
    remove_db_files(db_path)
    return None


class Snapshotter:
    """Uploads a consistent copy of the local DB whenever it changed since the last upload/restore."""

    def __init__(self, db_path: Path, store: SnapshotStore) -> None:
        self._db_path = db_path
        self._store = store
        self._conn: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None
        self._generation = 0
        self._clean: Fingerprint | None = None  # the state S3 already holds
        self._clean_sha: str | None = None
        self.last_version_id: str | None = None

    def _fingerprint(self) -> Fingerprint | None:
        try:
            stat = os.stat(self._db_path)
        except FileNotFoundError:
            self.close()
            return None
        ident = (stat.st_dev, stat.st_ino)
        if self._conn is None or ident != self._ident:
            self.close()
            self._conn = sqlite3.connect(self._db_path, isolation_level=None, timeout=10)
            self._ident = ident
            self._generation += 1
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return (self._generation, int(row[0]))

    def mark_clean(self, version_id: str | None) -> None:
        """Record that S3 holds the current local state (right after a restore)."""
        self._clean = self._fingerprint()
        self._clean_sha = sha256_file(self._db_path) if self._clean is not None else None
        self.last_version_id = version_id

    def snapshot(self, reason: str) -> bool:
        """Upload a snapshot if the DB changed; return True if a new version was written.

        Raises sqlite3.Error, OSError, BotoCoreError or ClientError on failure; the state is then
        still "changed", so the next call tries again.
        """
        fingerprint = self._fingerprint()
        if fingerprint is None or fingerprint == self._clean:
            # Periodic checks are silent when idle; the final one says what S3 holds.
            log.log(
                logging.INFO if reason == "final" else logging.DEBUG,
                "%s snapshot: unchanged since %s",
                reason,
                f"version {self.last_version_id}" if self.last_version_id else "start (no version)",
            )
            return False
        assert self._conn is not None
        if int(self._conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
            log.debug("%s snapshot: the DB file is empty; nothing to upload", reason)
            self._clean = fingerprint
            return False
        fd, name = tempfile.mkstemp(prefix=".snapshot-", suffix=".sqlite3", dir=self._db_path.parent)
        os.close(fd)
        copy = Path(name)
        try:
            backup_to_file(self._conn, copy)
            sha = sha256_file(copy)
            if sha == self._clean_sha:
                log.debug("%s snapshot: content unchanged", reason)
                self._clean = fingerprint
                return False
            size = copy.stat().st_size
            version_id = self._store.upload(copy, sha)
        finally:
            remove_db_files(copy)
        self._clean, self._clean_sha, self.last_version_id = fingerprint, sha, version_id
        if version_id is None:
            log.warning(
                "%s snapshot uploaded to %s (%d bytes) but the bucket is NOT versioned",
                reason,
                self._store.location,
                size,
            )
        else:
            log.info(
                "%s snapshot uploaded: version %s (%d bytes) to %s",
                reason,
                version_id,
                size,
                self._store.location,
            )
        return True

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None
        self._ident = None


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel SIGKILL the child when its parent dies (Linux's
    PR_SET_PDEATHSIG), and kills it at once if the parent is already gone; None off Linux.

    libc is loaded here, before the fork: the child only calls into it. The signal follows the thread
    that forks: the supervisor starts its app from its main thread, which lives as long as it does.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _exit_status(returncode: int) -> int:
    """A child's returncode as a shell-style exit status (killed by signal N → 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    def __init__(self, config: SupervisorConfig, store: SnapshotStore | None = None) -> None:
        self.config = config
        self.store = store or SnapshotStore(make_s3_client(), config.bucket, config.key)
        self.snapshotter = Snapshotter(config.db_path, self.store)
        self._wake = threading.Event()
        self._exited = threading.Event()
        self._stop_signal: int | None = None

    # -- signals ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Keep the handler minimal: the main loop logs and acts.
        if self._stop_signal is None:
            self._stop_signal = signum
        self._wake.set()

    def _install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    # -- app process -----------------------------------------------------------------------------
    def _app_env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        env["DB_PATH"] = str(self.config.db_path)
        env["PORT"] = str(self.config.port)
        return env

    def _start_app(self) -> subprocess.Popen[bytes]:
        # A new session: a terminal's Ctrl-C reaches only the supervisor, which forwards SIGTERM. And the
        # app dies with the supervisor, however it dies (SIGKILL too): never an orphan holding the port.
        proc = subprocess.Popen(
            self.config.app_command,
            env=self._app_env(),
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )

        def wait_for_exit() -> None:
            proc.wait()
            self._exited.set()
            self._wake.set()

        threading.Thread(target=wait_for_exit, name="app-waiter", daemon=True).start()
        return proc

    def _stop_app(self, proc: subprocess.Popen[bytes]) -> None:
        if not self._exited.is_set():
            timeout = self.config.stop_timeout_seconds
            log.info("stopping app pid=%d (SIGTERM, waiting up to %gs)", proc.pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            if not self._exited.wait(timeout):
                log.warning("app pid=%d did not stop within %gs; killing it", proc.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                self._exited.wait()
        # Anything the app left behind in its process group must not write after the final snapshot.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    # -- main ------------------------------------------------------------------------------------
    def _try_snapshot(self, reason: str) -> bool:
        """Snapshot if changed; log failures. Returns False only when a needed upload failed."""
        try:
            self.snapshotter.snapshot(reason)
        except (sqlite3.Error, OSError, BotoCoreError, ClientError) as exc:
            log.error("%s snapshot failed: %s: %s", reason, type(exc).__name__, exc)
            return False
        return True

    def run(self) -> int:
        self._install_signal_handlers()
        cfg = self.config
        try:
            version_id = restore_database(self.store, cfg.db_path)
        except RestoreError as exc:
            log.error("%s", exc)
            return 1
        self.snapshotter.mark_clean(version_id)
        if self._stop_signal is not None:
            log.info("received %s before the app started; exiting", signal.Signals(self._stop_signal).name)
            return 0

        try:
            proc = self._start_app()
        except OSError as exc:
            log.error("cannot start app %s: %s", cfg.app_command, exc)
            return 127 if isinstance(exc, FileNotFoundError) else 126
        log.info(
            "started %s app pid=%d on port %d (db %s, snapshot check every %gs)",
            "custom" if cfg.custom_app else "built-in",
            proc.pid,
            cfg.port,
            cfg.db_path,
            cfg.snapshot_seconds,
        )

        next_due = time.monotonic() + cfg.snapshot_seconds
        while True:
            self._wake.wait(timeout=max(0.0, next_due - time.monotonic()))
            if self._stop_signal is not None or self._exited.is_set():
                break
            if time.monotonic() >= next_due:
                self._try_snapshot("periodic")
                next_due = time.monotonic() + cfg.snapshot_seconds

        if self._stop_signal is not None:
            log.info("received %s; stopping", signal.Signals(self._stop_signal).name)
            self._stop_app(proc)
            log.info("app stopped with status %d", _exit_status(proc.returncode))
            status = 0
        else:
            status = _exit_status(proc.returncode)
            log.warning("app exited on its own with status %d", status)
            self._stop_app(proc)  # reaps whatever is left in its process group

        uploaded = self._try_snapshot("final")
        self.snapshotter.close()
        if not uploaded:
            log.error(
                "final snapshot failed; the newest version in S3 is %s",
                self.snapshotter.last_version_id or "none",
            )
            status = status or 1
        log.info("exiting with status %d", status)
        return status
