"""Helpers for the local-cloud tests: waiting for asynchronous outcomes, reading what the fixture recorded."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from storyflow_local import LocalCloudConfig

FIXTURE_APP = Path(__file__).resolve().parents[2] / "integration" / "fixtures" / "app"

T = TypeVar("T")


def fixture_config(**overrides: Any) -> LocalCloudConfig:
    """The fixture app, with its two container images mapped to the fixture scripts."""
    containers = FIXTURE_APP / "containers"
    values: dict[str, Any] = {
        "template": FIXTURE_APP / "template.yaml",
        "stack_name": "fixture",
        "write_state_file": False,
        "image_commands": {
            "fixture-worker": [sys.executable, str(containers / "worker.py")],
            "fixture-model": [sys.executable, str(containers / "model_server.py")],
        },
        "ecs_stop_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return LocalCloudConfig(**values)


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def run_execution(cloud: Any, machine_arn: str, payload: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Start an execution and wait until it ends; returns describe_execution."""
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload))["executionArn"]

    def finished() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        return None if described["status"] == "RUNNING" else described

    return wait_for(finished, timeout)


def recorded(cloud: Any, kind: str) -> list[dict[str, Any]]:
    """Bodies the fixture's recorder function stored for events of `kind` (e.g. aws:sns, fixture.app)."""
    table = cloud.outputs["TableName"]
    items = cloud.client("dynamodb").scan(TableName=table)["Items"]
    return [json.loads(i["body"]["S"]) for i in items if i["kind"]["S"] == kind and "body" in i]
