"""API fixtures: proxy events from tests/events/api_*.json, the real handler, moto state machines."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from storyflow import aws
from storyflow.openapi import load_api_module
from tests.support.functions import FakeContext
from tests.unit.api.boto_cache import shared_botocore_loader  # noqa: F401 (session fixture)
from tests.unit.api.moto_stack import _module_account, module_lived_stack  # noqa: F401 (overrides the shared `stack`)

EVENTS = Path(__file__).resolve().parents[2] / "events"
KINDS_WITH_MACHINES = ("stereo", "video", "tts", "story")
# A trivial machine: moto records executions (RUNNING until stopped); enough to see starts and stops.
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def load_event(name: str) -> dict[str, Any]:
    """A stored API Gateway REST proxy event (tests/events/<name>.json), fresh for each use."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return copy.deepcopy(data)


def with_body(event: dict[str, Any], body: Any) -> dict[str, Any]:
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    return event


def with_job_id(event: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Point a /jobs/{job_id}... event at another job id (path, pathParameters and requestContext)."""
    old = event["pathParameters"]["job_id"]
    event["path"] = event["path"].replace(old, job_id)
    event["requestContext"]["path"] = event["requestContext"]["path"].replace(old, job_id)
    event["pathParameters"] = {"job_id": job_id}
    return event


def with_query(event: dict[str, Any], **params: str) -> dict[str, Any]:
    event["queryStringParameters"] = params or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in params.items()} or None
    return event


@dataclass
class ApiResult:
    status: int
    body: Any
    headers: dict[str, Any]


@pytest.fixture(scope="session")
def api_module() -> ModuleType:
    return load_api_module()


@pytest.fixture
def call_api(stack: dict[str, Any], api_module: ModuleType) -> Callable[[dict[str, Any]], ApiResult]:
    """Run the real Lambda handler (decorators included) on a proxy event; parse its JSON answer."""

    def call(event: dict[str, Any]) -> ApiResult:
        response = api_module.handler(event, FakeContext(function_name="storyflow-api"))
        body = json.loads(response["body"]) if response.get("body") else None
        headers = dict(response.get("headers") or {})
        headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v})
        return ApiResult(response["statusCode"], body, headers)

    return call


@pytest.fixture
def state_machines(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Given a deployed (trivial) state machine for every kind, wired into the function's environment."""
    sfn = aws.client("stepfunctions")
    arns = {}
    for kind in KINDS_WITH_MACHINES:
        arn = sfn.create_state_machine(
            name=f"storyflow-{kind}",
            definition=PASS_DEFINITION,
            roleArn="arn:aws:iam::123456789012:role/storyflow-states",
        )["stateMachineArn"]
        monkeypatch.setenv(f"{kind.upper()}_STATE_MACHINE_ARN", arn)
        arns[kind] = arn
    return arns


def executions() -> list[dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    found = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        found += sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    return found


def jobs_in_table(stack: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.table(stack["JOBS_TABLE"]).scan()["Items"]
    return items


def objects_in_buckets(stack: dict[str, Any]) -> list[str]:
    s3 = aws.client("s3")
    keys = []
    for bucket in (stack["INPUT_BUCKET"], stack["OUTPUT_BUCKET"]):
        keys += [f"{bucket}/{o['Key']}" for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return keys


@pytest.fixture
def assert_nothing_written(stack: dict[str, Any]) -> Callable[[], None]:
    def check() -> None:
        assert jobs_in_table(stack) == [], "a refused request wrote a job item"
        assert objects_in_buckets(stack) == [], "a refused request wrote an object"
        assert executions() == [], "a refused request started an execution"

    return check
