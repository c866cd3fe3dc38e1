"""Fixtures for the backend container: a moto S3 server on 127.0.0.1 and the supervisor as a subprocess."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # backend_helpers, whatever the import mode

from backend_helpers import BACKEND_DIR, FAKE_AWS, BackendProcess, StartBackend, free_port


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake credentials and the moto endpoint, for this process and the subprocesses."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    env = {**FAKE_AWS, "AWS_ENDPOINT_URL": moto_endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh versioned bucket."""
    name = f"backend-db-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def start_backend(aws_env: dict[str, str], bucket: str, tmp_path: Path) -> Iterator[StartBackend]:
    """Start `python -m storyflow_backend` with DB_BUCKET=bucket; keyword arguments override the env."""
    started: list[BackendProcess] = []

    def start(**overrides: str) -> BackendProcess:
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "DB_", "APP_COMMAND", "SNAPSHOT_", "STOP_TIMEOUT"))
        }
        env.update(aws_env)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(BACKEND_DIR), os.environ.get("PYTHONPATH")])),
                "PYTHONUNBUFFERED": "1",
                "DB_BUCKET": bucket,
                "DB_PATH": str(tmp_path / "db" / "app.sqlite3"),
                "PORT": str(port),
                "SNAPSHOT_SECONDS": "1",
                "LOG_LEVEL": "INFO",
            }
        )
        env.update(overrides)
        backend = BackendProcess([sys.executable, "-m", "storyflow_backend"], env, port)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.kill_leftovers()
