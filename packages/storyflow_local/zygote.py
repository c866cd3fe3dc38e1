"""A warm, pre-imported process that forks runs of one console script (`python -m storyflow_local.zygote`).

A container program of this project (e.g. `storyflow-media`) spends most of a short run starting Python
and importing PyAV, NumPy and boto3. The zygote imports the program's module once (and reads botocore's
service models once), then forks a child per run. Each child is a separate run, as a new process would be:

* its own argv (`sys.argv`), environment (`os.environ`, inherited by what it starts), working directory;
* stdin, stdout and stderr are the descriptors the caller sent (stdio objects rebuilt on them, unbuffered
  when the run's `PYTHONUNBUFFERED` says so, like the interpreter would);
* a session of its own (pid = process group id), signals at their defaults (SIGTERM ends it unless the
  program handles it), the program's exit status reported like `subprocess` reports it (-N on signal N);
* `SystemExit`, uncaught exceptions (traceback on stderr, exit 1), non-daemon threads and `atexit`
  handlers end the run as they end an interpreter.

What differs from a fresh interpreter: modules are already imported (their import-time state comes from
the zygote's environment, so the caller only uses a zygote when the variables that shape an interpreter's
start, PYTHON*, LD_*, agree), and `/proc/<pid>/environ` shows the zygote's environment, not the run's
(what the run starts gets the run's environment; a process found by its environment in /proc, such as a
server container inspected from outside, is started afresh instead: see `warm_start`).

Protocol on a Unix socket, one connection per run: the caller sends one JSON line
`{"argv": [...], "env": {...}, "cwd": "..."}` with three descriptors (stdin, stdout, stderr); the
zygote answers `pid <n>` once the child has its own session, and `exit <code>` when it has exited.
The zygote ends when its stdin closes (its parent, the local cloud, went away) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from typing import Any


class _SearchPaths(list[str]):
    """A shared Loader's search path: boto3 appends its data directory once per Session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


# The services this project's container programs call (the media steps: S3, and DynamoDB for a job's
# progress; the engines: S3).
WARM_SERVICES = ("s3", "dynamodb")


def warm_botocore() -> None:
    """Parse the service models the programs' clients need (`WARM_SERVICES`) once, into one botocore Loader
    that every Session of every run then shares (the technique of `lambda_adapter.shared_data_loader`; a run
    with an AWS_DATA_PATH of its own gets a Loader of its own)."""
    try:
        import botocore.session
        from botocore.loaders import create_loader
    except ImportError:
        return
    shared = create_loader(None)
    shared._search_paths = _SearchPaths(shared.search_paths)  # type: ignore[attr-defined]

    def register(session: Any) -> None:
        def loader() -> Any:
            path = session.get_config_variable("data_path")
            return shared if path is None else create_loader(path)

        session._components.lazy_register_component("data_loader", loader)

    setattr(botocore.session.Session, "_register_data_loader", register)  # noqa: B010 - private hook
    session = botocore.session.Session()
    for service in WARM_SERVICES:
        session.create_client(
            service, region_name="us-east-1", aws_access_key_id="w", aws_secret_access_key="w"
        )


def _stdio(fd: int, mode: str, unbuffered: bool) -> io.TextIOWrapper:
    raw = io.FileIO(fd, mode, closefd=False)
    if fd == 0:
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8")
    buffered: Any = raw if unbuffered else io.BufferedWriter(raw)
    errors = "backslashreplace" if fd == 2 else "strict"
    return io.TextIOWrapper(
        buffered, encoding="utf-8", errors=errors, line_buffering=fd == 2, write_through=unbuffered
    )


def _run_child(entry: Any, request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become the run, run the entry point, return its exit status."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request.get("cwd") or os.getcwd())
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(sys.argv[0])  # a console script's own directory, not the zygote's
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin, sys.stdout = _stdio(0, "r", False), _stdio(1, "w", unbuffered)
    sys.stderr = _stdio(2, "w", True)
    for name in ("stdin", "stdout", "stderr"):
        setattr(sys, f"__{name}__", getattr(sys, name))
    code = 0
    try:
        code = _exit_code(entry())
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads, as at interpreter exit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 120  # what CPython exits with when flushing stdout fails
    return code


def _exit_code(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


class Zygote:
    """The serving loop: accept a run, fork it, report its pid and, later, its exit."""

    def __init__(self, entry: Any, listener: socket.socket) -> None:
        self.entry = entry
        self.listener = listener
        self.runs: dict[int, socket.socket] = {}
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up fd hears SIGCHLD
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self._wake_r, selectors.EVENT_READ, "child")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "parent")
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    self._accept()
                elif key.data == "child":
                    os.read(self._wake_r, 4096)
                    self._reap()
                elif not os.read(sys.stdin.fileno(), 4096):
                    return  # the local cloud went away: runs under way carry on, no new ones

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
            while not data.endswith(b"\n"):
                more = conn.recv(1 << 16)
                if not more:
                    raise ConnectionError("request ended early")
                data += more
            request = json.loads(data)
            if len(fds) != 3:
                raise ValueError(f"expected 3 descriptors, got {len(fds)}")
        except (OSError, ValueError) as error:
            conn.close()
            print(f"zygote: bad request: {error}", file=sys.stderr, flush=True)
            return
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._child(request, fds, conn, ready_r, ready_w)
        os.close(ready_w)
        os.read(ready_r, 1)  # the child has its own session: signalling its group can no longer miss
        os.close(ready_r)
        for fd in fds:
            os.close(fd)
        self.runs[pid] = conn
        conn.sendall(f"pid {pid}\n".encode())
        self._reap()

    def _child(
        self, request: dict[str, Any], fds: list[int], conn: socket.socket, ready_r: int, ready_w: int
    ) -> None:
        code = 1
        try:
            os.setsid()
            os.write(ready_w, b"x")
            for fd in (ready_r, ready_w, self._wake_r, self._wake_w):
                os.close(fd)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            self.listener.close()
            conn.close()
            for other in self.runs.values():
                other.close()
            code = _run_child(self.entry, request, fds)
        finally:
            if code < 0:  # end by the signal, as an interpreter killed by it would
                signal.signal(-code, signal.SIG_DFL)
                os.kill(os.getpid(), -code)
            os._exit(code)

    def _reap(self) -> None:
        while self.runs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.runs.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storyflow_local.zygote")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--entry", required=True, help="module:function of the console script")
    args = parser.parse_args(argv)
    module, _, function = args.entry.partition(":")
    entry = getattr(importlib.import_module(module), function)
    warm_botocore()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(64)
    print("ready", flush=True)
    Zygote(entry, listener).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
