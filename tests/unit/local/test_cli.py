"""`storyflow local up`: ready, prints how to use it, stops cleanly on SIGTERM and frees its ports."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from storyflow_local.cli import parse_parameters
from tests.unit.local.support import FIXTURE_APP, wait_for


def _port_open(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def test_up_runs_until_sigterm(tmp_path: Path) -> None:
    # Given `local up` on the fixture template
    state = tmp_path / "local.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storyflow_local.cli",
            "up",
            "--template",
            str(FIXTURE_APP / "template.yaml"),
            "--state-file",
            str(state),
            "--parameter",
            "Greeting=hey",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # When it is ready, Then the state file points at a live emulator and API
        wait_for(lambda: state.exists() or process.poll() is not None, timeout=90, interval=0.1)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        info = json.loads(state.read_text())
        assert set(info) == {"endpoint_url", "api_url", "region", "outputs"}
        assert info["outputs"]["ApiUrl"] == info["api_url"]
        with urllib.request.urlopen(f"{info['endpoint_url']}/moto-api/", timeout=5) as response:
            assert response.status == 200
        assert _port_open(info["api_url"])
    finally:
        # When it gets SIGTERM
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    # Then it printed how to use it, exited 0, removed its state and freed its ports
    assert process.returncode == 0, err
    assert "export AWS_ENDPOINT_URL=" in out and "export STORYFLOW_API_URL=" in out
    assert not state.exists()
    time.sleep(0.2)
    assert not _port_open(info["endpoint_url"]) and not _port_open(info["api_url"])


def test_parameters_parse() -> None:
    assert parse_parameters(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
