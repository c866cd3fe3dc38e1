"""GET /workflows (the registry, for clients that build forms from it) and CORS for the dashboard's origin."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import pytest

from storyflow import registry
from storyflow.api import catalog, cors
from storyflow.openapi import API_APP
from storyflow.settings import Settings
from tests.support.functions import FakeContext
from tests.unit.api.conftest import ApiResult, load_event

Call = Callable[[dict[str, Any]], ApiResult]


def workflows_event(origin: str | None = None) -> dict[str, Any]:
    event = load_event("api_health")
    event["resource"] = event["path"] = "/workflows"
    event["requestContext"]["resourcePath"] = "/workflows"
    event["requestContext"]["path"] = "/dev/workflows"
    if origin:
        event["headers"]["Origin"] = origin
        event["multiValueHeaders"]["Origin"] = [origin]
    return event


def test_workflows_describe_every_registry_entry(call_api: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function environment with only the stereo state machine set
    for kind in ("STEREO", "VIDEO", "TTS", "STORY"):
        monkeypatch.delenv(f"{kind}_STATE_MACHINE_ARN", raising=False)
    monkeypatch.setenv("STEREO_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:s")

    # When GET /workflows is called
    result = call_api(workflows_event())

    # Then every registry entry is listed, in registry order, and only stereo is deployed
    assert result.status == 200, result.body
    items = result.body["items"]
    assert [item["kind"] for item in items] == [w.kind.value for w in registry.WORKFLOWS]
    assert {item["kind"]: item["deployed"] for item in items}["stereo"] is True
    assert not any(item["deployed"] for item in items if item["kind"] != "stereo")
    stereo = items[0]
    # And stereo's upload, outputs, stages and request schema are the registry's
    assert stereo["upload"] == {
        "name": "source.mp4",
        "content_type": "video/mp4",
        "max_bytes": 2 * 1024**3,
        "required": True,
    }
    assert stereo["outputs"][0]["name"] == "final.mp4" and stereo["outputs"][0]["media_type"] == "video/mp4"
    assert stereo["stages"] == ["chunking", "inferring", "reassembling"]
    assert stereo["request_schema"]["properties"]["layout"]["enum"] == ["full", "half"]
    # And a kind without an upload says so
    assert all(item["upload"] is None for item in items if registry.get(item["kind"]).upload is None)
    # And a story's stereo stage is said to run only when its request asks for stereo
    story = next(item for item in items if item["kind"] == "story")
    assert story["optional_stages"] == {"stereo": "stereo"} and stereo["optional_stages"] == {}


@pytest.mark.parametrize("workflow", registry.WORKFLOWS, ids=lambda w: w.kind.value)
def test_an_optional_stage_is_one_of_the_kinds_stages_turned_on_by_an_optional_request_field(
    workflow: registry.Workflow,
) -> None:
    # Given a kind's optional stages  Then each is one of its stages, and its field an optional one of its
    # request that is off (null or false) by default
    for stage, name in workflow.optional_stages.items():
        assert stage in workflow.stages
        field = workflow.request.model_fields[name]
        assert not field.is_required() and not field.get_default()


def test_an_upload_limit_that_needs_request_fields_is_reported_as_unknown() -> None:
    # Given an upload kind whose limit cannot be read from a request with only defaults
    stereo = registry.get("stereo")
    upload = registry.Upload("x.bin", "application/octet-stream", lambda r: int(r.missing), lambda h, s: None)  # type: ignore[attr-defined]
    workflow = registry.Workflow(
        kind=stereo.kind,
        request=stereo.request,
        summary="s",
        state_machine_setting="x",
        payload=stereo.payload,
        upload=upload,
    )
    # When it is described  Then its max_bytes is 0 (unknown) and nothing raises
    info = catalog.describe(workflow, Settings())
    assert info.upload is not None and info.upload.max_bytes == 0 and info.deployed is False


def load_api_with(monkeypatch: pytest.MonkeyPatch, origin: str) -> Any:
    """functions/api/app.py imported afresh with DASHBOARD_ORIGIN set (its resolver reads it at import)."""
    monkeypatch.setenv(cors.ORIGIN_ENV, origin)
    name = "storyflow_functions_api_app_cors"
    spec = importlib.util.spec_from_file_location(name, API_APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def call(module: Any, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = module.handler(event, FakeContext(function_name="storyflow-api"))
    headers = dict(response.get("headers") or {})
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v})
    response["headers"] = headers
    return response


def test_cors_headers_only_for_the_dashboards_origin(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API function with the dashboard's origin configured
    dashboard = "https://d111111abcdef8.cloudfront.net"
    module = load_api_with(monkeypatch, dashboard + "/")

    # When the dashboard calls it  Then the answer allows that origin (and only it)
    answer = call(module, workflows_event(dashboard))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Access-Control-Allow-Origin"] == dashboard
    assert "Idempotency-Key" in answer["headers"]["Access-Control-Allow-Headers"]

    # When another origin calls it  Then no CORS header lets that page read the answer
    other = call(module, workflows_event("https://evil.example"))
    assert "Access-Control-Allow-Origin" not in other["headers"]


def test_no_cors_without_a_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no DASHBOARD_ORIGIN (IAM-only stacks, the local cloud)  Then the resolver has no CORS config
    monkeypatch.delenv(cors.ORIGIN_ENV, raising=False)
    assert cors.dashboard_cors() is None
    monkeypatch.setenv(cors.ORIGIN_ENV, "  ")
    assert cors.dashboard_cors() is None
