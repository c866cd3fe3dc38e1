"""Settings of the supervisor and the built-in app, read from the environment."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB_KEY = "backend/app.sqlite3"
DEFAULT_DB_PATH = "/tmp/storyflow-backend/app.sqlite3"
DEFAULT_SNAPSHOT_SECONDS = 30.0
DEFAULT_PORT = 8000
# ECS gives a container stopTimeout (default 30 s) between SIGTERM and SIGKILL; the app gets most of
# it and the supervisor keeps the rest for the final snapshot.
DEFAULT_STOP_TIMEOUT_SECONDS = 20.0

ENV_HELP = """\
environment:
  DB_BUCKET             versioned S3 bucket holding the database snapshots (required by the supervisor)
  DB_KEY                object key of the database (default: backend/app.sqlite3)
  DB_PATH               local database file (default: /tmp/storyflow-backend/app.sqlite3)
  SNAPSHOT_SECONDS      how often to check the database and upload a snapshot if it changed (default: 30)
  PORT                  port the app listens on (default: 8000)
  APP_COMMAND           command to run instead of the built-in app (split like a shell would; no shell
                        is involved); it gets DB_PATH and PORT in its environment
  STOP_TIMEOUT_SECONDS  how long to wait for the app after forwarding SIGTERM before killing it
                        (default: 20; keep it below the ECS stopTimeout, default 30)
  LOG_LEVEL             DEBUG, INFO (default), WARNING or ERROR
  AWS_ENDPOINT_URL, AWS_REGION, ...  the usual boto3 settings
"""


class ConfigError(ValueError):
    """An environment variable is missing or invalid."""


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be > 0, got {raw!r}")
    return value


def port_from_env(env: Mapping[str, str]) -> int:
    raw = env.get("PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"PORT must be an integer, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PORT must be in 1..65535, got {port}")
    return port


def db_path_from_env(env: Mapping[str, str]) -> Path:
    return Path(env.get("DB_PATH", "").strip() or DEFAULT_DB_PATH)


def builtin_app_command() -> list[str]:
    """The built-in app, run with the supervisor's own interpreter."""
    return [sys.executable, "-m", "storyflow_backend", "app"]


@dataclass(frozen=True)
class SupervisorConfig:
    bucket: str
    key: str
    db_path: Path
    snapshot_seconds: float
    port: int
    app_command: list[str]
    custom_app: bool
    stop_timeout_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SupervisorConfig:
        bucket = env.get("DB_BUCKET", "").strip()
        if not bucket:
            raise ConfigError(
                "DB_BUCKET is required (the versioned bucket for the database); "
                "run `storyflow-backend app` to serve without S3 sync"
            )
        key = env.get("DB_KEY", "").strip() or DEFAULT_DB_KEY
        raw_command = env.get("APP_COMMAND", "").strip()
        if raw_command:
            try:
                command = shlex.split(raw_command)
            except ValueError as exc:
                raise ConfigError(f"APP_COMMAND cannot be split: {exc}") from None
        else:
            command = builtin_app_command()
        return cls(
            bucket=bucket,
            key=key,
            db_path=db_path_from_env(env),
            snapshot_seconds=_positive_seconds(env, "SNAPSHOT_SECONDS", DEFAULT_SNAPSHOT_SECONDS),
            port=port_from_env(env),
            app_command=command,
            custom_app=bool(raw_command),
            stop_timeout_seconds=_positive_seconds(env, "STOP_TIMEOUT_SECONDS", DEFAULT_STOP_TIMEOUT_SECONDS),
        )
