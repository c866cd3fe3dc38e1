"""Start a container's program: forked from a warm zygote (see `zygote`) when the program is a console
script of this interpreter, otherwise as a new process (`subprocess.Popen`).

Either way the caller gets a process it can treat alike (`WarmProcess` has the part of `Popen` the ECS
agent and the SageMaker adapter use): its pid leads a session of its own (so `os.killpg(pid, ...)` signals
the run and what it started), `stdout`/`stderr` are pipes, `poll()`/`wait()` give the exit status as
`Popen.returncode` does (-N for signal N). A zygote per program is started at deploy for the programs of
the stack's ECS task definitions (one after another, in the background), or at a program's first run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Protocol

log = logging.getLogger("storyflow_local.launcher")

ZYGOTE_SCRIPT = Path(__file__).with_name("zygote.py")
ZYGOTE_START_TIMEOUT = 60.0
# Variables that shape an interpreter's start (import paths, hash seed, preloads): a run whose values differ
# from the zygote's would not be the run it asked for, so it gets a process of its own.
_STARTUP_PREFIXES = ("PYTHON", "LD_")
_CONSOLE_SCRIPT = re.compile(
    r"\A#!(?P<python>\S+)\n(?:#.*\n)?(?:import re\n)?import sys\n"
    r"from (?P<module>[\w.]+) import (?P<function>\w+)\n"
)


class Process(Protocol):
    pid: int
    returncode: int | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def console_entry(program: str) -> str | None:
    """`module:function` of a pip console script run by this interpreter (same bin directory), else None."""
    try:
        with open(program, encoding="utf-8") as handle:
            head = handle.read(2048)
    except (OSError, UnicodeDecodeError):
        return None
    match = _CONSOLE_SCRIPT.match(head)
    if not match or f"sys.exit({match.group('function')}())" not in head:
        return None
    python = match.group("python")
    same_dir = os.path.realpath(os.path.dirname(python)) == os.path.realpath(os.path.dirname(sys.executable))
    if not (same_dir and os.path.basename(python).startswith("python")):
        return None
    return f"{match.group('module')}:{match.group('function')}"


def _startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES) and k != "PYTHONUNBUFFERED"}


class WarmProcess:
    """A run forked by a zygote; its exit status arrives on the run's connection."""

    def __init__(self, args: list[str], conn: socket.socket, stdout: IO[bytes], stderr: IO[bytes] | None):
        self.args = args
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None
        self._conn = conn
        self._reader = conn.makefile("rb")
        first = self._reader.readline().decode().split()
        if len(first) != 2 or first[0] != "pid":
            conn.close()
            raise OSError(f"zygote did not start {args[0]}: {first}")
        self.pid = int(first[1])
        self._exited = threading.Event()
        threading.Thread(target=self._await_exit, name=f"warm-{self.pid}", daemon=True).start()

    def _await_exit(self) -> None:
        words = self._reader.readline().decode().split()
        if len(words) == 2 and words[0] == "exit":
            self.returncode = int(words[1])
        else:  # the zygote died: its run can no longer report, so it ends here too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.returncode = -signal.SIGKILL
        self._reader.close()
        self._conn.close()
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


class Zygote:
    """The zygote process of one console script."""

    def __init__(self, entry: str, env: dict[str, str]) -> None:
        self.entry = entry
        self.startup = _startup(env)
        self._dir = tempfile.mkdtemp(prefix="storyflow-zygote-")
        self.socket_path = os.path.join(self._dir, "z.sock")
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE_SCRIPT), "--socket", self.socket_path, "--entry", entry],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._pump, name=f"zygote-{entry}", daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if line == "ready" and not self.ready.is_set():
                log.info("zygote %s ready (pid %d)", self.entry, self.process.pid)
                self.ready.set()
            else:
                log.info("[zygote %s] %s", self.entry, line)
        self.ready.set()  # exited: spawn() finds it dead

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str | None, merge_stderr: bool) -> WarmProcess:
        """Fork a run; OSError when the zygote cannot (the caller then starts a process of its own)."""
        if not self.ready.wait(ZYGOTE_START_TIMEOUT) or not self.alive:
            raise OSError(f"zygote {self.entry} is not running")
        out_r, out_w = os.pipe()
        err_r, err_w = (out_r, out_w) if merge_stderr else os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.socket_path)
            request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode() + b"\n"
            socket.send_fds(conn, [request], [devnull, out_w, err_w])
        except OSError:
            conn.close()
            for fd in {out_r, out_w, err_r, err_w}:
                os.close(fd)
            raise
        finally:
            os.close(devnull)
        for fd in {out_w, err_w}:
            os.close(fd)
        stdout = open(out_r, "rb")  # noqa: SIM115 - the caller reads and closes it, as with Popen's
        stderr = None if merge_stderr else open(err_r, "rb")  # noqa: SIM115
        try:
            return WarmProcess(argv, conn, stdout, stderr)
        except OSError:
            stdout.close()
            if stderr is not None:
                stderr.close()
            raise

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class Launcher:
    """Zygotes by program path; `popen` forks from one when it can, else starts a new process."""

    def __init__(self, base_env: dict[str, str], enabled: bool = True) -> None:
        self.base_env = base_env
        self.enabled = enabled
        self._zygotes: dict[str, Zygote] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def zygote(self, program: str) -> Zygote | None:
        """The zygote of a program (started now if needed), or None when the program cannot have one."""
        if not self.enabled:
            return None
        with self._lock:
            if self._stopped:
                return None
            found = self._zygotes.get(program)
            if found is not None and (found.alive or not found.ready.is_set()):
                return found
            entry = console_entry(program)
            if entry is None:
                return None
            if found is not None:
                log.warning("zygote %s exited (%s); starting another", entry, found.process.returncode)
                found.stop()
            found = Zygote(entry, self.base_env)
            self._zygotes[program] = found
            return found

    def prewarm(self, programs: list[str]) -> threading.Thread:
        """Start the programs' zygotes one after another, in the background (the thread ends when all are
        ready or have failed)."""

        def run() -> None:
            for program in dict.fromkeys(programs):
                zygote = self.zygote(program)
                if zygote is not None:
                    zygote.ready.wait(ZYGOTE_START_TIMEOUT)

        thread = threading.Thread(target=run, name="zygote-prewarm", daemon=True)
        thread.start()
        return thread

    def popen(
        self, argv: list[str], env: dict[str, str], cwd: str | None = None, merge_stderr: bool = False
    ) -> Process:
        """The program's run, warm when possible; OSError when it cannot start at all."""
        zygote = self.zygote(argv[0])
        if zygote is not None and zygote.startup == _startup(env):
            try:
                return zygote.spawn(argv, env, cwd, merge_stderr)
            except OSError as error:
                log.warning("zygote %s could not fork (%s); a new process instead", zygote.entry, error)
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
        )

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.stop()


def popen(
    launcher: Launcher | None, argv: list[str], env: dict[str, str], cwd: str | None, merge_stderr: bool
) -> Any:
    """`launcher.popen(...)`, or a new process when there is no launcher."""
    if launcher is None:
        return Launcher(env, enabled=False).popen(argv, env, cwd, merge_stderr)
    return launcher.popen(argv, env, cwd, merge_stderr)
