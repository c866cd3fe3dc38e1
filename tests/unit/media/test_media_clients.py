"""The media commands' AWS clients: one per run and environment, shared by the command and its report."""

from __future__ import annotations

import pytest
from storyflow_media import s3io


def test_a_run_builds_its_s3_client_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a task's environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # When the command and then its result.json ask for the S3 client  Then they share one
    first = s3io.s3_client()
    assert s3io.s3_client() is first
    assert first.meta.endpoint_url == "http://127.0.0.1:4566"
    # and DynamoDB has its own
    assert s3io.dynamodb_client() is not first
    assert s3io.dynamodb_client().meta.service_model.service_name == "dynamodb"


def test_another_endpoint_or_region_gets_its_own_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the client of one environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    first = s3io.s3_client()
    # When the endpoint, then the region, changes  Then each gets a client built for it
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
    moved = s3io.s3_client()
    assert moved is not first and moved.meta.endpoint_url == "http://127.0.0.1:4567"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert s3io.s3_client().meta.region_name == "eu-west-1"
