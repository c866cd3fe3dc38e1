"""The storyflow-backend command line and its environment settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from storyflow_backend.cli import main
from storyflow_backend.config import ConfigError, SupervisorConfig


def test_help_explains_every_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in (
        "DB_BUCKET",
        "DB_KEY",
        "DB_PATH",
        "SNAPSHOT_SECONDS",
        "PORT",
        "APP_COMMAND",
        "STOP_TIMEOUT_SECONDS",
    ):
        assert name in out
    assert "app" in out and "supervise" in out


def test_missing_bucket_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DB_BUCKET", raising=False)
    assert main([]) == 2
    assert "DB_BUCKET is required" in capsys.readouterr().err


def test_defaults() -> None:
    config = SupervisorConfig.from_env({"DB_BUCKET": "b"})
    assert config.key == "backend/app.sqlite3"
    assert config.db_path == Path("/tmp/storyflow-backend/app.sqlite3")
    assert (config.snapshot_seconds, config.port, config.stop_timeout_seconds) == (30.0, 8000, 20.0)
    assert config.app_command == [sys.executable, "-m", "storyflow_backend", "app"]
    assert config.custom_app is False


def test_app_command_is_split_like_a_shell_would() -> None:
    config = SupervisorConfig.from_env(
        {"DB_BUCKET": "b", "APP_COMMAND": "gunicorn -b '0.0.0.0:8000' app:api"}
    )
    assert config.app_command == ["gunicorn", "-b", "0.0.0.0:8000", "app:api"]
    assert config.custom_app is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SNAPSHOT_SECONDS": "0"}, "SNAPSHOT_SECONDS must be > 0"),
        ({"SNAPSHOT_SECONDS": "soon"}, "SNAPSHOT_SECONDS must be a number"),
        ({"STOP_TIMEOUT_SECONDS": "-1"}, "STOP_TIMEOUT_SECONDS must be > 0"),
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"PORT": "70000"}, "PORT must be in 1..65535"),
        ({"APP_COMMAND": "run 'unterminated"}, "APP_COMMAND cannot be split"),
    ],
)
def test_invalid_settings_are_rejected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SupervisorConfig.from_env({"DB_BUCKET": "b", **env})
