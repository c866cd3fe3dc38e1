"""Unit-test fixtures: a moto account with the template's tables and buckets, env wired like the Lambdas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.template import create_tables

REGION = "us-east-1"

# Function environment variable -> the template resource it points at (names are the logical ids here).
ENV_TO_RESOURCE = {
    "JOBS_TABLE": "JobsTable",
    "SEGMENTS_TABLE": "SegmentCompletionsTable",
    "CALLBACKS_TABLE": "InferenceCallbacksTable",
    "TASK_STATE_TABLE": "TaskStateTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "INPUT_BUCKET": "storyflow-input",
    "OUTPUT_BUCKET": "storyflow-output",
    "EVENT_BUS_NAME": "storyflow-jobs",
}


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "storyflow")


def create_account() -> None:
    """Inside a moto mock: the template's tables, the two buckets and the job event bus."""
    create_tables(boto3.client("dynamodb", region_name=REGION))
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (ENV_TO_RESOURCE["INPUT_BUCKET"], ENV_TO_RESOURCE["OUTPUT_BUCKET"]):
        s3.create_bucket(Bucket=bucket)
    boto3.client("events", region_name=REGION).create_event_bus(Name=ENV_TO_RESOURCE["EVENT_BUS_NAME"])


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Given a moto account holding the template's tables, the two buckets and the job event bus."""
    with mock_aws():
        create_account()
        for env, name in ENV_TO_RESOURCE.items():
            monkeypatch.setenv(env, name)
        yield dict(ENV_TO_RESOURCE)
    os.environ.pop("STEREO_STATE_MACHINE_ARN", None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on 127.0.0.1 for code in subprocesses or other threads (containers, model servers),
    where `mock_aws` cannot reach."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
