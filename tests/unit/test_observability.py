"""The lazy tracer: no X-Ray SDK where tracing is off, Powertools' Tracer where it is on (a fresh interpreter
each: the SDK patches botocore process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.functions import ROOT

PROBE = r"""
import json, sys
from storyflow.observability import tracer

@tracer.capture_lambda_handler
def handler(event, context):
    if event.get("fail"):
        raise ValueError("boom")
    return {"echo": event["value"]}

@tracer.capture_lambda_handler(capture_response=False)
def quiet(event, context):
    return "quiet"

answer = {"imported_before_call": "aws_xray_sdk.core" in sys.modules, "name": handler.__name__}
answer["result"] = handler({"value": 3}, None)
answer["quiet"] = quiet({}, None)
try:
    handler({"fail": True}, None)
except ValueError as error:
    answer["error"] = str(error)
answer["enabled"] = tracer.enabled
answer["imported_after_call"] = "aws_xray_sdk.core" in sys.modules
answer["provider"] = type(tracer.real.provider).__name__ if tracer.enabled else None
print(json.dumps(answer))
"""

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _probe(**env: str) -> dict[str, object]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN"))
    }
    clean.update(AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_SERVICE_NAME="probe", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=clean, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_outside_lambda_the_handler_runs_as_is_and_the_xray_sdk_is_never_imported() -> None:
    answer = _probe()
    assert answer["enabled"] is False
    assert answer["imported_before_call"] is False and answer["imported_after_call"] is False
    assert answer["result"] == {"echo": 3} and answer["quiet"] == "quiet" and answer["error"] == "boom"
    assert answer["name"] == "handler"


def test_trace_disabled_in_lambda_imports_no_xray_sdk() -> None:
    answer = _probe(LAMBDA_TASK_ROOT=str(ROOT), POWERTOOLS_TRACE_DISABLED="true")
    assert answer["enabled"] is False and answer["imported_after_call"] is False


def test_in_lambda_with_tracing_on_the_first_call_builds_powertools_tracer() -> None:
    answer = _probe(
        LAMBDA_TASK_ROOT=str(ROOT),
        AWS_LAMBDA_FUNCTION_NAME="probe",
        _X_AMZN_TRACE_ID=TRACE_HEADER,
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
    )
    # Then nothing X-Ray is loaded at import, and the call goes through the real (X-Ray) Tracer
    assert answer["imported_before_call"] is False
    assert answer["enabled"] is True and answer["imported_after_call"] is True
    assert answer["provider"] == "AsyncAWSXRayRecorder"
    assert answer["result"] == {"echo": 3} and answer["quiet"] == "quiet" and answer["error"] == "boom"
