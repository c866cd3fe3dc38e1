"""`serve()` as a container runs it (a separate process): JSON log lines, SIGTERM drains and exits 0."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from tests.unit.serving.conftest import SERVING_DIR, wait_for

pytestmark = pytest.mark.enable_socket

# A container in miniature: a service whose invocation takes `params.seconds`, served by the library.
PROGRAM = textwrap.dedent(
    """
    import sys, time
    from storyflow_serving import logs
    from storyflow_serving.http import serve

    class Slow:
        name = "slow"
        ready = False
        def load(self):
            self.ready = True
        def invoke(self, request):
            time.sleep(float(request.params.get("seconds", 0)))
            return {"output_uri": request.output_uri, "slept": request.params.get("seconds", 0)}

    logs.configure("INFO")
    sys.exit(serve(Slow(), "127.0.0.1", 0, drain_seconds=float(sys.argv[1])))
    """
)
BODY = {"input_uri": "s3://b/in.mp4", "output_uri": "s3://b/out.mp4"}


class Served:
    def __init__(self, tmp_path: Path, drain_seconds: float = 10.0) -> None:
        script = tmp_path / "container.py"
        script.write_text(PROGRAM)
        env = {**os.environ, "PYTHONPATH": str(SERVING_DIR)}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(drain_seconds)], stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._port = threading.Event()
        self.port = 0
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()
        assert self._port.wait(20), f"no banner: {self.raw}"
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.raw.append(line)
            doc = json.loads(line)  # every line is one JSON object
            self.lines.append(doc)
            if "port" in doc and not self._port.is_set():
                self.port = int(doc["port"])
                self._port.set()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_logs_are_one_json_object_per_line(tmp_path: Path) -> None:
    # Given a served container, When it answers an invocation and a bad one
    served = Served(tmp_path)
    try:
        assert wait_for(lambda: requests.get(f"{served.url}/ping", timeout=5).status_code == 200)
        assert requests.post(f"{served.url}/invocations", json=BODY, timeout=10).status_code == 200
        assert requests.post(f"{served.url}/invocations", data=b"[", timeout=10).status_code == 400
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=20) == 0
    finally:
        served.close()
    time.sleep(0.1)
    # Then every stderr line parsed as JSON (the reader asserts it) with level and message
    assert all({"time", "level", "logger", "message"} <= set(doc) for doc in served.lines)
    assert served.lines[0]["message"] == f"serving engine slow on 127.0.0.1:{served.port}"
    requests_logged = [doc for doc in served.lines if doc["message"] == "request" and doc["method"] == "POST"]
    ok, bad = requests_logged
    assert ok["level"] == "INFO" and ok["status"] == 200 and ok["input_uri"] == BODY["input_uri"]
    assert isinstance(ok["duration_ms"], float) and ok["slept"] == 0
    assert bad["status"] == 400 and bad["error"] == "InvalidRequest"
    assert any(doc["message"] == "engine slow loaded" and "duration_ms" in doc for doc in served.lines)


def test_sigterm_lets_the_running_invocation_finish_then_exits_0(tmp_path: Path) -> None:
    # Given a container running a 1 s invocation
    served = Served(tmp_path)
    try:
        assert wait_for(lambda: requests.get(f"{served.url}/ping", timeout=5).status_code == 200)
        answer: dict[str, requests.Response] = {}
        caller = threading.Thread(
            target=lambda: answer.setdefault(
                "r",
                requests.post(
                    f"{served.url}/invocations", json={**BODY, "params": {"seconds": 1.0}}, timeout=30
                ),
            )
        )
        caller.start()
        time.sleep(0.3)
        # When SIGTERM arrives (SageMaker or ECS stopping the container)
        served.proc.send_signal(signal.SIGTERM)
        # Then the running invocation is still answered 200, and the process exits 0
        caller.join(timeout=20)
        assert answer["r"].status_code == 200, answer["r"].text
        assert answer["r"].json()["slept"] == 1.0
        assert served.proc.wait(timeout=20) == 0
        # And it no longer accepts connections
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{served.url}/ping", timeout=2)
    finally:
        served.close()
    assert any(doc["message"] == "signal SIGTERM: shutting down" for doc in served.lines)


def test_sigterm_exits_after_the_drain_deadline_even_if_an_invocation_hangs(tmp_path: Path) -> None:
    # Given a drain deadline of 0.5 s and an invocation that takes 30 s
    served = Served(tmp_path, drain_seconds=0.5)
    try:
        assert wait_for(lambda: requests.get(f"{served.url}/ping", timeout=5).status_code == 200)

        def hang() -> None:
            with contextlib.suppress(requests.ConnectionError):  # expected: the process exits under it
                requests.post(
                    f"{served.url}/invocations", json={**BODY, "params": {"seconds": 30}}, timeout=60
                )

        threading.Thread(target=hang, daemon=True).start()
        time.sleep(0.3)
        # When SIGTERM arrives, Then it exits 0 within a few seconds, saying it cut the invocation off
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
    finally:
        served.close()
    time.sleep(0.1)
    assert any(doc["level"] == "WARNING" and "still running" in doc["message"] for doc in served.lines)
