"""The serving library's HTTP contract on a real server on 127.0.0.1 (Given/When/Then)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
import requests
from storyflow_serving import errors
from storyflow_serving.http import DEFAULT_PORT, default_port
from storyflow_serving.service import InvocationRequest

from tests.unit.serving.conftest import FakeService, Start, wait_for

pytestmark = pytest.mark.enable_socket

BODY = {"input_uri": "s3://in-bucket/segments/j/00000.mp4", "output_uri": "s3://out-bucket/jobs/j/o.mp4"}


def invoke(url: str, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}/invocations", data=data, timeout=30, **kwargs)


def test_ping_is_503_until_the_service_is_loaded(start: Start) -> None:
    # Given a service whose load is still running
    service = FakeService(gated=True)
    _, url = start(service)
    # When pinged, Then 503 "loading"
    r = requests.get(f"{url}/ping", timeout=5)
    assert r.status_code == 503
    assert r.json() == {"status": "loading", "engine": "fake"}
    # When the load finishes, Then /ping answers 200
    service.gate.set()
    assert wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200)
    assert requests.get(f"{url}/ping", timeout=5).json() == {"status": "ok", "engine": "fake"}


def test_a_failed_load_keeps_ping_503_with_the_typed_error(start: Start, monkeypatch: Any) -> None:
    # Given a service whose load raises ModelNotAvailable
    service = FakeService(load_error=errors.ModelNotAvailable("weights missing: /opt/ml/model/x.bin"))
    server, url = start(service)
    server.start_loading().join(timeout=10)
    # When pinged, Then 503 with the error and its cause
    r = requests.get(f"{url}/ping", timeout=5)
    assert r.status_code == 503
    assert r.json() == {
        "status": "failed",
        "engine": "fake",
        "error": "ModelNotAvailable",
        "cause": "weights missing: /opt/ml/model/x.bin",
    }
    # And an invocation is refused with the same typed error, never reaching the service
    r = invoke(url, BODY)
    assert r.status_code == 503
    assert r.json()["error"] == "ModelNotAvailable"
    assert service.requests == []


def test_an_invocation_answers_the_service_manifest(start: Start) -> None:
    # Given a loaded service
    service = FakeService()
    _, url = start(service)
    # When /invocations is posted {input_uri, output_uri, params}
    r = invoke(url, {**BODY, "params": {"layout": "half"}})
    # Then 200 with the service's manifest, and the service saw the parsed request
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"output_uri": BODY["output_uri"], "echo": {"layout": "half"}}
    assert service.requests == [InvocationRequest(BODY["input_uri"], BODY["output_uri"], {"layout": "half"})]


def test_missing_params_are_an_empty_object(start: Start) -> None:
    service = FakeService()
    _, url = start(service)
    assert invoke(url, BODY).json()["echo"] == {}


def test_an_invocation_during_loading_waits_for_the_engine(start: Start, monkeypatch: Any) -> None:
    # Given a service still loading, When an invocation arrives and the load then finishes
    service = FakeService(gated=True)
    _, url = start(service)
    result: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: result.setdefault("r", invoke(url, BODY)))
    caller.start()
    time.sleep(0.2)
    assert "r" not in result  # still waiting
    service.gate.set()
    caller.join(timeout=20)
    # Then it is answered once the engine is ready
    assert result["r"].status_code == 200


def test_an_invocation_that_waits_too_long_is_engine_not_ready(start: Start, monkeypatch: Any) -> None:
    monkeypatch.setenv("SERVING_READY_WAIT_SECONDS", "0.05")
    _, url = start(FakeService(gated=True))
    r = invoke(url, BODY)
    assert r.status_code == 503
    assert r.json() == {"error": "EngineNotReady", "cause": "engine fake is still loading"}


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.InvalidParams("layout must be one of ['full', 'half']"), 400),
        (errors.InputNotFound("input not found: s3://b/k"), 404),
        (errors.UnprocessableInput("not a video: empty file"), 422),
        (errors.ModelError("CUDA out of memory"), 500),
        (errors.StorageError("writing s3://b/k failed"), 502),
        (errors.ModelNotAvailable("no weights"), 503),
    ],
)
def test_a_typed_error_answers_its_status_and_json_body(
    start: Start, exc: errors.ServingError, status: int
) -> None:
    # Given a service that raises a typed error
    def fail(_request: InvocationRequest) -> dict[str, Any]:
        raise exc

    _, url = start(FakeService(fail))
    # When invoked, Then the error's status and {"error": TypedName, "cause": message}
    r = invoke(url, BODY)
    assert r.status_code == status
    assert r.json() == {"error": type(exc).__name__, "cause": str(exc)}


def test_a_container_subclass_keeps_its_own_name_and_status(start: Start) -> None:
    class NotAVideo(errors.UnprocessableInput):
        pass

    def fail(_request: InvocationRequest) -> dict[str, Any]:
        raise NotAVideo("no video stream")

    _, url = start(FakeService(fail))
    r = invoke(url, BODY)
    assert (r.status_code, r.json()) == (422, {"error": "NotAVideo", "cause": "no video stream"})


def test_an_unexpected_exception_is_a_500_named_by_its_class(start: Start) -> None:
    def fail(_request: InvocationRequest) -> dict[str, Any]:
        raise RuntimeError("engine bug")

    _, url = start(FakeService(fail))
    r = invoke(url, BODY)
    assert (r.status_code, r.json()) == (500, {"error": "RuntimeError", "cause": "engine bug"})


@pytest.mark.parametrize(
    ("body", "error", "cause"),
    [
        (b"{not json", "InvalidRequest", "not valid JSON"),
        (b"\xff\xfe", "InvalidRequest", "not valid JSON"),
        ([1, 2], "InvalidRequest", "must be a JSON object"),
        ({"output_uri": "s3://b/k"}, "InvalidRequest", "missing field(s) ['input_uri']"),
        ({"input_uri": "https://x/y", "output_uri": "s3://b/k"}, "InvalidRequest", "input_uri must be"),
        ({"input_uri": "s3://b/k", "output_uri": "s3://b/"}, "InvalidRequest", "output_uri must name"),
        ({**BODY, "params": [1]}, "InvalidParams", "params must be a JSON object"),
    ],
)
def test_a_malformed_request_is_a_400_that_never_reaches_the_service(
    start: Start, body: Any, error: str, cause: str
) -> None:
    service = FakeService()
    _, url = start(service)
    r = invoke(url, body)
    assert r.status_code == 400
    assert r.json()["error"] == error
    assert cause in r.json()["cause"]
    assert service.requests == []


def test_validate_runs_before_waiting_for_the_engine(start: Start) -> None:
    # Given a still-loading service with a validate() hook that rejects the params
    class Strict(FakeService):
        def validate(self, request: InvocationRequest) -> None:
            if request.params:
                raise errors.InvalidParams(f"unknown params {sorted(request.params)}")

    _, url = start(Strict(gated=True))
    # When invoked with bad params, Then 400 at once (no wait for the load)
    r = invoke(url, {**BODY, "params": {"nope": 1}})
    assert (r.status_code, r.json()["error"]) == (400, "InvalidParams")


def test_a_body_over_the_limit_is_413(start: Start) -> None:
    # Given a server that accepts bodies up to 1 KiB
    _, url = start(FakeService(), max_body=1024)
    # When a larger body is posted (Content-Length, then chunked), Then 413 PayloadTooLarge
    r = invoke(url, {**BODY, "params": {"pad": "x" * 2048}})
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLarge"
    chunked = requests.post(
        f"{url}/invocations", data=iter([b"{" + b" " * 800, b" " * 800 + b"}"]), timeout=10
    )
    assert chunked.status_code == 413
    # And the server still answers afterwards
    assert invoke(url, BODY).status_code == 200


def test_unknown_routes_are_404_json(start: Start) -> None:
    _, url = start(FakeService())
    r = requests.get(f"{url}/nope", timeout=5)
    assert (r.status_code, r.json()["error"]) == (404, "NotFound")
    r = requests.post(f"{url}/nope", data=b"{}", timeout=5)
    assert (r.status_code, r.json()["error"]) == (404, "NotFound")
    assert requests.put(f"{url}/invocations", data=b"{}", timeout=5).status_code == 404


def test_a_container_can_register_extra_get_routes(start: Start) -> None:
    # Given a route /healthz (the tts container adds one)
    _, url = start(FakeService(), routes={"/healthz": lambda: (200, {"healthy": True})})
    # When requested, Then its answer; /ping is still the library's
    assert requests.get(f"{url}/healthz", timeout=5).json() == {"healthy": True}
    assert requests.get(f"{url}/ping", timeout=5).status_code == 200


def test_every_request_is_one_structured_log_record(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    # Given a served invocation
    def manifest(request: InvocationRequest) -> dict[str, Any]:
        return {"output_uri": request.output_uri, "frames": 12, "nested": {"x": 1}}

    _, url = start(FakeService(manifest))
    with caplog.at_level(logging.INFO, logger="storyflow_serving"):
        invoke(url, BODY)
        invoke(url, {"input_uri": "s3://b/missing"})

        # (the server writes its record after the reply, so the client can be answered first)
        def logged() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.getMessage() == "request"]

        assert wait_for(lambda: len(logged()) >= 2), "the two requests were never logged"
    records = logged()
    # Then one record each, with the inference fields, status and duration_ms
    ok, bad = records[-2], records[-1]
    assert (ok.status, ok.input_uri, ok.output_uri, ok.frames) == (200, *BODY.values(), 12)  # type: ignore[attr-defined]
    assert ok.duration_ms >= 0  # type: ignore[attr-defined]
    assert not hasattr(ok, "nested")
    assert (bad.status, bad.error) == (400, "InvalidRequest")  # type: ignore[attr-defined]


def test_default_port_is_8080_or_sagemaker_bind_to_port(monkeypatch: Any) -> None:
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    assert default_port() == DEFAULT_PORT == 8080
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9123")
    assert default_port() == 9123
